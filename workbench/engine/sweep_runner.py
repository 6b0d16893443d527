"""A sweep from start to end: ``run_sweep(sweep_dir, on_event, control)`` runs its cells one after another.

Each cell is an ordinary ``train.run`` whose run folder is ``<sweep_dir>/<cell id>/``. The teacher is made
once: with ``teacher.source = "train"`` the first cell trains it (stage 1, then its own distillation) and
every later cell loads it from ``<first cell>/teacher/`` (``teacher.source = "local"``, as a baseline of a
run does), so all cells distil the very same teacher and only the first pays for stage 1. A loaded teacher
is loaded by each cell.

Resuming is calling it again on the same folder: a completed cell is skipped, an interrupted one (stopped,
cancelled, killed, failed) continues from its last checkpoint as ``workbench run --resume`` would, or starts
again when it has none. ``on_event`` gets :class:`~workbench.sweep.CellStarted` before each cell, that run's
own events, :class:`~workbench.sweep.CellFinished` after it and one :class:`~workbench.sweep.SweepFinished`.
Stop and cancel (``control``) end the running cell as they end a run, and no further cell starts.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.config.schema import RunConfig
from workbench.control import Control
from workbench.engine.train.run import run
from workbench.errors import ConfigError, WriteFailed
from workbench.events import Failed, Finished
from workbench.run_folder import TEACHER_DIR, latest_checkpoint, read_run
from workbench.sweep import (
    CellFinished,
    CellStarted,
    SweepFinished,
    load_sweep,
    write_sweep_file,
)
from workbench.sweep_folder import read_sweep


def with_shared_teacher(config: RunConfig, teacher_dir: Path) -> RunConfig:
    """``config`` reading the teacher another cell trained, instead of training its own."""
    out = config.copy()
    out.teacher.source = "local"
    out.teacher.path = str(teacher_dir.resolve())
    return out


def run_sweep(
    sweep_dir: str | Path,
    on_event: Callable[[Any], None] | None = None,
    control: Control | None = None,
    *,
    run_fn: Callable[..., Finished | Failed] = run,
) -> SweepFinished:
    """Run (or resume) every cell of the sweep folder ``sweep_dir``; never raises for errors a user can cause
    inside a cell (they end that cell as failed). A folder that is not a sweep, a sweep another live process is
    running, and a sweep.json that cannot be written raise ConfigError."""
    path = Path(sweep_dir).expanduser()
    sweep = load_sweep(path)
    running = read_sweep(path)
    if running.status == "running" and running.pid != os.getpid():
        raise ConfigError(
            "",
            f"sweep {path.name} is running in process {running.pid}",
            "wait for it to end, or stop it (Ctrl-C in its terminal) and resume it then",
        )
    control = control or Control()
    emit = on_event or (lambda event: None)
    cells = sweep.cells()
    statuses: dict[str, str] = {}
    for cell in cells:
        cell_dir = path / cell.id
        statuses[cell.id] = read_run(cell_dir).status if (cell_dir / "config.toml").is_file() else "pending"
    trains_teacher = sweep.base.teacher.source == "train"
    teacher_dir = path / cells[0].id / TEACHER_DIR

    def save(status: str) -> None:
        try:
            write_sweep_file(path, sweep, status, statuses)
        except WriteFailed as err:
            raise ConfigError("", err.message, err.hint) from None

    save("running")
    outcome = "completed"
    for index, cell in enumerate(cells):
        cell_dir = path / cell.id
        if statuses[cell.id] == "completed":
            emit(CellFinished(index, len(cells), cell.id, str(cell_dir), "skipped", read_run(cell_dir).summary))
            continue
        if control.stopping:
            outcome = "stopped"
            break
        config = cell.config
        if trains_teacher and index > 0:
            if not (teacher_dir / "config.json").is_file():
                statuses[cell.id] = "failed"
                message = f"the first cell ({cells[0].id}) did not train the teacher the other cells share"
                emit(CellFinished(index, len(cells), cell.id, str(cell_dir), "failed", message=message))
                outcome = "failed"
                continue
            config = with_shared_teacher(config, teacher_dir)
        resume = (cell_dir / "config.toml").is_file() and (
            latest_checkpoint(cell_dir) is not None or (cell_dir / TEACHER_DIR / "config.json").is_file()
        )
        if cell_dir.exists() and not resume:
            shutil.rmtree(cell_dir)  # begun but nothing to resume from: start it again
        statuses[cell.id] = "running"
        save("running")
        emit(CellStarted(index, len(cells), cell.id, str(cell_dir), dict(cell.values), resumed=resume))
        if resume:
            result = run_fn(config, emit, control, resume=cell_dir)
        else:
            result = run_fn(config, emit, control, run_dir=cell_dir)
        if isinstance(result, Finished):
            status, summary, message = result.status, result.summary, ""
        else:
            status, summary, message = "failed", {}, result.message
        statuses[cell.id] = status
        save("running")
        emit(CellFinished(index, len(cells), cell.id, str(cell_dir), status, summary, message))
        if status in ("stopped", "cancelled"):
            outcome = "stopped"
            break
        if status == "failed":
            outcome = "failed"
    if outcome == "completed" and any(s != "completed" for s in statuses.values()):
        outcome = "failed"
    save(outcome)
    finished = SweepFinished(outcome, str(path))
    emit(finished)
    return finished
