"""Runs ``engine.train.run`` in a background QThread and reports its events as Qt signals.

The worker is a QObject moved onto a QThread (``thread.started -> worker.run``).
The engine calls ``on_event`` from the training thread; the worker turns each
event into a queued signal, so the GUI receives it on its own thread in an
``@Slot`` method. Stop, pause and cancel set the ``Control`` flags directly
(``threading.Event``), never through queued slots: they work even while the
training thread holds the CPU.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from workbench.config.schema import RunConfig
from workbench.control import Control
from workbench.errors import ConfigError, one_line
from workbench.events import Failed, Finished
from workbench.gui.background.engine_import import load_engine
from workbench.gui.background.jobs import Job, Jobs
from workbench.sweep import SweepFinished

RunFn = Callable[..., Any]

IDLE, RUNNING, PAUSED, STOPPING = "idle", "running", "paused", "stopping"


def _default_run_fn() -> RunFn:
    # Imported late, on the training thread: the engine pulls in torch and transformers.
    return load_engine().run


class _Worker(QObject):
    """Lives on the training thread; calls the engine and forwards its events."""

    event = Signal(object)
    done = Signal(object)

    def __init__(
        self,
        run_fn: RunFn | None,
        config: RunConfig,
        control: Control,
        resume_dir: str | None,
        sweep_dir: str | None = None,
    ):
        super().__init__()  # no parent: a QObject with a parent cannot be moved to another thread
        self._run_fn = run_fn
        self._config = config
        self._control = control
        self._resume_dir = resume_dir
        self._sweep_dir = sweep_dir
        self.result: Finished | Failed | SweepFinished | None = None

    def _emit(self, event: object) -> None:
        self.event.emit(event)

    @Slot()
    def run(self) -> None:
        try:
            run_fn = self._run_fn or _default_run_fn()
            if self._sweep_dir is not None:
                load_engine()  # under its lock: the sweep runner imports the engine (torch) too
                from workbench.engine.sweep_runner import run_sweep

                result = run_sweep(self._sweep_dir, self._emit, self._control, run_fn=run_fn)
            else:
                result = run_fn(self._config, on_event=self._emit, control=self._control, resume=self._resume_dir)
            if not isinstance(result, (Finished, Failed, SweepFinished)):
                result = Failed("The run ended without a result.", "This is a bug; the log above may say more.")
        except ConfigError as err:  # a sweep another process runs, a sweep.json that cannot be written
            result = Failed(f"The sweep cannot run: {err.message}.", err.hint, self._sweep_dir or "")
        except Exception as err:  # noqa: BLE001 - a crash in the engine must not take the window down
            traceback.print_exc()
            result = Failed(
                f"The run stopped with an unexpected error: {type(err).__name__}: {one_line(err)}",
                "Checkpoints written so far are kept; the terminal shows the full traceback.",
            )
        self.result = result  # read directly by shutdown(), which cannot wait for queued signals
        self.done.emit(result)


class RunController(QObject):
    """Starts, pauses, stops and cancels one run at a time.

    Signals: ``event(object)`` for every engine event (on the GUI thread),
    ``state_changed(str)`` with ``idle``/``running``/``paused``/``stopping``, and
    ``finished(object)`` once per run with the ``Finished`` or ``Failed`` result.
    ``run_fn`` is the engine entry point (``train.run``); tests may pass another
    function with the same signature.

    ``start_sweep(sweep_dir, base)`` runs ``engine.sweep_runner.run_sweep`` on that folder instead (each
    cell through ``run_fn``), with the same Control: ``event`` carries CellStarted / the cell's own events /
    CellFinished / SweepFinished, and ``finished`` the SweepFinished (or a Failed when it could not run).
    """

    event = Signal(object)
    state_changed = Signal(str)
    finished = Signal(object)

    def __init__(self, parent: QObject | None = None, run_fn: RunFn | None = None):
        super().__init__(parent)
        self._run_fn = run_fn
        self._thread: QThread | None = None
        self._worker: _Worker | None = None
        self._control: Control | None = None
        self._state = IDLE
        self._config: RunConfig | None = None
        self._run_dir = ""
        self._sweep_dir = ""
        self._result: Finished | Failed | SweepFinished | None = None

    # -- queries ------------------------------------------------------------
    def is_running(self) -> bool:
        """True from ``start`` until the run's thread has ended."""
        return self._thread is not None

    def state(self) -> str:
        return self._state

    def config(self) -> RunConfig | None:
        """The configuration of the current (or last) run."""
        return self._config

    def run_dir(self) -> str:
        """The folder of the current (or last) run, once the engine has said it (else "")."""
        return self._run_dir

    def sweep_dir(self) -> str:
        """The sweep folder of the current (or last) sweep; "" when the last start was a single run."""
        return self._sweep_dir

    def last_result(self) -> Finished | Failed | None:
        return self._result

    # -- commands -----------------------------------------------------------
    def start(self, cfg: RunConfig, resume_dir: str | Path | None = None) -> bool:
        """Start a run in the background; False if one is already running."""
        return self._start(cfg, str(resume_dir) if resume_dir else None, None)

    def start_sweep(self, sweep_dir: str | Path, base: RunConfig) -> bool:
        """Run (or resume) every cell of sweep folder ``sweep_dir`` in the background; False if busy."""
        return self._start(base, None, str(sweep_dir))

    def _start(self, cfg: RunConfig, resume_dir: str | None, sweep_dir: str | None) -> bool:
        if self.is_running():
            return False
        run_fn = self._run_fn  # None: the worker loads the engine on its own thread
        self._config = cfg.copy()
        self._control = Control()
        self._run_dir = resume_dir or ""
        self._sweep_dir = sweep_dir or ""
        self._result = None
        thread = QThread(self)
        thread.setObjectName("workbench-training")
        worker = _Worker(run_fn, self._config, self._control, resume_dir, sweep_dir)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.event.connect(self._on_worker_event)
        worker.done.connect(self._on_worker_done)
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._worker = thread, worker
        self._set_state(RUNNING)
        thread.start()
        return True

    def pause(self) -> None:
        if self._control is not None and self._state == RUNNING:
            self._control.pause.set()
            self._set_state(PAUSED)

    def resume(self) -> None:
        if self._control is not None and self._state == PAUSED:
            self._control.pause.clear()
            self._set_state(RUNNING)

    def stop(self) -> None:
        """Stop after the current step; the engine leaves a resumable checkpoint."""
        if self._control is not None and self.is_running():
            self._control.request_stop()
            self._set_state(STOPPING)

    def cancel(self) -> None:
        """Stop without a final checkpoint (what was already saved stays)."""
        if self._control is not None and self.is_running():
            self._control.request_cancel()
            self._set_state(STOPPING)

    def save_now(self) -> None:
        if self._control is not None and self.is_running():
            self._control.save_now.set()

    def shutdown(self) -> None:
        """Stop the run (checkpoint kept) and wait for its thread; used when the window closes."""
        thread = self._thread
        if thread is None:
            return
        self.stop()
        thread.quit()  # takes effect once worker.run has returned
        thread.wait()
        self._on_thread_finished()

    # -- from the worker (queued onto the GUI thread) --------------------------
    @Slot(object)
    def _on_worker_event(self, event: object) -> None:
        run_dir = getattr(event, "run_dir", "")
        if run_dir:
            self._run_dir = run_dir
        if isinstance(event, (Finished, Failed)):
            # The engine reports its result as an event too; ``finished`` is
            # emitted once, from _on_worker_done, with the returned value.
            self._result = event
        self.event.emit(event)

    @Slot(object)
    def _on_worker_done(self, result: object) -> None:
        if isinstance(result, Failed) and not isinstance(self._result, Failed):
            # An exception the engine did not turn into an event: show it like one.
            self.event.emit(result)
        if getattr(result, "run_dir", ""):
            self._run_dir = result.run_dir  # type: ignore[union-attr]
        self._result = result  # type: ignore[assignment]
        if self._thread is not None:
            self._thread.quit()

    @Slot()
    def _on_thread_finished(self) -> None:
        thread, worker = self._thread, self._worker
        if thread is None:
            return  # already cleaned up by shutdown()
        thread.wait()
        self._thread = self._worker = None
        # The worker's thread has ended; dropping the Python reference deletes it.
        thread.deleteLater()
        self._set_state(IDLE)
        result = getattr(worker, "result", None) or self._result
        if result is None:
            result = Failed("The run ended without a result.", "This is a bug; the log may say more.", self._run_dir)
        self._result = result
        self.finished.emit(result)

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)


class PlanService(QObject):
    """Computes ``plan_run(cfg)`` in the background (it imports torch and builds meta models).

    ``request(cfg)`` may be called on every edit; only the newest request is answered, through
    ``planned(object)`` with a Plan or the exception raised (see :mod:`.jobs`).
    """

    planned = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._jobs = Jobs("plan", self)

    def warm_up(self) -> None:
        """Import the engine in the background (as early as possible: the window calls it first thing).

        Importing torch/transformers/the engine takes about 3 s on a laptop CPU; doing it while the window
        is being built keeps it off the GUI thread and makes Start quick."""
        self._jobs.submit("warm-up", _warm_up)

    def request(self, cfg: RunConfig) -> None:
        config = cfg.copy()
        self._jobs.submit("plan", lambda job: _plan(config), on_done=self.planned.emit, on_error=self.planned.emit)

    def shutdown(self) -> None:
        self._jobs.shutdown()


def _warm_up(job: Job) -> None:
    try:
        load_engine()
    except Exception:  # noqa: BLE001 - a broken engine shows up when a run starts
        traceback.print_exc()


def _plan(cfg: RunConfig) -> object:
    load_engine()
    from workbench.engine.plan import plan_run

    return plan_run(cfg)
