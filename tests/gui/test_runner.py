"""RunController: the engine runs on a background thread and its results reach the GUI thread.

These tests use small stand-in run functions with ``train.run``'s signature to
reach paths the real engine does not take on purpose (a crash inside the run);
the real engine is driven end to end in test_main_window.py.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QThread, Slot

from workbench.events import Failed, Finished, Step
from workbench.gui.background.run_thread import RunController


class Recorder(QObject):
    """Receives the controller's signals on the GUI thread and notes which thread ran the slot."""

    def __init__(self):
        super().__init__()
        self.events, self.states, self.results, self.threads = [], [], [], set()

    @Slot(object)
    def on_event(self, event):
        self.events.append(event)
        self.threads.add(QThread.currentThread())

    @Slot(str)
    def on_state(self, state):
        self.states.append(state)

    @Slot(object)
    def on_finished(self, result):
        self.results.append(result)


def _connect(controller):
    recorder = Recorder()
    controller.event.connect(recorder.on_event)
    controller.state_changed.connect(recorder.on_state)
    controller.finished.connect(recorder.on_finished)
    return recorder


def _step(i):
    return Step("distill", i, 100, 1.0, 0.5, 0.5, 1e-3, 1.0, 100.0, 1.0, 1.0)


def test_events_arrive_on_the_gui_thread_and_finished_comes_once(qtbot):
    engine_threads = []

    def run_fn(config, on_event=None, control=None, *, resume=None):
        engine_threads.append(threading.current_thread())
        for i in range(5):
            on_event(_step(i))
        result = Finished("completed", "/tmp/x", {})
        on_event(result)  # the engine also reports its result as an event
        return result

    controller = RunController(run_fn=run_fn)
    recorder = _connect(controller)
    from workbench.config.schema import RunConfig

    with qtbot.waitSignal(controller.finished, timeout=10_000):
        assert controller.start(RunConfig())
    assert engine_threads and engine_threads[0] is not threading.main_thread()
    assert [e.step for e in recorder.events if isinstance(e, Step)] == [0, 1, 2, 3, 4]
    assert recorder.threads == {QThread.currentThread()}
    assert len(recorder.results) == 1 and recorder.results[0].status == "completed"
    assert recorder.states == ["running", "idle"]
    assert not controller.is_running()


def test_exception_in_the_run_becomes_a_failed_result_and_controller_is_reusable(qtbot):
    def broken(config, on_event=None, control=None, *, resume=None):
        raise RuntimeError("boom")

    controller = RunController(run_fn=broken)
    recorder = _connect(controller)
    from workbench.config.schema import RunConfig

    with qtbot.waitSignal(controller.finished, timeout=10_000):
        controller.start(RunConfig())
    result = recorder.results[0]
    assert isinstance(result, Failed)
    assert "boom" in result.message and result.hint
    assert any(isinstance(e, Failed) for e in recorder.events)  # shown like an engine failure
    assert controller.state() == "idle"
    with qtbot.waitSignal(controller.finished, timeout=10_000):
        assert controller.start(RunConfig())  # the window stays usable: a new run can start


def test_pause_and_stop_reach_the_engine_while_it_runs(qtbot):
    seen = {"paused": False}
    started = threading.Event()

    def run_fn(config, on_event=None, control=None, *, resume=None):
        started.set()
        while not control.stop.is_set():
            if control.pause.is_set():
                seen["paused"] = True
            control.stop.wait(0.01)
        return Finished("stopped", "/tmp/y", {})

    controller = RunController(run_fn=run_fn)
    recorder = _connect(controller)
    from workbench.config.schema import RunConfig

    controller.start(RunConfig())
    assert started.wait(10)
    assert not controller.start(RunConfig())  # one run at a time
    controller.pause()
    qtbot.waitUntil(lambda: seen["paused"], timeout=5000)
    assert controller.state() == "paused"
    with qtbot.waitSignal(controller.finished, timeout=10_000):
        controller.stop()
    assert recorder.results[0].status == "stopped"
    assert recorder.states == ["running", "paused", "stopping", "idle"]


def test_shutdown_stops_and_joins_the_thread(qtbot):
    def run_fn(config, on_event=None, control=None, *, resume=None):
        control.stop.wait(30)
        return Finished("stopped" if control.stop.is_set() else "completed", "", {})

    controller = RunController(run_fn=run_fn)
    recorder = _connect(controller)
    from workbench.config.schema import RunConfig

    controller.start(RunConfig())
    controller.shutdown()  # must not hang: it sets the stop flag before waiting
    assert not controller.is_running()
    assert recorder.results and recorder.results[0].status == "stopped"
