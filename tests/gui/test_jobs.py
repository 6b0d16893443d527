"""The window's one background-work mechanism: the latest request on a channel wins."""

from __future__ import annotations

import threading

import pytest

from workbench.gui.background.jobs import Jobs


@pytest.fixture
def jobs(qtbot):
    jobs = Jobs("test")
    yield jobs
    jobs.shutdown()  # also when a test fails: a QThread destroyed while running aborts the process


def test_only_the_newest_request_on_a_channel_runs_and_is_delivered(jobs, qtbot):
    gate, running, ran, delivered = threading.Event(), threading.Event(), [], []

    def blocker(job):
        running.set()
        gate.wait(5)
        ran.append("blocker")
        return "blocker"

    def work(name):
        def run(job):
            ran.append(name)
            return name

        return run

    jobs.submit("plan", blocker, on_done=delivered.append)
    assert running.wait(5)
    for name in ("a", "b", "c"):  # queued behind the blocker; each supersedes the one before
        jobs.submit("plan", work(name), on_done=delivered.append)
    gate.set()
    qtbot.waitUntil(lambda: delivered == ["c"], timeout=5000)
    assert ran == ["blocker", "c"]  # a and b never ran; the blocker ran but its result was dropped


def test_channels_do_not_supersede_each_other_and_errors_and_progress_reach_the_gui_thread(jobs, qtbot):
    done, errors, progress, threads = [], [], [], []
    gui_thread = threading.get_ident()

    def reporting(job):
        threads.append(threading.get_ident())
        job.progress(0.5, "half")
        return 42

    def failing(job):
        raise ValueError("bad input")

    jobs.submit("one", reporting, on_done=done.append, on_progress=lambda *a: progress.append(a))
    jobs.submit("two", failing, on_done=done.append, on_error=errors.append)
    qtbot.waitUntil(lambda: done == [42] and len(errors) == 1, timeout=5000)
    assert progress == [(0.5, "half")]
    assert isinstance(errors[0], ValueError) and threads[0] != gui_thread


def test_running_work_sees_that_it_was_superseded_and_shutdown_waits_for_it(jobs, qtbot):
    started, saw_cancel, delivered = [threading.Event(), threading.Event()], [], []

    def long_work(n):
        def run(job):
            started[n].set()
            while not job.cancelled():
                threading.Event().wait(0.01)
            saw_cancel.append(n)
            return "late"

        return run

    jobs.submit("fetch", long_work(0), on_done=delivered.append)
    assert started[0].wait(5)
    jobs.cancel("fetch")
    qtbot.waitUntil(lambda: saw_cancel == [0], timeout=5000)
    jobs.submit("fetch", long_work(1), on_done=delivered.append)
    assert started[1].wait(5)
    jobs.shutdown()  # cancels the second one too, and returns only once it has
    assert saw_cancel == [0, 1] and not jobs._thread.isRunning()
    assert delivered == []
    assert jobs.submit("fetch", long_work(0)) == 0  # closed: nothing new is taken
