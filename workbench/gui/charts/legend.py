"""ChartLegend: a chart's legend as a line of rich text above the plot (not a box over the curves).

Each entry is a link: clicking it (``linkActivated`` with the entry's index) lets the chart hide or show that
curve. Hover values from the crosshair appear next to their names; ``format_value`` writes them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from workbench.gui import theme
from workbench.gui.charts.curves import SeriesCurves

_SWATCHES = {"line": "━━", "dashed": "╍╍", "dotted": "┅┅", "points": "━●━"}


def format_value(value: float) -> str:
    """A metric's value for the legend and the readout: four significant digits, "–" for NaN or infinity."""
    if not math.isfinite(value):
        return "–"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3g}"
    return f"{value:.4g}"


class ChartLegend(QLabel):
    """The entries of a chart's curves that have data; a click on one emits ``linkActivated(str(index))``."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("", parent)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setContentsMargins(4, 0, 4, 0)
        self.setToolTip("Click an entry to hide or show its curve")
        # Room for two lines, always (see apply_font): hover values may wrap the legend, and the plot must not
        # jump under the mouse.
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

    def apply_font(self, font: QFont) -> None:
        self.setFont(font)
        self._fit_height()

    def _fit_height(self) -> None:
        """Two lines at least, more when the entries wrap further (three long names in a narrow chart)."""
        lines = 2 * self.fontMetrics().lineSpacing() + 2
        needed = self.heightForWidth(self.width()) if self.text() and self.width() > 0 else 0
        height = max(lines, needed)
        if height != self.height() or self.minimumHeight() != height:
            self.setFixedHeight(height)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit_height()

    def show_entries(
        self, own: Sequence[SeriesCurves], overlays: Sequence[SeriesCurves], hover_values: Mapping[int, str]
    ) -> None:
        """List the chart's ``own`` curves, then its ``overlays`` (dashed), that have a finite value; entry ``i``
        (its link and its key in ``hover_values``) is the ``i``-th of them all, counting those left out; hidden
        curves are muted and struck through."""
        muted = theme.colors()["muted"]
        parts = []
        # Beside overlays (labelled with their run's name) the live curves say whose they are.
        compared = any(series.data.has_values for series in overlays)
        for index, series in enumerate([*own, *overlays]):
            if not series.data.has_values:
                continue
            color = series.spec.color if series.main.isVisible() else muted
            swatch = _SWATCHES["dashed" if index >= len(own) else series.spec.style]
            label = f"this run: {series.spec.label}" if compared and index < len(own) else series.spec.label
            label = html.escape(label).replace(" ", "&nbsp;")  # an entry wraps as a whole, never mid-label
            name = label if series.main.isVisible() else f"<s>{label}</s>"
            value = hover_values.get(index)
            parts.append(
                f"<a href='{index}' style='text-decoration:none; color:{color}'><b>{swatch}</b></a>"
                f"&nbsp;<a href='{index}' style='text-decoration:none; color:{muted}'>{name}</a>"
                + (f"&nbsp;<b>{value}</b>" if value is not None else "")
            )
        self.setText("&nbsp;&nbsp;&nbsp; ".join(parts))
        self._fit_height()
