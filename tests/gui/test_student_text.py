"""The soft-targets panel's Student's text tab: the student's sampled tokens coloured by the teacher, forbidden
words marked, the grammatical rate with its count and history, the replay moving it, old probes without samples,
and the Sample button answered by the run's models on the background thread."""

from __future__ import annotations

import threading

import pytest

from tests.gui.test_soft_targets import FakePredictor, make_probe_prompt
from workbench.events import Probe, StudentText
from workbench.gui.soft_targets.student_text import NO_SAMPLES_RECORDED, NOTHING_YET, chip_fraction


def student_text(step: int, good: int, total: int = 32) -> StudentText:
    return StudentText(
        prompt="the cat",
        tokens=[" sat", " on", " mat", " ."],
        teacher_logprob=[-0.5, -1.0, -9.0, -0.1],
        kl=[0.1, 0.2, 1.5, 0.0],
        true_prob=[0.3, 0.5, 0.0, 0.9],
        forbidden=[False, False, True, False],
        grammatical=good,
        sentences=total,
        seed=step,
    )


def probe(step: int, good: int, with_samples: bool = True) -> Probe:
    return Probe(
        "distill",
        step,
        2.0,
        [make_probe_prompt(seed=step)],
        samples=[student_text(step, good)] if with_samples else [],
    )


@pytest.fixture
def panel(make_soft_targets_panel):
    return make_soft_targets_panel


def test_a_probe_shows_the_students_tokens_marks_and_grammatical_rate(panel):
    p = panel()
    p.views.setCurrentWidget(p.student_text)
    p.handle_event(probe(0, 8))
    p.handle_event(probe(100, 23))
    view = p.student_text
    assert p.views.tabText(p.views.indexOf(view)) == "Student's text"
    assert [chip.text() for chip in view.chips] == ["sat", "on", "mat", "."]
    assert [chip.forbidden for chip in view.chips] == [False, False, True, False]
    assert "line-through" in view.chips[2].styleSheet() and "line-through" not in view.chips[0].styleSheet()
    assert "true p = 0" in view.chips[2].toolTip() and "teacher log p = -9.00" in view.chips[2].toolTip()
    assert view.rate_value.text() == "72%"
    assert "23 of 32 sentences grammatical" in view.rate_count.text()
    assert view.sparkline.values == [8 / 32, 23 / 32] and view.sparkline.current == 1
    # Colour by the teacher's surprise, then by KL: the colour of "mat" follows the chosen number.
    by_teacher = view.chips[2].styleSheet()
    view.set_colour_by("kl")
    assert view.chips[2].styleSheet() != by_teacher
    assert chip_fraction(student_text(0, 0), 2, "teacher") == 1.0
    assert chip_fraction(student_text(0, 0), 2, "kl") == pytest.approx(0.75)


def test_replay_moves_the_students_text_and_its_rate(panel):
    p = panel()
    for step, good in ((0, 8), (100, 16), (200, 23)):
        p.handle_event(probe(step, good))
    p.select_step(0)
    view = p.student_text
    assert view.rate_value.text() == "25%" and "8 of 32" in view.rate_count.text()
    assert "step 0 (distill)" in view.rate_count.text()
    assert view.sparkline.current == 0
    p.select_step(1)
    assert view.rate_value.text() == "50%" and view.sparkline.current == 1


def test_old_probes_without_samples_load_and_the_tab_says_there_is_nothing_yet(panel):
    p = panel()
    assert p.student_text.note.text() == NOTHING_YET and p.student_text.note.isVisibleTo(p.student_text)
    p.handle_event(probe(0, 0, with_samples=False))
    view = p.student_text
    assert view.chips == [] and view.note.text() == NO_SAMPLES_RECORDED
    assert not view.rate_box.isVisibleTo(view)
    assert p.bars.teacher_bars is not None, "the Next word tab still shows the probe"


class SamplingPredictor(FakePredictor):
    def __init__(self):
        super().__init__()
        self.sample_calls = []

    def sample_text(self, prompt, *, seed=0, count=16):
        self.sample_calls.append((prompt, seed))
        self.threads.add(threading.get_ident())
        return StudentText(prompt, [" dog"], [-2.0], [0.3], [0.1], [False], 3, 4, seed)


