"""What the sweep grid shows, without Qt: the metrics (and which way is better), a cell's value, the best cell,
where an axis value sits on a plot, and the grid as CSV."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

from workbench.sweep import CellInfo, SweepInfo, table_rows, value_text


@dataclass(frozen=True)
class Metric:
    key: str  # in summary.json
    label: str
    lower_is_better: bool
    fmt: str

    def text(self, value: float) -> str:
        return self.fmt.format(value)

    @property
    def title(self) -> str:
        return f"{self.label} ({'lower' if self.lower_is_better else 'higher'} is better)"


METRICS = (
    Metric("kl_true_student", "KL to the truth", True, "{:.3f}"),
    Metric("kl_teacher_student", "KL to the teacher", True, "{:.3f}"),
    Metric("student_ce", "held-out CE", True, "{:.3f}"),
    Metric("top1_agreement", "top-1 agreement", False, "{:.1%}"),
    Metric("student_latency_ms", "student latency", True, "{:.2f} ms"),
)
METRIC_KEYS = tuple(m.key for m in METRICS)
BASELINE_NAME = "baseline (alpha = 0)"


def metric_value(cell: CellInfo, key: str) -> float | None:
    """A final metric of the cell's summary.json; None when it has none (not finished, not measured, NaN)."""
    value = cell.summary.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def short_name(field: str) -> str:
    return field.rsplit(".", 1)[-1]


def best_cell(cells: list[CellInfo], metric: Metric) -> CellInfo | None:
    """The completed distillation cell with the best value of ``metric`` (the first of equals); None if none has one."""
    scored = [(metric_value(c, metric.key), i, c) for i, c in enumerate(cells) if c.kind == "cell"]
    scored = [(v, i, c) for v, i, c in scored if v is not None and c.status == "completed"]
    if not scored:
        return None
    sign = 1.0 if metric.lower_is_better else -1.0
    return min(scored, key=lambda t: (sign * t[0], t[1]))[2]


def value_key(value: Any) -> Any:
    """An axis value as a dict key where 1 and 1.0 (JSON's int and float of one number) are the same."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return ("n", float(value))
    return value


def positions(values: tuple[Any, ...] | list[Any]) -> list[float]:
    """Where each axis value sits on a plot: numbers at their value (on a log scale when they span 20x or more),
    choices and true/false evenly spaced."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not numbers:
        return [float(i) for i in range(len(values))]
    floats = [float(v) for v in values]
    if all(v > 0 for v in floats) and max(floats) / min(floats) >= 20:
        return [math.log10(v) for v in floats]
    return floats


def has_run(cell: CellInfo) -> bool:
    """Whether the cell's run folder has been made (a queued cell has none yet)."""
    return (cell.run_dir / "config.toml").is_file()


def csv_text(info: SweepInfo) -> str:
    """Every cell (baselines too): its id, kind, axis values, status, run folder and every metric."""
    fields = [a.field for a in info.axes]
    extra = sorted({k for c in info.cells for k in c.values if k not in fields})  # distill.alpha of baselines
    header = ["cell", "kind", *fields, *extra, "status", "run_dir", *METRIC_KEYS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in table_rows(info):
        line = []
        for key in header:
            value = row.get(key, "")
            if isinstance(value, float) and not math.isfinite(value):
                value = ""
            line.append(value_text(value) if isinstance(value, bool) else value)
        writer.writerow(line)
    return out.getvalue()
