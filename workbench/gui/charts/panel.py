"""ChartsPanel: the grid of live training charts, redrawn by a 15 Hz timer, with controls shared by all of them.

Events only append to growable numpy buffers and mark their curve dirty; the
timer pushes dirty buffers to pyqtgraph, which downsamples ('peak') and clips
to the view. A chart with 100,000 points per curve still costs about 10 ms to
paint, and six of them repainted in one tick stalled the event loop for 60 ms:
each tick redraws the dirty charts that have waited longest, as many as fit in
``TICK_BUDGET_MS`` of their measured paint cost (at least one), so the others
follow on the next ticks. The x axis is
one global step: the teacher stage first, then distillation steps offset after
it, with a dashed vertical line at the boundary.

One chart (its curves, legend, readout and exports) is ``chart.Chart``; which metric goes to which chart,
the buffers and the smoothing are the Qt-free ``series`` module.
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from workbench.events import StageStarted
from workbench.gui import theme
from workbench.gui.charts.chart import Chart
from workbench.gui.charts.series import CHART_SPECS, StepAxis, event_points

REDRAW_HZ = 15
TICK_BUDGET_MS = 10.0  # paint cost the redraw timer spends per tick (the dirty charts that waited longest)
CATCH_UP_REDRAW_MS = 250  # the redraw interval while a followed run's backlog is read (set_catching_up)
CATCH_UP_BUDGET_MS = 0.0  # and its paint budget: one chart a tick (a tick always draws at least one)


def with_headroom(low: float, high: float) -> float:
    """``high`` rounded up to a step of about a twentieth of the span (1, 2 or 5 times a power of ten).

    An x range that follows the newest step moves on every redraw, and a moved range repaints all six linked
    charts at once (60 ms with 100,000 points each); rounded up, it moves once every 5-10% of growth."""
    span = max(high - low, 1.0)
    magnitude = 10.0 ** math.floor(math.log10(span / 20.0)) if span >= 20.0 else 1.0
    quantum = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= span / 20.0)
    return math.ceil(high / quantum) * quantum


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
        self._ticks = 0
        self._catching_up = False
        self._redrawn_at = {name: 0 for name in self.charts}  # the tick each chart was last redrawn at

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
        # The grid scrolls when the panel is too short for it (presentation mode's large fonts on a laptop):
        # squeezed to fit, each plot was 60 px tall with its axis title cut off.
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        grid_widget = QWidget(self.scroll)
        self._grid = QGridLayout(grid_widget)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(6)
        for column in range(3):
            self._grid.setColumnStretch(column, 1)  # equal columns, also with a cell left empty
        for i, chart in enumerate(self.charts.values()):
            if i:  # zooming one chart's step range zooms them all
                chart.plot.setXLink(self.charts["loss"].plot)
        self._arrange()
        self.scroll.setWidget(grid_widget)
        grid_widget.installEventFilter(self)  # a chart's minimum changed (fonts, a legend's lines): follow it
        self._keep_a_row_in_view()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.scroll, 1)

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
        self._share_x_extent()

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
        count = sum(chart.redraw() for chart in self.charts.values())
        if count:
            self._share_x_extent()
        return count

    def _share_x_extent(self) -> None:
        """Every chart's x auto range spans the steps of all of them (they are linked: one range for all)."""
        extents = [e for chart in self._arranged if (e := chart.x_extent()) is not None]
        extent = None
        if extents:
            low = min(e[0] for e in extents)
            extent = (low, with_headroom(low, max(e[1] for e in extents)))
        for chart in self.charts.values():
            chart.view_box.set_x_extent(extent)
        for chart in self.charts.values():
            chart.view_box.settle_auto_range()

    def set_catching_up(self, on: bool) -> None:
        """While a long backlog of events is read (a followed run folder), the charts redraw one at a time,
        four times a second, each on its own x range: linked, every redraw that moved the shared range
        repainted all six at once (60-110 ms with 100,000 points each, on a 2-core CPU). When the backlog is
        read they are linked again and redraw at 15 Hz."""
        if on == self._catching_up:
            return
        self._catching_up = on
        master = self.charts["loss"].plot
        follow_data = bool(master.vb.autoRangeEnabled()[0])  # else the user's zoom, which they keep
        for name, chart in self.charts.items():
            if name == "loss":
                continue
            chart.plot.setXLink(None if on else master)
            if on and follow_data:  # a linked view's own x auto range is off: it followed the master's
                chart.plot.enableAutoRange(axis="x")
        self._timer.setInterval(CATCH_UP_REDRAW_MS if on else int(1000 / REDRAW_HZ))
        if not on:
            self._share_x_extent()

    @Slot()
    def _tick(self) -> None:
        if self.isVisible():  # hidden tab: buffers keep filling, drawing waits for showEvent
            self.redraw_some(CATCH_UP_BUDGET_MS if self._catching_up else TICK_BUDGET_MS)

    def redraw_some(self, budget_ms: float = TICK_BUDGET_MS) -> int:
        """One timer tick: redraw the dirty charts that have waited longest, as many as their measured paint
        cost fits in ``budget_ms`` (at least one); returns the number of series redrawn."""
        self._ticks += 1
        dirty = sorted(
            (name for name, chart in self.charts.items() if chart.is_dirty()), key=lambda n: self._redrawn_at[n]
        )
        count, spent, drawn = 0, 0.0, []
        for name in dirty:
            cost = self.charts[name].redraw_cost_ms()
            if count and spent + cost > budget_ms:
                break
            count += self.charts[name].redraw()
            self._redrawn_at[name] = self._ticks
            spent += cost
            drawn.append(self.charts[name])
        if count and not self._catching_up:
            self._share_x_extent()  # (it settles every chart's auto range)
        else:
            for chart in drawn:  # each keeps its own x range while catching up: settled here, before the paint
                chart.view_box.settle_auto_range()
        return count

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.ApplicationFontChange):
            for chart in self.charts.values():  # the framed charts do not always inherit it: hand it down
                chart.setFont(self.font())
            self._keep_a_row_in_view()
        super().changeEvent(event)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt name)
        if event.type() == QEvent.Type.LayoutRequest and watched is self.scroll.widget():
            self._keep_a_row_in_view()
        return super().eventFilter(watched, event)

    def _keep_a_row_in_view(self) -> None:
        """The grid scrolls, but never shows less than one whole row (its axis titles included)."""
        row = max(max(chart.sizeHint().height(), chart.minimumSizeHint().height()) for chart in self.charts.values())
        self.scroll.setMinimumHeight(row + 2)

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
