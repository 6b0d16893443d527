"""What the configured run will build, in a card under the form: sizes, compression, memory, tokenizer.

It draws a :class:`workbench.engine.plan.Plan` (``update_plan(plan)``) and computes nothing
itself; the block-by-block picture of the same plan is :mod:`.architecture_view`. Teacher and
student keep the colours of :mod:`workbench.gui.theme` used by every chart and bar.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from workbench.gui import theme
from workbench.gui.form.units import format_bytes, format_count

MEMORY_PARTS = (
    ("teacher_weights", "teacher weights"),
    ("student_weights", "student weights"),
    ("gradients", "gradients"),
    ("optimizer", "optimizer state"),
    ("activations", "activations"),
    ("logits", "logits and loss"),
)


class _ShareBar(QWidget):
    """A thin bar: the student's parameters as a share of the teacher's."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.share = 0.0
        self.setFixedHeight(8)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(200, 8)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        track = QColor(theme.TEACHER_COLOR)
        track.setAlphaF(0.30)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(track)
        painter.drawRoundedRect(rect, 4, 4)
        if self.share > 0:
            filled = QRectF(rect)
            filled.setWidth(max(6.0, rect.width() * min(self.share, 1.0)))
            painter.setBrush(QColor(theme.STUDENT_COLOR))
            painter.drawRoundedRect(filled, 4, 4)


