"""Starting a sweep from the window: Run → Sweep…'s checks (the CLI's Sweep.from_grid, marked at the axis), a real
2x2 sweep of the tiny config (one teacher, trained by the first cell; the grid window fills in; a double-click on a
cell opens that run), and Stop leaving a sweep that the Runs tab's "Resume sweep" finishes."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from workbench.config.schema import DIVERGENCES
from workbench.errors import ConfigError
from workbench.run_folder import run_events
from workbench.sweep import Sweep
from workbench.sweep_folder import read_sweep

SWEEP_TIMEOUT_MS = 240_000  # a loaded CPU: four tiny runs take about a minute


def _dialog(qtbot, cfg):
    from workbench.gui.window.sweep_dialog import SweepDialog

    dialog = SweepDialog(cfg)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_the_dialog_checks_with_the_clis_rule_and_counts_the_runs(qtbot, runs_dir, tiny_config):
    cfg = tiny_config(runs_dir)
    dialog = _dialog(qtbot, cfg)
    first, second = dialog.axes
    first.set_field("distill.temperature", "1, 2")
    second.set_field("distill.alpha", "0.5, 0.9")
    assert dialog.ok_button.isEnabled()
    assert dialog.preview.text() == "2 x 2 = 4 runs; one teacher, trained by the first"
    dialog.baseline.setChecked(True)
    assert dialog.preview.text() == "2 x 2 = 4 runs + 1 baseline; one teacher, trained by the first"
    assert len(dialog.sweep().cells()) == 5

    first.values.setText("1, x")  # not a number
    with pytest.raises(ConfigError) as cli:
        Sweep.from_grid(cfg.copy(), ["distill.temperature=1, x", "distill.alpha=0.5, 0.9"])
    assert not dialog.ok_button.isEnabled() and dialog.sweep() is None
    assert first.error.isVisible() and not second.error.isVisible()
    assert first.error.text().startswith(cli.value.message[:1].upper() + cli.value.message[1:])
    assert cli.value.hint[1:] in first.error.text()
    assert dialog.preview.text() == "Nothing to run yet."

    first.values.setText("1, 1")  # listed twice
    assert "listed twice" in first.error.text() and not dialog.ok_button.isEnabled()
    first.values.setText("1, 2")
    second.values.setText("0.5, 1.5")  # above alpha's maximum: the second axis is marked, not the first
    assert second.error.isVisible() and not first.error.isVisible() and not dialog.ok_button.isEnabled()
    second.set_field("distill.temperature", "3, 4")  # two axes on one field: Sweep.from_grid's own rule
    assert second.error.isVisible() and "two --grid" in second.error.text() and not dialog.ok_button.isEnabled()

    dialog.second.setChecked(False)  # one axis
    assert dialog.ok_button.isEnabled() and not second.error.isVisible()
    assert dialog.preview.text() == "2 runs + 1 baseline; one teacher, trained by the first"

    first.set_field("distill.divergence")  # a choice field offers every choice
    assert first.values.text() == ", ".join(DIVERGENCES)
    first.set_field("distill.t_squared")
    assert first.values.text() == "true, false"
    fields = [first.field_box.itemData(i) for i in range(first.field_box.count())]
    assert "train.teacher_steps" not in fields and "data.toy_sentences" not in fields  # they change the teacher
    assert "teacher.arch.layers" not in fields and "train.max_steps" in fields
    label = first.field_box.itemText(fields.index("train.max_steps"))
    assert label.startswith("Distill steps")  # the form's label, and the dotted name beside it


def _cells_with_teacher(path):
    return sorted(c.id for c in read_sweep(path).cells if (c.run_dir / "teacher").is_dir())


def _teacher_stages(path):
    return [
        (c.id, e)
        for c in read_sweep(path).cells
        for e in run_events(c.run_dir)
        if getattr(e, "kind", "") == "stage" and e.stage == "teacher"
    ]


def test_a_2x2_sweep_from_the_window_trains_one_teacher_and_fills_the_grid(qtbot, runs_dir, make_window, tiny_config):
    window = make_window(tiny_config(runs_dir, max_steps=4, teacher_steps=4, eval_interval=4, probe_interval=4))
    dialog = window.open_sweep_dialog()
    dialog.axes[0].set_field("distill.temperature", "1, 2")
    dialog.axes[1].set_field("distill.alpha", "0.5, 0.9")
    seen = []
    window.controller.event.connect(lambda e: seen.append(window.progress.summary_text()))
    with qtbot.waitSignal(window.controller.finished, timeout=SWEEP_TIMEOUT_MS) as done:
        dialog.ok_button.click()
        assert window.controller.is_running() and window.controller.sweep_dir()
        grid_window = window.runs_panel.sweep_window
        assert grid_window is not None and grid_window.isVisible()  # at once, before any cell has run
        assert not window.sweep_action.isEnabled() and not window.start_action.isEnabled()
    path = window.controller.sweep_dir()
    assert done.args[0].status == "completed"
    assert any(t.startswith("sweep cell 1/4: temperature = 1, alpha = 0.5") for t in seen)
    assert any(t.startswith("sweep cell 4/4: temperature = 2, alpha = 0.9") for t in seen)
    ids = [c.id for c in read_sweep(path).cells]
    assert len(ids) == 4 and all(c.status == "completed" for c in read_sweep(path).cells)
    assert _cells_with_teacher(path) == [ids[0]]  # the teacher is trained once, by the first cell
    stages = _teacher_stages(path)
    assert [cell for cell, _ in stages] == [ids[0]]

    grid = grid_window.grid
    qtbot.waitUntil(grid.complete, timeout=5000)  # the grid polls the folder
    for cell_id in ids:
        assert float(grid.cell_text(cell_id).lstrip("★ ")) > 0  # a value in every cell
    assert window.progress.cell_text() == "" and window.sweep_action.isEnabled()
    long = "sweep cell 3/4: divergence = skew_forward_kl, temperature = 2.5 " * 3
    window.progress.detail_label.setText("ETA 10:08   1.2k tok/s   mem 1627.3 MiB")
    window.progress.set_cell(long)  # it gives way ("…"): a toolbar would hide a strip too wide for it
    qtbot.wait(50)
    assert window.progress.cell_text() == long and window.progress.isVisible()
    assert window.progress.cell_label.width() < window.progress.cell_label.sizeHint().width()
    window.progress.set_cell("")

    # One click on a finished cell shows that run: its curves as the window's, its probes and models in the
    # soft-targets panel.
    cell = read_sweep(path).cells[2]
    steps = [e.step for e in run_events(cell.run_dir) if getattr(e, "kind", "") == "step"]
    probe_steps = [e.step for e in run_events(cell.run_dir) if getattr(e, "kind", "") == "probe"]
    window.charts.clear()
    window.soft_targets.clear()
    rect = grid.table.visualItemRect(grid.items[ids[2]])
    with qtbot.waitSignal(window.soft_targets.predictor_ready, timeout=30000) as ready:
        qtbot.mouseClick(grid.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert ready.args == [str(cell.run_dir)]
    loss = window.charts.charts["loss"].series["loss"].data
    assert len(loss) == len(steps) > 0  # the cell's own curve (the teacher's stage is the first cell's only)
    assert window.tabs.currentIndex() == 0
    assert "temperature = 2, alpha = 0.5" in window.progress.cell_text()
    qtbot.waitUntil(lambda: [e.step for e in window.soft_targets.state.history()] == probe_steps, timeout=10000)
    assert probe_steps and window.soft_targets.replay.slider.maximum() == len(probe_steps) - 1


@pytest.mark.qt_log_ignore("This plugin does not support raise")  # offscreen: the grid window, raised again
def test_stop_mid_sweep_starts_no_other_cell_and_resume_sweep_finishes_it(qtbot, runs_dir, make_window, tiny_config):
    window = make_window(tiny_config(runs_dir, max_steps=12, teacher_steps=4, checkpoint_interval=100))
    dialog = window.open_sweep_dialog()
    dialog.axes[0].set_field("distill.temperature", "1, 2")
    dialog.second.setChecked(False)

    def stop_in_distillation(event):
        if getattr(event, "kind", "") == "step" and event.stage == "distill":
            window.stop_run()

    window.controller.event.connect(stop_in_distillation)
    with qtbot.waitSignal(window.controller.finished, timeout=SWEEP_TIMEOUT_MS) as done:
        dialog.ok_button.click()
    window.controller.event.disconnect(stop_in_distillation)
    path = window.controller.sweep_dir()
    assert done.args[0].status == "stopped"
    info = read_sweep(path)
    assert info.status == "stopped" and [c.status for c in info.cells] == ["stopped", "pending"]
    assert not info.cells[1].run_dir.exists()  # no other cell started
    assert "Resume sweep" in window.banner.hint.text()

    sweeps = window.runs_panel.sweeps
    sweeps.select(path)
    assert sweeps.resume_button.isEnabled()
    resumed = []
    window.controller.event.connect(
        lambda e: resumed.append(e.resumed) if getattr(e, "kind", "") == "cell_started" else None
    )
    with qtbot.waitSignal(window.controller.finished, timeout=SWEEP_TIMEOUT_MS) as done:
        sweeps.resume_button.click()
        assert not sweeps.resume_button.isEnabled()  # busy
    assert done.args[0].status == "completed" and resumed == [True, False]
    assert [c.status for c in read_sweep(path).cells] == ["completed", "completed"]
    assert _cells_with_teacher(path) == [read_sweep(path).cells[0].id]


def test_the_dialog_offers_the_last_axes_again_and_waits_for_a_valid_form(qtbot, runs_dir, make_window, tiny_config):
    window = make_window(tiny_config(runs_dir))
    dialog = window.open_sweep_dialog()
    assert dialog.isVisible() and window.sweep_action.isEnabled()
    dialog.axes[0].set_field("train.lr", "1e-3, 2e-3")
    dialog.baseline.setChecked(True)
    dialog.reject()
    again = window.open_sweep_dialog()
    assert again is not dialog and again.axes[0].field() == "train.lr"
    assert again.axes[0].values.text() == "1e-3, 2e-3" and again.baseline.isChecked()
    assert again.preview.text() == "2 x 2 = 4 runs + 2 baselines; one teacher, trained by the first"  # one per lr
    again.reject()
    window.config_panel.editor("distill.temperature").input.setValue(0.0)
    qtbot.waitUntil(lambda: not window.sweep_action.isEnabled())
    assert "Sweep is disabled" in window.sweep_action.toolTip()
    assert window.open_sweep_dialog() is None


def test_the_controller_runs_a_sweep_with_one_control_and_stop_starts_no_other_cell(qtbot, runs_dir):
    """RunController.start_sweep with a stand-in for train.run: each cell gets the sweep's Control, the events come
    through in order, Stop ends the running cell and no later one starts."""
    import threading

    from workbench.config.schema import RunConfig
    from workbench.events import Finished
    from workbench.gui.background.run_thread import RunController

    base = RunConfig(runs_dir=str(runs_dir))
    path = Sweep.from_grid(base, ["distill.temperature=1,2,4"]).create_dir()
    controls, started = [], threading.Event()

    def run_fn(config, on_event, control, *, run_dir=None, resume=None):
        folder = run_dir or resume
        folder.mkdir(parents=True, exist_ok=True)
        config.save(folder / "config.toml")
        (folder / "teacher").mkdir(exist_ok=True)
        (folder / "teacher" / "config.json").write_text("{}")
        controls.append(control)
        started.set()
        while not control.stop.is_set():
            control.stop.wait(0.01)
        return Finished("stopped", str(folder), {})

    controller = RunController(run_fn=run_fn)
    kinds = []
    controller.event.connect(lambda e: kinds.append(e.kind))
    assert controller.start_sweep(path, base) and controller.sweep_dir() == str(path)
    assert started.wait(30)  # the engine's import comes first
    assert not controller.start_sweep(path, base)  # one at a time
    with qtbot.waitSignal(controller.finished, timeout=10_000) as done:
        controller.stop()
    assert done.args[0].status == "stopped" and len(controls) == 1
    assert kinds == ["cell_started", "cell_finished", "sweep_finished"]
    assert [c.status for c in read_sweep(path).cells][1:] == ["pending", "pending"]
