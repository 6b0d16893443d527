"""The run folder: what ran, what it reported, and what it produced.

```
<runs dir>/<YYYYmmdd-HHMMSS>-<name>/
  config.toml                 exactly what ran
  events.jsonl                one event a line (see events.py)
  teacher/                    the teacher, when trained here (save_pretrained)
  checkpoints/<stage>-step-NNNNNN/  model.safetensors, optimizer.pt, rng.pt, state.json
  status.json                 running / completed / stopped / cancelled / failed (+ pid)
  error.log                   the traceback, when a run failed on a bug
  student/                    the exported student (save_pretrained + tokenizer + README.md)
  summary.json                final metrics
```

This module is on the ground floor (no torch, no Qt): it creates run folders, writes their status and
event log, and reads everything back for the runs panel and ``workbench runs``. The weights and the
optimizer state of checkpoints are written and read by ``engine/checkpoints.py``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import events as ev
from workbench import paths
from workbench.config.presets import read_config_text
from workbench.config.schema import RunConfig
from workbench.errors import ConfigError, WriteFailed, writing

CHECKPOINTS = "checkpoints"
TEACHER_DIR = "teacher"
STATUS_FILE = "status.json"


def new_stamped_folder(root: Path, name: str) -> Path:
    """A new, empty ``root/<YYYYmmdd-HHMMSS>-<name>[-N]`` folder (run folders, sweep folders); ``root`` is
    made when missing. ``mkdir`` without ``exist_ok`` claims the name, so two starts in one second differ."""
    make_folder(root, "runs_dir")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    suffix = 1
    while True:
        path = root / (f"{stamp}-{name}" if suffix == 1 else f"{stamp}-{name}-{suffix}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            suffix += 1


def create_run_dir(config: RunConfig) -> Path:
    """A new, uniquely named run folder with ``config.toml`` written into it."""
    path = new_stamped_folder(Path(config.runs_dir).expanduser(), config.name)
    try:
        with writing("the run's config.toml", path):
            config.save(path / "config.toml")
    except WriteFailed:
        _remove_quietly(path)  # nothing ran: leave no run folder behind
        raise
    return path


def _remove_quietly(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def make_folder(path: Path, field: str) -> None:
    """``mkdir -p``, with a folder that cannot be made (read-only place, a file in the way) as a ConfigError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = paths.temp_sibling(path / "probe")
        probe.write_bytes(b"")  # a folder that exists may still refuse new files
        probe.unlink()
    except OSError as err:
        reason = (
            "a file is in the way"
            if isinstance(err, (FileExistsError, NotADirectoryError))
            else (err.strerror or type(err).__name__)
        )
        raise ConfigError(
            field,
            f"cannot write a run folder at {str(path)!r} ({reason.lower()})",
            "choose a folder you can write to (the runs folder, runs_dir; on the command line --out or --run-dir)",
        ) from None


RESUME_MISSING_FILE_HINT = "put it back where the run found it (a resume reads it again), or start a new run"


def missing_for_resume(error: ConfigError) -> bool:
    """Whether ``error`` says a file or folder a run reads is gone (for a resume: put it back, not edit the run)."""
    return error.field.endswith(".path") and error.message.endswith(" does not exist")


def missing_sentence(run: str, error: ConfigError) -> str:
    """``run X reads '/data/a.txt', which does not exist`` for a :func:`missing_for_resume` error."""
    return f"{run} reads {error.message.removesuffix(' does not exist')}, which does not exist"


def pinned_paths(config: RunConfig) -> RunConfig:
    """``config`` (changed in place) with its relative file and folder paths made absolute: a run folder's
    config.toml must mean the same files from wherever it is resumed or read (``workbench predict``,
    ``--resume`` from another folder). Hub ids and the ``models:`` / ``resources:`` prefixes stay as written."""

    def pinned(text: str) -> str:
        stripped = text.strip()
        if not stripped or stripped.startswith(("models:", "resources:")):
            return text
        path = Path(stripped).expanduser()
        return text if path.is_absolute() else str(path.absolute())

    if config.data.source in ("file", "disk"):
        config.data.path = pinned(config.data.path)
    if config.teacher.source in ("local", "gguf"):
        config.teacher.path = pinned(config.teacher.path)
    if config.student.source == "local":
        config.student.path = pinned(config.student.path)
    return config


