"""SeriesCurves: one metric's buffer drawn as pyqtgraph curves (a faint raw one under the smoothed main one).

The numbers (buffer, EMA) come from the Qt-free ``series`` module; this module only turns them into pens,
symbols and ``setData`` calls.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from workbench.gui.charts.series import GrowableSeries, SeriesSpec, ema

MAX_MARKERS = 120  # a "points" series draws its markers up to this many points, then the line alone
_PEN_STYLES = {"dashed": Qt.PenStyle.DashLine, "dotted": Qt.PenStyle.DotLine}


class SeriesCurves:
    """A metric's buffer plus its two curves: the faint raw one and the (smoothed) main one."""

    def __init__(self, plot: pg.PlotItem, spec: SeriesSpec, dashed: bool = False):
        self.spec = spec
        self.data = GrowableSeries()
        color = QColor(spec.color)
        style = Qt.PenStyle.DashLine if dashed else _PEN_STYLES.get(spec.style, Qt.PenStyle.SolidLine)
        faint = QColor(color)
        faint.setAlpha(70)
        # Dense per-step curves skip antialiasing: with 100k points it costs ~10x the paint time and the
        # noise hides jaggies anyway; sparse eval curves keep it.
        antialias = not spec.smooth
        self.raw = plot.plot(pen=pg.mkPen(faint, width=1), connect="finite", antialias=False)
        self.main = plot.plot(pen=pg.mkPen(color, width=2, style=style), connect="finite", antialias=antialias)
        for item in (self.raw, self.main):
            item.opts["autoDownsampleFactor"] = 1.5  # ~1.5 samples per pixel (default 5): peak mode keeps extremes
        if spec.style == "points":
            self.main.setSymbol("o")
            self.main.setSymbolSize(6)
            self.main.setSymbolBrush(color)
            self.main.setSymbolPen(None)
        self.raw.hide()
        self.items = (self.raw, self.main)
        self.dirty = False
        self._smooth_cache = np.empty(0)
        self._smooth_state = (0.0, 0)

    def reset_smoothing(self) -> None:
        self._smooth_cache = np.empty(0)
        self._smooth_state = (0.0, 0)

    def smoothed(self, weight: float) -> np.ndarray:
        y = self.data.y
        done = len(self._smooth_cache)
        if done < len(y):
            new, state, count = ema(y[done:], weight, *self._smooth_state)
            self._smooth_cache = np.concatenate([self._smooth_cache, new])
            self._smooth_state = (state, count)
        return self._smooth_cache

    def redraw(self, weight: float, transform) -> None:
        x, y = self.data.x, self.data.y
        if weight > 0 and self.spec.smooth:
            self.raw.setData(x, transform(y))
            self.raw.setVisible(self.main.isVisible())
            self.main.setData(x, transform(self.smoothed(weight)))
        else:
            self.raw.hide()
            self.main.setData(x, transform(y))
        self._mark_a_lone_point(np.count_nonzero(np.isfinite(y)) == 1)
        self._thin_markers(len(y))
        self.dirty = False

    def _thin_markers(self, count: int) -> None:
        """A "points" series (the teacher's held-out CE, one per evaluation) keeps its markers while they can
        be told apart; a long run's thousands of evaluations drew a solid band of them (and painted slowly)."""
        if self.spec.style != "points":
            return
        want = "o" if count <= MAX_MARKERS else None
        if self.main.opts.get("symbol") != want:
            self.main.setSymbol(want)

    def _mark_a_lone_point(self, lone: bool) -> None:
        """A line through one point draws nothing: give it a marker until a second point arrives."""
        if self.spec.style == "points":
            return
        want = "o" if lone else None
        if self.main.opts.get("symbol") != want:
            self.main.setSymbol(want)
            if lone:
                self.main.setSymbolSize(7)
                self.main.setSymbolBrush(self.main.opts["pen"].color())
                self.main.setSymbolPen(None)