def test_sample_asks_the_run_models_off_the_gui_thread_with_a_new_seed_each_time(panel, qtbot, tmp_path):
    predictor = SamplingPredictor()
    p = panel(lambda run_dir: predictor)
    view = p.student_text
    assert not view.sample_button.isEnabled()
    p.set_run_dir(tmp_path)
    qtbot.waitUntil(view.sample_button.isEnabled, timeout=5000)
    p.prompt_box.setEditText("")
    view.sample_button.click()
    assert "Type a prompt first" in p.status.text() and predictor.sample_calls == []
    p.prompt_box.setEditText("the big dog")
    view.sample_button.click()
    qtbot.waitUntil(lambda: len(view.chips) == 1, timeout=5000)
    assert view.chips[0].text() == "dog"
    view.sample_button.click()
    qtbot.waitUntil(lambda: len(predictor.sample_calls) == 2 and view.sample_button.isEnabled(), timeout=5000)
    assert [seed for _, seed in predictor.sample_calls] == [1, 2]
    assert predictor.sample_calls[0][0] == "the big dog"
    assert threading.get_ident() not in predictor.threads


def test_on_a_users_text_the_legend_names_no_forbidden_words(panel):
    """Only the built-in language says which words are impossible; a run on one's own text has no truth."""
    p = panel()
    p.views.setCurrentWidget(p.student_text)
    p.handle_event(probe(0, 8))
    assert "forbidden by the language" in p.student_text.legend.text()
    own = panel()
    sample = student_text(0, 0)
    sample = StudentText(**{**vars(sample), "true_prob": [], "forbidden": [], "grammatical": 0, "sentences": 0})
    own.handle_event(Probe("distill", 0, 2.0, [make_probe_prompt(seed=0)], samples=[sample]))
    assert own.student_text.legend.text() and "forbidden" not in own.student_text.legend.text()
    assert not own.student_text.rate_box.isVisibleTo(own)


def _subword_probe(tokens: list[str]) -> Probe:
    n = len(tokens)
    sample = StudentText(prompt="the cat", tokens=tokens, teacher_logprob=[-1.0] * n, kl=[0.1] * n, seed=0)
    return Probe("distill", 0, 1.0, [make_probe_prompt(seed=0)], samples=[sample])


def _gaps(view) -> list[int]:
    """Pixels between each chip and the one after it, on one line."""
    rects = [chip.geometry() for chip in view.chips]
    return [b.x() - (a.x() + a.width()) for a, b in zip(rects, rects[1:], strict=False)]


def test_the_pieces_of_one_word_touch_and_whole_words_keep_their_gap(panel, qtbot):
    from workbench.gui.soft_targets.student_text import FlowLayout, word_starts

    assert word_starts([" the", " cater", "pill", "ar", " sat", "."]) == [True, True, False, False, True, False]
    assert word_starts(["the", "cat", "sat"]) == [True, True, True], "no leading spaces at all: no sign, no glue"
    assert word_starts(["The", "cat", "\n", "sat", "."]) == [True] * 5, "SentencePiece pieces and a newline: no glue"
    assert word_starts([" the", "\n", "cat", "s", " sat"]) == [True, True, True, False, True], "a word after a newline"
    p = panel()
    p.resize(900, 600)
    p.show()
    p.views.setCurrentWidget(p.student_text)
    p.handle_event(_subword_probe([" the", " cater", "pill", "ar", " sat", "."]))
    view = p.student_text
    qtbot.waitUntil(lambda: view.chips and view.chips[-1].geometry().x() > 0)
    glue = FlowLayout.GLUE
    assert _gaps(view) == [4, glue, glue, 4, glue]
    assert "border-top-right-radius: 0px" in view.chips[1].styleSheet()  # "cater" meets "pill" square
    assert "border-top-left-radius: 0px" in view.chips[2].styleSheet()
    assert "border-top-left-radius: 6px" in view.chips[1].styleSheet()
    p.handle_event(_subword_probe(["the", "cat", "sat", "."]))  # the built-in language's words
    qtbot.waitUntil(lambda: len(view.chips) == 4 and view.chips[-1].geometry().x() > 0)
    assert _gaps(view) == [4, 4, 4]


def test_a_word_wraps_whole_to_the_next_line(qtbot):
    from PySide6.QtCore import QRect
    from PySide6.QtWidgets import QLabel, QWidget

    from workbench.gui.soft_targets.student_text import FlowLayout

    host = QWidget()
    qtbot.addWidget(host)
    flow = FlowLayout(host)
    labels = [QLabel(text, host) for text in ("aaaaaaaa", "bbbbbbbb", "cc", "dd")]
    for i, label in enumerate(labels):
        label.setFixedSize(60, 20)
        flow.addWidget(label, glued=i == 2 or i == 3)  # "bbbbbbbb" + "cc" + "dd" is one word
    flow.setGeometry(QRect(0, 0, 200, 100))
    tops = [label.geometry().y() for label in labels]
    assert tops[0] == 0 and tops[1] == tops[2] == tops[3] > 0, "the word moves to the next line whole"
