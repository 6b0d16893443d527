"""The real window, offscreen, driving the real engine on a tiny toy-quick run."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QSettings, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication

from workbench.events import Eval, Log, Probe, Step

RUN_TIMEOUT = 90_000  # ms; a tiny run takes a few seconds, more on a loaded machine
PLAN_TIMEOUT = 30_000  # ms; the first plan waits for the engine's import (a few seconds)


class Steps(QObject):
    """Counts events reaching the window and can act on the first distillation step."""

    def __init__(self, on_first_distill=None):
        super().__init__()
        self.events = []
        self._hook = on_first_distill

    @Slot(object)
    def on_event(self, event):
        self.events.append(event)
        if self._hook and isinstance(event, Step) and event.stage == "distill":
            hook, self._hook = self._hook, None
            hook()

    def steps(self, stage="distill"):
        return [e.step for e in self.events if isinstance(e, Step) and e.stage == stage]


def _bars(window):
    """The bar lengths (probabilities) the soft-targets panel draws for teacher and student."""
    bars = window.soft_targets.bars  # the ProbabilityBars chart of the panel
    return {
        "teacher": [float(v) for v in bars.teacher_bars.opts["width"]],
        "student": [float(v) for v in bars.student_bars.opts["width"]],
    }


def _points(window, chart, key):
    return len(window.charts.charts[chart].series[key].data)


def test_a_run_fills_charts_soft_targets_progress_and_runs_table(make_window, runs_dir, qtbot, tiny_config):
    window = make_window(tiny_config(runs_dir))
    recorder = Steps()
    window.controller.event.connect(recorder.on_event)
    with qtbot.waitSignal(window.controller.finished, timeout=RUN_TIMEOUT) as finished:
        window.start_action.trigger()
        assert not window.start_action.isEnabled()  # one run at a time
    assert finished.args[0].status == "completed"
    kinds = {type(e) for e in recorder.events}
    assert {Step, Eval, Probe} <= kinds
    window.charts.redraw_now()
    assert _points(window, "loss", "loss") >= 8
    assert _points(window, "loss", "teacher_loss") >= 6
    assert _points(window, "kl", "kl_teacher_student") >= 2
    bars = _bars(window)
    assert bars["teacher"] and bars["student"]
    assert "Completed" in window.progress.summary_text()
    assert window.runs_panel.row_count() == 1
    assert window.runs_panel.table.item(0, 2).text() == "completed"
    assert window.start_action.isEnabled()
    # what distillation bought, from the run's own summary.json: not over the charts by itself (no baseline to
    # compare with, and the Run menu's choice is off); the Runs tab's button opens it
    assert window.runs_panel.bought_card is None
    card = window.runs_panel.show_bought(finished.args[0].run_dir)
    assert card is not None and card.isVisible() and card.card.run_path == finished.args[0].run_dir
    summary = finished.args[0].summary
    assert card.card.values["ce"]["distilled"] == pytest.approx(summary["student_ce"])
    assert card.cells[("params", "teacher")].text() != "–" and card.card.baseline_path is None


def test_pause_holds_the_run_and_resume_finishes_it(make_window, runs_dir, qtbot, tiny_config):
    window = make_window(tiny_config(runs_dir, max_steps=30))
    recorder = Steps(on_first_distill=window.pause_action.trigger)
    window.controller.event.connect(recorder.on_event)
    window.start_run()
    qtbot.waitUntil(lambda: window.controller.state() == "paused", timeout=RUN_TIMEOUT)
    assert window.pause_action.text().replace("&", "") == "Resume"
    assert "paused" in window.progress.summary_text()
    # The engine says "paused" once its loop is waiting: the step in flight when Pause was pressed is in by then.
    qtbot.waitUntil(
        lambda: any(isinstance(e, Log) and e.message == "paused" for e in recorder.events), timeout=RUN_TIMEOUT
    )
    held = len(recorder.steps())
    qtbot.wait(1000)
    assert len(recorder.steps()) == held, "steps kept coming while paused"
    assert held < 30
    with qtbot.waitSignal(window.controller.finished, timeout=RUN_TIMEOUT) as finished:
        window.pause_action.trigger()  # now "Resume"
    assert finished.args[0].status == "completed"
    assert recorder.steps()[-1] == 30


def test_stop_keeps_a_checkpoint_and_resume_from_runs_panel_continues(
    make_window, runs_dir, tmp_path, qtbot, tiny_config
):
    window = make_window(tiny_config(runs_dir, max_steps=30, checkpoint_interval=100))
    recorder = Steps(on_first_distill=window.stop_action.trigger)
    window.controller.event.connect(recorder.on_event)
    with qtbot.waitSignal(window.controller.finished, timeout=RUN_TIMEOUT) as finished:
        window.start_run()
    assert finished.args[0].status == "stopped"
    run_dir = finished.args[0].run_dir
    stopped_at = recorder.steps()[-1]
    assert stopped_at < 30
    assert "Resume" in window.banner.message() or "checkpoint" in window.banner.message()
    assert "Stopping" not in window.statusBar().currentMessage(), "the stop has happened: its note goes"

    # The form now holds a teacher folder without config.json: its plan disables Start, never Resume,
    # which continues the run folder's own configuration.
    broken = tiny_config(runs_dir, max_steps=30)
    (tmp_path / "not-a-model").mkdir()
    broken.teacher.source, broken.teacher.path = "local", str(tmp_path / "not-a-model")
    window.set_config(broken)
    qtbot.waitUntil(lambda: "config.json" in window.start_reason(), timeout=PLAN_TIMEOUT)

    panel = window.runs_panel
    panel.select_run(run_dir)
    assert panel.table.item(0, 2).text() == "stopped"
    assert panel.resume_button.isEnabled()
    recorder.events.clear()
    with qtbot.waitSignal(window.controller.finished, timeout=RUN_TIMEOUT) as finished:
        panel.resume_button.click()
    assert finished.args[0].status == "completed"
    assert Path(finished.args[0].run_dir) == Path(run_dir)
    resumed = recorder.steps()
    assert resumed and resumed[0] > stopped_at and resumed[-1] == 30
    assert recorder.steps("teacher") == []  # the teacher is not trained again
    # The replay holds the probes from before the stop (read from the run folder) and those after it.
    replayed = [(e.stage, e.step) for e in window.soft_targets.state.history()]
    assert ("teacher", 0) in replayed and replayed[-1] == ("distill", 30)
    panel.refresh()
    assert panel.table.item(0, 2).text() == "completed"


def test_temperature_slider_re_softens_the_bars(make_window, runs_dir, qtbot, tiny_config):
    window = make_window(tiny_config(runs_dir))
    with qtbot.waitSignal(window.controller.finished, timeout=RUN_TIMEOUT):
        window.start_run()
    panel = window.soft_targets
    before = _bars(window)
    panel.temperature_slider.setValue(panel.temperature_slider.maximum())
    after = _bars(window)
    assert after["teacher"] != before["teacher"]
    # a higher temperature flattens the teacher: its top probability drops
    assert max(after["teacher"]) < max(before["teacher"])


def test_invalid_value_disables_start_with_the_reason(make_window, runs_dir, qtbot, tiny_config):
    window = make_window(tiny_config(runs_dir))
    assert window.start_action.isEnabled()
    editor = window.config_panel.editor("distill.temperature")
    editor.input.setValue(0.0)  # the spin box accepts 0 so that the form can say why it is wrong
    qtbot.waitUntil(lambda: not window.start_action.isEnabled(), timeout=5000)
    reason = window.start_reason()
    assert "temperature" in reason and "greater than 0" in reason
    assert window.reason_label.isVisible() and "temperature" in window.reason_label.text()
    window.start_run()  # the shortcut path is refused too
    assert not window.controller.is_running()
    editor.input.setValue(3.0)
    qtbot.waitUntil(window.start_action.isEnabled, timeout=5000)
    assert window.start_reason() == ""


def _type(qtbot, editor, text: str) -> None:
    """Replace an editor's text the way a user does: select all, type."""
    line = editor.input.lineEdit() if hasattr(editor.input, "lineEdit") else editor.input
    line.selectAll()
    qtbot.keyClicks(line, text)


