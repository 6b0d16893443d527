"""Replay in the soft-targets panel: a slider and a play button over the run's Probe events move the bars and the
strip to each step's predictions, live (following the newest unless moved back) and for a finished run read from
its events.jsonl. The play timer's slot is called directly: no test waits on the clock."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.gui.test_soft_targets import VOCAB, FakePredictor, bar_widths, make_probe_prompt
from workbench.events import Probe, Step, to_json
from workbench.gui.soft_targets import panel as panel_module
from workbench.gui.soft_targets import state as state_module
from workbench.gui.soft_targets.replay import REPLAY_INTERVAL_MS
from workbench.probabilities import divergence, soften

STEPS = (0, 100, 200, 300)


def probes(steps=STEPS, stage="distill"):
    """One Probe event per step; the logits differ at every step (seed = step), as a learning student's do."""
    return [
        Probe(
            stage, step, 2.0, [make_probe_prompt(seed=step), make_probe_prompt("the dog", [" the", " dog"], step + 1)]
        )
        for step in steps
    ]


@pytest.fixture
def panel(make_soft_targets_panel):
    return make_soft_targets_panel


def drawn(p):
    """What the bars draw: the vocab index of each row and each series' bar lengths."""
    shown = [VOCAB.index(token) for token in p.next_word.shown_tokens()]
    return shown, bar_widths(p.bars.teacher_bars), bar_widths(p.bars.student_bars)


def assert_bars_show(p, event, temperature):
    """The bars are the softmax of ``event``'s logits for the shown prompt, at the shown position and ``temperature``."""
    probe = next(pr for pr in event.prompts if pr.prompt == p.state.shown_prompt())
    shown, teacher, student = drawn(p)
    position = p.state.position
    np.testing.assert_allclose(teacher, soften(np.array(probe.teacher_logits[position]), temperature)[shown])
    np.testing.assert_allclose(student, soften(np.array(probe.student_logits[position]), temperature)[shown])


def test_replay_moves_the_bars_and_the_strip_to_each_steps_probe_at_the_current_temperature(panel):
    p = panel()
    events = probes()
    for event in events:
        p.handle_event(event)
    assert p.replay.isVisibleTo(p) and p.replay.slider.maximum() == 3 and p.replay.slider.value() == 3
    assert p.replay.label.text() == "step 300 of 300 (distill)"
    p.set_temperature(2.5)
    p.set_position(3)
    assert_bars_show(p, events[3], 2.5)
    at_end = drawn(p)

    p.replay.slider.setValue(1)  # as dragging it does
    assert p.replay.label.text() == "step 100 of 300 (distill)"
    assert "step 100 (distill)" in p.title.text()
    assert p.state.position == 3  # the position the user chose stays
    assert_bars_show(p, events[1], 2.5)
    at_step_100 = drawn(p)
    assert not np.allclose(at_step_100[2], at_end[2])  # the student's bars moved
    probe = events[1].prompts[0]
    expected_heat = divergence(
        soften(np.array(probe.teacher_logits), 2.5), soften(np.array(probe.student_logits), 2.5), "KL"
    )
    assert [cell.text() for cell in p.strip.heat_cells] == [f"{value:.2f}" for value in expected_heat]

    p.temperature_slider.setValue(p.temperature_slider.minimum())  # the temperature works on the replayed step
    assert_bars_show(p, events[1], 0.25)
    assert p.replay.label.text() == "step 100 of 300 (distill)"


