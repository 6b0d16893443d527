"""The soft-targets panel: bars from Probe events, temperature without a forward pass, hard label, heat strip,
and a run folder's models answering off the GUI thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QPushButton

from workbench.errors import ConfigError
from workbench.events import Probe, ProbePrompt
from workbench.gui.soft_targets.panel import SoftTargetsPanel
from workbench.probabilities import divergence, entropy, soften

VOCAB = [
    " the",
    " cat",
    " is",
    " sitting",
    " on",
    " mat",
    " sofa",
    " floor",
    " bed",
    " chair",
    " rug",
    " dog",
    " sat",
    " a",
    " .",
    " table",
]
TOKENS = [" the", " cat", " is", " sitting", " on", " the"]


def make_probe_prompt(prompt="the cat is sitting on the", tokens=TOKENS, seed=0, student=True, truth=True):
    rng = np.random.default_rng(seed)
    n, v = len(tokens), len(VOCAB)
    teacher = rng.normal(0, 2, (n, v))
    teacher[-1, VOCAB.index(" mat")] += 4  # "mat" first after "... on the"
    truth_probs = soften(teacher + rng.normal(0, 0.3, (n, v)), 1.0)
    return ProbePrompt(
        prompt=prompt,
        tokens=list(tokens),
        teacher_logits=teacher.tolist(),
        student_logits=(teacher * 0.6 + rng.normal(0, 1, (n, v))).tolist() if student else [],
        vocab_ids=[],
        vocab_tokens=list(VOCAB),
        true_probs=truth_probs.tolist() if truth else [],
    )


def make_probe(step=100, prompts=None, stage="distill"):
    return Probe(stage, step, 2.0, prompts or [make_probe_prompt(), make_probe_prompt("the dog", [" the", " dog"], 1)])


class FakePredictor:
    """Stands in for evaluate.Predictor: records calls and the threads they ran on."""

    def __init__(self):
        self.probe_calls = []
        self.generate_calls = []
        self.threads = set()

    def probe(self, prompt):
        self.probe_calls.append(prompt)
        self.threads.add(threading.get_ident())
        words = prompt.split()
        tokens = [" " + w for w in words]
        return make_probe_prompt(prompt, tokens, seed=len(words))

    def generate(self, prompt, *, max_new_tokens=30, temperature=1.0, top_p=0.95, seed=0):
        self.generate_calls.append((prompt, max_new_tokens, temperature, top_p, seed))
        self.threads.add(threading.get_ident())
        return f"teacher says {prompt}", f"student says {prompt}"


@pytest.fixture
def panel(make_soft_targets_panel):
    return make_soft_targets_panel


def bar_widths(bars):
    return np.asarray(bars.opts["width"], float)


def test_probe_event_fills_bars_with_softmax_of_the_logits(panel):
    p = panel()
    p.handle_event(make_probe())
    probe = make_probe_prompt()
    teacher = soften(np.array(probe.teacher_logits[-1]), 1.0)
    student = soften(np.array(probe.student_logits[-1]), 1.0)
    truth = np.array(probe.true_probs[-1])
    shown = [VOCAB.index(token) for token in p.next_word.shown_tokens()]
    assert len(shown) == p.top_k_box.value() == 10
    assert p.next_word.shown_tokens()[0] == " mat"  # ordered by the teacher, most likely on top
    np.testing.assert_allclose(bar_widths(p.bars.teacher_bars), teacher[shown])
    np.testing.assert_allclose(bar_widths(p.bars.student_bars), student[shown])
    np.testing.assert_allclose(bar_widths(p.bars.truth_bars), truth[shown])
    # The k words are the k most likely under teacher, student or truth.
    best = np.max([teacher, student, truth], axis=0)
    assert set(shown) == set(np.argsort(-best)[:10])
    assert p.state.position == len(TOKENS) - 1 and p.state.hard_label() is None
    assert not p.bars.hard_marker.isVisible()
    assert p.prompt_box.currentText() == "the cat is sitting on the"
    assert p.state.listed_prompts() == ["the cat is sitting on the", "the dog"]
    assert p.state.entropies()["teacher"] == pytest.approx(entropy(teacher))
    assert "H = " in p.legend.text()
    assert (
        p.next_word.show_readout_at(0)
        == f"“mat”   teacher {teacher[shown[0]]:.3f}   student {student[shown[0]]:.3f}   truth {truth[shown[0]]:.3f}"
    )
    # Hovering the third row reads out that word's probabilities.
    from PySide6.QtCore import QPointF

    scene_pos = p.bars.plot.vb.mapViewToScene(QPointF(0.01, 2.0))
    p.bars.scene().sigMouseMoved.emit(scene_pos)
    assert (
        p.readout.text().startswith(f"“{VOCAB[shown[2]].strip()}”")
        and f"teacher {teacher[shown[2]]:.3f}" in p.readout.text()
    )


def test_top_k_selector_changes_the_number_of_words(panel):
    p = panel()
    p.handle_event(make_probe())
    p.top_k_box.setValue(5)
    assert len(p.next_word.shown_tokens()) == 5 and len(bar_widths(p.bars.teacher_bars)) == 5


def test_temperature_resoftens_cached_logits_without_asking_the_models(panel, qtbot):
    fake = FakePredictor()
    p = panel(lambda path: fake)
    with qtbot.waitSignal(p.predictor_ready, timeout=5000):
        p.set_run_dir("/runs/demo")
    with qtbot.waitSignal(p.probe_shown, timeout=5000):
        p.prompt_box.setEditText("the cat is on the")
        p.prompt_box.lineEdit().returnPressed.emit()
    assert fake.probe_calls == ["the cat is on the"]
    probe = fake.probe("the cat is on the")
    fake.probe_calls.clear()

    p.temperature_slider.setValue(p.temperature_slider.maximum())  # T = 10
    assert p.state.temperature == pytest.approx(10.0)
    shown = [VOCAB.index(token) for token in p.next_word.shown_tokens()]
    expected = soften(np.array(probe.teacher_logits[-1]) / 10.0, 1.0)[shown]
    np.testing.assert_allclose(bar_widths(p.bars.teacher_bars), expected)
    np.testing.assert_allclose(bar_widths(p.bars.student_bars), soften(np.array(probe.student_logits[-1]), 10.0)[shown])
    np.testing.assert_allclose(bar_widths(p.bars.truth_bars), np.array(probe.true_probs[-1])[shown])  # truth ignores T
    p.set_temperature(0.5)
    shown = [VOCAB.index(token) for token in p.next_word.shown_tokens()]
    np.testing.assert_allclose(bar_widths(p.bars.teacher_bars), soften(np.array(probe.teacher_logits[-1]), 0.5)[shown])
    assert p.temperature_label.text() == "T = 0.50"
    qtbot.wait(50)  # a stray request to the worker would have arrived by now
    assert fake.probe_calls == []


def test_earlier_position_marks_the_known_next_token(panel, qtbot):
    p = panel()
    p.handle_event(make_probe())
    qtbot.mouseClick(p.strip.chips[2], qtbot_left())  # the chip "is": what follows is "sitting"
    assert p.state.position == 2
    assert p.state.hard_label() == " sitting"
    assert " sitting" in p.next_word.shown_tokens()
    row = p.next_word.shown_tokens().index(" sitting")
    assert p.bars.hard_marker.isVisible()
    assert p.bars.hard_marker.data["y"][0] == row
    assert p.bars.row_highlight.getRegion() == (row - 0.5, row + 0.5)
    assert "next token in the prompt: <b>sitting</b>" in p.legend.text()
    probe = make_probe_prompt()
    shown = [VOCAB.index(token) for token in p.next_word.shown_tokens()]
    np.testing.assert_allclose(bar_widths(p.bars.teacher_bars), soften(np.array(probe.teacher_logits[2]), 1.0)[shown])
    p.set_position(5)
    assert not p.bars.hard_marker.isVisible()


def test_heat_strip_shows_the_divergence_at_every_position(panel):
    p = panel()
    p.handle_event(make_probe())
    probe = make_probe_prompt()
    expected = []
    for t_row, s_row in zip(probe.teacher_logits, probe.student_logits):
        t = np.exp(t_row) / np.exp(t_row).sum()
        s = np.exp(s_row) / np.exp(s_row).sum()
        expected.append(sum(ti * np.log(ti / si) for ti, si in zip(t, s)))
    np.testing.assert_allclose(p.state.heat(), expected, rtol=1e-9)
    assert [cell.text() for cell in p.strip.heat_cells] == [f"{value:.2f}" for value in expected]
    p.divergence_box.setCurrentIndex(2)  # total variation
    t, s = soften(np.array(probe.teacher_logits), 1.0), soften(np.array(probe.student_logits), 1.0)
    np.testing.assert_allclose(p.state.heat(), 0.5 * np.abs(t - s).sum(-1))
    p.divergence_box.setCurrentIndex(1)  # Jensen-Shannon is symmetric and at most log 2
    np.testing.assert_allclose(p.state.heat(), divergence(s, t, "JS"))
    assert (p.state.heat() <= np.log(2) + 1e-12).all()


def test_teacher_stage_probe_without_student_shows_teacher_and_truth(panel):
    p = panel()
    p.handle_event(make_probe(prompts=[make_probe_prompt(student=False)], stage="teacher"))
    assert len(bar_widths(p.bars.student_bars)) == 0
    assert len(bar_widths(p.bars.teacher_bars)) == 10
    assert np.isnan(p.state.heat()).all()
    assert "no student yet" in p.legend.text()


def test_new_probe_refreshes_the_shown_prompt_and_keeps_the_position(panel):
    p = panel()
    p.handle_event(make_probe(step=100))
    p.set_position(1)
    newer = make_probe_prompt(seed=7)
    p.handle_event(make_probe(step=200, prompts=[newer]))
    assert p.state.position == 1
    shown = [VOCAB.index(token) for token in p.next_word.shown_tokens()]
    np.testing.assert_allclose(bar_widths(p.bars.teacher_bars), soften(np.array(newer.teacher_logits[1]), 1.0)[shown])
    assert "step 200" in p.title.text()
    p.handle_event(make_probe(step=300, prompts=[make_probe_prompt("the dog", [" the", " dog"], 1)]))
    p.set_prompt("the cat is sitting on the")  # back and forth, without the event loop turning in between
    visible = [chip.text() for chip in p.strip.host.findChildren(QPushButton) if chip.isVisibleTo(p.strip.host)]
    assert visible == ["the", "cat", "is", "sitting", "on", "the"]


def test_run_folder_models_answer_typed_prompts_and_generate_off_the_gui_thread(panel, qtbot):
    fake = FakePredictor()
    p = panel(lambda path: fake)
    assert not p.generation.generate_button.isEnabled()
    with qtbot.waitSignal(p.predictor_ready, timeout=5000):
        p.set_run_dir("/runs/demo")
    with qtbot.waitSignal(p.probe_shown, timeout=5000) as shown:
        p.prompt_box.setEditText("a dog sat")
        p.prompt_box.lineEdit().returnPressed.emit()
    assert shown.args == ["a dog sat"]
    assert [chip.text() for chip in p.strip.chips] == ["a", "dog", "sat"]
    p.generation.max_tokens_box.setValue(12)
    p.generation.temperature_box.setValue(0.0)
    with qtbot.waitSignal(p.generation_shown, timeout=5000):
        qtbot.mouseClick(p.generation.generate_button, qtbot_left())
    assert fake.generate_calls == [("a dog sat", 12, 0.0, 0.95, 0)]
    assert (
        p.generation.teacher_text.toPlainText() == "a dog sat teacher says a dog sat"
    )  # the prompt, then the continuation
    assert p.generation.student_text.toPlainText() == "a dog sat student says a dog sat"
    assert "Next word after “a dog sat”" in p.title.text()
    assert threading.get_ident() not in fake.threads and len(fake.threads) == 1


def test_a_run_folder_that_fails_to_load_says_why(panel, qtbot):
    def broken(path):
        raise ConfigError("", "no student checkpoint in this run", "Resume the run or pick a finished one.")

    p = panel(broken)
    with qtbot.waitSignal(p.predictor_failed, timeout=5000):
        p.set_run_dir("/runs/empty")
    assert "no student checkpoint" in p.status.text() and "Resume the run" in p.status.text()
    assert not p.generation.generate_button.isEnabled()


def test_an_unexpected_load_error_is_shown_as_its_first_line_with_what_to_check(panel, qtbot):
    def broken(path):
        raise RuntimeError("Error(s) in loading state_dict:\n  size mismatch for lm_head.weight\n  (long trace)")

    p = panel(broken)
    with qtbot.waitSignal(p.predictor_failed, timeout=5000) as failed:
        p.set_run_dir("/runs/broken")
    assert failed.args == [
        "Could not load the models of broken: Error(s) in loading state_dict: size mismatch for lm_head.weight"
    ]
    assert p.status.text().endswith("Check that the run folder holds a finished or checkpointed run.")
    assert "long trace" not in p.status.text()


def test_only_the_newest_typed_prompt_is_answered(panel, qtbot):
    fake, started, release = FakePredictor(), threading.Event(), threading.Event()
    slow_probe = fake.probe

    def probe(prompt):
        if prompt == "the cat":
            started.set()
            release.wait(5)  # the user types the next prompt while the models still think about this one
        return slow_probe(prompt)

    fake.probe = probe
    p = panel(lambda path: fake)
    with qtbot.waitSignal(p.predictor_ready, timeout=5000):
        p.set_run_dir("/runs/demo")
    shown = []
    p.probe_shown.connect(shown.append)
    p.set_prompt("the cat")
    assert started.wait(5)
    p.set_prompt("a dog sat")
    release.set()
    qtbot.waitUntil(lambda: shown == ["a dog sat"], timeout=5000)
    qtbot.wait(50)
    assert shown == ["a dog sat"] and p.state.shown_prompt() == "a dog sat"


def test_pin_and_unpin_a_typed_prompt(panel):
    p = panel()
    p.handle_event(make_probe())
    p.prompt_box.setEditText("my own prompt")
    p.pin_button.click()
    assert p.state.listed_prompts()[-1] == "my own prompt"
    assert p.pin_button.text() == "★ Pinned"
    assert p.prompt_box.findText("my own prompt") >= 0
    p.pin_button.click()
    assert "my own prompt" not in p.state.listed_prompts()
    p.clear()
    assert p.state.listed_prompts() == [] and p.bars.isHidden()


def test_shutdown_leaves_no_running_thread(panel, qtbot):
    p = panel(lambda path: FakePredictor())
    with qtbot.waitSignal(p.predictor_ready, timeout=5000):
        p.set_run_dir("/runs/demo")
    threads = p.findChildren(QThread)
    assert threads and all(thread.isRunning() for thread in threads)
    p.shutdown()
    assert all(not thread.isRunning() for thread in threads)


def test_divergences_match_their_definitions():
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    q = np.array([[0.25, 0.25, 0.5], [0.2, 0.3, 0.5]])
    np.testing.assert_allclose(divergence(p, q, "KL"), [np.log(2), 0.0], atol=1e-12)
    np.testing.assert_allclose(divergence(p, q, "TV"), [0.5, 0.0])
    np.testing.assert_allclose(entropy(np.array([0.5, 0.5])), np.log(2))
    np.testing.assert_allclose(soften(np.log([[1.0, 3.0]]), 0.5), [[0.1, 0.9]])


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_notes_about_missing_models_say_what_to_do_and_go_when_bars_show(qtbot):
    p = SoftTargetsPanel()
    qtbot.addWidget(p)
    p.set_prompt("the bird is")
    assert p.status.text().startswith("No models yet: start a run")
    p.handle_event(make_probe())  # a run's probes arrive: bars for its prompt are on screen
    assert p.status.text() == ""
    p.set_prompt("a prompt nobody probed")
    assert "not probed by the run" in p.status.text()


def test_a_prompt_the_language_cannot_produce_has_no_true_distribution_and_examples_are_offered(panel, qtbot):
    from workbench.engine.toy.language import get_language

    language = get_language()
    p = panel()
    p.resize(1000, 800)
    p.show()
    qtbot.waitExposed(p)
    odd = make_probe_prompt("the cat the", [" the", " cat", " the"], 2)  # "the cat the" is no sentence of it
    p.handle_event(make_probe(prompts=[make_probe_prompt(), odd]))
    assert p.next_word.truth_note.isHidden() is False and "true distribution" not in p.next_word.truth_note.text()
    assert "truth" in dict(p.state.rows_at_position())  # a prompt it can produce keeps its truth

    p.set_prompt("the cat the")
    note = p.next_word.truth_note
    assert not language.is_possible("the cat the")
    assert "never produces" in note.text() and "no true next-word distribution" in note.text()
    assert "truth" not in dict(p.state.rows_at_position()) and "truth" not in p.state.entropies()
    assert not p.bars.truth_bars.isVisible() or len(bar_widths(p.bars.truth_bars)) == 0
    p.state.set_position(1)  # "the cat" can be produced: its truth is shown again
    p.next_word.select_position()
    assert "truth" in dict(p.state.rows_at_position()) and "never produces" not in note.text()

    # The examples are links; each one is a prompt of the language, and clicking one asks for it.
    examples = p.next_word.example_prompts()
    assert {"the cat", "the cats"} <= set(examples)
    assert all(language.is_possible(example) for example in examples)
    asked = []
    p.set_prompt = asked.append  # the models are not loaded here: see what the link asks for
    note.linkActivated.emit("the cats")
    assert asked == ["the cats"]


def test_a_typed_prompt_with_unknown_words_or_too_long_for_the_models_says_so(panel, qtbot):
    class Predictor(FakePredictor):
        def probe(self, prompt):
            if len(prompt.split()) > 5:
                raise ConfigError("", "the prompt is 6 tokens long, more than the 5 positions", "shorten it")
            return make_probe_prompt(prompt, [" the", " <unk>", " is"], truth=False)

    p = panel(lambda path: Predictor())
    with qtbot.waitSignal(p.predictor_ready, timeout=5000):
        p.set_run_dir("/runs/demo")
    with qtbot.waitSignal(p.probe_shown, timeout=5000):
        p.set_prompt("the xyzzy is")
    assert "read as their unknown token (<unk>)" in p.status.text()
    with qtbot.waitSignal(p.predictor_failed, timeout=5000):
        p.set_prompt("a b c d e f")
    assert "more than the 5 positions. Shorten it" in p.status.text()


def test_generate_without_a_prompt_says_to_type_one(panel, qtbot):
    fake = FakePredictor()
    p = panel(lambda path: fake)
    with qtbot.waitSignal(p.predictor_ready, timeout=5000):
        p.set_run_dir("/runs/demo")
    p.prompt_box.setEditText("   ")
    p.generate()
    assert p.status.text().startswith("Type a prompt first") and fake.generate_calls == []


def test_letting_the_models_go_for_a_new_run_leaves_no_loaded_line(panel, qtbot):
    """A new run replaces the shown run's models: the status no longer says they are loaded."""
    p = panel(lambda path: FakePredictor())
    with qtbot.waitSignal(p.predictor_ready, timeout=5000):
        p.set_run_dir("/runs/demo")
    assert "loaded" in p.status.text()
    p.clear()
    p.set_run_dir(None)
    assert "loaded" not in p.status.text() and not p.generation.generate_button.isEnabled()


def test_the_temperature_slider_is_for_the_next_word_bars_only(panel):
    """Generate has its own sampling temperature: the panel's slider, which does not act on it, is greyed out."""
    p = panel(lambda path: FakePredictor())
    assert p.temperature_slider.isEnabled()
    p.views.setCurrentWidget(p.generation)
    assert not p.temperature_slider.isEnabled() and "its own temperature" in p.temperature_slider.toolTip()
    p.views.setCurrentWidget(p.next_word)
    assert p.temperature_slider.isEnabled()
