"""Checks that need a CUDA device (skipped without one; scripts/gpu_check.sh runs them on a GPU machine)."""

from __future__ import annotations

import pytest
import torch

from workbench.engine.losses import distill_loss
from workbench.engine.train.run import run

from .test_train import tiny_config

pytestmark = pytest.mark.gpu


def test_bf16_run_on_cuda_completes_and_reports_device_memory(tmp_path):
    cfg = tiny_config(tmp_path, **{"train.device": "cuda", "train.precision": "bf16"})
    received = []
    result = run(cfg, received.append)
    assert result.status == "completed", result
    steps = [e for e in received if e.kind == "step"]
    assert all(e.memory_bytes > 0 for e in steps)
    assert result.summary["precision"] == "bf16" and "cuda" in result.summary["device"].lower()


def test_chunked_loss_on_cuda_bf16_matches_cpu_fp32():
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(2, 64, 4096, generator=gen)
    teacher = torch.randn(2, 64, 4096, generator=gen)
    labels = torch.randint(0, 4096, (2, 64), generator=gen)
    cpu = distill_loss(student, teacher, labels, temperature=2.0, alpha=0.5)
    s = student.cuda().bfloat16().requires_grad_()
    gpu = distill_loss(s, teacher.cuda().bfloat16(), labels.cuda(), temperature=2.0, alpha=0.5, chunk_positions=16)
    gpu.loss.backward()
    assert float(gpu.loss) == pytest.approx(float(cpu.loss), rel=2e-2)
    assert s.grad is not None and torch.isfinite(s.grad.float()).all()
