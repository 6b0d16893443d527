"""The KD losses against independent float64 formulas, and the masking / normalisation rules."""

import math

import pytest
import torch
import torch.nn.functional as F

from workbench.engine.losses import (
    DIVERGENCES,
    count_valid_tokens,
    distill_loss,
    divergence,
    kl_per_position,
)

INF = float("inf")


# -- independent float64 reference (plain softmax / log formulas) -------------------


def ref_probs(logits, temperature=1.0):
    z = logits.double() / temperature
    e = torch.exp(z - z.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1, keepdim=True)


def ref_kl(p, q):
    return (p * (torch.log(p) - torch.log(q))).sum(-1)


def ref_divergence(teacher_logits, student_logits, kind, temperature=1.0, beta=0.5, skew=0.1):
    p, q = ref_probs(teacher_logits, temperature), ref_probs(student_logits, temperature)
    if kind == "forward_kl":
        return ref_kl(p, q)
    if kind == "reverse_kl":
        return ref_kl(q, p)
    if kind == "jsd":
        m = beta * p + (1 - beta) * q
        return (beta * ref_kl(p, m) + (1 - beta) * ref_kl(q, m)) / (beta * (1 - beta))
    if kind == "skew_forward_kl":
        return ref_kl(p, skew * p + (1 - skew) * q)
    if kind == "skew_reverse_kl":
        return ref_kl(q, skew * q + (1 - skew) * p)
    if kind == "tv":
        return 0.5 * (p - q).abs().sum(-1)
    raise AssertionError(kind)


def ref_loss(
    student_logits, teacher_logits, labels, kind, temperature, alpha, beta=0.5, skew=0.1, t_squared=True, n=None
):
    """Whole-batch, unchunked, float64 objective with the HF shift, written out by hand."""
    s = student_logits[:, :-1].reshape(-1, student_logits.shape[-1]).double()
    t = teacher_logits[:, :-1].reshape(-1, teacher_logits.shape[-1]).double()
    y = labels[:, 1:].reshape(-1)
    keep = y != -100
    s, t, y = s[keep], t[keep], y[keep]
    n = int(keep.sum()) if n is None else n
    ce = -torch.log(ref_probs(s)[torch.arange(len(y)), y]).sum()
    kd = ref_divergence(t, s, kind, temperature, beta, skew).sum()
    scale = temperature**2 if t_squared else 1.0
    return (alpha * scale * kd + (1 - alpha) * ce) / n


def make_batch(batch=3, seq=6, vocab=11, seed=0, scale=3.0, pad_tail=(0, 2, 4)):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(batch, seq, vocab, generator=g) * scale
    teacher = torch.randn(batch, seq, vocab, generator=g) * scale
    labels = torch.randint(0, vocab, (batch, seq), generator=g)
    for b in range(batch):
        pad = pad_tail[b % len(pad_tail)]
        if pad:
            labels[b, seq - pad :] = -100
    return student, teacher, labels


def loss_and_grad(student, teacher, labels, **kw):
    leaf = student.detach().clone().requires_grad_(True)
    parts = distill_loss(leaf, teacher, labels, **kw)
    parts.loss.backward()
    return parts, leaf.grad


# -- divergences --------------------------------------------------------------------


@pytest.mark.parametrize("kind", DIVERGENCES)
@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_each_divergence_matches_float64_reference(kind, temperature):
    student, teacher, _ = make_batch()
    s, t = student.reshape(-1, 11), teacher.reshape(-1, 11)
    got = divergence(F.log_softmax(t / temperature, -1), F.log_softmax(s / temperature, -1), kind, beta=0.3, skew=0.2)
    want = ref_divergence(t, s, kind, temperature, beta=0.3, skew=0.2)
    assert got.shape == (s.shape[0],)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=2e-6)
    assert (want > 1e-3).all()  # the inputs really differ, so the comparison means something


@pytest.mark.parametrize("kind", DIVERGENCES)
def test_identical_distributions_give_zero(kind):
    student, _, labels = make_batch()
    logp = F.log_softmax(student.reshape(-1, 11), -1)
    assert divergence(logp, logp.clone(), kind).abs().max() < 1e-6
    parts = distill_loss(student, student.clone(), labels, temperature=2.0, alpha=1.0, divergence=kind)
    assert abs(parts.kd.item()) < 1e-5