def test_a_plan_error_is_marked_at_its_field_and_disables_start_until_fixed(
    make_window, runs_dir, tmp_path, qtbot, tiny_config
):
    from tests.helpers_models import save_tiny_model, tiny_vocab

    save_tiny_model(tmp_path / "teacher")
    save_tiny_model(tmp_path / "same-tokenizer", seed=1)
    save_tiny_model(tmp_path / "other-tokenizer", vocab=tiny_vocab(["x", "y", "z"]))
    cfg = tiny_config(runs_dir)
    cfg.teacher.source, cfg.teacher.path = "local", str(tmp_path / "teacher")
    cfg.student.source, cfg.student.path = "local", str(tmp_path / "same-tokenizer")
    window = make_window(cfg)
    qtbot.waitUntil(lambda: getattr(window.summary_card.plan, "tokenizer_ok", None) is True, timeout=PLAN_TIMEOUT)
    assert window.start_action.isEnabled() and window.baseline_action.isEnabled()

    # RunConfig.errors() has nothing against this path (the folder exists); only the plan sees the tokenizers differ.
    editor = window.config_panel.editor("student.path")
    _type(qtbot, editor, str(tmp_path / "other-tokenizer"))
    qtbot.waitUntil(lambda: "tokenizer differs" in (editor.error() or ""), timeout=PLAN_TIMEOUT)
    assert editor.error_label.isVisible()
    assert not window.start_action.isEnabled() and not window.baseline_action.isEnabled()
    reason = window.start_reason()
    assert "student.path" in reason and "tokenizer differs" in reason
    assert window.reason_label.isVisible() and "tokenizer differs" in window.reason_label.text()
    assert not window.start_run() and not window.start_baseline_of_form()  # the shortcut paths are refused too
    assert not window.controller.is_running()
    assert "tokenizer differs" in window.banner.hint.text()

    _type(qtbot, editor, str(tmp_path / "same-tokenizer"))
    qtbot.waitUntil(window.start_action.isEnabled, timeout=PLAN_TIMEOUT)
    assert editor.error() is None and not editor.error_label.isVisible()
    assert window.start_reason() == "" and not window.reason_label.isVisible()
    assert window.baseline_action.isEnabled()


