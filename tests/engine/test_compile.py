"""train.compile: the loss's chunk function through torch.compile gives the uncompiled loss and gradients."""

from __future__ import annotations

import contextlib

import pytest
import torch

from workbench.config.schema import DistillConfig, RunConfig
from workbench.engine import losses
from workbench.engine.fused_loss import fused_distill_loss
from workbench.engine.losses import distill_loss
from workbench.engine.train.objective import Batch, Objective
from workbench.errors import ConfigError


def _case(seed=0, batch=2, seq=6, hidden=8, vocab=17):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, seq, hidden, generator=g)
    w = torch.randn(vocab, hidden, generator=g)
    th = torch.randn(batch, seq, hidden, generator=g)
    tw = torch.randn(vocab, hidden, generator=g)
    labels = torch.randint(0, vocab, (batch, seq), generator=g)
    labels[1, -2:] = -100
    return h, w, th, tw, labels


def _leaf(t):
    return t.detach().clone().requires_grad_(True)


@pytest.mark.parametrize("fused", [False, True])
def test_the_compiled_loss_equals_the_uncompiled_one(fused):
    h, w, th, tw, labels = _case()
    kw = dict(temperature=2.0, alpha=0.5, divergence="jsd", chunk_positions=5)  # 12 rows: chunks of 5, 5, 2
    results = []
    for compile in (False, True):
        hh, ww = _leaf(h), _leaf(w)
        if fused:
            parts = fused_distill_loss(hh, ww, th, tw, labels, compile=compile, **kw)
        else:
            parts = distill_loss(hh @ ww.t(), th @ tw.t(), labels, compile=compile, **kw)
        parts.loss.backward()
        results.append((parts, hh.grad, ww.grad))
    (plain, h_plain, w_plain), (compiled, h_compiled, w_compiled) = results
    for name in ("loss", "kd", "ce"):
        torch.testing.assert_close(getattr(compiled, name), getattr(plain, name), rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(h_compiled, h_plain, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(w_compiled, w_plain, rtol=1e-4, atol=1e-6)
    assert "terms" in losses._COMPILED  # the compiled function was the one used
    from torch._dynamo.utils import counters

    assert counters["stats"]["unique_graphs"] > 0  # and it compiled a graph rather than falling back to eager


def test_the_setting_is_in_the_schema_and_off_by_default():
    train = RunConfig().train
    assert train.compile is False
    cfg = RunConfig()
    cfg.apply_overrides(["train.compile=true"])
    assert cfg.train.compile is True


def test_a_compile_that_fails_on_the_platform_is_one_clear_error(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("InductorError: CppCompileError: C++ compile error\nlong compiler output")

    monkeypatch.setitem(losses._COMPILED, "terms", broken)
    tokens = torch.randint(0, 11, (1, 5), generator=torch.Generator().manual_seed(0))
    objective = Objective(
        DistillConfig(), alpha=0.0, teacher=None, autocast=contextlib.nullcontext, chunk_positions=4, compile=True
    )

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(11, 11)

        def forward(self, input_ids, use_cache=False):
            return type("Out", (), {"logits": self.emb(input_ids)})()

    with pytest.raises(ConfigError) as err:
        objective(Tiny(), Batch.of_blocks(tokens), 4)
    assert err.value.field == "train.compile"
    assert "torch.compile could not compile the loss on this platform" in err.value.message
    assert "long compiler output" not in err.value.line
    assert "train.compile = false" in err.value.hint


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_the_compiled_topk_lowrank_loss_equals_the_uncompiled_one(temperature):
    """train.compile with the top-k cache: the low-rank tail's chunk (reconstruction and loss) compiled."""
    from tests.engine.test_teacher_cache import VOCAB, _cached, _logits
    from workbench.engine import teacher_cache

    cached = _cached(_logits(5), 6)
    labels = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(6))
    labels[1, 2] = -100
    results = []
    for compile in (False, True):
        student = _logits(4).requires_grad_(True)
        parts = teacher_cache.topk_distill_loss(
            student, cached, labels, temperature=temperature, alpha=0.6, chunk_positions=5, compile=compile
        )
        parts.loss.backward()
        results.append((parts, student.grad))
    (plain, g_plain), (compiled, g_compiled) = results
    for name in ("loss", "kd", "ce"):
        torch.testing.assert_close(getattr(compiled, name), getattr(plain, name), rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(g_compiled, g_plain, rtol=1e-4, atol=1e-6)
    assert "lowrank" in teacher_cache._COMPILED  # the compiled chunk was the one used