class SummaryCard(QFrame):
    """Teacher and student sizes, compression, memory on the device, tokenizer compatibility, warnings."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("summaryCard")
        self.plan: Any = None
        self._restyle()
        c = theme.colors()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 12)
        layout.setSpacing(6)
        tiles = QGridLayout()
        tiles.setHorizontalSpacing(16)
        tiles.setVerticalSpacing(0)
        self.teacher_value = self._tile(tiles, 0, "TEACHER", theme.TEACHER_COLOR)
        self.student_value = self._tile(tiles, 1, "STUDENT", theme.STUDENT_COLOR)
        self.compression_value = self._tile(tiles, 2, "COMPRESSION", c["text"])
        layout.addLayout(tiles)
        self.share_bar = _ShareBar(self)
        layout.addWidget(self.share_bar)
        self.shapes = QLabel(self)
        self.shapes.setObjectName("muted")
        self.shapes.setWordWrap(True)
        layout.addWidget(self.shapes)
        rows = QGridLayout()
        rows.setHorizontalSpacing(10)
        rows.setVerticalSpacing(4)
        self.memory_value = self._row(rows, 0, "Step memory")
        self.tokenizer_value = self._row(rows, 1, "Tokenizer")
        rows.setColumnStretch(1, 1)
        layout.addLayout(rows)
        self.notes = QLabel(self)
        self.notes.setWordWrap(True)
        self.notes.setTextFormat(Qt.TextFormat.RichText)
        self.notes.hide()
        layout.addWidget(self.notes)
        self.pending = QLabel("Checking the models\u2026", self)  # while a plan is being computed
        self.pending.setObjectName("muted")
        self.pending.hide()
        layout.addWidget(self.pending)

    def show_pending(self) -> None:
        """Say the figures are being worked out (the last plan's stay until the new one arrives)."""
        self.pending.show()

    def clear_pending(self) -> None:
        self.pending.hide()

    def _restyle(self) -> None:
        self._styled_theme = theme.current_theme()
        c = theme.colors()
        self.setStyleSheet(
            f"QFrame#summaryCard {{ border: 1px solid {c['border']}; border-radius: 8px; background: {c['alt_base']}; }}"
            " QFrame#summaryCard QLabel { background: transparent; border: none; }"
        )
        if getattr(self, "compression_value", None) is not None:
            self.compression_value.setStyleSheet(f"color: {c['text']};")
            if self.plan is not None:
                self.update_plan(self.plan)  # the tokenizer mark's colour is in its rich text

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override (follow theme switches)
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and theme.current_theme() != self._styled_theme:
            self._restyle()

    def _tile(self, grid: QGridLayout, column: int, title: str, color: str) -> QLabel:
        caption = QLabel(title, self)
        caption.setObjectName("muted")
        font = caption.font()
        font.setPointSizeF(font.pointSizeF() * 0.8)
        font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 108)
        caption.setFont(font)
        value = QLabel("\u2013", self)
        big = value.font()
        big.setPointSizeF(big.pointSizeF() * 1.6)
        big.setBold(True)
        value.setFont(big)
        value.setStyleSheet(f"color: {color};")
        grid.addWidget(caption, 0, column)
        grid.addWidget(value, 1, column)
        grid.setColumnStretch(column, 1)
        return value

    def _row(self, grid: QGridLayout, row: int, title: str) -> QLabel:
        name = QLabel(title, self)
        name.setObjectName("muted")
        value = QLabel("\u2013", self)
        value.setWordWrap(True)
        grid.addWidget(name, row, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(value, row, 1, Qt.AlignmentFlag.AlignTop)
        return value

    def update_plan(self, plan: Any) -> None:
        """Show a :class:`~workbench.engine.plan.Plan`."""
        self.plan = plan
        self.clear_pending()
        self.teacher_value.setText(format_count(plan.teacher_params) if plan.teacher_params else "\u2013")
        self.student_value.setText(format_count(plan.student_params) if plan.student_params else "\u2013")
        self.compression_value.setText(f"{plan.compression:.1f}\u00d7" if plan.compression else "\u2013")
        self.share_bar.share = plan.student_params / plan.teacher_params if plan.teacher_params else 0.0
        self.share_bar.setToolTip(
            f"The student has {self.share_bar.share:.0%} of the teacher's parameters." if plan.teacher_params else ""
        )
        self.share_bar.update()
        shapes = []
        if plan.teacher_summary:
            shapes.append(f"Teacher: {plan.teacher_summary}")
        if plan.student_summary:
            shapes.append(f"Student: {plan.student_summary}")
        if plan.kept_layer_ids:
            shapes.append(f"Keeps teacher layers {_ranges(plan.kept_layer_ids)}")
        self.shapes.setText("\n".join(shapes))
        self.shapes.setVisible(bool(shapes))

        total = plan.memory.get("total", 0) if plan.memory else 0
        where = f"{plan.device_label}, {plan.precision}" if plan.precision else plan.device_label
        self.memory_value.setText(
            f"\u2248 {format_bytes(total)} (estimate) on {where}"
            if total
            else f"unknown yet ({where})"
            if where
            else "\u2013"
        )
        parts = [f"{label}: {format_bytes(plan.memory[key])}" for key, label in MEMORY_PARTS if plan.memory.get(key)]
        device = f"\n\n{plan.device_label} has {format_bytes(plan.device_memory)}." if plan.device_memory else ""
        self.memory_value.setToolTip(
            ("Estimated peak memory of one distillation step:\n" + "\n".join(parts) + device) if parts else ""
        )

        mark, color = {True: ("\u2714", theme.OK_COLOR), False: ("\u2716", theme.ERROR_COLOR)}.get(
            plan.tokenizer_ok, ("\u25cb", theme.colors()["muted"])
        )
        self.tokenizer_value.setText(
            f"<span style='color:{color}; font-weight:600'>{mark}</span>&nbsp; {_escape(plan.tokenizer_status or 'unknown')}"
        )
        self.tokenizer_value.setProperty("ok", plan.tokenizer_ok)

        notes = [f"<div style='color:{theme.ERROR_COLOR}'>\u2716 {_escape(e.line)}</div>" for e in plan.errors]
        notes += [f"<div style='color:{theme.WARNING_COLOR}'>\u26a0 {_escape(w)}</div>" for w in plan.warnings]
        self.notes.setText("".join(notes))
        self.notes.setVisible(bool(notes))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _ranges(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
