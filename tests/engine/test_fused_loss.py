"""The fused loss (logits a chunk at a time from hidden states) against distill_loss on hidden @ W.T."""

import pytest
import torch

from workbench.engine.fused_loss import fused_distill_loss
from workbench.engine.losses import DIVERGENCES, distill_loss


def make_case(batch=3, seq=7, hidden=8, vocab=13, teacher_hidden=6, seed=0, dtype=torch.float32, bias=False):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, seq, hidden, generator=g, dtype=dtype)
    w = torch.randn(vocab, hidden, generator=g, dtype=dtype)
    b = torch.randn(vocab, generator=g, dtype=dtype) if bias else None
    th = torch.randn(batch, seq, teacher_hidden, generator=g, dtype=dtype)
    tw = torch.randn(vocab, teacher_hidden, generator=g, dtype=dtype)
    labels = torch.randint(0, vocab, (batch, seq), generator=g)
    labels[1, -2:] = -100
    labels[-1, 1:3] = -100
    return h, w, b, th, tw, labels


def leaves(*tensors):
    return [t.detach().clone().requires_grad_(True) if t is not None else None for t in tensors]


def unfused(h, w, b, th, tw, labels, **kw):
    logits = h @ w.t() + (b if b is not None else 0)
    teacher = th @ tw.t() if th is not None else None
    return distill_loss(logits, teacher, labels, **kw)