def test_a_whole_number_below_its_minimum_disables_start(make_window, runs_dir, qtbot, tiny_config):
    window = make_window(tiny_config(runs_dir))
    editor = window.config_panel.editor("train.batch_size")
    _type(qtbot, editor, "0")
    assert not window.start_action.isEnabled()
    assert "train.batch_size" in window.start_reason() and "below the minimum 1" in window.start_reason()
    assert "Training \u203a Batch size (train.batch_size): 0 is below" in window.start_reason(), "the form's own names"
    assert editor.input.text() == "0" and "below the minimum 1" in editor.error()
    _type(qtbot, editor, "8")
    assert window.start_action.isEnabled() and window.config().train.batch_size == 8


def test_engine_failure_shows_a_banner_and_the_window_stays_usable(make_window, runs_dir, tmp_path, qtbot, tiny_config):
    cfg = tiny_config(runs_dir)
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    cfg.teacher.source, cfg.teacher.path = "local", str(empty)
    # The form holds a good configuration (in the form, the plan would catch this one and disable Start);
    # the broken one is started the way a run folder's configuration is (resume, baseline of a run).
    window = make_window(tiny_config(runs_dir))
    with qtbot.waitSignal(window.controller.finished, timeout=RUN_TIMEOUT) as finished:
        window.start_run(cfg)
    assert finished.args[0].kind == "failed"
    assert window.banner.isVisible() and window.banner.message()
    assert window.banner.hint.text()
    assert f"{finished.args[0].message} (hint: {finished.args[0].hint})" in window.log_view.toPlainText()
    assert window.start_action.isEnabled()
    assert not window.controller.is_running()


def test_closing_mid_run_stops_cleanly_with_a_checkpoint(make_window, runs_dir, qtbot, tiny_config):
    window = make_window(tiny_config(runs_dir, max_steps=200, checkpoint_interval=1000))
    recorder = Steps(on_first_distill=window.close)
    window.controller.event.connect(recorder.on_event)
    with qtbot.waitSignal(window.controller.finished, timeout=RUN_TIMEOUT) as finished:
        window.start_run()
    assert finished.args[0].status == "stopped"
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert not window.controller.is_running()
    assert recorder.steps()[-1] < 200
    run_dir = Path(finished.args[0].run_dir)
    assert any((run_dir / "checkpoints").iterdir()), "no resumable checkpoint was kept"
    assert not [t for t in threading.enumerate() if t.name.startswith("workbench")]


