"""Live training charts: one pyqtgraph curve per metric, redrawn by a 15 Hz timer.

Events only append to growable numpy buffers and mark their curve dirty; the
timer pushes dirty buffers to pyqtgraph, which downsamples ('peak') and clips
to the view, so 100,000 points still draw in a few milliseconds. The x axis is
one global step: the teacher stage first, then distillation steps offset after
it, with a dashed vertical line at the boundary.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Slot
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.events import StageStarted
from workbench.gui import theme
from workbench.gui.charts.series import (
    CHART_SPECS,
    ChartSpec,
    GrowableSeries,
    SeriesSpec,
    StepAxis,
    ema,
    event_points,
)

REDRAW_HZ = 15


_PEN_STYLES = {"dashed": Qt.PenStyle.DashLine, "dotted": Qt.PenStyle.DotLine}
_SWATCHES = {"line": "━━", "dashed": "╍╍", "dotted": "┅┅", "points": "━●━"}


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" when it is given less room than its text needs (tooltip: the text),
    so a long chart title never sets the width of a chart, or of the grid, on a small screen."""

    def __init__(self, text: str, parent: QWidget | None = None):
        super().__init__(text, parent)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), self.fontMetrics().horizontalAdvance("Held-out…") + 16), hint.height())

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        super().setText(text)
        self.setToolTip(text)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        room = self.contentsRect().width()  # the style sheet's padding is already outside it
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, max(room, 0))
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.setFont(self.font())
        painter.drawText(self.contentsRect(), int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)


class _Series:
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
        self.dirty = False