@pytest.mark.parametrize("kind", DIVERGENCES)
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_fused_equals_unfused_loss_and_gradients(kind, alpha, temperature):
    h, w, _, th, tw, labels = make_case()
    kw = dict(temperature=temperature, alpha=alpha, divergence=kind, num_valid_tokens=20, chunk_positions=4)
    h1, w1 = leaves(h, w)
    ref = unfused(h1, w1, None, th, tw, labels, **kw)
    ref.loss.backward()
    h2, w2 = leaves(h, w)
    got = fused_distill_loss(h2, w2, th, tw, labels, **kw)
    got.loss.backward()
    torch.testing.assert_close(got.loss, ref.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.kd, ref.kd, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.ce, ref.ce, rtol=1e-5, atol=1e-6)
    assert got.n_tokens == ref.n_tokens
    torch.testing.assert_close(h2.grad, h1.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(w2.grad, w1.grad, rtol=1e-4, atol=1e-6)
    # masked positions (and the last one, which predicts nothing) get no gradient
    assert torch.all(h2.grad[:, -1] == 0)


def test_bias_and_t_squared_off():
    h, w, b, th, tw, labels = make_case(bias=True)
    kw = dict(temperature=2.0, alpha=0.5, divergence="jsd", t_squared=False, chunk_positions=5)
    h1, w1, b1 = leaves(h, w, b)
    ref = unfused(h1, w1, b1, th, tw, labels, **kw)
    ref.loss.backward()
    h2, w2, b2 = leaves(h, w, b)
    got = fused_distill_loss(h2, w2, th, tw, labels, student_bias=b2, **kw)
    got.loss.backward()
    torch.testing.assert_close(got.loss, ref.loss)
    for a, r in ((h2, h1), (w2, w1), (b2, b1)):
        torch.testing.assert_close(a.grad, r.grad, rtol=1e-4, atol=1e-6)


def test_teacher_none_is_plain_cross_entropy():
    h, w, _, _, _, labels = make_case()
    h1, w1 = leaves(h, w)
    got = fused_distill_loss(h1, w1, None, None, labels, alpha=0.7, chunk_positions=3)
    logits = h @ w.t()
    keep = labels[:, 1:] != -100
    expected = torch.nn.functional.cross_entropy(logits[:, :-1][keep], labels[:, 1:][keep])
    torch.testing.assert_close(got.loss, expected)
    torch.testing.assert_close(got.ce, expected)
    assert got.kd == 0


def test_tied_weight_gets_both_gradients():
    """A head tied to the input embeddings: the fused gradient adds to the embedding lookup's."""
    h, w, _, th, tw, labels = make_case()
    ids = labels.clamp(min=0)

    def run(fused):
        (emb,) = leaves(w)
        hidden = emb[ids] + h  # the embedding is used on the input side too
        kw = dict(temperature=2.0, alpha=0.5, chunk_positions=4)
        if fused:
            parts = fused_distill_loss(hidden, emb, th, tw, labels, **kw)
        else:
            parts = distill_loss(hidden @ emb.t(), th @ tw.t(), labels, **kw)
        parts.loss.backward()
        return parts.loss, emb.grad

    loss_f, grad_f = run(True)
    loss_u, grad_u = run(False)
    torch.testing.assert_close(loss_f, loss_u)
    torch.testing.assert_close(grad_f, grad_u, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["forward_kl", "jsd", "tv"])
def test_gradcheck_fp64(kind):
    h, w, b, th, tw, labels = make_case(
        batch=2, seq=4, hidden=3, vocab=5, teacher_hidden=2, dtype=torch.float64, bias=True
    )
    h, w, b = leaves(h, w, b)

    def f(hidden, weight, bias):
        return (
            fused_distill_loss(
                hidden,
                weight,
                th,
                tw,
                labels,
                student_bias=bias,
                temperature=2.0,
                alpha=0.5,
                divergence=kind,
                chunk_positions=2,
            ).loss
            * 3.0
        )

    assert torch.autograd.gradcheck(f, (h, w, b), eps=1e-6, atol=1e-6)


def test_frozen_head_and_shape_errors():
    h, w, _, th, tw, labels = make_case()
    (h1,) = leaves(h)
    fused_distill_loss(h1, w, th, tw, labels).loss.backward()
    assert h1.grad is not None
    with pytest.raises(ValueError, match="vocabulary"):
        fused_distill_loss(h, w, th, tw[:-1], labels)
    with pytest.raises(ValueError, match="go together"):
        fused_distill_loss(h, w, th, None, labels)
    with pytest.raises(ValueError, match="student_weight"):
        fused_distill_loss(h, w[:, :-1], th, tw, labels)


# -- the objective with distill.fused_loss on ------------------------------------------


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("tied", [True, False])
def test_objective_fused_equals_unfused(family, tied):
    import contextlib

    from tests.helpers_models import tiny_model, tiny_tokenizer
    from workbench.config.schema import DistillConfig
    from workbench.engine.train.objective import Batch, Objective, fusable_head

    tokenizer = tiny_tokenizer()
    teacher = tiny_model(tokenizer, family, seed=1).eval()
    ids = torch.randint(0, len(tokenizer), (2, 9), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[1, -3:] = -100
    batch = Batch(ids=ids, labels=labels)
    results = []
    for fused in (False, True):
        student = tiny_model(tokenizer, family, seed=0, tie_embeddings=tied)
        assert fusable_head(student) is not None
        if tied:
            assert student.get_output_embeddings().weight is student.get_input_embeddings().weight
        settings = DistillConfig(temperature=2.0, alpha=0.5, divergence="forward_kl", fused_loss=fused)
        objective = Objective(settings, alpha=0.5, teacher=teacher, autocast=contextlib.nullcontext, chunk_positions=4)
        parts = objective(student, batch, batch.valid_tokens())
        parts.loss.backward()
        results.append((parts, {name: p.grad.clone() for name, p in student.named_parameters()}))
    (off, grads_off), (on, grads_on) = results
    torch.testing.assert_close(on.loss, off.loss)
    torch.testing.assert_close(on.kd, off.kd)
    torch.testing.assert_close(on.ce, off.ce)
    assert grads_on.keys() == grads_off.keys()
    for name in grads_off:
        torch.testing.assert_close(grads_on[name], grads_off[name], rtol=1e-4, atol=1e-6, msg=name)


def test_fusable_head_refuses_wrappers():
    from workbench.engine.train.objective import fusable_head

    assert fusable_head(torch.nn.Linear(3, 4)) is None
    assert fusable_head(torch.nn.Sequential(torch.nn.Linear(3, 4))) is None


@pytest.mark.parametrize("kind", ["forward_kl", "jsd"])
def test_bf16_products_match_the_unfused_loss_of_a_head_under_bf16_autocast(kind):
    """With ``matmul_dtype`` bf16 the fused loss is the unfused one on the logits a bf16-autocast head gives."""
    h, w, _, th, tw, labels = make_case(batch=2, seq=24, hidden=32, vocab=300, teacher_hidden=16, seed=3)
    kw = dict(temperature=2.0, alpha=0.5, divergence=kind, chunk_positions=7)
    h1, w1 = leaves(h, w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        student_logits, teacher_logits = h1 @ w1.t(), th @ tw.t()
    assert student_logits.dtype == torch.bfloat16
    ref = distill_loss(student_logits, teacher_logits, labels, **kw)
    ref.loss.backward()
    h2, w2 = leaves(h, w)
    got = fused_distill_loss(h2, w2, th, tw, labels, matmul_dtype=torch.bfloat16, **kw)
    got.loss.backward()
    torch.testing.assert_close(got.loss, ref.loss, rtol=1e-4, atol=1e-5)  # the same bf16 logits, the loss in fp32
    torch.testing.assert_close(h2.grad, h1.grad, rtol=3e-2, atol=1e-3)  # bf16 products of the gradients
    torch.testing.assert_close(w2.grad, w1.grad, rtol=3e-2, atol=1e-3)
    fp32 = fused_distill_loss(*leaves(h, w), th, tw, labels, **kw)
    assert not torch.equal(fp32.loss, got.loss)  # the products did run in bf16