def test_copy_command_reproduces_the_form(make_window, runs_dir, tiny_config):
    window = make_window(tiny_config(runs_dir))
    command = window.copy_command()
    assert QApplication.clipboard().text() == command
    assert command.startswith("workbench run toy-quick ")
    assert "--set train.max_steps=8" in command
    assert f"runs_dir={runs_dir}" in command
    window.command_dialog.close()


def test_config_files_round_trip_and_bad_files_are_reported(make_window, runs_dir, tmp_path, tiny_config):
    window = make_window(tiny_config(runs_dir))
    path = tmp_path / "mine.toml"
    window.save_config_to(str(path))
    window.set_config(tiny_config(runs_dir, max_steps=99))
    assert window.config().train.max_steps == 99
    assert window.load_config_from(str(path))
    assert window.config().train.max_steps == 8
    broken = tmp_path / "broken.toml"
    broken.write_text("[distill]\ntemperature = 'hot'\n")
    assert not window.load_config_from(str(broken))
    assert "temperature" in window.banner.message()

    # File > Load preset: what to train comes from the preset, the runs folder chosen in the form stays.
    (smollm2,) = [a for a in window.findChildren(QAction) if a.data() == "smollm2"]
    smollm2.trigger()
    assert window.config().name == "smollm2", window.banner.message()
    assert window.config().runs_dir == str(runs_dir)
    # SmolLM2 is not fetched in this test's home: the preset still loads, its GGUF field is marked
    # (the Fetch button sits beside it) and Start says why it is disabled.
    assert not window.start_action.isEnabled() and "teacher.path" in window.start_reason()


def test_presentation_mode_and_theme(make_window, runs_dir, qtbot, tiny_config):
    window = make_window(tiny_config(runs_dir))
    font_before = QApplication.font().pointSizeF()
    legend_before = window.soft_targets.legend.font().pointSizeF()
    split_before = window.live_splitter.sizes()
    window.set_presentation(True, fullscreen=False)
    assert not window.config_dock.isVisible() and not window.tabs.tabBar().isVisible()
    assert window.charts.isVisible() and window.soft_targets.isVisible()
    assert QApplication.font().pointSizeF() > font_before
    assert window.soft_targets.legend.font().pointSizeF() > legend_before  # the panel's parts grow too
    charts_height, bars_height = window.live_splitter.sizes()
    assert bars_height >= charts_height  # the bars, what an audience reads, get the larger share
    window.presentation_action.trigger()  # F11 again
    assert window.config_dock.isVisible()
    assert QApplication.font().pointSizeF() == font_before
    assert window.soft_targets.legend.font().pointSizeF() == legend_before
    charts_height, bars_height = window.live_splitter.sizes()  # the old split back (in proportion: fonts changed)
    assert abs(charts_height / (charts_height + bars_height) - split_before[0] / sum(split_before)) < 0.02
    dark = QApplication.palette().window().color().lightness()
    window.theme_action.trigger()
    assert QApplication.palette().window().color().lightness() > dark
    assert window.theme_action.isChecked()


def test_a_theme_switched_in_presentation_mode_leaves_menus_toolbar_and_form_at_normal_size(
    make_window, runs_dir, tiny_config
):
    from PySide6.QtWidgets import QToolBar

    window = make_window(tiny_config(runs_dir))
    toolbar = window.findChildren(QToolBar)[0]

    def sizes():
        return [w.font().pointSizeF() for w in (window.menuBar(), toolbar, window.config_dock, window.config_panel)]

    before = sizes()
    window.set_presentation(True, fullscreen=False)  # F11
    window.theme_action.trigger()  # Ctrl+Shift+L
    window.presentation_action.trigger()  # F11
    assert sizes() == before


