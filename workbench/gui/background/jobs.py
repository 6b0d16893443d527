"""Background work for the window, one mechanism for all of it: "the latest request wins".

A :class:`Jobs` owns one worker thread. ``submit(channel, work, on_done=..., on_error=...)`` queues a
plain function; the work runs on the thread, in submission order, and its result (or the exception it
raised) comes back to the callbacks on the GUI thread. Requests on the same *channel* replace each
other: a request still waiting when a newer one arrives on its channel never runs, and a request that
was already running when a newer one arrived is told so (``job.cancelled()``) and its result is
dropped. So the form can ask for a new plan on every keystroke and only ever sees the plan of what it
shows now.

The work sees only a small :class:`Job` state object (as in Orange3's ``concurrent.py``): whether to
give up (``cancelled()``) and a ``progress(...)`` channel to the GUI thread. It never sees Qt widgets.
Work on one ``Jobs`` runs one at a time, on one thread, so objects that must stay on a thread (a run's
loaded models) can live there between requests.

``shutdown()`` cancels everything, lets the running work return, and waits for the thread, so no
"QThread: Destroyed while thread is still running" can happen at exit.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot


class Job:
    """What a piece of background work sees of the world."""

    def __init__(self, jobs: Jobs, job_id: int, channel: str):
        self._jobs = jobs
        self.id = job_id
        self.channel = channel

    def cancelled(self) -> bool:
        """True once a newer request arrived on this job's channel, or the window is closing."""
        return self._jobs._is_stale(self.id, self.channel)

    def progress(self, *args: Any) -> None:
        """Send ``args`` to the submitter's ``on_progress`` (on the GUI thread; dropped once cancelled)."""
        if not self.cancelled():
            self._jobs._progress.emit(self.id, args)


@dataclass
class _Request:
    work: Callable[[Job], Any]
    on_done: Callable[[Any], None] | None
    on_error: Callable[[BaseException], None] | None
    on_progress: Callable[..., None] | None
    channel: str
    job: Job = field(init=False)


class _Worker(QObject):
    """Lives on the jobs thread; runs one request at a time."""

    finished = Signal(int, bool, object)  # job id, ok, result or exception

    def __init__(self, jobs: Jobs):
        super().__init__()  # no parent: it is moved to the thread
        self._jobs = jobs

    @Slot(int)
    def run(self, job_id: int) -> None:
        request = self._jobs._take(job_id)
        if request is None or request.job.cancelled():
            self.finished.emit(job_id, False, None)  # superseded while waiting: it never runs
            return
        try:
            result = request.work(request.job)
        except BaseException as err:  # noqa: BLE001 - handed to on_error; a bug in the work must not end the thread
            if request.on_error is None:
                traceback.print_exc()
            self.finished.emit(job_id, False, err)
            return
        self.finished.emit(job_id, True, result)


class Jobs(QObject):
    """One background thread running "latest request wins" work; see the module's documentation."""

    _submitted = Signal(int)
    _progress = Signal(int, object)

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._next_id = 0
        self._latest: dict[str, int] = {}
        self._requests: dict[int, _Request] = {}
        self._delivering: dict[int, _Request] = {}
        self._closed = False
        self._thread = QThread(self)
        self._thread.setObjectName(f"workbench-{name}")
        self._worker = _Worker(self)
        self._worker.moveToThread(self._thread)
        self._submitted.connect(self._worker.run)
        self._worker.finished.connect(self._on_finished)
        self._progress.connect(self._on_progress)
        self._thread.start()

    # -- the GUI thread's side ----------------------------------------------------------------------------
    def submit(
        self,
        channel: str,
        work: Callable[[Job], Any],
        *,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[..., None] | None = None,
    ) -> int:
        """Queue ``work(job)``; returns the job's id. Older requests on ``channel`` are superseded."""
        with self._lock:
            if self._closed:
                return 0
            self._next_id += 1
            job_id = self._next_id
            request = _Request(work, on_done, on_error, on_progress, channel)
            request.job = Job(self, job_id, channel)
            self._requests[job_id] = request
            self._delivering[job_id] = request
            self._latest[channel] = job_id
        self._submitted.emit(job_id)
        return job_id

    def cancel(self, channel: str) -> None:
        """Supersede whatever is waiting or running on ``channel`` without asking for anything new."""
        with self._lock:
            self._next_id += 1
            self._latest[channel] = self._next_id

    def is_latest(self, job_id: int) -> bool:
        """Whether ``job_id`` is still the newest request of its channel."""
        request = self._delivering.get(job_id)
        return request is not None and not self._is_stale(job_id, request.channel)

    def shutdown(self) -> None:
        """Cancel everything, let running work return, and wait for the thread (the window is closing)."""
        with self._lock:
            self._closed = True
            self._requests.clear()
        self._thread.quit()
        self._thread.wait()
        self._delivering.clear()

    @Slot(int, bool, object)
    def _on_finished(self, job_id: int, ok: bool, result: object) -> None:
        request = self._delivering.pop(job_id, None)
        if request is None or self._is_stale(job_id, request.channel):
            return
        if ok:
            if request.on_done is not None:
                request.on_done(result)
        elif isinstance(result, BaseException) and request.on_error is not None:
            request.on_error(result)

    @Slot(int, object)
    def _on_progress(self, job_id: int, args: tuple) -> None:
        request = self._delivering.get(job_id)
        if request is not None and request.on_progress is not None and not self._is_stale(job_id, request.channel):
            request.on_progress(*args)

    # -- shared -------------------------------------------------------------------------------------------
    def _take(self, job_id: int) -> _Request | None:
        with self._lock:
            return self._requests.pop(job_id, None)

    def _is_stale(self, job_id: int, channel: str) -> bool:
        return self._closed or self._latest.get(channel, job_id) != job_id
