"""Python's cycle collector, run on the GUI thread only.

CPython starts a collection on whichever thread happens to allocate when a generation's
count passes its threshold: in this application that is usually the training thread, which
allocates the most. If the garbage holds a Qt object (a widget or a QObject caught in a
reference cycle with a Python closure), the collection destroys it on that thread, and Qt
objects must be destroyed on the thread they live on; the result is a rare, unreproducible
crash or deadlock. So the window turns automatic collection off and collects from a timer
on the GUI thread instead, generation by generation with the interpreter's own thresholds.

A collection's cost grows with the objects allocated since the last one. Every 500 ms is plenty while the
window idles or a run trains, but reading a followed run's 100,000-event backlog allocates hundreds of
thousands of objects per interval, and collecting them at once stalled the event loop for 40-90 ms: while
the young generation fills that fast, the timer runs every ``BUSY_INTERVAL_MS`` instead, so each collection
stays a few milliseconds long.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Slot

INTERVAL_MS = 500
BUSY_INTERVAL_MS = 25
BUSY_FACTOR = 20  # more than this many thresholds' worth of new objects at a collection: collect more often


class GuiThreadCollector(QObject):
    """Owned by the application; ``install`` makes (at most) one."""

    def __init__(self, app: QCoreApplication):
        super().__init__(app)
        self.setObjectName("workbench-gc")
        self.thresholds = gc.get_threshold()
        self.collections = 0
        self._timer = QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.collect)
        app.aboutToQuit.connect(self.stop)
        gc.disable()
        self._timer.start()

    @Slot()
    def collect(self) -> None:
        """Collect the oldest generation whose count is past its threshold (as the interpreter would)."""
        counts = gc.get_count()
        busy = counts[0] > BUSY_FACTOR * self.thresholds[0]
        self._timer.setInterval(BUSY_INTERVAL_MS if busy else INTERVAL_MS)
        if counts[0] <= self.thresholds[0]:
            return  # too few new container objects since the last collection
        generation = 2 if counts[2] > self.thresholds[2] else 1 if counts[1] > self.thresholds[1] else 0
        gc.collect(generation)
        self.collections += 1

    def interval_ms(self) -> int:
        return self._timer.interval()

    @Slot()
    def stop(self) -> None:
        """Back to the interpreter's own collection (the application is quitting)."""
        self._timer.stop()
        gc.enable()


def install(app: QCoreApplication | None = None) -> GuiThreadCollector | None:
    """Start collecting on ``app``'s thread (the GUI thread) instead of automatically; idempotent."""
    app = app or QCoreApplication.instance()
    if app is None:
        return None
    existing = app.findChild(GuiThreadCollector, "workbench-gc")
    return existing if existing is not None else GuiThreadCollector(app)