def test_jsd_endpoints_are_the_kls_and_the_scale_is_continuous():
    student, teacher, _ = make_batch(scale=2.0)
    t, s = F.log_softmax(teacher.reshape(-1, 11).double(), -1), F.log_softmax(student.reshape(-1, 11).double(), -1)
    forward, reverse = divergence(t, s, "forward_kl"), divergence(t, s, "reverse_kl")
    assert not torch.allclose(forward, reverse)
    torch.testing.assert_close(divergence(t, s, "jsd", beta=0.0), forward)
    torch.testing.assert_close(divergence(t, s, "jsd", beta=1.0), reverse)
    # Just inside the endpoints the rescaled JSD approaches the same KLs (no jump).
    torch.testing.assert_close(divergence(t, s, "jsd", beta=1e-6), forward, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(divergence(t, s, "jsd", beta=1 - 1e-6), reverse, rtol=1e-4, atol=1e-6)
    # Near the endpoints one KL to the mixture is a tiny difference of nearly equal numbers that is then
    # divided by a tiny beta: fp32 must still agree with the float64 formula.
    for beta in (1e-5, 1 - 1e-5):
        got = divergence(t.float(), s.float(), "jsd", beta=beta).double()
        torch.testing.assert_close(
            got,
            ref_divergence(teacher.reshape(-1, 11), student.reshape(-1, 11), "jsd", beta=beta),
            rtol=1e-5,
            atol=1e-6,
        )
    # At beta = 0.5 it is 4x the classic Jensen-Shannon divergence.
    p, q = t.exp(), s.exp()
    m = 0.5 * (p + q)
    classic = 0.5 * ref_kl(p, m) + 0.5 * ref_kl(q, m)
    torch.testing.assert_close(divergence(t, s, "jsd", beta=0.5), 4 * classic)


def test_skew_zero_is_the_plain_kl():
    student, teacher, _ = make_batch()
    t, s = F.log_softmax(teacher.reshape(-1, 11), -1), F.log_softmax(student.reshape(-1, 11), -1)
    torch.testing.assert_close(divergence(t, s, "skew_forward_kl", skew=0.0), divergence(t, s, "forward_kl"))
    torch.testing.assert_close(divergence(t, s, "skew_reverse_kl", skew=0.0), divergence(t, s, "reverse_kl"))
    assert divergence(t, s, "skew_forward_kl", skew=1.0).abs().max() < 1e-6


def test_unknown_divergence_and_vocab_mismatch_are_refused():
    student, teacher, labels = make_batch()
    with pytest.raises(ValueError, match="unknown divergence"):
        distill_loss(student, teacher, labels, divergence="kl")
    with pytest.raises(ValueError, match="vocabulary"):
        distill_loss(student, teacher[..., :-1], labels)


# -- the objective: masking, shift, normalisation ------------------------------------


@pytest.mark.parametrize("kind", DIVERGENCES)
@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_chunked_equals_naive_whole_batch_loss_and_gradient(kind, chunk):
    student, teacher, labels = make_batch()
    kw = dict(temperature=2.0, alpha=0.7, divergence=kind, beta=0.3, skew=0.2)
    parts, grad = loss_and_grad(student, teacher, labels, chunk_positions=chunk, **kw)
    leaf = student.double().requires_grad_(True)
    want = ref_loss(leaf, teacher, labels, kind, 2.0, 0.7, beta=0.3, skew=0.2)
    want.backward()
    torch.testing.assert_close(parts.loss.double(), want.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad.double(), leaf.grad, rtol=1e-4, atol=1e-6)
    assert torch.isclose(parts.loss, 0.7 * parts.kd + 0.3 * parts.ce)


@pytest.mark.parametrize("kind", DIVERGENCES)
def test_chunked_equals_naive_at_temperature_one_and_pure_kd(kind):
    student, teacher, labels = make_batch(seed=1)
    for temperature, alpha, t_squared in ((1.0, 0.4, True), (1.0, 1.0, True), (4.0, 1.0, False)):
        parts, grad = loss_and_grad(
            student,
            teacher,
            labels,
            temperature=temperature,
            alpha=alpha,
            divergence=kind,
            t_squared=t_squared,
            chunk_positions=4,
        )
        leaf = student.double().requires_grad_(True)
        want = ref_loss(leaf, teacher, labels, kind, temperature, alpha, t_squared=t_squared)
        want.backward()
        torch.testing.assert_close(parts.loss.double(), want.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad.double(), leaf.grad, rtol=1e-4, atol=1e-6)
        assert parts.ce > 0  # reported even when it carries no weight


def test_without_a_teacher_the_loss_is_cross_entropy_whatever_alpha():
    student, _, labels = make_batch()
    want = F.cross_entropy(student[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1))
    parts, grad = loss_and_grad(student, None, labels, alpha=1.0)
    torch.testing.assert_close(parts.loss, want)
    assert grad.abs().sum() > 0


def test_bf16_logits_get_a_bf16_gradient_close_to_fp32():
    student, teacher, labels = make_batch()
    _, grad32 = loss_and_grad(student, teacher, labels, temperature=2.0, chunk_positions=4)
    parts, grad16 = loss_and_grad(student.bfloat16(), teacher.bfloat16(), labels, temperature=2.0, chunk_positions=4)
    assert grad16.dtype == torch.bfloat16 and parts.loss.dtype == torch.float32
    torch.testing.assert_close(grad16.float(), grad32, rtol=0.05, atol=2e-3)


def test_padding_does_not_change_the_loss():
    student, teacher, labels = make_batch(pad_tail=(0, 1, 2))
    kw = dict(temperature=2.0, alpha=0.5, divergence="jsd")
    base, base_grad = loss_and_grad(student, teacher, labels, **kw)
    # Three more padded positions on every sequence, and one fully padded sequence, with garbage logits.
    g = torch.Generator().manual_seed(7)
    pad_s = torch.randn(4, 9, 11, generator=g) * 5
    pad_t = torch.randn(4, 9, 11, generator=g) * 5
    pad_s[:3, :6], pad_t[:3, :6] = student, teacher
    pad_labels = torch.full((4, 9), -100)
    pad_labels[:3, :6] = labels
    padded, padded_grad = loss_and_grad(pad_s, pad_t, pad_labels, **kw)
    assert padded.n_tokens == base.n_tokens == count_valid_tokens(labels)
    torch.testing.assert_close(padded.loss, base.loss)
    torch.testing.assert_close(padded.kd, base.kd)
    torch.testing.assert_close(padded.ce, base.ce)
    torch.testing.assert_close(padded_grad[:3, :6], base_grad)
    assert padded_grad[:3, 6:].abs().max() == 0 and padded_grad[3].abs().max() == 0


def test_count_valid_tokens_uses_the_shifted_labels():
    labels = torch.tensor([[5, 6, 7, -100], [-100, 1, -100, -100]])
    # targets are labels[:, 1:]: [6, 7, -100] and [1, -100, -100]
    assert count_valid_tokens(labels) == 3
    student, teacher, _ = make_batch(batch=2, seq=4, vocab=11)
    assert distill_loss(student, teacher, labels).n_tokens == 3


def _tiny_model_grads(input_ids, labels, teacher, micro_batches, use_step_count):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(11, 8), torch.nn.Linear(8, 11))
    step_tokens = count_valid_tokens(labels)
    for ids, lab, tea in zip(input_ids.chunk(micro_batches), labels.chunk(micro_batches), teacher.chunk(micro_batches)):
        n = step_tokens if use_step_count else None
        parts = distill_loss(model(ids), tea, lab, temperature=2.0, alpha=0.6, num_valid_tokens=n, chunk_positions=5)
        loss = parts.loss if use_step_count else parts.loss / micro_batches
        loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_micro_batches_with_the_step_token_count_give_the_same_gradients():
    _, teacher, labels = make_batch(batch=8, seq=6, pad_tail=(0, 4, 1, 3, 0, 2, 4, 0), seed=3)
    input_ids = torch.randint(0, 11, (8, 6), generator=torch.Generator().manual_seed(4))
    whole = _tiny_model_grads(input_ids, labels, teacher, 1, True)
    split = _tiny_model_grads(input_ids, labels, teacher, 4, True)
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-7)
    # Averaging per-micro-batch means instead weighs short sequences more: a different objective.
    naive = _tiny_model_grads(input_ids, labels, teacher, 4, False)
    assert not torch.allclose(naive, whole, rtol=1e-3, atol=1e-5)


