"""How a run that goes wrong ends: every exception as one Failed event (one sentence and a hint for what a
user can cause: a config, a full disk, memory; a bug report with its traceback in error.log otherwise), what
survived a failed write, a damaged newest checkpoint named before a resume, and the run folder of a run
refused before its first step taken away again."""

from __future__ import annotations

import shutil
import traceback
from pathlib import Path

import torch

from workbench.engine.checkpoints import resume_choice
from workbench.engine.train.parallel import Parallel
from workbench.engine.train.stages import RunFailed
from workbench.errors import ConfigError, WriteFailed, one_line
from workbench.events import Failed
from workbench.run_folder import damaged_checkpoints, latest_checkpoint, read_checkpoint_state

CPU_OUT_OF_MEMORY = (
    "DefaultCPUAllocator: can't allocate memory",
    "DefaultCPUAllocator: not enough memory",
    "not enough memory",
    "can't allocate memory",
    "Cannot allocate memory",
)


def failed_event(err: Exception, path: Path | None, started_in: Path | None, parallel: Parallel) -> Failed:
    """The Failed event for an error: one sentence and a hint for what a user can cause, else a bug report."""
    where = str(path or "")
    if isinstance(err, RunFailed):
        return Failed(err.message, err.hint, where, user_error=True)
    if isinstance(err, ConfigError):
        return Failed(err.what, err.hint, where, user_error=True)
    if isinstance(err, WriteFailed):
        return Failed(err.message, f"{err.hint}, then {_what_survived(path)}", where, user_error=True)
    if isinstance(err, torch.OutOfMemoryError):
        return Failed(
            "The device ran out of memory.",
            "lower train.batch_size or train.seq_len (raise train.grad_accum to keep the batch), or use bf16",
            where,
            user_error=True,
        )
    if isinstance(err, MemoryError) or (
        isinstance(err, RuntimeError) and any(text in str(err) for text in CPU_OUT_OF_MEMORY)
    ):
        return Failed(
            "The computer ran out of memory (RAM).",
            "use a smaller teacher or student, lower train.batch_size or train.seq_len (raise train.grad_accum to keep the batch), "
            "or close other programs",
            where,
            user_error=True,
        )
    log_name = "error.log" if parallel.main else f"error-process{parallel.rank}.log"
    hint = f"this is probably a bug; the traceback is in {log_name} in the run folder"
    if started_in is not None:
        try:
            (started_in / log_name).write_text(traceback.format_exc(), encoding="utf-8")
        except OSError:
            hint = "this is probably a bug; its traceback could not be written to the run folder"
    else:
        hint = "this is probably a bug"
    return Failed(f"Unexpected error: {type(err).__name__}: {one_line(err)}", hint, where)


def _what_survived(path: Path | None) -> str:
    """After a failed write: how to go on once the disk has room (from the run folder as it is now)."""
    if path is None or not path.is_dir():
        return "start the run again"
    checkpoint = latest_checkpoint(path)
    if checkpoint is not None:
        step = read_checkpoint_state(checkpoint)["step"]
        return (
            f"resume the run with `workbench run --resume {path}`: checkpoint {checkpoint.name} (step {step}) is intact"
        )
    if (path / "teacher" / "config.json").is_file():
        return f"resume the run with `workbench run --resume {path}`: the teacher it trained (teacher/) is intact"
    if (path / "student" / "config.json").is_file():
        return f"the run's student ({path / 'student'}) is intact"
    return "start the run again (no checkpoint was written yet)"


def refuse_damaged_latest(path: Path) -> None:
    """A newest checkpoint whose state.json is damaged is named, not passed over: resuming from an
    earlier point would silently throw away the training after it."""
    latest = latest_checkpoint(path)
    rank = {"teacher": 0, "distill": 1}
    for damaged in damaged_checkpoints(path):
        stage = damaged.name.split("-step-")[0]
        if latest is None or rank.get(stage, 1) >= rank.get(latest.name.split("-step-")[0], 0):
            raise ConfigError(
                "",
                f"checkpoint {damaged.name}: state.json is damaged (cut short, or not what the workbench wrote)",
                resume_choice(damaged),
            )


def remove_what_this_call_made(folder: Path, made_here: str) -> None:
    """Nothing ran: take away the run folder this call made (or, in an empty folder it was given, what it put there)."""
    if made_here == "folder":
        shutil.rmtree(folder, ignore_errors=True)
    elif made_here == "contents":
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
