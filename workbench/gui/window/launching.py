"""Runs of several processes (``train.processes`` > 1), launched by the window, a mixin of ``MainWindow``.

Start saves the configuration to a temporary TOML, makes the (empty) run folder and starts
``torch.distributed.run`` as a ``QProcess`` (``gui/background/launched_run.py``); the window then follows
that folder as it follows any other process's run (``following.py``), so the charts, soft targets and progress
come from its events.jsonl. Stop sends SIGTERM to the launcher, which forwards it: every process stops after
the same step and rank 0 writes the checkpoint. The run has ended when the launcher has exited and its last
events have been read; a launcher that exited without a final event is a failure whose sentence names the
exit code and the last error line it wrote (the Log tab gets its last lines).
"""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import Slot

from workbench.config.schema import RunConfig
from workbench.errors import ConfigError
from workbench.events import Failed, Finished
from workbench.gui.background.launched_run import LaunchedRun
from workbench.launch import new_run_dir, remove_if_empty


class LaunchMixin:
    """Start / Stop / closing for a launched multi-process run (``launcher`` is its ``LaunchedRun``)."""

    def _build_launching(self) -> None:
        self.launcher = LaunchedRun(self)
        self.launcher.state_changed.connect(self._on_state_changed)
        self.launcher.exited.connect(self._on_launcher_exited)
        self._launch_config_file: Path | None = None

    def run_active(self) -> bool:
        """A run of this window (in its process, or launched) is running."""
        return self.controller.is_running() or self.launcher.is_running()

    def _launch_run(self, cfg: RunConfig, resume_dir: str | None) -> bool:
        processes = cfg.train.processes
        config_file: Path | None = None
        folder: Path | None = None
        try:
            if resume_dir:
                folder = Path(resume_dir)
            else:
                folder = new_run_dir(cfg)
                handle, name = tempfile.mkstemp(prefix=f"workbench-launch-{cfg.name}-", suffix=".toml")
                os.close(handle)
                config_file = Path(name)
                cfg.save(config_file)
        except ConfigError as err:
            self.banner.show_message(f"The run cannot start: {err.what}.", err.hint)
            self.progress.reset("Idle")
            return False
        except OSError as err:
            if folder is not None and not resume_dir:
                remove_if_empty(folder)
            self.banner.show_message(
                f"The run cannot start: its configuration could not be written ({err.strerror or err}).",
                "Free some disk space, or choose another runs folder.",
            )
            self.progress.reset("Idle")
            return False
        self._launch_config_file = config_file
        self.launcher.start(processes, folder, config_file, resume=bool(resume_dir))
        self.progress.reset(f"Launching {processes} processes...")
        self._begin_following(folder, cfg.data.source == "toy", launched_by=f"Launched, {processes} processes")
        self.log_view.add(f"Launched {processes} processes: {shlex.join(self.launcher.command)}")
        return True

    @Slot(int, bool)
    def _on_launcher_exited(self, code: int, crashed: bool) -> None:
        if self._follow_launched:
            self._follow_timer.start(0)  # read what it wrote last, then end (``_follow_tick``)

    def _launched_run_ended(self, folder: Path, final: Any) -> None:
        """The launcher has exited and its events are read: the run's end, as an in-process run's."""
        code, processes = self.launcher.exit_code, self.launcher.processes
        tail = self.launcher.tail()
        self.stop_following()
        if self._launch_config_file is not None:
            self._launch_config_file.unlink(missing_ok=True)
            self._launch_config_file = None
        expected = isinstance(final, Finished) and (final.status == "completed" or self.launcher.stop_requested)
        if code != 0 and not expected:
            self.log_view.add(
                f"The launcher exited with code {code}; its last lines:",
                "error" if final is None or isinstance(final, Failed) else "warning",
            )
            for line in tail[-15:]:
                self.log_view.add(f"    {line}")
        if final is None and self.launcher.stop_requested:
            # stopped before the processes could answer the signal (still importing torch): nothing to resume
            removed = remove_if_empty(folder)
            self.log_view.add("Stopped before the processes had begun training: there is nothing to resume.")
            final = Finished("cancelled", "" if removed else str(folder), {})
        elif final is None:
            removed = remove_if_empty(folder)
            final = Failed(
                launch_failure_sentence(processes, code, tail),
                "The Log tab shows its last lines; Copy command gives the same command for a terminal.",
                "" if removed else str(folder),
            )
            self._on_run_event(final)  # banner and log, as a run's own Failed event
        elif code != 0 and self.launcher.stop_requested:
            self.log_view.add(f"The launcher exited with code {code}, as torchrun does after forwarding the stop.")
        elif code != 0:
            self.log_view.add(f"The launcher exited with code {code} ({processes} processes).", "warning")
        self._on_run_finished(final)


def launch_failure_sentence(processes: int, code: int | None, tail: list[str]) -> str:
    """``The 2-process run exited with code 1 before it finished: error: ...`` (the last ``error:`` line it wrote,
    else its last line)."""
    errors = [line.strip() for line in tail if line.strip().startswith("error:")]
    last = errors[-1] if errors else (tail[-1].strip() if tail else "")
    how = "could not be started" if code is None or code < 0 else f"exited with code {code}"
    sentence = f"The {processes}-process run {how} before it finished"
    return f"{sentence}: {last[:300]}" if last else f"{sentence}."
