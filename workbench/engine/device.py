"""Where a run computes and in which precision: the device a config names, and autocast."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from workbench.errors import ConfigError


def describe_device(device: str) -> tuple[torch.device, str]:
    """The torch device for a config value ("auto" picks cuda, then mps, then cpu) and a label."""
    name = device.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("train.device", "is cuda but PyTorch sees no CUDA GPU here", "use device auto or cpu")
        dev = torch.device(name)
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return torch.device("cuda", index), f"{props.name} (cuda:{index}, {props.total_memory / 2**30:.0f} GiB)"
    if name == "mps":
        if not _mps_available():
            raise ConfigError("train.device", "is mps but PyTorch sees no Apple GPU here", "use device auto or cpu")
        return torch.device("mps"), "Apple GPU (mps)"
    if name == "cpu":
        return torch.device("cpu"), f"CPU ({torch.get_num_threads()} threads)"
    raise ConfigError("train.device", f"{device!r} is not a device", "use auto, cpu, cuda or mps")


def _native_bf16(device: torch.device) -> bool:
    """bf16 in hardware (compute capability 8.0 and up: A100, H100, RTX 30xx and later). Older GPUs (V100, T4)
    report bf16 as supported by emulation, which is slower than fp32, so ``auto`` does not pick it there."""
    return torch.cuda.get_device_capability(device)[0] >= 8 and torch.cuda.is_bf16_supported()


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


@dataclass
class Device:
    """Where the run computes and how (``autocast`` is a context manager factory)."""

    device: torch.device
    label: str
    precision: str  # fp32 | bf16 | fp16

    @property
    def frozen_dtype(self) -> torch.dtype:
        """The dtype a frozen model (the teacher during distillation) is kept in: the run's half
        precision, which halves its memory; fp16 only on a GPU (CPU kernels for it are few and slow)."""
        if self.precision == "bf16":
            return torch.bfloat16
        if self.precision == "fp16" and self.device.type != "cpu":
            return torch.float16
        return torch.float32

    def autocast(self) -> Any:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)


def pick_device(device: str, precision: str, *, local_rank: int | None = None) -> Device:
    """``auto`` picks cuda > mps > cpu; precision ``auto`` is bf16 where the device does it fast, else fp32."""
    torch_device, label = describe_device(device)
    if torch_device.type == "cuda" and local_rank is not None:
        torch_device = torch.device("cuda", local_rank)
    if precision == "auto":
        precision = "bf16" if torch_device.type == "cuda" and _native_bf16(torch_device) else "fp32"
    if precision == "bf16" and torch_device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.precision", "this GPU does not support bf16", "use fp32")
    return Device(torch_device, label, precision)
