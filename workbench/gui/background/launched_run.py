"""A multi-process run launched by the window: ``torch.distributed.run`` as a ``QProcess``.

The process runs on its own; the window never waits for it: ``QProcess`` reports its output and its end as
signals on the GUI thread. Its events come the way a followed run's do (the window follows the run folder,
``window/following.py``); this object only starts the launcher, keeps the last lines it wrote (stderr: the
progress lines, warnings, ``error: process N: ...``, the launcher's own messages), stops it with SIGTERM (the
launcher forwards it; each process stops after the step and writes its checkpoint) and says when it exited.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal, Slot

from workbench.gui.background.run_thread import IDLE, RUNNING, STOPPING
from workbench.launch import launch_command, launch_environment

TAIL_LINES = 40


class LaunchedRun(QObject):
    """One launched run at a time. Signals: ``state_changed(str)`` (idle / running / stopping) and
    ``exited(int, bool)``: the exit code and whether it was crashed or killed rather than exiting itself."""

    state_changed = Signal(str)
    exited = Signal(int, bool)
    output = Signal(str)
    """Each complete line the launcher writes (stdout and stderr merged)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._process: QProcess | None = None
        self._state = IDLE
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._partial = ""
        self.run_dir: Path | None = None
        self.processes = 0
        self.command: list[str] = []
        self.stop_requested = False
        self.exit_code: int | None = None

    def is_running(self) -> bool:
        """True from ``start`` until the launcher has exited."""
        return self._process is not None

    def state(self) -> str:
        return self._state

    def tail(self) -> list[str]:
        """The last lines the launcher wrote (at most ``TAIL_LINES``)."""
        return list(self._tail) + ([self._partial] if self._partial else [])

    def start(
        self, processes: int, run_dir: str | Path, config_file: str | Path | None = None, resume: bool = False
    ) -> bool:
        """Start the launcher; False when one is running already."""
        if self._process is not None:
            return False
        self.run_dir = Path(run_dir)
        self.processes = processes
        self.command = launch_command(processes, run_dir, config_file, resume=resume)
        self.stop_requested = False
        self.exit_code = None
        self._tail.clear()
        self._partial = ""
        process = QProcess(self)
        env = QProcessEnvironment()
        for key, value in launch_environment().items():
            env.insert(key, value)
        process.setProcessEnvironment(env)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._on_output)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self._process = process
        self._set_state(RUNNING)
        process.start(self.command[0], self.command[1:])
        return True

    def stop(self) -> None:
        """Stop after the current step with a checkpoint: SIGTERM to the launcher, which forwards it."""
        if self._process is not None and self._state == RUNNING:
            self.stop_requested = True
            self._process.terminate()
            self._set_state(STOPPING)

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Stop and wait for the launcher (the window is closing); killed if it has not exited by then."""
        process = self._process
        if process is None:
            return
        self.stop()
        if not process.waitForFinished(timeout_ms):
            process.kill()
            process.waitForFinished(5000)

    @Slot()
    def _on_output(self) -> None:
        process = self._process
        if process is None:
            return
        text = self._partial + bytes(process.readAllStandardOutput().data()).decode("utf-8", "replace")
        *lines, self._partial = text.replace("\r", "\n").split("\n")
        for line in lines:
            if line.strip():
                self._tail.append(line)
                self.output.emit(line)

    @Slot(QProcess.ProcessError)
    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._process is not None:
            self._tail.append(f"could not start {self.command[0]}: {self._process.errorString()}")
            self._end(-1, True)

    @Slot(int, QProcess.ExitStatus)
    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._on_output()
        self._end(code, status == QProcess.ExitStatus.CrashExit)

    def _end(self, code: int, crashed: bool) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if self._partial.strip():
            self._tail.append(self._partial)
        self._partial = ""
        process.deleteLater()
        self.exit_code = code
        self._set_state(IDLE)
        self.exited.emit(code, crashed)

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)
