"""Where a run's events go: the caller's ``on_event``, ``events.jsonl`` and, with the optional
``tensorboard`` extra installed, TensorBoard event files in the run folder (see engine/tensorboard.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.engine import tensorboard
from workbench.engine.train.parallel import Parallel
from workbench.errors import WriteFailed, writing
from workbench.events import Failed
from workbench.run_folder import EventLog


class Reporter:
    """Sends events to the caller and to events.jsonl: all of them from rank 0; from the other
    ranks only their own failure, named by rank (under torchrun each process meets its errors
    alone, and the one that failed is the one that knows why)."""

    def __init__(self, on_event: Callable[[Any], None] | None, parallel: Parallel):
        self.on_event = on_event
        self.enabled = parallel.main
        self.rank = parallel.rank
        self.log: EventLog | None = None
        self.tensorboard: tensorboard.TensorBoardLog | None = None

    def open(self, run_dir: Path) -> None:
        if self.enabled:
            self.log = EventLog(run_dir)
            if tensorboard.available():
                with writing("the TensorBoard files", run_dir):
                    self.tensorboard = tensorboard.TensorBoardLog(run_dir)

    def __call__(self, event: Any) -> None:
        if not self.enabled:
            if isinstance(event, Failed) and self.on_event is not None:
                self.on_event(dataclasses.replace(event, message=f"process {self.rank}: {event.message}"))
            return
        if self.log is not None:
            self.log.write(event)
        if self.tensorboard is not None:
            self.tensorboard.write(event)
        if self.on_event is not None:
            self.on_event(event)

    def last(self, event: Any) -> None:
        """The run's last event (Finished or Failed): it reaches the caller even when the disk refuses
        to record it."""
        try:
            self(event)
        except (WriteFailed, OSError):
            if self.on_event is not None:
                self.on_event(event)

    def close(self) -> None:
        """Close the files; later events reach only the caller."""
        log, self.log = self.log, None
        board, self.tensorboard = self.tensorboard, None
        if log is not None:
            log.close()
        if board is not None:
            try:
                board.close()
            except OSError:
                pass  # its last scalars are lost with the disk; events.jsonl is the record
