"""Putting a run's pieces together: tokenizer, teacher, student, data.

Shared by the training loop (``train.py``) and by everything that reopens a
finished run (``evaluate.Predictor``, ``workbench predict``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.config import ConfigError, RunConfig
from workbench.engine import models, runs

TEXT_TOKENIZER_VOCAB = 4096
"""Vocabulary of the BPE tokenizer trained here when a teacher is trained from scratch on text files."""


@dataclass
class Device:
    """Where the run computes and how (``autocast`` is a context manager factory)."""

    device: torch.device
    label: str
    precision: str  # fp32 | bf16 | fp16

    def autocast(self) -> Any:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)


def pick_device(device: str, precision: str, *, local_rank: int | None = None) -> Device:
    """``auto`` picks cuda > mps > cpu; precision ``auto`` is bf16 where the device does it fast, else fp32."""
    torch_device, label = models.describe_device(device)
    if torch_device.type == "cuda" and local_rank is not None:
        torch_device = torch.device("cuda", local_rank)
    if precision == "auto":
        if torch_device.type == "cuda" and torch.cuda.is_bf16_supported():
            precision = "bf16"
        else:
            precision = "fp32"
    if precision == "fp16" and torch_device.type != "cuda":
        raise ConfigError("train.precision", f"fp16 needs a CUDA GPU and this run is on {torch_device.type}", "use fp32 or bf16")
    if precision == "bf16" and torch_device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.precision", "this GPU does not support bf16", "use fp16 or fp32")
    return Device(torch_device, label, precision)


def is_toy(config: RunConfig) -> bool:
    return config.data.source == "toy"


def toy_language() -> Any:
    from workbench.engine import toylang

    return toylang.get_language()


def tokenizer_for_trained_teacher(config: RunConfig) -> Any:
    """The tokenizer of a teacher trained here: the built-in language's, or a BPE trained on the text."""
    if is_toy(config):
        return toy_language().tokenizer()
    from workbench.engine import data

    return data.train_tokenizer(data.load_documents(config.data)[0], vocab_size=TEXT_TOKENIZER_VOCAB)


def check_positions(config: RunConfig, model: torch.nn.Module, role: str) -> None:
    """Sequence length above the model's positions is a user error, caught before training starts."""
    limit = models.max_positions(model)
    if limit and config.train.seq_len > limit:
        raise ConfigError("train.seq_len", f"{config.train.seq_len} is above the {role}'s {limit} positions", f"use at most {limit}")


def load_run_models(run_dir: Path) -> tuple[torch.nn.Module, torch.nn.Module, Any, Any]:
    """(teacher, student, tokenizer, language or None) of a run folder, for inference."""
    config = runs.load_run_config(run_dir)
    language = toy_language() if is_toy(config) else None
    if (run_dir / "teacher" / "config.json").is_file():
        teacher, tokenizer = models.load_pretrained("local", str(run_dir / "teacher"))
    elif config.teacher.source == "train":
        raise ConfigError("", f"run {run_dir.name} has no trained teacher yet", "wait for the teacher stage to finish, or pick another run")
    else:
        teacher, tokenizer = models.load_teacher(config.teacher)
    if (run_dir / "student" / "config.json").is_file():
        student, _ = models.load_pretrained("local", str(run_dir / "student"))
    else:
        checkpoint = runs.latest_checkpoint(run_dir)
        if checkpoint is None or runs.read_checkpoint_state(checkpoint)["stage"] != "distill":
            raise ConfigError("", f"run {run_dir.name} has no student yet", "wait for the first distillation checkpoint, or pick another run")
        student = models.make_student(config.student, teacher, tokenizer, seed=config.train.seed)
        from safetensors.torch import load_model

        load_model(student, str(checkpoint / "model.safetensors"))
    return teacher, student, tokenizer, language
