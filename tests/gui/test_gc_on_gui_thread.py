"""Cycles are collected on the GUI thread, never on a worker thread that happens to allocate."""

from __future__ import annotations

import gc
import threading

from workbench.gui.background.gc_on_gui_thread import install


class _Cycle:
    """Garbage that records which thread collected it."""

    collected_on: list[str] = []

    def __init__(self):
        self.me = self  # a reference cycle: only the cycle collector frees it

    def __del__(self):
        _Cycle.collected_on.append(threading.current_thread().name)


def test_garbage_made_while_a_worker_allocates_is_collected_on_the_gui_thread(qapp, qtbot):
    collector = install(qapp)
    assert install(qapp) is collector, "one collector per application"
    assert not gc.isenabled()
    _Cycle.collected_on.clear()
    for _ in range(50):
        _Cycle()

    kept: list[list[int]] = []

    def allocate():  # like a training step: many new container objects (automatic collection would run here)
        kept.extend([i] for i in range(20_000))

    worker = threading.Thread(target=allocate, name="worker")
    worker.start()
    worker.join()
    assert _Cycle.collected_on == [], "nothing may be collected on the worker thread"
    qtbot.waitUntil(lambda: len(_Cycle.collected_on) == 50, timeout=5000)  # the GUI thread's timer does it
    assert set(_Cycle.collected_on) == {threading.main_thread().name}


def test_a_burst_of_allocation_is_collected_in_small_steps_then_the_timer_slows_again(qapp, qtbot):
    """Reading a long backlog allocates fast: one collection of all of it would stall the window."""
    from workbench.gui.background import gc_on_gui_thread as module

    collector = install(qapp)
    kept = [[i] for i in range(module.BUSY_FACTOR * collector.thresholds[0] * 2)]  # a burst of container objects
    collector.collect()
    assert collector.interval_ms() == module.BUSY_INTERVAL_MS
    del kept
    collector.collect()  # little allocated since: back to the idle pace
    assert collector.interval_ms() == module.INTERVAL_MS