def test_alpha_zero_is_hf_shifted_cross_entropy_and_needs_no_teacher():
    student, teacher, labels = make_batch()
    want = F.cross_entropy(student[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1), ignore_index=-100)
    for t in (teacher, None):
        parts = distill_loss(student, t, labels, alpha=0.0, temperature=4.0)
        torch.testing.assert_close(parts.loss, want)
        torch.testing.assert_close(parts.ce, want)
        assert parts.kd.item() == 0.0


def test_t_squared_switch_scales_the_kd_term():
    student, teacher, labels = make_batch()
    on = distill_loss(student, teacher, labels, temperature=3.0, alpha=0.5, t_squared=True)
    off = distill_loss(student, teacher, labels, temperature=3.0, alpha=0.5, t_squared=False)
    torch.testing.assert_close(on.kd, 9.0 * off.kd)
    torch.testing.assert_close(on.ce, off.ce)
    torch.testing.assert_close(on.loss - off.loss, 0.5 * (on.kd - off.kd))


def test_logits_at_t_predict_the_token_at_t_plus_one():
    labels = torch.tensor([[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7]])  # no token repeats its predecessor
    predicts_next = torch.full((2, 7, 11), -10.0)
    predicts_current = torch.full((2, 7, 11), -10.0)
    for b in range(2):
        for t in range(7):
            predicts_current[b, t, labels[b, t]] = 10.0
            if t + 1 < 7:
                predicts_next[b, t, labels[b, t + 1]] = 10.0
    assert distill_loss(predicts_next, None, labels).ce.item() < 1e-6
    assert distill_loss(predicts_current, None, labels).ce.item() > 15.0


