"""A multi-process run as another process: the ``torch.distributed.run`` command the window launches when
``train.processes`` is above 1, and the empty run folder it writes to.

``python -m torch.distributed.run --standalone --nproc_per_node N -m workbench.cli run CONFIG --run-dir DIR``
(or ``... run --resume DIR``). ``--standalone`` picks a free local port, so two launched runs never meet. The
launcher forwards SIGINT / SIGTERM to its processes; ``workbench run`` stops after the current step on the
first one (all processes at the same step, see ``engine/train/stages.py``) and writes a checkpoint, so
stopping a launched run is one SIGTERM to the launcher. ``TORCH_ELASTIC_SHUTDOWN_TIMEOUT`` gives the processes
that long to write it before the launcher kills them.

Ground floor: no torch, no Qt (the window's side is ``gui/background/launched_run.py``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import workbench
from workbench.config.schema import RunConfig
from workbench.run_folder import make_folder

SHUTDOWN_TIMEOUT_S = 300
"""Seconds the launcher waits for its processes to write their checkpoint after a stop, before it kills them."""


def launch_command(
    processes: int, run_dir: str | Path, config_file: str | Path | None = None, resume: bool = False
) -> list[str]:
    """The launcher's argv (``sys.executable`` first): a new run of ``config_file`` into the empty ``run_dir``,
    or (``resume``) the run in ``run_dir`` continued from its checkpoint."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        "-m",
        "workbench.cli",
        "run",
    ]
    if resume:
        return command + ["--resume", str(run_dir)]
    if config_file is None:
        raise ValueError("a new run needs its config file")
    return command + [str(config_file), "--run-dir", str(run_dir)]


def launch_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The launcher's environment: this one, with this workbench first on PYTHONPATH (a checkout that is not
    installed launches itself, not another copy) and the shutdown timeout."""
    env = dict(os.environ if base is None else base)
    package_root = str(Path(workbench.__file__).resolve().parents[1])
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([package_root, *[p for p in parts if p != package_root]])
    env.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(SHUTDOWN_TIMEOUT_S))
    env["PYTHONUNBUFFERED"] = "1"  # its lines reach the window as they are written
    return env


def new_run_dir(config: RunConfig) -> Path:
    """An empty, uniquely named run folder in ``runs_dir`` (``<YYYYmmdd-HHMMSS>-<name>``, as ``workbench run``
    names them) for the launched processes to fill (``--run-dir`` wants it empty)."""
    root = Path(config.runs_dir).expanduser().resolve()
    make_folder(root, "runs_dir")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{stamp}-{config.name}"
    suffix = 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            suffix += 1
            path = root / f"{stamp}-{config.name}-{suffix}"


def remove_if_empty(path: str | Path) -> bool:
    """Remove the folder made by :func:`new_run_dir` when the launched run left nothing in it (it was refused
    before writing anything). True when it was removed."""
    try:
        Path(path).rmdir()  # only an empty folder goes
        return True
    except OSError:
        return False
