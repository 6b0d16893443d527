"""What the charts plot, without Qt widgets: which metric goes in which chart, growable buffers, smoothing,
and how engine events become (series, global step, value) points.

The x axis is one global step: the teacher stage first, then distillation steps offset after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workbench.events import Eval, StageStarted, Step
from workbench.gui import palette as theme


@dataclass(frozen=True)
class SeriesSpec:
    """One metric drawn in one chart. ``smooth``: the smoothing slider applies (noisy per-step series only)."""

    key: str
    label: str
    color: str
    style: str = "line"  # line | dashed | dotted | points
    smooth: bool = False


@dataclass(frozen=True)
class ChartSpec:
    name: str
    title: str
    y_label: str
    series: tuple[SeriesSpec, ...]
    overlay_keys: tuple[str, ...]
    log_ok: bool = True


CHART_SPECS = (
    ChartSpec(
        "loss",
        "Train loss",
        "loss (nats)",
        (
            SeriesSpec("teacher_loss", "teacher stage", theme.TEACHER_COLOR, smooth=True),
            SeriesSpec("loss", "total", theme.STUDENT_COLOR, smooth=True),
            SeriesSpec("kd", "KD term", theme.KD_COLOR, smooth=True),
            SeriesSpec("ce", "CE term", theme.CE_COLOR, smooth=True),
            SeriesSpec("hidden", "hidden-state", theme.HIDDEN_COLOR, smooth=True),
        ),
        overlay_keys=("ce",),
    ),
    ChartSpec(
        "heldout",
        "Held-out CE",
        "CE (nats)",
        (
            SeriesSpec("student_ce", "student", theme.STUDENT_COLOR),
            SeriesSpec("teacher_ce", "teacher", theme.TEACHER_COLOR, "points"),
            SeriesSpec("entropy_floor", "entropy floor", theme.TRUTH_COLOR, "dashed"),
        ),
        overlay_keys=("student_ce",),
    ),
    ChartSpec(
        "kl",
        "Held-out KL(teacher‖student)",
        "nats",
        (SeriesSpec("kl_teacher_student", "KL(teacher‖student)", theme.STUDENT_COLOR),),
        overlay_keys=("kl_teacher_student",),
    ),
    ChartSpec(
        "agreement",
        "Teacher–student agreement",
        "fraction",
        (
            SeriesSpec("top1_agreement", "top-1", theme.STUDENT_COLOR),
            SeriesSpec("top5_agreement", "top-5", theme.STUDENT_COLOR, "dotted"),
        ),
        overlay_keys=("top1_agreement",),
        log_ok=False,
    ),
    ChartSpec(
        "truth",
        "KL to the true distribution",
        "nats",
        (
            SeriesSpec("kl_true_teacher", "KL(true‖teacher)", theme.TEACHER_COLOR),
            SeriesSpec("kl_true_student", "KL(true‖student)", theme.STUDENT_COLOR),
        ),
        overlay_keys=("kl_true_student",),
    ),
    ChartSpec("lr", "Learning rate", "lr", (SeriesSpec("lr", "learning rate", theme.LR_COLOR),), overlay_keys=("lr",)),
)
_STEP_KEYS = {"teacher_loss", "loss", "kd", "ce", "hidden", "lr"}
_EVAL_KEYS = {s.key for c in CHART_SPECS for s in c.series} - _STEP_KEYS


class GrowableSeries:
    """x/y float64 buffers that double their capacity, so appending is amortised O(1)."""

    def __init__(self, capacity: int = 256):
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self._n = 0
        self.has_values = False  # any finite y (a KD term of an alpha = 0 run is all NaN: nothing to draw)

    def __len__(self) -> int:
        return self._n

    def append(self, x: float, y: float) -> None:
        if self._n == len(self._x):
            self._grow(self._n + 1)
        self._x[self._n] = x
        self._y[self._n] = y
        self._n += 1
        self.has_values = self.has_values or math.isfinite(y)

    def extend(self, xs, ys) -> None:
        xs, ys = np.asarray(xs, float), np.asarray(ys, float)
        if self._n + len(xs) > len(self._x):
            self._grow(self._n + len(xs))
        self._x[self._n : self._n + len(xs)] = xs
        self._y[self._n : self._n + len(ys)] = ys
        self._n += len(xs)
        self.has_values = self.has_values or bool(np.isfinite(ys).any())

    def _grow(self, needed: int) -> None:
        capacity = max(needed, 2 * len(self._x))
        for name in ("_x", "_y"):
            old = getattr(self, name)
            new = np.empty(capacity)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    @property
    def x(self) -> np.ndarray:
        return self._x[: self._n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._n]


def ema(values: np.ndarray, weight: float, state: float = 0.0, count: int = 0):
    """Debiased exponential moving average (as TensorBoard's smoothing), NaN-transparent.

    Returns ``(smoothed, state, count)`` so a growing series is smoothed incrementally. Non-finite inputs stay
    non-finite (gaps) and do not enter the average. Vectorised in chunks so 100k points take milliseconds.
    """
    values = np.asarray(values, float)
    out = np.full(len(values), np.nan)
    finite = np.isfinite(values)
    ys = values[finite]
    if weight <= 0.0 or len(ys) == 0:
        out[finite] = ys
        return out, (float(ys[-1]) if len(ys) else state), count + len(ys)
    chunk = 64
    pad = (-len(ys)) % chunk
    blocks = np.concatenate([ys, np.zeros(pad)]).reshape(-1, chunk)
    powers = weight ** np.arange(chunk + 1)
    i, j = np.indices((chunk, chunk))
    kernel = np.where(j <= i, (1.0 - weight) * powers[np.abs(i - j)], 0.0)
    local = blocks @ kernel.T  # EMA of each block started from zero
    smoothed = np.empty_like(local)
    carry = state
    for b in range(len(blocks)):  # only the carry is sequential: len/64 iterations
        smoothed[b] = local[b] + carry * powers[1:]
        carry = smoothed[b, -1]
    smoothed = smoothed.reshape(-1)[: len(ys)]
    n = count + np.arange(1, len(ys) + 1)
    out[finite] = smoothed / (1.0 - weight**n)
    return out, float(smoothed[-1]), count + len(ys)


class StepAxis:
    """Maps (stage, step) to the global x axis: teacher steps first, distill steps after them."""

    def __init__(self):
        self.teacher_total = 0
        self.offset = 0
        self.boundary: float | None = None

    def observe_stage(self, event: StageStarted) -> None:
        if event.stage == "teacher":
            self.teacher_total = max(self.teacher_total, event.total_steps)
        elif event.stage == "distill" and self.teacher_total:
            self.offset = self.teacher_total
            self.boundary = float(self.offset)

    def x(self, stage: str, step: int) -> float:
        return float(step if stage == "teacher" else self.offset + step)


def event_points(event, axis: StepAxis) -> list[tuple[str, float, float]]:
    """The (series key, global step, value) points one event contributes; updates ``axis`` on stage events."""
    if isinstance(event, StageStarted):
        axis.observe_stage(event)
        return []
    if isinstance(event, Step):
        if event.stage == "teacher":
            axis.teacher_total = max(axis.teacher_total, event.total_steps)
            x = axis.x("teacher", event.step)
            return [("teacher_loss", x, event.loss), ("lr", x, event.lr)]
        x = axis.x(event.stage, event.step)
        points = [("loss", x, event.loss), ("kd", x, event.kd), ("ce", x, event.ce), ("lr", x, event.lr)]
        if not math.isnan(event.hidden):  # hidden-state matching on (distill.hidden_weight > 0)
            points.append(("hidden", x, event.hidden))
        return points
    if isinstance(event, Eval):
        x = axis.x(event.stage, event.step)
        return [(key, x, float(value)) for key, value in event.metrics.items() if key in _EVAL_KEYS]
    return []