def test_teacher_receives_no_gradient():
    student, teacher, labels = make_batch()
    teacher = teacher.requires_grad_(True)
    parts, grad = loss_and_grad(student, teacher, labels, alpha=0.8, temperature=2.0)
    assert teacher.grad is None and grad.abs().sum() > 0


# -- robustness ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", DIVERGENCES)
def test_no_nan_with_masked_vocab_ties_and_extreme_temperatures(kind):
    student, teacher, labels = make_batch(scale=8.0)
    student[..., 9:] = -INF  # padded vocabulary entries, masked in both models
    teacher[..., 9:] = -INF
    teacher[..., 0] = -INF  # and one entry only the teacher rules out
    labels = labels.clamp(max=8)
    student[0] = 1.5  # a position with all logits tied
    student[0, :, 9:] = -INF
    teacher[1, :, 1:4] = 20.0  # a tie between the teacher's top tokens
    finite_kinds = set(DIVERGENCES) - {"reverse_kl"}  # reverse KL is truly infinite where the teacher has no mass
    for temperature in (0.05, 1.0, 100.0):
        for alpha in (0.0, 0.5, 1.0):
            parts, grad = loss_and_grad(
                student, teacher, labels, temperature=temperature, alpha=alpha, divergence=kind, chunk_positions=4
            )
            if kind in finite_kinds or alpha == 0.0:
                assert torch.isfinite(parts.loss) and torch.isfinite(parts.kd) and torch.isfinite(parts.ce), (
                    temperature,
                    alpha,
                )
                assert torch.isfinite(grad).all(), (temperature, alpha)
            else:
                assert not torch.isnan(parts.kd)
    teacher[..., 0] = 0.0  # same support on both sides: every divergence is finite
    parts, grad = loss_and_grad(student, teacher, labels, temperature=0.05, divergence=kind)
    assert torch.isfinite(parts.loss) and torch.isfinite(grad).all()


