"""Chart: one live plot with its header (title, hover readout, ppl/PNG/CSV buttons), legend and curves.

Besides its metrics' curves a chart holds other runs' overlays (dashed), the dashed teacher | distill stage
boundary and the hover crosshair; it saves itself as PNG or CSV. The grid of charts is ``panel.ChartsPanel``.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize, Qt, Slot
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPixmap
from PySide6.QtWidgets import QFileDialog, QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from workbench.gui import theme
from workbench.gui.charts.curves import SeriesCurves
from workbench.gui.charts.elided_label import ElidedLabel
from workbench.gui.charts.legend import ChartLegend, format_value
from workbench.gui.charts.log_axis import LogAxis
from workbench.gui.charts.series import ChartSpec, GrowableSeries, SeriesSpec

LEFT_TICK_ROOM = "-0.00001"  # the widest tick label the left axes make room for
MIN_PLOT_LINES = 8  # the plot (axes included) is at least this many text lines tall; the grid scrolls below that
MIN_PLOT_HEIGHT = 100  # pixels, whatever the font
EXPORT_MIN_WIDTH = 1600  # pixels: a PNG for a slide or a paper, whatever the chart's size on screen


class StepViewBox(pg.ViewBox):
    """A view box whose x auto range also spans ``x_extent``: the steps every chart of the grid has points at.

    The charts share one x range (linked); without this it is whichever chart auto-ranged last, so the train
    loss chart, whose first point is step 1, cut off the held-out evaluation at step 0 in the others.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.x_extent: tuple[float, float] | None = None

    def set_x_extent(self, extent: tuple[float, float] | None) -> None:
        if extent != self.x_extent:
            self.x_extent = extent
            if self.autoRangeEnabled()[0]:  # else the x range is the user's (or a stage's): nothing to redo
                self.updateAutoRange()  # (turning x auto range back on reads the extent then)

    def settle_auto_range(self) -> None:
        """Resolve a pending auto range now. pyqtgraph resolves it when the view paints, and a range changed
        during a paint (a linked x range, then this view's y range fitted to it) paints the view a second time:
        with six linked charts of 100,000 points that doubled a redraw's stall."""
        if getattr(self, "_autoRangeNeedsUpdate", False):
            self.updateAutoRange()

    def childrenBounds(self, frac=None, orthoRange=(None, None), items=None):  # noqa: N802 - pyqtgraph override
        bounds = super().childrenBounds(frac=frac, orthoRange=orthoRange, items=items)
        if self.x_extent is not None and items is None:
            low, high = self.x_extent
            if bounds[0] is not None:
                low, high = min(low, bounds[0][0]), max(high, bounds[0][1])
            bounds[0] = [low, high]
        return bounds


