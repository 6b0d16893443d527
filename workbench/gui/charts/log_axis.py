"""LogAxis: a left axis whose log-scale ticks are few, round and far enough apart for their labels.

pyqtgraph's own log ticks are the decades plus every 2..9 in between as a second level; in a short plot or
with presentation mode's larger font the labels of that second level overlap ("5" over "6"), and a range
inside one decade gets 2, 3, 4, 5, 6, 7 crammed together. Here the ticks are the densest of 1-2-5 per
decade, the decades, or every 2nd, 3rd, 5th... decade whose neighbours are at least a label and a half
apart; one level only, so every tick that is drawn is labelled and the y grid follows the same lines.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetrics

MANTISSAS = ((1, 2, 5), (1,))
DECADE_STEPS = (2, 3, 5, 10, 20, 50, 100)
LABEL_GAP = 1.5  # label heights from one tick to the next, at least


def log_ticks(low: float, high: float, pixels: float, label_height: float) -> list[float]:
    """log10 of the tick values for a log axis showing 10**low .. 10**high over ``pixels``."""
    low, high = sorted((low, high))
    span = high - low
    if not (math.isfinite(low) and math.isfinite(high)) or span <= 0 or pixels <= 0:
        return []
    need = LABEL_GAP * label_height / (pixels / span)  # the smallest gap in decades
    first, last = math.floor(low) - 1, math.ceil(high) + 1
    candidates = []
    for mantissas in MANTISSAS:
        candidates.append([e + math.log10(m) for e in range(first, last + 1) for m in mantissas])
    for step in DECADE_STEPS:
        candidates.append([float(e) for e in range(first, last + 1) if e % step == 0])
    fallback: list[float] = []
    for values in candidates:
        inside = [v for v in values if low - 1e-9 <= v <= high + 1e-9]
        gap = min(np.diff(inside)) if len(inside) > 1 else math.inf
        if len(inside) >= 2 and gap >= need:
            return inside
        if inside and not fallback and gap >= need:
            fallback = inside
    if fallback:
        return fallback
    return _round_values(low, high)


def _round_values(low: float, high: float) -> list[float]:
    """A range too narrow for 1-2-5 ticks (e.g. 3.1 to 3.6): evenly spaced round values in it."""
    a, b = 10**low, 10**high
    step = 10 ** math.floor(math.log10((b - a) / 2))
    for factor in (5, 2, 1):
        values = np.arange(math.ceil(a / (step * factor)), math.floor(b / (step * factor)) + 1) * step * factor
        if len(values) >= 2:
            return [math.log10(v) for v in values if v > 0]
    return []


def tick_label(value: float) -> str:
    """How a tick value reads: plain numbers from 0.001 to 9999, powers of ten beyond."""
    if 1e-3 <= value < 1e4:
        return f"{value:.4g}"
    mantissa, exponent = f"{value:.0e}".split("e")
    power = "10" + str(int(exponent)).translate(
        str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")
    )
    return power if mantissa == "1" else f"{mantissa}\u00b7{power}"


class LogAxis(pg.AxisItem):
    """An axis item with :func:`log_ticks` in log mode (the linear mode is pyqtgraph's)."""

    def _label_height(self) -> int:
        font = self.style.get("tickFont") or QFont()
        return QFontMetrics(font).height()

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802, N803 - pyqtgraph override
        values = log_ticks(minVal, maxVal, size, self._label_height())
        if not values:
            return super().logTickValues(minVal, maxVal, size, stdTicks)
        return [(None, values)]

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph override
        return [tick_label(10 ** float(v) * scale) for v in values]