def test_layout_and_last_config_are_remembered(make_window, runs_dir, tiny_config):
    window = make_window(tiny_config(runs_dir, max_steps=77))
    window.live_splitter.setSizes([700, 300])
    sizes = window.live_splitter.sizes()
    window.close()
    settings = QSettings()
    assert settings.value("theme") in ("dark", "light")
    again = make_window(None, restore_settings=True)
    assert again.config().train.max_steps == 77
    assert again.config().runs_dir == str(runs_dir)
    assert again.live_splitter.sizes() == sizes


def test_replay_moves_the_bars_live_and_for_the_finished_run_opened_from_the_runs_tab(
    make_window, runs_dir, qtbot, tiny_config
):
    import numpy as np

    from workbench.probabilities import soften

    window = make_window(tiny_config(runs_dir))
    recorder = Steps()
    window.controller.event.connect(recorder.on_event)
    with qtbot.waitSignal(window.controller.finished, timeout=RUN_TIMEOUT) as finished:
        window.start_run()
    run_dir = finished.args[0].run_dir
    probes = [e for e in recorder.events if isinstance(e, Probe)]
    distill = [i for i, e in enumerate(probes) if e.stage == "distill"]
    assert len(distill) >= 2
    panel = window.soft_targets
    assert panel.replay.slider.maximum() == len(probes) - 1 and panel.replay.slider.value() == len(probes) - 1

    def assert_bars_are(event):
        probe = next(p for p in event.prompts if p.prompt == panel.state.shown_prompt())
        vocab = list(probe.vocab_tokens)
        shown = [vocab.index(token) for token in panel.next_word.shown_tokens()]
        position, temperature = panel.state.position, panel.state.temperature
        for name, logits in (("teacher", probe.teacher_logits), ("student", probe.student_logits)):
            expected = soften(np.array(logits[position]), temperature)[shown]
            np.testing.assert_allclose(_bars(window)[name], expected, rtol=1e-6)

    panel.set_temperature(2.0)
    first, last = distill[0], distill[-1]
    panel.replay.slider.setValue(first)
    assert f"step {probes[first].step} of {probes[last].step} (distill)" == panel.replay.label.text()
    assert_bars_are(probes[first])
    early = _bars(window)["student"]
    panel.replay.slider.setValue(last)
    assert_bars_are(probes[last])
    assert _bars(window)["student"] != early  # the student learned between the two probes

    panel.clear()  # as if another run had been shown: the finished run's probes come from its events.jsonl
    window.runs_panel.refresh()
    window.runs_panel.select_run(run_dir)
    with qtbot.waitSignal(panel.predictor_ready, timeout=RUN_TIMEOUT):
        window.runs_panel.soft_button.click()
    assert [(e.stage, e.step) for e in panel.state.history()] == [(e.stage, e.step) for e in probes]
    panel.replay.slider.setValue(first)
    assert_bars_are(probes[first])
    assert panel.generation.replay_note.isVisibleTo(panel.generation)


def test_the_summary_card_says_it_is_checking_while_a_plan_is_slow(
    make_window, runs_dir, qtbot, tiny_config, monkeypatch
):
    """The first plan waits for the engine's import: the card says so instead of showing bare dashes."""
    import threading

    from workbench.gui.background import run_thread

    release = threading.Event()
    real_plan = run_thread._plan

    def slow_plan(cfg):
        release.wait(10)
        return real_plan(cfg)

    monkeypatch.setattr(run_thread, "_plan", slow_plan)
    window = make_window(tiny_config(runs_dir))
    card = window.summary_card
    qtbot.waitUntil(card.pending.isVisible, timeout=3000)
    assert "Checking" in card.pending.text()
    release.set()
    qtbot.waitUntil(lambda: card.plan is not None and not card.pending.isVisible(), timeout=PLAN_TIMEOUT)


