"""Following a run folder that another process writes: its ``events.jsonl`` read as it grows.

A run started with the CLI, under ``torchrun`` or on another machine writing to a shared disk appends one
flushed JSON line per event (``run_folder.EventLog``). :class:`EventFollower` keeps a byte offset and, on each
:meth:`EventFollower.read_new`, reads only what was appended since, in bounded chunks (so a follower that
opens a long run's file catches up over several calls instead of parsing it all at once). A last line without
its newline (the writer is mid-write) is kept and completed by the next call; nothing is read twice. A file
that is not there yet is waited for; one that shrank or was replaced by another file is read again from the
start (the batch says so, so the reader can forget what it showed). A complete line that is not an event
(garbage, a line torn by a killed writer and then appended to) is skipped and counted.

Ground floor: no torch, no Qt. The window polls it with a timer (``gui/window/following.py``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import events as ev
from workbench.run_folder import STATUS_FILE

MAX_LINES = 2000
"""Events parsed per call at most: a few tens of milliseconds for step events, so a GUI timer never stalls."""
MAX_BYTES = 8 * 1024 * 1024
"""Bytes read per call at most (probe lines of a big vocabulary are large)."""
FINAL_STATUSES = ("completed", "stopped", "cancelled", "failed")


@dataclass
class FollowBatch:
    """What one :meth:`EventFollower.read_new` found."""

    events: list[Any] = field(default_factory=list)
    started_over: bool = False
    """The file shrank or was replaced: these events start from its beginning again."""
    more: bool = False
    """More complete data was waiting than one call reads: call again soon."""


class EventFollower:
    """Reads the events appended to one ``events.jsonl`` since the last call (see the module)."""

    def __init__(self, path: str | Path, max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES):
        self.path = Path(path)
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.offset = 0
        """Bytes of the file consumed so far (complete lines and the kept partial line)."""
        self.bytes_read = 0
        """Bytes read from disk in all calls: the size of the file when nothing was replaced (no byte twice)."""
        self.skipped = 0
        """Complete lines that were not events."""
        self.events_read = 0
        self._partial = b""
        self._identity: tuple[int, int] | None = None

    @property
    def exists(self) -> bool:
        return self._identity is not None

    def _start_over(self) -> None:
        self.offset = 0
        self._partial = b""
        self.skipped = 0
        self.events_read = 0

    def read_new(self, max_seconds: float | None = None) -> FollowBatch:
        """The events appended since the last call, at most ``max_lines`` of them; with ``max_seconds``, what
        can be read and parsed in that time (at least one line), so a GUI tick stays short whatever the lines
        hold (a probe line over a big vocabulary takes milliseconds to parse, a step line microseconds)."""
        batch = FollowBatch()
        deadline = None if max_seconds is None else time.perf_counter() + max_seconds
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return batch  # not written yet (or being replaced): the next call looks again
        with handle:
            info = os.fstat(handle.fileno())
            identity = (info.st_dev, info.st_ino)
            if self._identity is not None and (identity != self._identity or info.st_size < self.offset):
                self._start_over()
                batch.started_over = True
            self._identity = identity
            if info.st_size == self.offset:
                return batch
            handle.seek(self.offset)
            lines = 0
            budget = self.max_bytes
            while lines < self.max_lines and budget > 0:
                chunk = handle.readline(budget)
                if not chunk:
                    break
                self.bytes_read += len(chunk)
                self.offset += len(chunk)
                budget -= len(chunk)
                if not chunk.endswith(b"\n"):
                    # the writer is mid-line, or the budget cut a long line: the rest comes next time
                    self._partial += chunk
                    continue
                line, self._partial = self._partial + chunk, b""
                lines += 1
                event = self._parse(line)
                if event is not None:
                    batch.events.append(event)
                if deadline is not None and time.perf_counter() > deadline:
                    break
            batch.more = self.offset < os.fstat(handle.fileno()).st_size  # a limit was reached, or it grew meanwhile
        self.events_read += len(batch.events)
        return batch

    def _parse(self, line: bytes) -> Any:
        text = line.strip()
        if not text:
            return None
        try:
            return ev.event_from_dict(json.loads(text.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            self.skipped += 1
            return None


def written_status(run_dir: str | Path) -> str:
    """The status a run folder's ``status.json`` says, as written ("" when there is none or it is unreadable).

    Unlike ``run_folder.read_run`` this does not ask whether the writing process is alive: a run followed on a
    shared disk was started on another machine, whose process ids mean nothing here."""
    try:
        data = json.loads((Path(run_dir) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(data.get("status", "")) if isinstance(data, dict) else ""


def is_run_folder(path: str | Path) -> bool:
    """A folder a run writes (or has begun to write): it has a config.toml or an events.jsonl."""
    path = Path(path)
    return path.is_dir() and ((path / "config.toml").is_file() or (path / "events.jsonl").is_file())