def test_play_steps_through_the_probes_and_stops_at_the_end(panel, qtbot):
    p = panel()
    events = probes()
    for event in events:
        p.handle_event(event)
    assert p.replay.timer.interval() == REPLAY_INTERVAL_MS
    qtbot.mouseClick(p.replay.play_button, qtbot_left())  # at the end: play starts again from the first probe
    assert p.replay.timer.isActive() and p.replay.play_button.text() == "⏸ Pause"
    assert p.replay.slider.value() == 0 and "step 0 (distill)" in p.title.text()
    assert_bars_show(p, events[0], 1.0)
    seen = []
    for _ in range(5):  # one more tick than there are steps left
        p.replay._tick()  # what the timer calls, without waiting for it
        seen.append(p.replay.slider.value())
    assert seen == [1, 2, 3, 3, 3]
    assert not p.replay.timer.isActive() and p.replay.play_button.text() == "▶ Play"
    assert p.state.is_following()
    assert_bars_show(p, events[3], 1.0)


def test_play_pauses_on_a_second_click_and_when_the_slider_is_grabbed(panel, qtbot):
    p = panel()
    for event in probes():
        p.handle_event(event)
    p.replay.slider.setValue(0)
    p.replay.play_button.click()
    assert p.replay.timer.isActive() and p.replay.slider.value() == 0  # not at the end: it plays from here
    p.replay._tick()
    p.replay.play_button.click()
    assert not p.replay.timer.isActive() and p.replay.slider.value() == 1
    p.replay.play_button.click()
    p.replay.slider.sliderPressed.emit()
    assert not p.replay.timer.isActive()


def test_a_live_run_is_followed_unless_the_user_moved_back_and_live_returns(panel, qtbot):
    p = panel()
    first, second, third, fourth = probes()
    p.handle_event(first)
    assert not p.replay.play_button.isEnabled() and not p.replay.slider.isEnabled()  # one probe: nothing to play yet
    p.handle_event(second)
    assert p.replay.play_button.isEnabled() and p.replay.slider.value() == 1 and "step 100" in p.title.text()
    assert not p.replay.live_button.isVisibleTo(p)  # following already
    p.replay.slider.setValue(0)  # the user moves back
    assert p.replay.live_button.isVisibleTo(p)
    p.handle_event(third)
    assert p.replay.slider.maximum() == 2 and p.replay.slider.value() == 0  # the slider stays where it was put
    assert "step 0 (distill)" in p.title.text() and p.replay.label.text() == "step 0 of 200 (distill)"
    assert_bars_show(p, first, 1.0)
    qtbot.mouseClick(p.replay.live_button, qtbot_left())
    assert p.replay.slider.value() == 2 and not p.replay.live_button.isVisibleTo(p)
    assert_bars_show(p, third, 1.0)
    p.handle_event(fourth)  # following again
    assert p.replay.slider.value() == 3 and "step 300" in p.title.text()
    assert_bars_show(p, fourth, 1.0)
    p.replay.slider.setValue(1)
    p.replay.slider.setValue(3)  # moving to the end follows too
    p.handle_event(Probe("distill", 400, 2.0, [make_probe_prompt(seed=400)]))
    assert p.replay.slider.value() == 4 and "step 400" in p.title.text()
    p.clear()  # a new run
    assert not p.replay.isVisibleTo(p) and p.state.history() == []


def test_the_generate_tab_says_generations_come_from_the_final_models_while_an_earlier_step_is_shown(panel):
    p = panel()
    for event in probes():
        p.handle_event(event)
    assert not p.generation.replay_note.isVisibleTo(p.generation)
    p.replay.slider.setValue(1)
    assert p.generation.replay_note.isVisibleTo(p.generation)
    assert "step 100 (distill)" in p.generation.replay_note.text()
    assert "final models" in p.generation.replay_note.text()
    p.replay.slider.setValue(3)
    assert not p.generation.replay_note.isVisibleTo(p.generation)


def write_run(folder, events):
    folder.mkdir()
    step = Step("distill", 5, 300, 1.0, 1.0, 1.0, 1e-3, 0.1, 100.0, 1.0, 1.0)
    lines = [to_json(events[0]), to_json(step)] + [to_json(e) for e in events[1:]]
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n")