def load_run_config(run_dir: str | Path, *, validate: bool = True) -> RunConfig:
    folder = Path(run_dir).expanduser()
    path = folder / "config.toml"
    if not folder.exists():
        raise ConfigError(
            "", f"{str(run_dir)!r} does not exist", "give the folder of a run (`workbench runs` lists them)"
        )
    if not folder.is_dir():
        raise ConfigError(
            "",
            f"{str(run_dir)!r} is a file, not a run folder",
            "give the folder of a run (`workbench runs` lists them)",
        )
    if not path.is_file():
        raise ConfigError(
            "", f"{str(run_dir)!r} is not a run folder (it has no config.toml)", "pick a folder made by `workbench run`"
        )
    text = read_config_text(path)
    if not text.strip():  # read as all defaults, it would not be the run's config
        raise ConfigError(
            "",
            f"the config.toml of {folder.name} is empty",
            "it records what the run trained: restore it from a copy of the run, or start a new run",
        )
    return RunConfig.from_toml(text, source=str(path), validate=validate)


class EventLog:
    """Appends events to ``events.jsonl``, one flushed line each, so a follower sees them at once.

    A write that fails (disk full) raises :class:`WriteFailed` once; the log is then closed and later
    events are not written (the run is ending with that failure; the caller still gets them)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "events.jsonl"
        with writing("the event log events.jsonl", run_dir):
            self._handle: Any = open(self.path, "a", encoding="utf-8")

    @property
    def broken(self) -> bool:
        return self._handle is None

    def write(self, event: Any) -> None:
        if self._handle is None:
            return
        try:
            with writing("the event log events.jsonl", self.path.parent):
                self._handle.write(ev.to_json(event) + "\n")
                self._handle.flush()
        except WriteFailed:
            self.close()
            raise

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except OSError:
                pass  # what is still buffered cannot be written either; a torn last line is skipped on reading


def write_status(run_dir: Path, status: str, **extra: Any) -> None:
    """``status.json``: running / completed / stopped / cancelled / failed, with the process id while running."""
    data = {"status": status, "pid": os.getpid(), "time": time.time(), **extra}
    with writing("status.json", run_dir):
        paths.write_text_atomic(run_dir / STATUS_FILE, json.dumps(data))


def write_json(path: Path, data: Any) -> None:
    """``data`` as strict JSON (non-finite numbers as null), written atomically."""
    text = json.dumps(ev.finite_or_none(data), indent=2, default=float, allow_nan=False)
    with writing(path.name, path.parent):
        paths.write_text_atomic(path, text)


# -- checkpoints (their state; weights and optimizer: engine/checkpoints.py) --------


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint: distillation ones win over teacher-stage ones."""
    found = latest_checkpoint_state(run_dir)
    return None if found is None else found[0]


