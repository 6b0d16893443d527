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


@pytest.mark.parametrize("variant", ["distill.teacher_cache=topk", "distill.fused_loss=true"])
def test_cache_and_fused_runs_on_cuda_bf16_complete(tmp_path, variant):
    key, value = variant.split("=")
    cfg = tiny_config(tmp_path, **{"train.device": "cuda", "train.precision": "bf16", key: value})
    result = run(cfg, lambda event: None)
    assert result.status == "completed", result
    assert "cuda" in result.summary["device"].lower()
    for key in ("student_ce", "kl_teacher_student", "kl_true_student"):
        assert 0 <= result.summary[key] < 20, (key, result.summary[key])


def test_fused_loss_on_cuda_equals_the_unfused_loss_and_gradients():
    from workbench.engine.fused_loss import fused_distill_loss

    gen = torch.Generator().manual_seed(0)
    h, w = torch.randn(2, 48, 32, generator=gen), torch.randn(5000, 32, generator=gen) * 0.2
    th, tw = torch.randn(2, 48, 24, generator=gen), torch.randn(5000, 24, generator=gen) * 0.2
    labels = torch.randint(0, 5000, (2, 48), generator=gen)
    labels[0, :5] = -100
    kw = dict(temperature=2.0, alpha=0.5, divergence="jsd", chunk_positions=16)
    h1, w1 = h.cuda().requires_grad_(), w.cuda().requires_grad_()
    ref = distill_loss(h1 @ w1.t(), th.cuda() @ tw.cuda().t(), labels.cuda(), **kw)
    ref.loss.backward()
    h2, w2 = h.cuda().requires_grad_(), w.cuda().requires_grad_()
    got = fused_distill_loss(h2, w2, th.cuda(), tw.cuda(), labels.cuda(), **kw)
    got.loss.backward()
    torch.testing.assert_close(got.loss, ref.loss, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(h2.grad, h1.grad, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(w2.grad, w1.grad, rtol=1e-3, atol=1e-5)


def test_the_compiled_topk_loss_on_cuda_equals_the_uncompiled_one():
    """train.compile under the top-k cache: on CUDA inductor writes GPU kernels for the low-rank chunk."""
    from tests.engine.test_teacher_cache import VOCAB, _cached, _logits
    from workbench.engine.teacher_cache import TopK, topk_distill_loss

    cached = _cached(_logits(5), 6)
    on_gpu = TopK(**{k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in vars(cached).items()})
    labels = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(6)).cuda()
    results = []
    for compile in (False, True):
        student = _logits(4).cuda().requires_grad_(True)
        parts = topk_distill_loss(
            student, on_gpu, labels, temperature=2.0, alpha=0.6, chunk_positions=5, compile=compile
        )
        parts.loss.backward()
        results.append((parts.loss, student.grad))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-4, atol=1e-6)
