"""Sweep folders written by hand for the window tests: ``workbench.sweep``'s own writers for base.toml and
sweep.json, and each cell's config, status and summary written as a run leaves them (no training)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.config.schema import RunConfig
from workbench.run_folder import write_status
from workbench.sweep import Sweep, write_sweep_file


def summary_of(kl_true: float, kl_teacher: float = 0.3, ce: float = 2.5, top1: float = 0.8, ms: float = 1.0) -> dict:
    return {
        "status": "completed",
        "steps": 100,
        "kl_true_student": kl_true,
        "kl_teacher_student": kl_teacher,
        "student_ce": ce,
        "top1_agreement": top1,
        "student_latency_ms": ms,
    }


def make_sweep(
    runs_dir: Path,
    grids: list[str],
    cells: dict[int, Any],
    *,
    baseline: bool = False,
    status: str = "running",
    name: str = "kd",
) -> Path:
    """A sweep folder; ``cells[i]`` is cell i's summary (completed), a status string (no summary), or absent
    (pending: no run folder yet). Cells are numbered as ``Sweep.cells()`` orders them, baselines last."""
    base = RunConfig(runs_dir=str(runs_dir))
    base.name = name
    sweep = Sweep.from_grid(base, grids, baseline=baseline)
    path = sweep.create_dir(runs_dir)
    statuses = {}
    for i, cell in enumerate(sweep.cells()):
        if i in cells:
            statuses[cell.id] = write_cell(path, cell, cells[i])
    write_sweep_file(path, sweep, status, statuses)
    return path


def write_cell(path: Path, cell: Any, what: Any) -> str:
    run_dir = path / cell.id
    run_dir.mkdir(exist_ok=True)
    cell.config.save(run_dir / "config.toml")
    if isinstance(what, dict):
        write_status(run_dir, "completed")
        (run_dir / "summary.json").write_text(json.dumps(what))
        return "completed"
    write_status(run_dir, what)
    return what