class Chart(QFrame):
    """One plot with a header (title, hover readout, PNG/CSV buttons), its series and overlays."""

    def __init__(self, spec: ChartSpec, parent: QWidget | None = None):
        super().__init__(parent)
        self.spec = spec
        self.smoothing = 0.0
        self.log_y = False
        self.perplexity = False  # only the held-out chart offers the CE -> perplexity toggle
        self.plot_widget = pg.PlotWidget(parent=self)
        self.plot: pg.PlotItem = self.plot_widget.getPlotItem()
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.setClipToView(True)
        # A y grid at major ticks only: minor grid lines cost several ms per paint and the crosshair reads x.
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        self.plot.getAxis("left").setStyle(maxTickLevel=0)
        self.plot.getAxis("left").enableAutoSIPrefix(spec.name == "lr")  # "x0.001" only reads well for lr
        self.plot.setLabel("bottom", "global step")
        self.plot.setLabel("left", spec.y_label)
        self.plot.setMenuEnabled(True)
        self.series = {s.key: _Series(self.plot, s) for s in spec.series}
        self.overlays: list[_Series] = []
        self.boundary: pg.InfiniteLine | None = None
        self._hover_values: dict[int, str] = {}  # legend index -> value under the crosshair
        self.crosshair = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#888888", width=1))
        self.crosshair.hide()
        self.plot.addItem(self.crosshair, ignoreBounds=True)
        self.plot.scene().sigMouseMoved.connect(self._mouse_moved)

        self.title = ElidedLabel(spec.title, self)
        self.title.setStyleSheet("font-weight: 600; padding-right: 12px;")
        self.readout = QLabel("", self)
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        # A long readout must not widen the chart (and the whole grid): it is clipped instead.
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # The legend is a line of text above the plot, not a box over the curves; clicking an entry hides its curve.
        self.legend = QLabel("", self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.legend.setContentsMargins(4, 0, 4, 0)
        self.legend.linkActivated.connect(self._legend_clicked)
        self.legend.setToolTip("Click an entry to hide or show its curve")
        # Room for two lines, always (see apply_fonts): hover values may wrap the legend, and the plot must not
        # jump under the mouse.
        self.legend.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
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
        for text, tip, slot in (("PNG", "Save this chart as a PNG image", self._save_png),
                                ("CSV", "Save this chart's points as CSV", self._save_csv)):
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
        self.plot.enableAutoRange()

    def apply_fonts(self) -> None:
        """Size axis text and the legend from the widget's font (presentation mode enlarges the app font)."""
        font = QFont(self.font())
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setStyle(tickFont=font)
            self.plot.getAxis(axis).label.setFont(font)
        # Labels with a style sheet do not follow their parent's font: hand it to them.
        title_font = QFont(font)
        title_font.setWeight(QFont.Weight.DemiBold)
        self.title.setFont(title_font)
        self.legend.setFont(font)
        self.legend.setFixedHeight(2 * self.legend.fontMetrics().lineSpacing() + 2)

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

    def redraw(self, force: bool = False) -> int:
        """Push changed buffers to their curves; returns how many series were redrawn."""
        count = 0
        for series in [*self.series.values(), *self.overlays]:
            if (series.dirty or force) and len(series.data):
                series.redraw(self.smoothing, self.transform)
                count += 1
        if count:
            self._update_legend()
        return count

    def _all_series(self) -> list[_Series]:
        return [*self.series.values(), *self.overlays]

    def legend_entries(self) -> list[str]:
        """Labels in the legend: the curves that have data, then the overlays."""
        return [series.spec.label for series in self._all_series() if series.data.has_values]

    def _update_legend(self) -> None:
        muted = theme.colors()["muted"]
        parts = []
        for index, series in enumerate(self._all_series()):
            if not series.data.has_values:
                continue
            color = series.spec.color if series.main.isVisible() else muted
            swatch = _SWATCHES["dashed" if series in self.overlays else series.spec.style]
            name = series.spec.label if series.main.isVisible() else f"<s>{series.spec.label}</s>"
            value = self._hover_values.get(index)
            parts.append(f"<a href='{index}' style='text-decoration:none; color:{color}'><b>{swatch}</b></a>"
                         f"&nbsp;<a href='{index}' style='text-decoration:none; color:{muted}'>{name}</a>"
                         + (f"&nbsp;<b>{value}</b>" if value is not None else ""))
        self.legend.setText("&nbsp;&nbsp;&nbsp; ".join(parts))

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
            self.boundary = pg.InfiniteLine(angle=90, movable=False, label="teacher | distill",
                                            pen=pg.mkPen("#999999", width=1, style=Qt.PenStyle.DashLine),
                                            labelOpts={"position": 0.98, "color": "#999999", "anchors": [(1, 0), (1, 0)],
                                                       "fill": self._label_fill()})
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
        series = _Series(self.plot, SeriesSpec(key, name, color, smooth=base.smooth), dashed=True)
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
            return
        self.show_readout_at(self.plot.vb.mapSceneToView(pos).x())

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
            value = self.transform(series.data.y[i:i + 1])[0]
            if nearest_x is None or abs(xs[i] - x) < abs(nearest_x - x):
                nearest_x = xs[i]
            self._hover_values[index] = _fmt(value)
            parts.append(f"<span style='color:{series.spec.color}'>{series.spec.label}</span> {_fmt(value)}")
        if nearest_x is None:
            return ""
        self.crosshair.setPos(nearest_x)
        self.crosshair.show()
        self.readout.setText(f"step {int(nearest_x):,}")
        self._update_legend()  # the values appear next to their names
        return f"step {int(nearest_x):,} &nbsp; " + " &nbsp; ".join(parts)

    # -- export ------------------------------------------------------------------------------------------------
    def export_png(self, path: str | Path) -> Path:
        """Save the plot as a PNG at its current on-screen size."""
        self.redraw(force=True)
        path = Path(path)
        # Title, legend and plot, without the little buttons.
        for button in self._buttons:
            button.hide()
        try:
            image = self.grab()
        finally:
            for button in self._buttons:
                button.show()
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


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3g}"
    return f"{value:.4g}"


