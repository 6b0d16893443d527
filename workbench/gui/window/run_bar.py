"""Small widgets of the run bar: the progress strip and the message banner."""

from __future__ import annotations

import math
from collections import deque

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.events import StageStarted, Step
from workbench.gui.charts.elided_label import ElidedLabel

STAGE_TITLES = {
    "setup": "Setting up",
    "teacher": "Stage 1: teacher",
    "distill": "Stage 2: distillation",
    "evaluate": "Evaluating",
    "export": "Exporting",
}


def format_duration(seconds: float) -> str:
    """``1:05:09`` / ``4:09`` / ``--`` for unknown."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        return "--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_bytes(count: float) -> str:
    if not count or count <= 0:
        return "--"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return "--"


def format_rate(tokens_per_s: float) -> str:
    if not isinstance(tokens_per_s, (int, float)) or not math.isfinite(tokens_per_s) or tokens_per_s <= 0:
        return "--"
    if tokens_per_s >= 1e6:
        return f"{tokens_per_s / 1e6:.2f}M tok/s"
    if tokens_per_s >= 1e3:
        return f"{tokens_per_s / 1e3:.1f}k tok/s"
    return f"{tokens_per_s:.0f} tok/s"


GENERATING_WINDOWS = 10  # the share of time generating is taken over this many log windows
GENERATING_TIP = (
    "generating: the share of the wall-clock time between the last progress updates that the student spent "
    "writing its own samples for on-policy distillation (distill.on_policy), over the last "
    f"{GENERATING_WINDOWS} updates; evaluations and probes count as time not generating. tok/s counts those "
    "samples' tokens, generation included."
)


class GeneratingShare:
    """The share of a stage's recent wall-clock time spent generating on-policy samples, from Step events:
    ``generate_s`` of each log window over the ``elapsed_s`` between it and the step before (no Qt)."""

    def __init__(self, windows: int = GENERATING_WINDOWS):
        self.windows: deque[tuple[float, float]] = deque(maxlen=windows)
        self.stage = ""
        self.previous: float | None = None
        self.seen = False  # a window of this stage generated: on-policy is on

    def reset(self) -> None:
        self.windows.clear()
        self.stage, self.previous, self.seen = "", None, False

    def take(self, event: Step) -> float | None:
        """The share after ``event`` (0..1), or None while it is unknown or on-policy is off."""
        if event.stage != self.stage:
            self.reset()
            self.stage = event.stage
        generate = getattr(event, "generate_s", 0.0) or 0.0  # events.jsonl written before it existed: 0
        generate = generate if math.isfinite(generate) else 0.0
        self.seen = self.seen or generate > 0
        if self.previous is not None and event.elapsed_s > self.previous:
            self.windows.append((generate, event.elapsed_s - self.previous))
        self.previous = event.elapsed_s
        return self.share()

    def share(self) -> float | None:
        if not self.seen or not self.windows:
            return None
        spent = sum(dt for _, dt in self.windows)
        return min(1.0, sum(g for g, _ in self.windows) / spent) if spent > 0 else None


class RunProgress(QWidget):
    """Stage, step/total, ETA, tokens per second and device memory of the current run."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setTextVisible(True)
        self.bar.setMinimumWidth(220)
        self.cell_label = ElidedLabel("", self)  # "sweep cell 2/4: temperature = 2, alpha = 0.5" during a sweep
        self.cell_label.setVisible(False)
        self.stage_label = QLabel(self)
        self.stage_label.setMinimumWidth(150)
        self.detail_label = QLabel(self)
        self.detail_label.setObjectName("muted")
        self.detail_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        layout.addWidget(self.cell_label)
        layout.addWidget(self.stage_label)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.detail_label)
        self.generating = GeneratingShare()
        self.reset()

    def reset(self, text: str = "Idle", done: bool = False) -> None:
        """Show ``text`` and an empty bar (a full one when ``done``)."""
        self.stage_label.setText(text)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if done else 0)
        self.bar.setFormat("done" if done else "")
        self.detail_label.setText("")
        self.generating.reset()

    def set_cell(self, text: str) -> None:
        """The sweep cell the strip's stage and steps belong to ("" once the sweep is over). An ElidedLabel: a
        toolbar hides a strip whose minimum width does not fit, so this line gives way ("…") instead."""
        self.cell_label.setText(text)
        self.cell_label.setVisible(bool(text))

    def cell_text(self) -> str:
        return self.cell_label.text() if self.cell_label.isVisibleTo(self) else ""

    def set_stage(self, event: StageStarted) -> None:
        self.stage_label.setText(STAGE_TITLES.get(event.stage, event.stage))
        if event.total_steps > 0:
            self.bar.setRange(0, event.total_steps)
            self.bar.setValue(0)
            self.bar.setFormat(f"0 / {event.total_steps:,}")
        else:
            self.bar.setRange(0, 0)  # busy indicator for stages without steps
            self.bar.setFormat("")
        self.detail_label.setText(event.message)

    def set_step(self, event: Step, counted: bool = False) -> None:
        """Show ``event``'s progress; ``counted``: its window was already given to ``self.generating`` (a followed
        run shows only a tick's last step, but every window counts towards the share of time generating)."""
        total = max(event.total_steps, 1)
        if self.bar.maximum() != total:
            self.bar.setRange(0, total)
            self.stage_label.setText(STAGE_TITLES.get(event.stage, event.stage))
        self.bar.setValue(min(event.step, total))
        self.bar.setFormat(f"{event.step:,} / {event.total_steps:,}")
        parts = [f"ETA {format_duration(event.eta_s)}", format_rate(event.tokens_per_s)]
        share = self.generating.share() if counted else self.generating.take(event)
        if share is not None:  # on-policy distillation: how much of the time goes to the student's own samples
            parts.append(f"generating {share:.0%}")
        if event.memory_bytes:
            parts.append(f"mem {format_bytes(event.memory_bytes)}")
        self.detail_label.setText("   ".join(parts))
        tip = (
            "mem: memory in use now: on a GPU the tensors torch has allocated; on the CPU the "
            "whole process (Python, libraries, window). The summary card's step memory is an "
            "estimate of what the models, optimizer and one step's activations need."
        )
        self.detail_label.setToolTip(f"{GENERATING_TIP}\n\n{tip}" if self.generating.seen else tip)

    def set_paused(self, paused: bool) -> None:
        text = self.stage_label.text().removesuffix(" (paused)")
        self.stage_label.setText(text + " (paused)" if paused else text)

    def summary_text(self) -> str:
        """Everything the strip shows, as one line (for tests and the status bar)."""
        parts = (self.cell_text(), self.stage_label.text(), self.bar.format(), self.detail_label.text())
        return " ".join(t for t in parts if t)


class MessageBanner(QFrame):
    """A non-modal message above the charts: one sentence, a hint, a close button."""

    closed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.hint = QLabel(self)
        self.hint.setWordWrap(True)
        self.hint.setObjectName("muted")
        self.hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(self)
        close.setText("\u2715")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title)
        text.addWidget(self.hint)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.addLayout(text, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, message: str, hint: str = "", level: str = "error") -> None:
        """Show ``message`` (one sentence) and ``hint``; level is error, info or ok."""
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.title.setText(message)
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))
        self.show()

    def message(self) -> str:
        return self.title.text() if self.isVisible() else ""

    @Slot()
    def dismiss(self) -> None:
        self.hide()
        self.closed.emit()
