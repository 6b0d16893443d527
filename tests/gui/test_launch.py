"""Runs of several processes launched by the window: torch.distributed.run as a QProcess, the run folder followed."""

from __future__ import annotations

import json
import sys

import pytest

from workbench.follow import written_status
from workbench.run_folder import latest_checkpoint, load_run_config

RUN_TIMEOUT = 180_000  # ms: two processes import torch, then train a few steps (more on a loaded machine)


def _points(window, chart, key) -> int:
    series = window.charts.charts[chart].series.get(key)
    return 0 if series is None else len(series.data)


def _log(window) -> str:
    return window.log_view.toPlainText()


def test_start_with_two_processes_launches_them_and_follows_the_run_to_its_end(
    make_window, tiny_config, runs_dir, qtbot
):
    cfg = tiny_config(runs_dir, processes=2)
    window = make_window(cfg)
    assert window.start_run()
    assert window.launcher.is_running() and not window.controller.is_running()
    folder = window.launcher.run_dir
    assert folder.parent == runs_dir.resolve() and folder.name.endswith(cfg.name)
    assert window.stop_action.isEnabled()  # ours to stop
    assert not window.pause_action.isEnabled() and not window.cancel_action.isEnabled()
    assert "checkpoint" in window.pause_action.toolTip()  # it says why, and what Stop does
    assert not window.stop_following_action.isEnabled()
    assert not window.start_action.isEnabled()
    qtbot.waitUntil(lambda: _points(window, "loss", "loss") > 0, timeout=RUN_TIMEOUT)
    assert window.run_active()  # points arrive while it runs, from the followed folder
    qtbot.waitUntil(lambda: not window.run_active(), timeout=RUN_TIMEOUT)
    qtbot.waitUntil(lambda: not window.is_following(), timeout=10_000)
    assert window.launcher.exit_code == 0, "\n".join(window.launcher.tail())
    window.charts.redraw_now()
    assert _points(window, "loss", "loss") >= 8  # the distillation stage's 8 steps (log_interval 1)
    assert _points(window, "kl", "kl_teacher_student") > 0
    assert "Completed" in window.progress.summary_text()
    assert written_status(folder) == "completed"
    assert load_run_config(folder).train.processes == 2  # what ran
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert "Launched 2 processes" in _log(window) and "torch.distributed.run" in _log(window)
    assert window._launch_config_file is None  # the temporary TOML is gone
    assert window.start_action.isEnabled()


@pytest.mark.slow  # about 35 s on a shared CPU (the launch test above runs in the default suite)
def test_stop_ends_a_launched_run_after_a_step_with_a_checkpoint(make_window, tiny_config, runs_dir, qtbot):
    cfg = tiny_config(runs_dir, processes=2, max_steps=5000, checkpoint_interval=0, eval_interval=1000)
    window = make_window(cfg)
    assert window.start_run()
    folder = window.launcher.run_dir
    qtbot.waitUntil(
        lambda: "distillation" in window.progress.stage_label.text() and window.progress.bar.value() >= 2,
        timeout=RUN_TIMEOUT,
    )
    window.stop_run()
    assert window.launcher.state() == "stopping" and not window.stop_action.isEnabled()
    qtbot.waitUntil(lambda: not window.run_active(), timeout=RUN_TIMEOUT)
    qtbot.waitUntil(lambda: not window.is_following(), timeout=10_000)
    assert written_status(folder) == "stopped", "\n".join(window.launcher.tail())
    assert latest_checkpoint(folder) is not None
    assert window.progress.stage_label.text() == "Stopped"
    assert "stopped; its checkpoint is kept" in window.banner.message()
    assert "after forwarding the stop" in _log(window)  # torchrun's exit code 1 is expected, and said so


_DIES = "import sys; print('[setup] loading'); print('error: process 1: no space left on device', file=sys.stderr); sys.exit(1)"


def test_a_launcher_that_dies_without_a_final_event_shows_its_exit_code_and_error_line(
    make_window, tiny_config, runs_dir, qtbot, monkeypatch
):
    from workbench.gui.background import launched_run

    monkeypatch.setattr(launched_run, "launch_command", lambda *a, **k: [sys.executable, "-c", _DIES])
    window = make_window(tiny_config(runs_dir, processes=2))
    assert window.start_run()
    folder = window.launcher.run_dir
    qtbot.waitUntil(lambda: not window.run_active() and not window.is_following(), timeout=30_000)
    message = window.banner.message()
    assert message.startswith("The 2-process run exited with code 1 before it finished")
    assert "error: process 1: no space left on device" in message
    assert "Log tab" in window.banner.hint.text()
    assert "no space left on device" in _log(window) and "exited with code 1" in _log(window)
    assert window.progress.stage_label.text() == "Failed"
    assert not folder.exists()  # it wrote nothing there: the empty folder the window made is gone
    assert window.start_action.isEnabled()


def test_copy_command_of_a_multi_process_form_is_the_torchrun_command(make_window, tiny_config, runs_dir):
    window = make_window(tiny_config(runs_dir, processes=3))
    command = window.copy_command()
    window.command_dialog.close()
    assert command.startswith("torchrun --standalone --nproc_per_node 3 -m workbench.cli run toy-quick ")
    assert "--set train.processes=3" in command
    assert command.endswith(f"--run-dir {runs_dir / 'toy-quick-3p'}")


def test_processes_is_a_field_of_the_form_with_its_help(make_window, tiny_config, runs_dir):
    from workbench.config.presets import field_meta
    from workbench.config.schema import TrainConfig

    assert TrainConfig().processes == 1
    meta = field_meta("train.processes")
    assert meta["min"] == 1 and "torch.distributed.run" in meta["help"]
    window = make_window(tiny_config(runs_dir))
    assert "train.processes" in window.config_panel._editors


@pytest.mark.slow  # about 35 s on a shared CPU
def test_closing_the_window_stops_a_launched_run_and_closes_once_it_has_exited(
    make_window, tiny_config, runs_dir, qtbot
):
    cfg = tiny_config(runs_dir, processes=2, max_steps=5000, checkpoint_interval=0, eval_interval=1000)
    window = make_window(cfg)
    assert window.start_run()
    folder = window.launcher.run_dir
    qtbot.waitUntil(
        lambda: "distillation" in window.progress.stage_label.text() and window.progress.bar.value() >= 2,
        timeout=RUN_TIMEOUT,
    )
    window.close()
    assert window.isVisible() and window.launcher.state() == "stopping"  # it waits for the checkpoint
    assert "window closes next" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT)
    assert not window.launcher.is_running()
    assert written_status(folder) == "stopped"
    assert latest_checkpoint(folder) is not None


def test_a_stop_before_the_processes_have_begun_ends_the_run_with_nothing_to_resume(
    make_window, tiny_config, runs_dir, qtbot
):
    window = make_window(tiny_config(runs_dir, processes=2))
    assert window.start_run()
    folder = window.launcher.run_dir
    window.stop_run()  # the launcher is still importing torch
    qtbot.waitUntil(lambda: not window.run_active() and not window.is_following(), timeout=RUN_TIMEOUT)
    assert window.progress.stage_label.text() in ("Cancelled", "Stopped"), _log(window)
    assert not window.banner.isVisible() or window.banner.property("level") == "info"
    assert window.start_action.isEnabled()
    if window.progress.stage_label.text() == "Cancelled":
        assert "nothing to resume" in _log(window) and not folder.exists()
