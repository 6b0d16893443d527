"""Checkpoints' weights, optimizer state and random state: written atomically (a run killed at any moment
leaves a complete checkpoint or none), read without unpickling arbitrary objects (safetensors for
weights, ``torch.load(weights_only=True)`` for the rest). Their ``state.json`` and which one is the
latest are the run folder's business (:mod:`workbench.run_folder`)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from workbench import paths
from workbench.run_folder import CHECKPOINTS, read_checkpoint_state


def save_checkpoint(run_dir: Path, *, stage: str, step: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> Path:
    """Write ``checkpoints/<stage>-step-NNNNNN`` atomically and drop older ones of the same stage."""
    root = run_dir / CHECKPOINTS
    root.mkdir(exist_ok=True)
    final = root / f"{stage}-step-{step:06d}"
    with paths.atomic_target(final) as tmp:
        tmp.mkdir()
        save_model(model, str(tmp / "model.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, tmp / "rng.pt")
        full_state = {"stage": stage, "step": step, "python_random": _jsonable(random.getstate()), **state}
        (tmp / "state.json").write_text(json.dumps(full_state), encoding="utf-8")
    for old in root.glob(f"{stage}-step-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def restore_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Load weights, optimizer state and RNG from ``path``; returns its state.json."""
    load_model(model, str(path / "model.safetensors"), strict=True)
    if optimizer is not None:
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu"))
    rng = torch.load(path / "rng.pt", weights_only=True)
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state = read_checkpoint_state(path)
    random.setstate(_tupled(state["python_random"]))
    return state


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _tupled(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _tupled(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    return value