def latest_checkpoint_state(run_dir: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint and its state, read once: a running job prunes old checkpoints, so a
    folder seen a moment ago may be gone by the time it is read again (the runs panel refreshes while it runs)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return None
    for stage in ("distill", "teacher"):
        try:
            candidates = sorted(root.glob(f"{stage}-step-*"), reverse=True)
        except OSError:
            return None
        for path in candidates:
            try:
                return path, read_checkpoint_state(path)
            except (OSError, ValueError):
                continue  # pruned meanwhile, half written, or damaged: the next older one
    return None


def damaged_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint folders whose state.json cannot be read (:func:`latest_checkpoint` passes over them)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    # not the hidden temporary folders a killed write leaves (".distill-step-...tmp-..."): they never were checkpoints
    return sorted(
        p for p in root.glob("*-step-*") if not p.name.startswith(".") and p.is_dir() and not _readable_state(p)
    )


def _readable_state(path: Path) -> bool:
    try:
        read_checkpoint_state(path)
    except (OSError, ValueError):
        return False  # damaged by hand or by a disk problem: not a checkpoint to resume from
    return True


def read_checkpoint_state(path: Path) -> dict[str, Any]:
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    if not isinstance(state, dict) or "step" not in state or "stage" not in state:
        raise ValueError(f"{path / 'state.json'} is not a checkpoint state")
    return state


# -- reading runs -----------------------------------------------------------


@dataclass
class RunInfo:
    """What the runs panel and ``workbench runs`` show about one run folder."""

    path: Path
    name: str
    status: str
    created: str
    config: RunConfig | None
    summary: dict[str, Any] = field(default_factory=dict)
    last_step: int = 0
    stage: str = ""


def read_run(path: str | Path) -> RunInfo:
    path = Path(path)
    try:
        config = load_run_config(path)
    except ConfigError:
        config = None
    summary: dict[str, Any] = {}
    if (path / "summary.json").is_file():
        try:
            summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
            summary = {k: math.nan if v is None else v for k, v in summary.items()}  # null: not measured
        except (OSError, ValueError, AttributeError):  # being rewritten, removed, or not a JSON object
            summary = {}
    status = "unknown"
    status_path = path / STATUS_FILE
    if status_path.is_file():
        try:
            data = json.loads(status_path.read_text(encoding="utf-8"))
            status = data.get("status", "unknown")
            if status == "running" and not _pid_alive(int(data.get("pid", -1))):
                status = "interrupted"
        except (OSError, ValueError, AttributeError, TypeError):
            pass  # being rewritten or edited by hand: the status stays unknown
    last_step, stage = 0, ""
    found = latest_checkpoint_state(path)
    if found is not None:
        state = found[1]
        try:
            last_step, stage = int(state["step"]), str(state["stage"])
        except (TypeError, ValueError):
            pass  # a state.json edited by hand: the run is still listed
    if summary:
        try:
            last_step = int(summary.get("steps", last_step))
        except (TypeError, ValueError, OverflowError):
            pass  # a summary.json edited by hand: the run is still listed, with its checkpoint's step
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(_created_time(path)))
    name = config.name if config else path.name
    return RunInfo(
        path=path,
        name=name,
        status=status,
        created=created,
        config=config,
        summary=summary,
        last_step=last_step,
        stage=stage,
    )


def _created_time(path: Path) -> float:
    """When the run folder was made: its config.toml is written then and never again (the folder's own
    times move with every status.json and checkpoint written into it)."""
    for name in ("config.toml", "events.jsonl"):
        try:
            return (path / name).stat().st_mtime
        except OSError:
            continue
    return path.stat().st_mtime


def list_runs(runs_dir: str | Path) -> list[RunInfo]:
    """The run folders in ``runs_dir``, newest first."""
    root = Path(runs_dir).expanduser()
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and (p / "config.toml").is_file()]
    runs = []
    for folder in sorted(folders, key=lambda p: p.name, reverse=True):
        try:
            runs.append(read_run(folder))
        except OSError:
            continue  # deleted (or moved) while the list was being read
    return runs


def run_events(path: str | Path) -> list[Any]:
    events_path = Path(path) / "events.jsonl"
    return ev.read_events(str(events_path)) if events_path.is_file() else []


def running_elsewhere(path: str | Path) -> int | None:
    """The process id of another live process that is running this run folder (its status.json says
    ``running``), or None."""
    try:
        data = json.loads((Path(path) / STATUS_FILE).read_text(encoding="utf-8"))
        pid = int(data.get("pid", -1)) if data.get("status") == "running" else -1
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return pid if pid > 0 and pid != os.getpid() and _pid_alive(pid) else None


def can_resume(path: str | Path) -> bool:
    """A run can be resumed when it has a checkpoint and did not complete."""
    info = read_run(path)
    return info.status in ("stopped", "interrupted", "failed", "unknown") and latest_checkpoint(path) is not None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
