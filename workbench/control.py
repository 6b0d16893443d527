"""The flags a running ``train.run`` checks between optimizer steps.

Set from any thread (the GUI thread, a signal handler); the loop reads them.
Plain ``threading.Event`` objects: no queued Qt slots are involved, so Stop
works even while the GUI event loop is busy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Control:
    stop: threading.Event = field(default_factory=threading.Event)
    """Stop after the current step and write a resumable checkpoint."""
    cancel: threading.Event = field(default_factory=threading.Event)
    """Stop after the current step without a checkpoint (what is already saved stays)."""
    pause: threading.Event = field(default_factory=threading.Event)
    """While set, the loop waits between steps."""
    save_now: threading.Event = field(default_factory=threading.Event)
    """Write a checkpoint after the current step, then clear the flag."""

    def request_stop(self) -> None:
        self.stop.set()
        self.pause.clear()

    def request_cancel(self) -> None:
        self.cancel.set()
        self.stop.set()
        self.pause.clear()

    @property
    def stopping(self) -> bool:
        return self.stop.is_set() or self.cancel.is_set()