class ChartsPanel(QWidget):
    """The grid of live charts, with log-scale and smoothing controls shared by all of them."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.charts = {spec.name: Chart(spec, self) for spec in CHART_SPECS}
        self._chart_of_key = {s.key: chart for chart in self.charts.values() for s in chart.spec.series}
        self._axis = StepAxis()
        self._overlay_count = 0
        self._overlay_sources: list[tuple[str, list, str]] = []
        self._truth_expected = True
        self._arranged: list[Chart] = []

        self.log_check = QCheckBox("Log scale", self)
        self.log_check.setToolTip("Logarithmic y axis on the loss, CE, KL and learning-rate charts")
        self.log_check.toggled.connect(self.set_log_scale)
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.smoothing_slider.setRange(0, 99)
        self.smoothing_slider.setFixedWidth(160)
        self.smoothing_slider.setToolTip("Exponential moving average of the curves; the raw curve stays faint below")
        self.smoothing_slider.valueChanged.connect(self._smoothing_moved)
        self.smoothing_label = QLabel("off", self)
        self.smoothing_label.setMinimumWidth(32)
        reset = QPushButton("Fit all", self)
        reset.setToolTip("Zoom every chart to show all of its data")
        reset.clicked.connect(self.auto_range)
        bar = QHBoxLayout()
        bar.addWidget(self.log_check)
        bar.addSpacing(16)
        bar.addWidget(QLabel("Smoothing", self))
        bar.addWidget(self.smoothing_slider)
        bar.addWidget(self.smoothing_label)
        bar.addStretch(1)
        bar.addWidget(reset)
        self._grid = QGridLayout()
        self._grid.setSpacing(6)
        for column in range(3):
            self._grid.setColumnStretch(column, 1)  # equal columns, also with a cell left empty
        for i, chart in enumerate(self.charts.values()):
            if i:  # zooming one chart's step range zooms them all
                chart.plot.setXLink(self.charts["loss"].plot)
        self._arrange()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addLayout(self._grid, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / REDRAW_HZ))
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    # -- events -----------------------------------------------------------------------------------------------
    @Slot(object)
    def handle_event(self, event) -> None:
        """Take a StageStarted, Step or Eval event (others are ignored); drawn at the next timer tick."""
        before = (self._axis.teacher_total, self._axis.offset)
        for key, x, y in event_points(event, self._axis):
            chart = self._chart_of_key[key]
            chart.add_point(key, x, y)
            if chart not in self._arranged:  # points for a hidden chart: it has something to show after all
                self._arrange()
        if isinstance(event, StageStarted) and self._axis.boundary is not None:
            for chart in self.charts.values():
                chart.set_boundary(self._axis.boundary)
            if event.stage == "distill" and event.total_steps:
                # Distillation is what people watch now: after 800 teacher steps its 300 would fill a sliver
                # of each chart. "Fit all" (or a finished run's view) shows both stages again.
                self.focus_steps(self._axis.boundary, self._axis.boundary + event.total_steps)
        if self._overlay_sources and (self._axis.teacher_total, self._axis.offset) != before:
            self._realign_overlays()

    def set_truth_expected(self, expected: bool) -> None:
        """Whether the runs shown can have a true distribution (only the built-in language has one): when none
        can, the chart of KL to the truth is left out of the grid rather than shown empty; points or overlays
        that arrive for it bring it back."""
        self._truth_expected = expected
        self._arrange()

    def _arrange(self) -> None:
        truth = self.charts["truth"]
        has_points = any(len(series.data) for series in truth.series.values()) or bool(truth.overlays)
        shown = [chart for chart in self.charts.values() if chart is not truth or self._truth_expected or has_points]
        if shown == self._arranged:
            return
        for chart in self.charts.values():
            self._grid.removeWidget(chart)
        for i, chart in enumerate(shown):
            self._grid.addWidget(chart, i // 3, i % 3)
        truth.setVisible(truth in shown)
        self._arranged = shown

    def load_events(self, events) -> None:
        """Replace the charts' contents with a finished run's events."""
        self.clear()
        for event in events:
            self.handle_event(event)
        self.redraw_now()
        self.auto_range()

    def clear(self) -> None:
        """Forget all points, overlays and the stage boundary."""
        self._axis = StepAxis()
        for chart in self.charts.values():
            chart.clear()
        self._overlay_count = 0
        self._overlay_sources = []
        self._arrange()

    def add_overlay(self, label: str, events, color: str | None = None) -> None:
        """Draw another run's curves dashed in their own colour, with ``label`` in the legends.

        ``color`` picks the colour (e.g. ``theme.BASELINE_COLOR`` for an alpha = 0 baseline); by default each overlay
        takes the next of ``theme.OVERLAY_COLORS``.
        """
        if color is None:
            color = theme.OVERLAY_COLORS[self._overlay_count % len(theme.OVERLAY_COLORS)]
            self._overlay_count += 1
        events = list(events)
        self._overlay_sources.append((label, events, color))
        self._draw_overlay(label, events, color)

    def _draw_overlay(self, label: str, events, color: str) -> None:
        # Distillation steps line up with this run's distillation steps, whether or not either run trained
        # its teacher (a baseline reuses the teacher of the run it compares with, so it has no stage 1).
        axis, points = StepAxis(), {}
        for event in events:
            stage = getattr(event, "stage", "")
            for key, x, y in event_points(event, axis):
                if stage == "teacher" and not self._axis.teacher_total:
                    continue
                if stage == "distill":
                    x = x - axis.offset + self._axis.offset
                points.setdefault(key, ([], []))
                points[key][0].append(x)
                points[key][1].append(y)
        for chart in self.charts.values():
            for key in chart.spec.overlay_keys:
                if key in points:
                    chart.add_overlay(label, color, key, *points[key])
        self._arrange()
        self.redraw_now()

    def clear_overlays(self) -> None:
        for chart in self.charts.values():
            chart.clear_overlays()
        self._overlay_count = 0
        self._overlay_sources = []
        self._arrange()

    def _realign_overlays(self) -> None:
        for chart in self.charts.values():
            chart.clear_overlays()
        for label, events, color in self._overlay_sources:
            self._draw_overlay(label, events, color)

    # -- display --------------------------------------------------------------------------------------------
    @Slot(bool)
    def set_log_scale(self, on: bool) -> None:
        if self.log_check.isChecked() != bool(on):
            self.log_check.setChecked(bool(on))  # re-enters through toggled
            return
        for chart in self.charts.values():
            chart.set_log(on)

    def set_smoothing(self, weight: float) -> None:
        """EMA weight in [0, 0.99]; 0 turns smoothing off."""
        self.smoothing_slider.setValue(round(min(max(weight, 0.0), 0.99) * 100))

    @Slot(int)
    def _smoothing_moved(self, value: int) -> None:
        weight = value / 100.0
        self.smoothing_label.setText(f"{weight:.2f}" if value else "off")
        for chart in self.charts.values():
            chart.set_smoothing(weight)

    @Slot()
    def auto_range(self) -> None:
        for chart in self.charts.values():
            chart.fit()

    def focus_steps(self, first: float, last: float) -> None:
        """Show global steps ``first``..``last`` (a little either side), each y axis fitted to what is visible."""
        margin = 0.03 * max(last - first, 1.0)
        for chart in self.charts.values():
            chart.plot.setXRange(first - margin, last + margin, padding=0)
            chart.plot.vb.setAutoVisible(y=True)
            chart.plot.enableAutoRange(axis="y")

    def redraw_now(self) -> int:
        """Push every changed buffer to its curve now; returns the number of series redrawn."""
        return sum(chart.redraw() for chart in self.charts.values())

    @Slot()
    def _tick(self) -> None:
        if self.isVisible():  # hidden tab: buffers keep filling, drawing waits for showEvent
            self.redraw_now()

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.ApplicationFontChange):
            for chart in self.charts.values():  # the framed charts do not always inherit it: hand it down
                chart.setFont(self.font())
        super().changeEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.redraw_now()
        super().showEvent(event)

    def export_png(self, chart: str, path: str | Path) -> Path:
        return self.charts[chart].export_png(path)

    def export_csv(self, chart: str, path: str | Path) -> Path:
        return self.charts[chart].export_csv(path)

    def apply_theme(self, name: str) -> None:
        """Hook the main window calls after switching theme (the palette change also reaches the charts)."""
        for chart in self.charts.values():
            chart.apply_palette()

    def shutdown(self) -> None:
        """Stop the redraw timer (call before the window closes)."""
        self._timer.stop()