@pytest.mark.parametrize("kind", DIVERGENCES)
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_a_row_that_does_not_count_cannot_make_the_loss_nan(kind, temperature):
    """An ignored row (every sequence's last, padding) is left out, whatever its terms. Here both models
    rule out token 0, which an ignored row's -100 target is clamped to, and on the last rows the student
    also rules out a token the teacher gives mass: infinite terms there, and inf x 0 is NaN."""
    student, teacher, labels = make_batch(batch=2, seq=5, vocab=7, pad_tail=(0, 2))
    labels = torch.where(labels == 0, 1, labels)  # no counted row's target is the ruled-out token
    student[..., 0] = -INF
    teacher[..., 0] = -INF
    last_rows_finite = student.clone()
    student[:, -1, 3] = -INF
    for alpha in (0.0, 0.5, 1.0):
        kw = dict(temperature=temperature, alpha=alpha, divergence=kind)
        parts, grad = loss_and_grad(student, teacher, labels, **kw)
        reference, reference_grad = loss_and_grad(last_rows_finite, teacher, labels, **kw)
        assert math.isfinite(parts.loss.item()) and math.isfinite(parts.ce.item()), (alpha, parts)
        torch.testing.assert_close(parts.loss, reference.loss, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(parts.ce, reference.ce, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad[:, :-1], reference_grad[:, :-1], rtol=1e-5, atol=1e-6)


def test_reverse_kl_outside_the_teacher_support_is_inf_not_nan():
    t = F.log_softmax(torch.tensor([[0.0, 1.0, -INF]]), -1)
    s = F.log_softmax(torch.tensor([[0.0, 1.0, 2.0]]), -1)
    assert divergence(t, s, "reverse_kl").item() == INF
    assert math.isfinite(divergence(t, s, "forward_kl").item())


@pytest.mark.parametrize("kind", DIVERGENCES)
def test_gradcheck_through_distill_loss(kind):
    student, teacher, labels = make_batch(batch=2, seq=4, vocab=5, scale=1.5, pad_tail=(0, 1))
    student = student.double().requires_grad_(True)

    def fn(s):
        return distill_loss(
            s,
            teacher.double(),
            labels,
            temperature=1.7,
            alpha=0.6,
            divergence=kind,
            beta=0.3,
            skew=0.2,
            chunk_positions=2,
        ).loss

    assert torch.autograd.gradcheck(fn, (student,), eps=1e-6, atol=1e-6)


# -- metrics -------------------------------------------------------------------------


def test_kl_per_position_is_the_true_kl():
    student, teacher, _ = make_batch()
    got = kl_per_position(teacher, student, temperature=2.0, chunk_positions=4)
    assert got.shape == (18,) and got.dtype == torch.float32
    torch.testing.assert_close(
        got.double(),
        ref_divergence(teacher.reshape(-1, 11), student.reshape(-1, 11), "forward_kl", 2.0),
        rtol=1e-4,
        atol=1e-6,
    )
    # True KL, not soft cross-entropy (which would be the entropy, about log 11 here): a copy scores 0.
    flat_teacher = teacher * 0.01
    assert kl_per_position(flat_teacher, flat_teacher.clone()).abs().max() < 1e-6
    assert kl_per_position(teacher.bfloat16(), teacher.bfloat16()).abs().max() < 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_teacher", [True, False])
def test_closed_form_forward_kl_gradient_equals_autograd(dtype, with_teacher):
    """Forward KL and plain CE take a closed-form gradient (losses.forward_kl_chunk); every other divergence
    goes through autograd. Both must give the same sums and the same gradient, masked rows and vocabulary included."""
    from workbench.engine.losses import (
        _autograd_chunk_loss,
        forward_kl_chunk,
        loss_targets_and_settings,
    )

    student, teacher, labels = make_batch(scale=4.0)
    student, teacher = student.to(dtype), teacher.to(dtype)
    teacher[..., 10] = -INF  # a token only the teacher rules out
    student[1, :, 9:] = -INF  # and a position where both do
    teacher[1, :, 9:] = -INF
    labels = labels.clamp(max=8)
    flat_student, flat_teacher = student.reshape(-1, 11), teacher.reshape(-1, 11)
    checked = 0
    for temperature in (0.5, 1.0, 2.0, 4.0):
        for alpha in (0.0, 0.3, 1.0):
            for t_squared in (True, False):
                targets, _, settings = loss_targets_and_settings(
                    labels,
                    student.device,
                    temperature=temperature,
                    alpha=alpha,
                    divergence="forward_kl",
                    beta=0.5,
                    skew=0.1,
                    t_squared=t_squared,
                    num_valid_tokens=torch.tensor(13),
                    chunk_positions=64,
                )
                t = flat_teacher if with_teacher else None
                if t is None and alpha == 1.0:
                    continue  # no teacher and no hard labels: nothing to differentiate
                kd, ce, grad = forward_kl_chunk(flat_student, t, targets, settings, True)
                kd_ref, ce_ref, grad_ref = _autograd_chunk_loss(flat_student, t, targets, settings, True)
                tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
                torch.testing.assert_close(kd, kd_ref, **tol)
                torch.testing.assert_close(ce, ce_ref, **tol)
                torch.testing.assert_close(grad, grad_ref, **tol)
                assert grad.dtype == dtype
                assert not grad[targets == -100].any()  # ignored rows get no gradient
                # The fused loss lets the closed form overwrite its own chunk logits: same results, the
                # gradient in the student chunk's storage.
                s_own, t_own = flat_student.clone(), (t.clone() if t is not None else None)
                kd_own, ce_own, grad_own = forward_kl_chunk(s_own, t_own, targets, settings, True, in_place=True)
                assert grad_own.data_ptr() == s_own.data_ptr()
                torch.testing.assert_close(grad_own, grad_ref, **tol)
                torch.testing.assert_close((kd_own, ce_own), (kd_ref, ce_ref), **tol)
                checked += 1
    assert checked == (24 if with_teacher else 16)


def test_loss_chunks_are_cache_sized_on_the_cpu_and_larger_on_a_gpu():
    """The CPU's chunks stay in cache; a GPU's are large enough that kernel launches stop dominating."""
    from workbench.engine.losses import loss_chunk_positions

    assert loss_chunk_positions(151936, 1024) == loss_chunk_positions(151936, 1024, "cpu") == 27
    assert loss_chunk_positions(151936, 1024, torch.device("cuda")) == 441
    assert loss_chunk_positions(49152, 1024, "cuda") == 1024  # the configured size, below the cap
    assert loss_chunk_positions(49152, 100, "cuda") == 100
    assert loss_chunk_positions(10**9, 1024, "cuda") == 1  # never 0
