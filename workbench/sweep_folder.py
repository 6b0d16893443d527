"""Reading sweep folders (ground floor): each cell's status and summary, the sweeps of a runs folder, the table
of final metrics. The plan and the folder's making are in :mod:`workbench.sweep`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError
from workbench.run_folder import _pid_alive, read_run
from workbench.sweep import BASE_FILE, SWEEP_FILE, Axis, read_json_or_none

# -- reading sweeps --------------------------------------------------------------------------


@dataclass
class CellInfo:
    id: str
    kind: str
    values: dict[str, Any]
    run_dir: Path
    status: str
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepInfo:
    path: Path
    name: str
    status: str
    created: str
    axes: list[Axis]
    baseline: bool
    cells: list[CellInfo]
    pid: int = -1


def read_sweep(sweep_dir: str | Path) -> SweepInfo:
    """A sweep folder as the window and the CLI show it. A cell's status comes from its run folder when it
    has one (a killed sweep leaves ``running`` in sweep.json; its run folder then says ``interrupted``)."""
    path = Path(sweep_dir)
    data = read_json_or_none(path / SWEEP_FILE)
    if not isinstance(data, dict):
        raise ConfigError("", f"{str(path)!r} is not a sweep folder (no readable sweep.json)", "pick a sweep folder")
    cells = []
    for entry in data.get("cells", []):
        run_dir = path / str(entry.get("run_dir", entry.get("id", "")))
        status, summary = str(entry.get("status", "unknown")), {}
        if (run_dir / "config.toml").is_file():
            info = read_run(run_dir)
            status, summary = info.status, info.summary
        elif status == "running":
            status = "interrupted"
        cells.append(
            CellInfo(
                str(entry.get("id", "")),
                str(entry.get("kind", "cell")),
                dict(entry.get("values", {})),
                run_dir,
                status,
                summary,
            )
        )
    status = str(data.get("status", "unknown"))
    try:
        pid = int(data.get("pid", -1) or -1)
    except (TypeError, ValueError):
        pid = -1
    if status == "running" and not _pid_alive(pid):
        status = "interrupted"
    try:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime((path / BASE_FILE).stat().st_mtime))
    except OSError:
        created = ""
    axes = [Axis(str(a.get("field", "")), tuple(a.get("values", []))) for a in data.get("axes", [])]
    return SweepInfo(
        path, str(data.get("name", path.name)), status, created, axes, bool(data.get("baseline")), cells, pid
    )


def list_sweeps(runs_dir: str | Path) -> list[SweepInfo]:
    """The sweep folders in ``runs_dir``, newest first (a damaged or vanishing one is left out)."""
    root = Path(runs_dir).expanduser()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted((p for p in root.iterdir() if (p / SWEEP_FILE).is_file()), key=lambda p: p.name, reverse=True):
        try:
            found.append(read_sweep(folder))
        except (ConfigError, OSError):
            continue
    return found


# -- the table --------------------------------------------------------------------------------

METRICS = (
    ("kl_true_student", "KL true||stu"),
    ("kl_teacher_student", "KL tea||stu"),
    ("student_ce", "held-out CE"),
    ("top1_agreement", "top-1 agree"),
    ("student_latency_ms", "latency ms"),
)
"""The final metrics of each cell in the sweep's table (those its summary.json has)."""


def table_rows(info: SweepInfo) -> list[dict[str, Any]]:
    """One row per cell: its id, kind, values, status, run folder and final metrics (from summary.json)."""
    rows = []
    for cell in info.cells:
        row: dict[str, Any] = {
            "cell": cell.id,
            "kind": cell.kind,
            **cell.values,
            "status": cell.status,
            "run_dir": str(cell.run_dir),
        }
        for key, _ in METRICS:
            if key in cell.summary:
                row[key] = cell.summary[key]
        rows.append(row)
    return rows