class TimedPlotWidget(pg.PlotWidget):
    """A PlotWidget that remembers what its paints cost (``paint_ms``: a running mean), so that the panel's
    timer can spread the charts' repaints over its ticks instead of stalling the event loop with all of them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.paint_ms = 0.0

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        started = time.perf_counter()
        super().paintEvent(event)
        spent = (time.perf_counter() - started) * 1000.0
        self.paint_ms = spent if not self.paint_ms else 0.7 * self.paint_ms + 0.3 * spent


class Chart(QFrame):
    """One plot with a header (title, hover readout, PNG/CSV buttons), its series and overlays."""

    def __init__(self, spec: ChartSpec, parent: QWidget | None = None):
        super().__init__(parent)
        self.spec = spec
        self.smoothing = 0.0
        self._flat_y = False  # the y range is set by hand while every point has one value
        self.log_y = False
        self.perplexity = False  # only the held-out chart offers the CE -> perplexity toggle
        self.view_box = StepViewBox()
        self.plot_widget = TimedPlotWidget(parent=self, viewBox=self.view_box, axisItems={"left": LogAxis("left")})
        self._fit_minimum_to_font()
        self.plot: pg.PlotItem = self.plot_widget.getPlotItem()
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.setClipToView(True)
        # A y grid at major ticks only: minor grid lines cost several ms per paint and the crosshair reads x.
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        self.plot.getAxis("left").setStyle(maxTickLevel=0)
        # No "(x0.001)" after the axis label: at a chart's height "lr (x0.001)" was cut to "lr (x0.00"; the
        # ticks say the scale themselves (0.001, 0.002, ...).
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setLabel("bottom", "global step")
        self.plot.setLabel("left", spec.y_label)
        self.plot.setMenuEnabled(True)
        self.series = {s.key: SeriesCurves(self.plot, s) for s in spec.series}
        self.overlays: list[SeriesCurves] = []
        self.boundary: pg.InfiniteLine | None = None
        self._hover_values: dict[int, str] = {}  # legend index -> value under the crosshair
        self.crosshair = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#888888", width=1))
        self.crosshair.hide()
        self.plot.addItem(self.crosshair, ignoreBounds=True)
        self.plot.scene().sigMouseMoved.connect(self._mouse_moved)
        # the readout goes when the mouse leaves the plot (Qt sends Leave to the view's viewport)
        self.plot_widget.installEventFilter(self)
        self.plot_widget.viewport().installEventFilter(self)

        self.title = ElidedLabel(spec.title, self)
        self.title.setStyleSheet("font-weight: 600; padding-right: 12px;")
        self.readout = QLabel("", self)
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        # A long readout must not widen the chart (and the whole grid): it is clipped instead.
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # The legend is a line of text above the plot, not a box over the curves; clicking an entry hides its curve.
        self.legend = ChartLegend(self)
        self.legend.linkActivated.connect(self._legend_clicked)
        self._buttons: list[QToolButton] = []
        header = QHBoxLayout()
        header.setContentsMargins(4, 0, 4, 0)
        header.addWidget(self.title)
        header.addWidget(self.readout, 1)
        if spec.name == "heldout":
            self.ppl_button = self._tool_button("ppl", "Show perplexity exp(CE) instead of cross-entropy", True)
            self.ppl_button.toggled.connect(self.set_perplexity)
            header.addWidget(self.ppl_button)
            self._buttons.append(self.ppl_button)
        for text, tip, slot in (
            ("PNG", "Save this chart as a PNG image", self._save_png),
            ("CSV", "Save this chart's points as CSV", self._save_csv),
        ):
            button = self._tool_button(text, tip)
            button.clicked.connect(slot)
            self._buttons.append(button)
            header.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot_widget, 1)
        self.apply_palette()
        self.apply_fonts()

    def fit(self) -> None:
        """Zoom to all of the data (and follow new data again)."""
        self._flat_y = False
        self.plot.enableAutoRange()

    def _fit_minimum_to_font(self) -> None:
        """Tall enough for its tick labels and axis titles at the current font: at the usual size both rows of
        charts fit a 1400 x 900 window; in presentation mode's large font the grid scrolls instead of squeezing
        each plot to 60 px."""
        lines = QFontMetrics(self.font()).height() * MIN_PLOT_LINES
        self.plot_widget.setMinimumHeight(max(MIN_PLOT_HEIGHT, lines))

    def apply_fonts(self) -> None:
        """Size axis text and the legend from the widget's font (presentation mode enlarges the app font)."""
        self._fit_minimum_to_font()
        font = QFont(self.font())
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setStyle(tickFont=font)
            axis.label.setFont(font)
            axis._updateLabel()  # the axis makes room for its title's new size (else "global step" is cut off)
        # One width for every chart's left axis: linked x ranges line up on screen, so a chart with wider tick
        # labels ("0.995") started its x range later than the others and cut off the stage boundary's label.
        self.plot.getAxis("left").setWidth(QFontMetrics(font).horizontalAdvance(LEFT_TICK_ROOM) + 6)
        # Labels with a style sheet do not follow their parent's font: hand it to them.
        title_font = QFont(font)
        title_font.setWeight(QFont.Weight.DemiBold)
        self.title.setFont(title_font)
        self.legend.apply_font(font)

    def _tool_button(self, text: str, tip: str, checkable: bool = False) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.setCheckable(checkable)
        button.setAutoRaise(True)
        return button

    # -- data ---------------------------------------------------------------------------------------------
    def add_point(self, key: str, x: float, y: float) -> None:
        series = self.series[key]
        series.data.append(x, y)
        series.dirty = True

    def transform(self, y: np.ndarray) -> np.ndarray:
        if self.perplexity:
            with np.errstate(over="ignore"):
                return np.exp(y)
        return y

    def is_dirty(self) -> bool:
        return any(series.dirty and len(series.data) for series in self._all_series())

    def redraw_cost_ms(self) -> float:
        """What redrawing this chart costs the event loop, from its last paints (0 while it is not on screen)."""
        return self.plot_widget.paint_ms if self.plot_widget.isVisible() else 0.0

    def redraw(self, force: bool = False) -> int:
        """Push changed buffers to their curves; returns how many series were redrawn."""
        count = 0
        for series in [*self.series.values(), *self.overlays]:
            if (series.dirty or force) and len(series.data):
                series.redraw(self.smoothing, self.transform)
                count += 1
        if count:
            self._update_legend()
            self._pad_a_flat_y_range()
        return count

    def x_extent(self) -> tuple[float, float] | None:
        """The first and last step this chart has a finite point at (None while it has none)."""
        lows, highs = [], []
        for series in self._all_series():
            x, y = series.data.x, series.data.y
            x = x[np.isfinite(y)]
            if len(x):
                lows.append(float(x.min()))
                highs.append(float(x.max()))
        return (min(lows), max(highs)) if lows else None

    def _pad_a_flat_y_range(self) -> None:
        """While every point has one value (the first step), auto range spans +-400x it: show it in the
        middle of [0.5 v, 1.5 v] instead (half a decade either side on a log axis), and hand the axis back to
        auto range when the values spread."""
        values = [
            np.asarray(s.main.getOriginalDataset()[1], dtype=float) for s in self._all_series() if s.main.isVisible()
        ]
        finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.empty(0)
        if self.log_y:
            finite = finite[finite > 0]
        flat = finite.size > 0 and float(finite.max()) == float(finite.min())
        view = self.plot.getViewBox()
        if flat and (self._flat_y or view.autoRangeEnabled()[1]):
            value = float(finite[0])
            if self.log_y:  # the view's y is log10 of the values
                low, high = math.log10(value) - 0.5, math.log10(value) + 0.5
            else:
                half = abs(value) * 0.5 or 1.0
                low, high = value - half, value + half
            self.plot.setYRange(low, high, padding=0)
            self._flat_y = True
        elif self._flat_y and not flat:
            self._flat_y = False
            self.plot.enableAutoRange(axis="y")

    def _all_series(self) -> list[SeriesCurves]:
        return [*self.series.values(), *self.overlays]

    def legend_entries(self) -> list[str]:
        """Labels in the legend: the curves that have data, then the overlays."""
        return [series.spec.label for series in self._all_series() if series.data.has_values]

    def _update_legend(self) -> None:
        self.legend.show_entries(list(self.series.values()), self.overlays, self._hover_values)

    def clear(self) -> None:
        self.clear_overlays()
        for series in self.series.values():
            series.data = GrowableSeries()
            series.reset_smoothing()
            series.main.show()
            for item in series.items:
                item.setData([], [])
            series.raw.hide()
        if self.boundary is not None:
            self.plot.removeItem(self.boundary)
            self.boundary = None
        self.crosshair.hide()
        self.readout.setText("")
        self._hover_values = {}
        self.legend.setText("")

    def set_boundary(self, x: float) -> None:
        """Draw (or move) the teacher/distill stage boundary."""
        if self.boundary is None:
            # The label hangs from the top, left of the line: there the teacher's curves have come down
            # (losses, KL) and the student's have not started (they begin right of the line, often at the top).
            self.boundary = pg.InfiniteLine(
                angle=90,
                movable=False,
                label="teacher | distill",
                pen=pg.mkPen("#999999", width=1, style=Qt.PenStyle.DashLine),
                labelOpts={
                    "position": 0.98,
                    "color": "#999999",
                    "anchors": [(1, 0), (1, 0)],
                    "fill": self._label_fill(),
                },
            )
            self.plot.addItem(self.boundary, ignoreBounds=True)
            self.plot.vb.sigXRangeChanged.connect(self._place_boundary_label)
        self.boundary.setPos(x)
        self._place_boundary_label()

    @Slot()
    def _place_boundary_label(self) -> None:
        """Left of the line as a rule; right of it when the line is near the view's left edge (the charts
        follow the distillation stage), where a label on the left would be cut off."""
        if self.boundary is None:
            return
        first, last = self.plot.vb.viewRange()[0]
        near_left = (self.boundary.value() - first) < 0.3 * max(last - first, 1e-9)
        anchor = (0, 0) if near_left else (1, 0)
        label = self.boundary.label
        if label.anchors[0] != anchor:
            label.anchors = [anchor, anchor]
            label.updatePosition()

    @staticmethod
    def _label_fill() -> QColor:
        # The stage label sits on a plot-coloured plate so curves passing under it do not garble it.
        fill = QColor(theme.plot_colors()[0])
        fill.setAlpha(170)  # curves that do pass under it still show through
        return fill

    def add_overlay(self, label: str, color: str, key: str, x, y) -> None:
        base = self.series[key].spec
        name = label if len(self.spec.overlay_keys) == 1 else f"{label} · {base.label}"
        series = SeriesCurves(self.plot, SeriesSpec(key, name, color, smooth=base.smooth), dashed=True)
        series.data.extend(x, y)
        series.dirty = True
        self.overlays.append(series)

    @Slot(str)
    def _legend_clicked(self, link: str) -> None:
        self.toggle_series(int(link))

    def toggle_series(self, index: int) -> None:
        """Hide or show the ``index``-th curve of the legend (its faint raw twin follows)."""
        series = self._all_series()[index]
        series.main.setVisible(not series.main.isVisible())
        series.raw.setVisible(series.main.isVisible() and self.smoothing > 0 and series.spec.smooth)
        self._update_legend()

    def clear_overlays(self) -> None:
        for series in self.overlays:
            for item in series.items:
                self.plot.removeItem(item)
        self.overlays = []
        self._hover_values = {}
        self._update_legend()

    # -- display options --------------------------------------------------------------------------------------
    def set_log(self, on: bool) -> None:
        self.log_y = bool(on) and self.spec.log_ok
        self.plot.setLogMode(x=False, y=self.log_y)
        self._pad_a_flat_y_range()

    def set_smoothing(self, weight: float) -> None:
        self.smoothing = float(weight)
        for series in [*self.series.values(), *self.overlays]:
            series.reset_smoothing()
        self.redraw(force=True)

    @Slot(bool)
    def set_perplexity(self, on: bool) -> None:
        self.perplexity = bool(on)
        self.plot.setLabel("left", "perplexity" if on else self.spec.y_label)
        self.title.setText("Held-out perplexity" if on else self.spec.title)
        self.redraw(force=True)

    # -- hover readout --------------------------------------------------------------------------------------
    @Slot(object)
    def _mouse_moved(self, pos) -> None:
        if not self.plot.sceneBoundingRect().contains(pos):
            self.hide_readout()
            return
        self.show_readout_at(self.plot.vb.mapSceneToView(pos).x())

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.Leave and watched in (self.plot_widget, self.plot_widget.viewport()):
            self.hide_readout()
        return super().eventFilter(watched, event)

    def hide_readout(self) -> None:
        """Take the crosshair, the step and the values beside the legend's names away."""
        if not self.crosshair.isVisible() and not self.readout.text() and not self._hover_values:
            return
        self.crosshair.hide()
        self.readout.setText("")
        self._hover_values = {}
        self._update_legend()

    def show_readout_at(self, x: float) -> str:
        """Move the crosshair to the point nearest ``x`` and list each curve's value there; returns the text."""
        parts, nearest_x, self._hover_values = [], None, {}
        for index, series in enumerate(self._all_series()):
            xs = series.data.x
            if not len(xs) or not series.main.isVisible():
                continue
            span = max(float(xs.max() - xs.min()), 1.0)
            if not xs.min() - 0.02 * span <= x <= xs.max() + 0.02 * span:
                continue  # this curve has no data near the cursor (e.g. the teacher stage, hovering distill)
            i = int(np.argmin(np.abs(xs - x)))
            value = self.transform(series.data.y[i : i + 1])[0]
            if nearest_x is None or abs(xs[i] - x) < abs(nearest_x - x):
                nearest_x = xs[i]
            self._hover_values[index] = format_value(value)
            parts.append(f"<span style='color:{series.spec.color}'>{series.spec.label}</span> {format_value(value)}")
        if nearest_x is None:
            return ""
        self.crosshair.setPos(nearest_x)
        self.crosshair.show()
        self.readout.setText(f"step {int(nearest_x):,}")
        self._update_legend()  # the values appear next to their names
        return f"step {int(nearest_x):,} &nbsp; " + " &nbsp; ".join(parts)

    # -- export ------------------------------------------------------------------------------------------------
    def export_png(self, path: str | Path, min_width: int = EXPORT_MIN_WIDTH) -> Path:
        """Save title, legend and plot as a PNG at twice the on-screen size, and at least ``min_width``
        pixels wide; without the buttons, the crosshair and the hover readout."""
        self.redraw(force=True)
        path = Path(path)
        hover = (self.crosshair.isVisible(), self.readout.text(), dict(self._hover_values))
        for button in self._buttons:
            button.hide()
        self.crosshair.hide()
        self.readout.setText("")
        self._hover_values = {}
        self._update_legend()
        try:
            scale = max(2.0, min_width / max(self.width(), 1))
            image = QPixmap(QSize(math.ceil(self.width() * scale), math.ceil(self.height() * scale)))
            image.setDevicePixelRatio(scale)
            image.fill(self.palette().color(self.backgroundRole()))
            self.render(image)
        finally:
            for button in self._buttons:
                button.show()
            self.crosshair.setVisible(hover[0])
            self.readout.setText(hover[1])
            self._hover_values = hover[2]
            self._update_legend()
        if not image.save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
        return path

    def export_csv(self, path: str | Path) -> Path:
        """Write every raw point as ``series,step,value`` rows (overlays prefixed ``overlay:``)."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["series", "step", "value"])
            for key, series in self.series.items():
                for x, y in zip(series.data.x, series.data.y):
                    writer.writerow([key, int(x), repr(float(y))])
            for series in self.overlays:
                for x, y in zip(series.data.x, series.data.y):
                    writer.writerow([f"overlay:{series.spec.label}", int(x), repr(float(y))])
        return path

    @Slot()
    def _save_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save chart as PNG", f"{self.spec.name}.png", "PNG (*.png)")
        if path:
            self.export_png(path)

    @Slot()
    def _save_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save chart data", f"{self.spec.name}.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    # -- theme -----------------------------------------------------------------------------------------------
    def apply_palette(self) -> None:
        """Follow the application palette (the theme) for background, axes and legend text."""
        background, foreground = (QColor(c) for c in theme.plot_colors())
        self.plot_widget.setBackground(background)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setPen(foreground)
            self.plot.getAxis(axis).setTextPen(foreground)
        if self.boundary is not None:
            self.boundary.label.fill = pg.mkBrush(self._label_fill())
            self.boundary.label.update()
        self._update_legend()

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
        elif event.type() in (QEvent.Type.FontChange, QEvent.Type.ApplicationFontChange):
            self.apply_fonts()
        super().changeEvent(event)
