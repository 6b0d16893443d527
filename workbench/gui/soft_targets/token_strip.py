"""The prompt's tokens as buttons, each with a coloured cell under it: the divergence at that position.

Clicking a token asks for the distributions after it (``position_clicked``); the cells are a
heat map from the theme's background (no divergence) to the KD colour (the largest shown).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from workbench.gui import theme
from workbench.gui.soft_targets.state import display_token


class TokenStrip(QScrollArea):
    """A scrollable row of token chips with a heat cell under each."""

    position_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None, font_size: Callable[[float], str] | None = None):
        super().__init__(parent)
        self._font_size = font_size or (lambda scale: f"{10 * scale:.1f}pt")
        self.host = QWidget(self)
        self.row = QHBoxLayout(self.host)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.setSpacing(4)
        self.row.addStretch(1)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.group.idClicked.connect(self.position_clicked)
        self.chips: list[QPushButton] = []
        self.heat_cells: list[QLabel] = []
        self.tokens: list[str] = []
        self.caption = QLabel("", self.host)
        self.caption.setObjectName("muted")
        self.row.insertWidget(0, self.caption)
        self.setWidget(self.host)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFixedHeight(74)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def set_tokens(self, tokens: list[str], selected: int, force: bool = False) -> None:
        """Show ``tokens`` with ``selected`` checked (the same tokens again keep their chips unless ``force``)."""
        if tokens == self.tokens and not force:  # a newer probe of the same prompt: keep the chips
            self.select(selected)
            return
        self.tokens = list(tokens)
        for chip in self.chips:
            self.group.removeButton(chip)
            column = chip.parentWidget()  # the chip's column, with its heat cell
            column.hide()  # gone now, not at the next event-loop turn
            self.row.removeWidget(column)
            column.deleteLater()
        self.chips, self.heat_cells = [], []
        for position, text in enumerate(tokens):
            column = QWidget(self.host)
            layout = QVBoxLayout(column)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.setSpacing(3)
            chip = QPushButton(display_token(text), column)
            chip.setCheckable(True)
            chip.setObjectName("chip")
            chip.setToolTip(f"Show the next-word distributions after token {position + 1}: {text!r}")
            cell = QLabel("", column)
            cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
            cell.setFixedHeight(20)
            layout.addWidget(chip)
            layout.addWidget(cell)
            self.group.addButton(chip, position)
            self.row.insertWidget(self.row.count() - 2, column)
            self.chips.append(chip)
            self.heat_cells.append(cell)
        self.select(selected)
        self.apply_style()

    def select(self, position: int) -> None:
        if 0 <= position < len(self.chips):
            self.chips[position].setChecked(True)

    def paint(self, values: np.ndarray, caption: str, describe: Callable[[int, float], str]) -> None:
        """Colour each cell by ``values`` (NaN: no value yet); ``describe(position, value)`` is its tooltip."""
        self.caption.setText(caption if len(values) else "")
        finite = values[np.isfinite(values)]
        top = float(finite.max()) if len(finite) and finite.max() > 0 else 1.0
        low, high = QColor(theme.colors()["alt_base"]), QColor(theme.KD_COLOR)
        for position, (cell, value) in enumerate(zip(self.heat_cells, values)):
            if not np.isfinite(value):
                cell.setText("")
                cell.setStyleSheet("")
                cell.setToolTip("No student yet (teacher stage)")
                continue
            f = min(max(value / top, 0.0), 1.0)
            color = QColor.fromRgbF(*(low.getRgbF()[i] * (1 - f) + high.getRgbF()[i] * f for i in range(3)))
            text_color = "#ffffff" if color.lightnessF() < 0.6 else "#1f2328"
            cell.setText(f"{value:.2f}")
            cell.setStyleSheet(
                f"background: {color.name()}; color: {text_color}; border-radius: 3px; "
                f"font-size: {self._font_size(0.85)}; padding: 0 2px;"
            )
            cell.setToolTip(describe(position, float(value)))

    def apply_style(self) -> None:
        """Chip look for the current theme and font size."""
        c = theme.colors()
        self.host.setStyleSheet(
            f"QPushButton#chip {{ padding: 3px 8px; border: 1px solid {c['border']}; border-radius: 10px;"
            f" background: {c['alt_base']}; font-size: {self._font_size(1.15)}; }}"
            f"QPushButton#chip:checked {{ background: {c['highlight']}; color: white; border-color: {c['highlight']}; }}"
        )