def test_a_finished_runs_probes_are_read_from_its_events_file_off_the_gui_thread(panel, qtbot, tmp_path, monkeypatch):
    events = probes(stage="distill")
    write_run(tmp_path / "run", events)
    readers = []

    def read_probes(path):
        readers.append(threading.get_ident())
        return state_module.read_probes(path)

    monkeypatch.setattr(panel_module, "read_probes", read_probes)
    fake = FakePredictor()
    p = panel(lambda path: fake)
    p.handle_event(probes((7,))[0])  # an earlier run's probe: replaced
    with qtbot.waitSignal(p.predictor_ready, timeout=10000):
        p.load_run_probes(tmp_path / "run")
        p.set_run_dir(tmp_path / "run")
    assert [e.step for e in p.state.history()] == list(STEPS)
    assert readers and threading.get_ident() not in readers
    assert p.replay.slider.maximum() == 3 and p.replay.slider.value() == 3
    assert p.replay.label.text() == "step 300 of 300 (distill)"
    assert not p.replay.live_button.isVisibleTo(p)  # a finished run has nothing live to follow
    assert_bars_show(p, events[3], 1.0)
    p.replay.slider.setValue(0)
    assert not p.replay.live_button.isVisibleTo(p)
    assert_bars_show(p, events[0], 1.0)
    assert p.generation.generate_button.isEnabled()  # the final models still generate; the note says so
    assert p.generation.replay_note.isVisibleTo(p.generation)
    # The loaded models are not asked about a probed prompt: the replayed step's numbers stay, and the title
    # names that step (the final models' answer would not match it).
    p.prompt_box.setEditText("the cat is sitting on the")
    p.prompt_box.lineEdit().returnPressed.emit()
    done = []
    p._jobs.submit("test-barrier", lambda job: None, on_done=done.append)  # after any answer the press asked for
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    assert fake.probe_calls == []
    assert "step 0 (distill)" in p.title.text() and p.replay.label.text() == "step 0 of 300 (distill)"
    assert_bars_show(p, events[0], 1.0)


def test_a_run_without_probes_or_events_says_so(panel, qtbot, tmp_path):
    p = panel()
    (tmp_path / "bare").mkdir()
    p.load_run_probes(tmp_path / "bare")
    qtbot.waitUntil(lambda: "no events.jsonl" in p.status.text(), timeout=10000)
    assert not p.replay.isVisibleTo(p)
    (tmp_path / "quiet").mkdir()
    (tmp_path / "quiet" / "events.jsonl").write_text("")
    p.load_run_probes(tmp_path / "quiet")
    qtbot.waitUntil(lambda: "recorded no probes" in p.status.text(), timeout=10000)
    assert "train.probe_interval" in p.status.text()


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_an_unreadable_events_file_is_named_with_a_hint(panel, qtbot, tmp_path, monkeypatch):
    p = panel()
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "events.jsonl").write_text("")

    def failing(path):
        raise OSError(5, "Input/output error", str(path))

    monkeypatch.setattr(panel_module, "read_probes", failing)
    p.load_run_probes(tmp_path / "odd")
    qtbot.waitUntil(lambda: "Could not read the probes of odd" in p.status.text(), timeout=10000)
    assert "events.jsonl" in p.status.text().split(":", 1)[1]


def test_probes_beside_a_line_of_damaged_bytes_still_replay(panel, qtbot, tmp_path):
    p = panel()
    (tmp_path / "damaged").mkdir()
    probe = Probe("distill", 10, 2.0, [make_probe_prompt(seed=10)])
    text = (
        to_json(probe).encode()
        + b'\n{"kind": "probe" \xff\xfe}\n'
        + to_json(Probe("distill", 20, 2.0, [make_probe_prompt(seed=20)])).encode()
    )
    (tmp_path / "damaged" / "events.jsonl").write_bytes(text + b"\n")
    p.load_run_probes(tmp_path / "damaged")
    qtbot.waitUntil(lambda: p.replay.label.text() == "step 20 of 20 (distill)", timeout=10000)
