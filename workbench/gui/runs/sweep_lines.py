"""The lines of a one-axis sweep: the metric against the axis value (choices evenly spaced, by name), the best
cell starred, hard-label baselines dashed. A click on a point emits ``cell_clicked(cell id)``."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics

from workbench.gui import theme
from workbench.gui.runs.sweep_cells import BASELINE_NAME, Metric, metric_value, positions, value_key
from workbench.sweep import DISTILL_ONLY_FIELDS, Axis, value_text
from workbench.sweep_folder import CellInfo


class SweepLines(pg.PlotWidget):
    cell_clicked = Signal(str)

    def __init__(self, parent: Any = None):
        bg, _fg = theme.plot_colors()
        super().__init__(parent, background=bg)
        self.setMinimumHeight(260)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.getAxis("left").enableAutoSIPrefix(False)  # KL 0.3 stays 0.3, not 300 (x0.001)
        self.addLegend(offset=(-10, 10))
        self.apply_palette()
        self.points: dict[str, tuple[float, float]] = {}  # cell id -> where it is drawn
        self._at: dict[tuple[float, float], str] = {}
        self._text_font = QFont(self.font())

    def apply_font(self, font: QFont) -> None:
        """Tick labels, axis titles, legend and the numbers at the points in ``font`` (presentation mode's is
        larger); the next :meth:`draw` uses it for the numbers."""
        self._text_font = QFont(font)
        for name in ("left", "bottom"):
            axis = self.getAxis(name)
            axis.setStyle(tickFont=font)
            axis.label.setFont(font)
        self.getAxis("left").setWidth(QFontMetrics(font).horizontalAdvance("0.0000") + 12)
        self.getAxis("bottom").setHeight(QFontMetrics(font).height() * 2 + 10)
        points = max(font.pointSizeF(), 1.0)
        self.plotItem.legend.setLabelTextSize(f"{points:g}pt")  # labels added by the next draw take it too

    def apply_palette(self) -> None:
        """Follow the theme: background, axes and legend text."""
        background, foreground = theme.plot_colors()
        self.setBackground(background)
        for name in ("left", "bottom"):
            self.getAxis(name).setPen(foreground)
            self.getAxis(name).setTextPen(foreground)
        self.plotItem.legend.setLabelTextColor(foreground)

    def draw(
        self, axis: Axis, cells: list[CellInfo], baselines: list[CellInfo], metric: Metric, best: CellInfo | None
    ) -> None:
        self.clear()
        self.plotItem.legend.clear()
        xs = positions(axis.values)
        self.setLabel("bottom", axis.field)
        self.setLabel("left", metric.title)
        self.getAxis("bottom").setTicks([[(x, value_text(v)) for x, v in zip(xs, axis.values)]])
        x_of = {value_key(v): x for v, x in zip(axis.values, xs)}
        points = []
        for cell in cells:
            x = x_of.get(value_key(cell.values.get(axis.field)))
            y = metric_value(cell, metric.key)
            if x is not None and y is not None:
                points.append((x, y, cell))
        points.sort(key=lambda p: p[0])
        self.points = {c.id: (x, y) for x, y, c in points}
        self._at = {(x, y): c.id for x, y, c in points}
        span = (max(xs) - min(xs)) or 1.0
        self.setXRange(min(xs) - 0.08 * span, max(xs) + 0.08 * span)
        text = theme.colors()["text"]
        if points:
            line = self.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                pen=pg.mkPen(theme.STUDENT_COLOR, width=2.5),
                symbol="o",
                symbolSize=10,
                symbolBrush=theme.STUDENT_COLOR,
                symbolPen=None,
                name="distilled",
            )
            line.scatter.sigClicked.connect(self._on_clicked)
            for x, y, _cell in points:
                label = pg.TextItem(metric.text(y), color=text, anchor=(0.5, 1.3))
                label.setFont(self._text_font)
                label.setPos(x, y)
                self.addItem(label)
        if best is not None and best.id in self.points:
            x, y = self.points[best.id]
            star_pen = pg.mkPen(text, width=1)
            self.plot([x], [y], pen=None, symbol="star", symbolSize=22, symbolBrush=theme.LR_COLOR, symbolPen=star_pen,
                      name="best")  # fmt: skip
        base = [(b, metric_value(b, metric.key)) for b in baselines]
        base = [(b, v) for b, v in base if v is not None]
        dash = pg.mkPen(theme.BASELINE_COLOR, width=2, style=Qt.PenStyle.DashLine)
        if base and axis.field not in DISTILL_ONLY_FIELDS and len(baselines) > 1:  # one baseline per value
            pts = sorted((x_of[k], v) for b, v in base if (k := value_key(b.values.get(axis.field))) in x_of)
            self.plot([p[0] for p in pts], [p[1] for p in pts], pen=dash, symbol="s", symbolSize=8,
                      symbolBrush=theme.BASELINE_COLOR, symbolPen=None, name=BASELINE_NAME)  # fmt: skip
        elif base:
            value = base[0][1]
            options = {"color": theme.BASELINE_COLOR, "position": 0.12, "anchors": [(0, 1), (0, 1)]}
            label = f"{BASELINE_NAME}: {metric.text(value)}"
            self.addItem(pg.InfiniteLine(pos=value, angle=0, pen=dash, label=label, labelOpts=options))
            self.plot([], [], pen=dash, name=BASELINE_NAME)
        ys = [p[1] for p in points] + [v for _, v in base]
        if ys:
            lo, hi = min(ys), max(ys)
            margin = (hi - lo) * 0.18 or abs(hi) * 0.1 or 1.0
            self.setYRange(lo - margin, hi + margin * 1.6)

    def _on_clicked(self, _scatter: Any, points: Any, *_: Any) -> None:
        for point in points:
            pos = point.pos()
            cell_id = self._at.get((pos.x(), pos.y()))
            if cell_id is not None:
                self.cell_clicked.emit(cell_id)
                return