def test_presentation_mode_keeps_the_plots_tall_enough_and_the_legends_whole(make_window, runs_dir, qtbot, tiny_config):
    from workbench.events import StageStarted

    window = make_window(tiny_config(runs_dir))
    window.resize(1280, 800)
    qtbot.wait(50)
    metrics = {"kl_true_teacher": 0.3, "kl_true_student": 0.5, "student_ce": 3.0, "teacher_ce": 2.9}
    events = [StageStarted("distill", 10), Eval("distill", 0, metrics), Eval("distill", 5, metrics)]
    for event in events:
        window.charts.handle_event(event)
    window.charts.add_overlay("baseline (alpha = 0), 2026-12-02 16:00", events)
    window.set_presentation(True, fullscreen=False)  # F11, in the window's own 1280 x 800
    window.charts.redraw_now()
    qtbot.wait(100)
    for name, chart in window.charts.charts.items():
        assert chart.plot_widget.height() >= 150, (name, chart.plot_widget.height())  # was 60 px
        axis = chart.plot.getAxis("left")
        title = axis.label.boundingRect().width()  # the axis title, drawn turned by 90 degrees
        assert title <= axis.height(), (name, title, axis.height())
        bottom = chart.plot.getAxis("bottom")
        shown = bottom.label.mapRectToScene(bottom.label.boundingRect())
        text_bottom = shown.bottom() - bottom.label.document().documentMargin()  # the glyphs, not the padding
        assert text_bottom <= chart.plot_widget.viewport().height(), (name, "global step is cut")
        if chart in window.charts._arranged[:3]:  # the first row is all in view, nothing scrolled away
            assert chart.geometry().bottom() <= window.charts.scroll.viewport().height(), name
        legend = chart.legend
        assert legend.height() >= legend.heightForWidth(legend.width()), (name, legend.text())
    window.set_presentation(False)


def test_both_rows_of_charts_fit_a_1400_by_900_window_outside_presentation_mode(
    make_window, runs_dir, qtbot, tiny_config
):
    window = make_window(tiny_config(runs_dir))
    window.resize(1400, 900)
    qtbot.wait(100)
    viewport = window.charts.scroll.viewport().height()
    for name, chart in window.charts.charts.items():
        if chart.isVisible():
            assert chart.geometry().bottom() <= viewport + 1, (name, chart.geometry().bottom(), viewport)


def test_the_configuration_dock_is_never_narrower_than_its_form(make_window, qtbot):
    """The form does not scroll sideways: a dock restored (or dragged) narrow cut off the fields' right ends."""
    from PySide6.QtCore import Qt

    window = make_window()
    panel = window.config_panel
    content = panel.scroll.widget()
    window.resizeDocks([window.config_dock], [150], Qt.Orientation.Horizontal)
    qtbot.wait(50)
    assert panel.scroll.viewport().width() >= content.minimumSizeHint().width()
    assert content.width() >= content.minimumSizeHint().width(), "every field whole"


def test_a_config_file_with_a_number_no_spin_box_holds_is_refused_and_the_form_is_left_as_it_was(
    make_window, runs_dir, tmp_path, tiny_config
):
    window = make_window(tiny_config(runs_dir))
    before = window.config().to_dict()
    huge = tmp_path / "huge.toml"
    huge.write_text("name = 'huge'\n[teacher.arch]\nlayers = 99999999999\nhidden = -4\n")
    assert not window.load_config_from(str(huge))
    assert "Could not load huge.toml: teacher.arch.layers: 99999999999 is above the maximum" in window.banner.message()
    assert window.config().to_dict() == before


def test_opening_a_runs_config_keeps_the_runs_folder_the_runs_tab_shows(make_window, runs_dir, tmp_path, tiny_config):
    window = make_window(tiny_config(runs_dir))
    recorded = tiny_config(tmp_path / "elsewhere", max_steps=77)
    window._on_open_run_config(recorded)
    assert window.config().train.max_steps == 77  # what to train: the run's
    assert window.config().runs_dir == str(runs_dir)  # where runs go: unchanged


def test_resuming_a_run_whose_data_file_is_gone_says_to_put_it_back(make_window, runs_dir, tmp_path, tiny_config):
    """The window offers no way to edit a stopped run: 'check the path' could not be followed."""
    window = make_window(tiny_config(runs_dir))
    cfg = tiny_config(runs_dir)
    cfg.data.source, cfg.data.path = "file", str(tmp_path / "gone.txt")
    assert window.start_run(cfg, resume_dir=str(tmp_path)) is False
    assert window.banner.message() == f"This run reads {str(tmp_path / 'gone.txt')!r}, which does not exist."
    assert window.banner.hint.text().startswith("put it back where the run found it")
    assert not window.controller.is_running()
