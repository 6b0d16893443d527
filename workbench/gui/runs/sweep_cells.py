"""What the sweep grid shows, without Qt: the metrics (and which way is better), a cell's value, the best cell,
where an axis value sits on a plot, and the grid as CSV."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

from workbench.sweep import DISTILL_ONLY_FIELDS, value_text
from workbench.sweep_folder import CellInfo, SweepInfo, table_rows


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


@dataclass
class Layout:
    """Where each cell sits in the grid's table: header labels, ``places[cell id] = (row, column)`` and the spans
    ``(row, column, rows, columns)`` of a baseline shared by a whole column or row."""

    row_labels: list[str]
    col_labels: list[str]
    places: dict[str, tuple[int, int]]
    spans: list[tuple[int, int, int, int]]


def grid_layout(info: SweepInfo) -> Layout:
    """Two axes: rows the first, columns the second. One axis: a row of cells (columns its values).

    Baselines differ only along the axes that are not distillation-only (``DISTILL_ONLY_FIELDS``): a column
    beside the grid when the columns' field is (one per row, or one spanning them all), a row under it when
    only the rows' field is, else a baseline row under each row. With one axis they are a second row."""
    cells = [c for c in info.cells if c.kind == "cell"]
    baselines = [c for c in info.cells if c.kind == "baseline"]
    if len(info.axes) == 1:
        return _row_layout(info.axes[0], cells, baselines)
    rows_axis, cols_axis = info.axes[0], info.axes[1]
    row_of = {value_key(v): i for i, v in enumerate(rows_axis.values)}
    col_of = {value_key(v): i for i, v in enumerate(cols_axis.values)}
    row_labels = [f"{short_name(rows_axis.field)} = {value_text(v)}" for v in rows_axis.values]
    col_labels = [f"{short_name(cols_axis.field)} = {value_text(v)}" for v in cols_axis.values]
    n_rows, n_cols = len(row_labels), len(col_labels)
    by_rows = rows_axis.field not in DISTILL_ONLY_FIELDS  # the baselines differ from row to row
    by_cols = cols_axis.field not in DISTILL_ONLY_FIELDS
    mode = "" if not baselines else "column" if not by_cols else "row" if not by_rows else "interleave"
    step = 2 if mode == "interleave" else 1
    out = Layout(row_labels, col_labels, {}, [])
    if mode == "interleave":
        out.row_labels = [label for r in row_labels for label in (r, f"{r}, {BASELINE_NAME}")]
    elif mode == "row":
        out.row_labels.append(BASELINE_NAME)
    elif mode == "column":
        out.col_labels.append(BASELINE_NAME)
        if not by_rows and n_rows > 1:  # one baseline for the whole grid: the full height of its column
            out.spans.append((0, n_cols, n_rows, 1))
    for cell in cells:
        r, c = (
            row_of.get(value_key(cell.values.get(rows_axis.field))),
            col_of.get(value_key(cell.values.get(cols_axis.field))),
        )
        if r is not None and c is not None:
            out.places[cell.id] = (r * step, c)
    for b in baselines:
        r, c = (
            row_of.get(value_key(b.values.get(rows_axis.field))),
            col_of.get(value_key(b.values.get(cols_axis.field))),
        )
        if mode == "column":
            out.places[b.id] = (r if by_rows and r is not None else 0, n_cols)
        elif mode == "row" and c is not None:
            out.places[b.id] = (n_rows, c)
        elif mode == "interleave" and r is not None and c is not None:
            out.places[b.id] = (2 * r + 1, c)
    return out


def _row_layout(axis: Any, cells: list[CellInfo], baselines: list[CellInfo]) -> Layout:
    col_of = {value_key(v): i for i, v in enumerate(axis.values)}
    labels = [f"{short_name(axis.field)} = {value_text(v)}" for v in axis.values]
    out = Layout(["distilled", BASELINE_NAME] if baselines else ["distilled"], labels, {}, [])
    for cell in cells:
        c = col_of.get(value_key(cell.values.get(axis.field)))
        if c is not None:
            out.places[cell.id] = (0, c)
    per_value = axis.field not in DISTILL_ONLY_FIELDS and len(baselines) > 1
    for b in baselines:
        c = col_of.get(value_key(b.values.get(axis.field))) if per_value else None
        if c is None:  # one baseline for every value
            c = 0
            if len(labels) > 1:
                out.spans.append((1, 0, 1, len(labels)))
        out.places[b.id] = (1, c)
    return out
