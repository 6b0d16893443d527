"""Checkpoints' weights, optimizer state and random state: written atomically (a run killed at any moment
leaves a complete checkpoint or none), read without unpickling arbitrary objects (safetensors for
weights, ``torch.load(weights_only=True)`` for the rest). Their ``state.json`` and which one is the
latest are the run folder's business (:mod:`workbench.run_folder`)."""

from __future__ import annotations

import json
import pickle
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from workbench import paths
from workbench.errors import ConfigError, writing
from workbench.run_folder import CHECKPOINTS, TEACHER_DIR, read_checkpoint_state


def save_checkpoint(
    run_dir: Path,
    *,
    stage: str,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
) -> Path:
    """Write ``checkpoints/<stage>-step-NNNNNN`` atomically and drop older ones of the same stage."""
    root = run_dir / CHECKPOINTS
    final = root / f"{stage}-step-{step:06d}"
    # A failed write (disk full) removes the temporary folder and leaves the previous checkpoint as it was.
    with writing(f"checkpoint {final.name}", run_dir), paths.atomic_target(final) as tmp:
        root.mkdir(exist_ok=True)
        tmp.mkdir()
        save_model(model, str(tmp / "model.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            # this process's device only: the state of every GPU would open a context (~0.5 GB) on each of
            # them, from every process of a torchrun
            rng["cuda"] = torch.cuda.get_rng_state()
        torch.save(rng, tmp / "rng.pt")
        full_state = {"stage": stage, "step": step, "python_random": _jsonable(random.getstate()), **state}
        (tmp / "state.json").write_text(json.dumps(full_state), encoding="utf-8")
    for old in root.glob(f"{stage}-step-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def restore_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Load weights, optimizer state and RNG from ``path``; returns its state.json.

    A file that is cut short, garbage, or a pickle payload that is not plain tensors is a ConfigError
    naming the checkpoint and the file, with the earlier point to resume from (torch's own message,
    which advises turning ``weights_only`` off, is never passed on)."""
    with _reading(path, "state.json"):
        state = read_checkpoint_state(path)
        python_random = _tupled(state["python_random"])
    with _reading(path, "model.safetensors"):
        load_model(model, str(path / "model.safetensors"), strict=True)
    if optimizer is not None:
        with _reading(path, "optimizer.pt"):
            optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu"))
    with _reading(path, "rng.pt"):
        rng = torch.load(path / "rng.pt", weights_only=True)
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            _restore_cuda_rng(rng["cuda"])
    with _reading(path, "state.json"):
        random.setstate(python_random)
    return state


# What loading a damaged file raises: cut short or garbage (RuntimeError from torch's zip reader, EOFError,
# SafetensorError), a pickle payload weights_only refuses (UnpicklingError), or contents of the wrong shape.
_DAMAGED = (
    SafetensorError,
    pickle.UnpicklingError,
    EOFError,
    OSError,
    RuntimeError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
)


@contextmanager
def _reading(path: Path, file: str) -> Iterator[None]:
    """Turns a damaged ``file`` of checkpoint ``path`` into one ConfigError."""
    try:
        yield
    except ConfigError:
        raise
    except _DAMAGED as err:
        if isinstance(err, FileNotFoundError):
            what = "is missing"
        elif isinstance(err, pickle.UnpicklingError):
            what = "is damaged (it holds a pickle payload that is not plain tensors, and the workbench never runs code from a file)"
        else:
            what = "is damaged (cut short, or not what the workbench wrote)"
        raise ConfigError("", f"checkpoint {path.name}: {file} {what}", resume_choice(path)) from None


def resume_choice(damaged: Path) -> str:
    """What a user can resume from when checkpoint ``damaged`` cannot be used (only the latest checkpoint
    of each stage is kept, so the earlier point is the other stage's checkpoint or the trained teacher)."""
    run_dir = damaged.parent.parent
    aside = f"move {CHECKPOINTS}/{damaged.name} out of the run folder"
    if damaged.name.startswith("distill-"):
        for earlier in sorted((run_dir / CHECKPOINTS).glob("teacher-step-*")):
            try:
                step = int(read_checkpoint_state(earlier)["step"])
            except (OSError, ValueError, KeyError):
                continue
            return f"{aside}, then resume with `workbench run --resume {run_dir}` to continue from checkpoint {earlier.name} (teacher stage, step {step})"
        if (run_dir / TEACHER_DIR / "config.json").is_file():
            return (
                f"{aside}, then resume with `workbench run --resume {run_dir}`: distillation starts again "
                f"from step 0 with the teacher this run trained ({TEACHER_DIR}/)"
            )
    return f"no earlier checkpoint is kept: start the run again with `workbench run {run_dir / 'config.toml'}`"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _tupled(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    return value


def _restore_cuda_rng(saved) -> None:
    """The current device's CUDA generator from a checkpoint: one state (this version) or one per device (a
    list: checkpoints written before; this device's entry, when there is one)."""
    if isinstance(saved, list | tuple):
        index = torch.cuda.current_device()
        if index >= len(saved):
            return
        saved = saved[index]
    torch.cuda.set_rng_state(saved)
