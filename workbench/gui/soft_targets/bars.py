"""Grouped horizontal probability bars on one word axis: teacher, student and the true distribution.

The soft-targets panel decides what to show (which words, at which temperature); this plot only
draws it: one row per word, most likely on top, a bar per distribution in each row, and the
prompt's known next word starred with its row highlighted.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import QWidget

from workbench.gui import theme

COLORS = {"teacher": theme.TEACHER_COLOR, "student": theme.STUDENT_COLOR, "truth": theme.TRUTH_COLOR}


class ProbabilityBars(pg.PlotWidget):
    """The bars of up to three distributions over the same words; ``row_hovered(row)`` follows the mouse."""

    row_hovered = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent=parent)
        self.plot: pg.PlotItem = self.getPlotItem()
        self.plot.invertY(True)  # the most likely word on top
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "probability")
        self.plot.showGrid(x=True, y=False, alpha=0.15)
        self.plot.getAxis("bottom").setStyle(maxTickLevel=0)
        # Every row gets its word: allow the axis to fill with text (pyqtgraph drops "crowded" labels otherwise).
        self.plot.getAxis("left").setStyle(tickLength=0, textFillLimits=[(0, 1.0)])
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.row_highlight = pg.LinearRegionItem(orientation="horizontal", movable=False)
        self.row_highlight.setZValue(-10)
        self.plot.addItem(self.row_highlight)
        self.series = {
            name: pg.BarGraphItem(x0=[], y=[], height=[], width=[], brush=color, pen=None)
            for name, color in COLORS.items()
        }
        for item in self.series.values():
            self.plot.addItem(item)
        self.hard_marker = pg.ScatterPlotItem(symbol="star", size=18, brush=theme.HARD_LABEL_COLOR, pen=None)
        self.hard_text = pg.TextItem("next token", color=theme.HARD_LABEL_COLOR, anchor=(0, 0.5))
        self.plot.addItem(self.hard_marker)
        self.plot.addItem(self.hard_text)
        self.tick_font = QFont(self.font())  # the size asked for; rows that are too short get a smaller one
        self._fitted_font = QFont(self.tick_font)
        self._words: list[str] = []
        self._rows = 0
        self.scene().sigMouseMoved.connect(self._mouse_moved)
        self.setMinimumHeight(110)  # a 720-pixel-high screen still shows the whole window
        self.apply_palette()

    @property
    def teacher_bars(self) -> pg.BarGraphItem:
        return self.series["teacher"]

    @property
    def student_bars(self) -> pg.BarGraphItem:
        return self.series["student"]

    @property
    def truth_bars(self) -> pg.BarGraphItem:
        return self.series["truth"]

    def draw(self, dists: list[tuple[str, np.ndarray]], words: list[str], hard_row: int | None) -> None:
        """One row per word in ``words``; ``dists`` holds (name, probability of each word) per distribution."""
        self._rows = len(words)
        self._words = list(words)
        rows = np.arange(len(words), dtype=float)
        height = 0.8 / max(len(dists), 1)
        for item in self.series.values():
            item.setOpts(x0=[], y=[], height=[], width=[])
        widest = max((float(values.max()) for _, values in dists if len(values)), default=0.0)
        for slot, (name, values) in enumerate(dists):
            offset = (slot - (len(dists) - 1) / 2) * height
            self.series[name].setOpts(
                x0=np.zeros(len(words)), y=rows + offset, height=np.full(len(words), height * 0.92), width=values
            )
        left = self.plot.getAxis("left")
        left.setTicks([[(float(r), word) for r, word in zip(rows, words)], []])
        self._fit_words()
        self.plot.setYRange(-0.6, len(words) - 0.4, padding=0)
        room = 1.32 if hard_row is not None else 1.1  # space for the star and its label
        self.plot.setXRange(0, max(widest, 1e-6) * room, padding=0)
        markers = (self.hard_marker, self.hard_text, self.row_highlight)
        if hard_row is None:
            for item in markers:
                item.hide()
            return
        right = max(float(values[hard_row]) for _, values in dists)
        self.hard_marker.setData([right + widest * 0.04], [hard_row])
        self.hard_text.setPos(right + widest * 0.07, hard_row)
        self.row_highlight.setRegion((hard_row - 0.5, hard_row + 0.5))
        for item in markers:
            item.show()

    def set_tick_font(self, font: QFont) -> None:
        self.tick_font = QFont(font)
        self._fit_words()

    def _fit_words(self) -> None:
        """The words' font: the one asked for, or smaller when the rows are shorter than its line height
        (presentation mode on a small screen would otherwise stack the words over each other); then the
        axis is sized for the longest word, since pyqtgraph drops labels that do not fit yet."""
        font = QFont(self.tick_font)
        row_height = self.plot.vb.height() / max(self._rows, 1) if self._rows else 0.0
        if row_height > 0:
            while QFontMetrics(font).height() > row_height and font.pointSizeF() > 7.0:
                font.setPointSizeF(font.pointSizeF() - 0.5)
        left = self.plot.getAxis("left")
        if font != self._fitted_font or not self._rows:
            self._fitted_font = font
            left.setStyle(tickFont=font)
        metrics = QFontMetrics(font)
        left.setWidth(max((metrics.horizontalAdvance(word) for word in self._words), default=30) + 18)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if getattr(self, "_rows", 0):  # also called while PlotWidget.__init__ runs, before our attributes exist
            self._fit_words()

    def apply_palette(self) -> None:
        background, foreground = theme.plot_colors()
        self.setBackground(background)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setPen(foreground)
            self.plot.getAxis(axis).setTextPen(foreground)
        highlight = QColor(theme.HARD_LABEL_COLOR)
        highlight.setAlpha(45)
        self.row_highlight.setBrush(highlight)
        for line in self.row_highlight.lines:
            line.setPen(pg.mkPen(None))

    @Slot(object)
    def _mouse_moved(self, pos) -> None:
        if not self._rows or not self.plot.sceneBoundingRect().contains(pos):
            return
        row = round(self.plot.vb.mapSceneToView(pos).y())
        if 0 <= row < self._rows:
            self.row_hovered.emit(row)
