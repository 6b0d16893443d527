"""Knowledge-distillation losses for causal language models, as pure functions.

The objective of the distillation stage is

    loss = alpha * T^2 * D(teacher_T || student_T) + (1 - alpha) * CE(labels, student)

where ``*_T`` are the softmax of the logits divided by the temperature ``T``, the
``T^2`` factor is a switch (on by default) and ``D`` is one of :data:`DIVERGENCES`.

One masking rule for every term: the logits at position ``t`` predict
``labels[:, t + 1]`` (the shift happens here, as in Hugging Face models), and a
position whose target is ``-100`` is left out of both terms. Sums are divided by
the number of valid tokens of the whole optimizer step when the caller passes it,
so gradient accumulation and data parallelism do not change the objective. The mask is applied as a
weight (every position is computed, an ignored one counts 0), never by selecting rows: a selection has a
data-dependent shape, which costs a host sync per call on an accelerator; the losses make none.

Everything is computed in fp32 (fp64 for fp64 inputs, which gradcheck needs), a
chunk of positions at a time: the full ``[batch * seq, vocab]`` fp32 tensors of a
naive implementation never exist. The gradient of each chunk is computed while
the loss is, and kept in one buffer of the logits' own dtype (see
:class:`_ChunkedDistillLoss`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from workbench.config.schema import DIVERGENCES

IGNORE_INDEX = -100

__all__ = [
    "DIVERGENCES",
    "IGNORE_INDEX",
    "LossParts",
    "count_valid_tokens",
    "distill_loss",
    "divergence",
    "kl_per_position",
    "valid_token_count",
]


# -- divergences between two distributions given as log-probabilities ---------


def _kl(logp: Tensor, logq: Tensor) -> Tensor:
    """KL(p || q) per row. Entries where p is 0 (masked or underflowed) contribute 0."""
    p = logp.exp()
    # Outside p's support logp - logq may be -inf - -inf = NaN; zero it before it is
    # multiplied, so neither the value nor the gradient sees the NaN. (In place: one
    # [N, V] temporary fewer, which matters at a 49k vocabulary.)
    log_ratio = (logp - logq).masked_fill_(p == 0, 0.0)
    return (p * log_ratio).sum(-1)


def _kl_to_mixture(loga: Tensor, logb: Tensor, log_weight_a: float, log_weight_b: float) -> Tensor:
    """KL(a || m) per row with m = w_a * a + w_b * b, from log-probabilities.

    Uses log(m / a) = logaddexp(log w_a, log w_b + log b - log a). When m is close
    to a (w_a near 1) this stays accurate term by term, where log m - log a would
    subtract two nearly equal numbers; the scaled JSD below divides by such a
    small KL, so the precision matters.
    """
    a = loga.exp()
    shifted_log_b_over_a = (logb - loga).masked_fill_(a == 0, 0.0).add_(log_weight_b)
    # A 0-d tensor broadcasts without an [N, V] copy; made by a fill on the device, not copied from the host
    # (a blocking host-to-device copy per chunk would be a sync on a GPU).
    first = torch.full((), log_weight_a, dtype=loga.dtype, device=loga.device)
    log_m_over_a = torch.logaddexp(first, shifted_log_b_over_a)
    return -(a * log_m_over_a).sum(-1)


def divergence(
    teacher_logp: Tensor, student_logp: Tensor, kind: str, *, beta: float = 0.5, skew: float = 0.1
) -> Tensor:
    """Per-position divergence between teacher and student, shape ``[N]``.

    ``teacher_logp`` and ``student_logp`` are log-probabilities ``[N, V]`` (already
    tempered; ``-inf`` marks an entry with probability 0). With p the teacher's and
    q the student's distribution:

    - ``forward_kl``: KL(p || q), mass-covering (the classic KD loss).
    - ``reverse_kl``: KL(q || p), mode-seeking.
    - ``jsd``: the generalized Jensen-Shannon divergence with mixture
      m = beta * p + (1 - beta) * q, **rescaled** by 1 / (beta * (1 - beta)):
      ``[beta * KL(p || m) + (1 - beta) * KL(q || m)] / (beta * (1 - beta))``.
      The scaling makes it run continuously from forward KL at beta = 0 to
      reverse KL at beta = 1 (both endpoints are those KLs exactly, as in TRL's
      ``generalized_jsd_loss``, which special-cases them); at beta = 0.5 it is
      4x the classic Jensen-Shannon divergence, so it is bounded by 4 ln 2.
    - ``skew_forward_kl``: KL(p || skew * p + (1 - skew) * q); skew = 0 is forward KL.
    - ``skew_reverse_kl``: KL(q || skew * q + (1 - skew) * p); skew = 0 is reverse KL.
    - ``tv``: total variation 0.5 * sum |p - q| (its gradient at p == q is 0).

    Entries where both sides are ``-inf`` contribute nothing. A KL whose first
    argument puts mass where its second has none is +inf (that is its value), never
    NaN; JSD, the skew KLs (for skew > 0) and TV are always finite.
    """
    if teacher_logp.shape != student_logp.shape:
        raise ValueError(
            f"teacher and student log-probabilities differ in shape: {tuple(teacher_logp.shape)} vs {tuple(student_logp.shape)}"
        )
    if kind == "forward_kl":
        return _kl(teacher_logp, student_logp)
    if kind == "reverse_kl":
        return _kl(student_logp, teacher_logp)
    if kind == "jsd":
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must lie in [0, 1], got {beta}")
        if beta == 0.0:
            return _kl(teacher_logp, student_logp)
        if beta == 1.0:
            return _kl(student_logp, teacher_logp)
        log_beta, log_one_minus_beta = math.log(beta), math.log1p(-beta)
        # beta * KL(p||m) / (beta (1-beta)) = KL(p||m) / (1-beta), and likewise for q.
        kl_teacher = _kl_to_mixture(teacher_logp, student_logp, log_beta, log_one_minus_beta)
        kl_student = _kl_to_mixture(student_logp, teacher_logp, log_one_minus_beta, log_beta)
        return kl_teacher / (1.0 - beta) + kl_student / beta
    if kind in ("skew_forward_kl", "skew_reverse_kl"):
        if not 0.0 <= skew <= 1.0:
            raise ValueError(f"skew must lie in [0, 1], got {skew}")
        first, second = (teacher_logp, student_logp) if kind == "skew_forward_kl" else (student_logp, teacher_logp)
        if skew == 0.0:
            return _kl(first, second)
        return _kl_to_mixture(first, second, math.log(skew), math.log1p(-skew) if skew < 1.0 else -math.inf)
    if kind == "tv":
        return 0.5 * (teacher_logp.exp() - student_logp.exp()).abs().sum(-1)
    raise ValueError(f"unknown divergence {kind!r}; choose one of {', '.join(DIVERGENCES)}")


# -- the training loss -------------------------------------------------------------


@dataclass
class LossParts:
    """What :func:`distill_loss` returns.

    ``kd`` and ``ce`` use the same denominator as ``loss``, so
    ``loss == alpha * kd + (1 - alpha) * ce``; with ``num_valid_tokens`` of a whole
    step, summing them over the step's micro-batches gives the step's means.

    Every field is a tensor on the loss's device: reading one as a Python number is a host sync, which
    the training loop does once per logged step, never per micro-batch.
    """

    loss: Tensor
    """Scalar to call ``backward()`` on."""
    kd: Tensor
    """Detached scalar: mean divergence per valid token, including T^2 when that switch is on (0 without a teacher)."""
    ce: Tensor
    """Detached scalar: mean hard-label cross-entropy per valid token, at temperature 1."""
    valid: Tensor
    """0-d int64: valid tokens (targets other than -100) in this call."""
    hidden: Tensor | None = None
    """Detached scalar: the hidden-state matching term before its weight, with the same denominator (None
    when it is off; then ``loss`` has no such term). See engine/hidden_match.py."""
    surrogate: Tensor | None = None
    """Detached scalar: the part of ``loss`` that is there only for its gradient (the on-policy sequence-level
    term, weighted: :func:`sequence_term`), whose value means nothing; the logged loss leaves it out. None when
    there is none."""

    @property
    def n_tokens(self) -> int:
        """``valid`` as an int (a host sync: for tests and reports, not the training loop)."""
        return int(self.valid)


LOSS_CHUNK_ELEMENTS = 2**22
"""Most logits (positions x vocabulary) the loss handles per chunk on the CPU: about 16 MB per fp32
temporary, small enough to stay in cache (at vocabulary 49152 chunks of ~85 positions run the loss 2x
faster than chunks of 1024, see scripts/bench_speed.py) and to keep its memory flat."""

LOSS_CHUNK_ELEMENTS_ACCELERATOR = 2**26
"""The same cap on a GPU (or any device but the CPU): 256 MB per fp32 temporary. There a chunk's cost is
its ~15 kernel launches and their Python dispatch, not the cache: on an H200 at vocabulary 151936 and
8192 positions per micro-batch, the CPU's cap (27 positions, 304 chunks) made the chunked loss cost 0.14 s
of a 0.22 s step where the unchunked recipe's whole loss cost 0.02 s (docs/gpu-check.md)."""


def loss_chunk_positions(vocab_size: int, configured: int, device: torch.device | str | None = None) -> int:
    """Positions per loss chunk: ``distill.chunk_positions``, capped by LOSS_CHUNK_ELEMENTS on the CPU (and
    when ``device`` is not given) and by LOSS_CHUNK_ELEMENTS_ACCELERATOR on any other device."""
    on_cpu = device is None or torch.device(device).type == "cpu"
    cap = LOSS_CHUNK_ELEMENTS if on_cpu else LOSS_CHUNK_ELEMENTS_ACCELERATOR
    return max(1, min(configured, cap // max(vocab_size, 1)))


def valid_token_count(labels: Tensor) -> Tensor:
    """0-d int64 on ``labels``' device: positions t whose target ``labels[:, t + 1]`` is not -100 (no sync)."""
    return (labels[:, 1:] != IGNORE_INDEX).sum()


def count_valid_tokens(labels: Tensor) -> int:
    """:func:`valid_token_count` as an int (a host sync when ``labels`` are on an accelerator)."""
    return int(valid_token_count(labels).item())


@dataclass(frozen=True)
class LossSettings:
    """What one call of the chunked loss needs besides the tensors (checked by :func:`distill_loss`)."""

    temperature: float
    alpha: float
    divergence: str
    beta: float
    skew: float
    kd_scale: float  # T^2, or 1 with the T^2 switch off
    denominator: int | Tensor  # valid tokens of the whole optimizer step (a 0-d tensor when counted on the device)
    chunk_positions: int
    compile: bool = False  # train.compile: each chunk's terms through torch.compile (compiled_chunk_terms)

    def means(self, kd_sum: Tensor, ce_sum: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(loss, kd, ce)`` from the sums over the valid positions: the one place the T^2, alpha and
        denominator rules are applied to the sums (the chunked, fused and top-k losses all end here)."""
        kd_mean = kd_sum * self.kd_scale / self.denominator
        ce_mean = ce_sum / self.denominator
        return self.alpha * kd_mean + (1.0 - self.alpha) * ce_mean, kd_mean, ce_mean


def check_loss_arguments(temperature: float, alpha: float, divergence: str, chunk_positions: int) -> None:
    """The checks :func:`distill_loss` (and the fused loss) make on their scalar arguments."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if divergence not in DIVERGENCES:
        raise ValueError(f"unknown divergence {divergence!r}; choose one of {', '.join(DIVERGENCES)}")
    if chunk_positions < 1:
        raise ValueError(f"chunk_positions must be >= 1, got {chunk_positions}")


def loss_targets_and_settings(
    labels: Tensor,
    device: torch.device,
    *,
    temperature: float,
    alpha: float,
    divergence: str,
    beta: float,
    skew: float,
    t_squared: bool,
    num_valid_tokens: int | Tensor | None,
    chunk_positions: int,
    compile: bool = False,
) -> tuple[Tensor, Tensor, LossSettings]:
    """The flat ``[B * L]`` targets of every position (on ``device``), their valid count and the settings.

    The masking rule of the module: row ``b * L + t`` predicts ``labels[b, t + 1]``; the last position of
    each sequence has target -100, and a row whose target is -100 contributes nothing. No host sync: the
    rows are not selected (a data-dependent shape) but weighted by that mask. The denominator is
    ``num_valid_tokens`` (an int, or a 0-d tensor counted on the device) or this call's count, at least 1.
    """
    labels = labels.to(device, non_blocking=True)
    targets = torch.full_like(labels, IGNORE_INDEX)
    targets[:, :-1] = labels[:, 1:]
    targets = targets.reshape(-1)
    valid = (targets != IGNORE_INDEX).sum()
    if num_valid_tokens is None:
        denominator = valid.clamp_min(1)  # an all-padding batch gives 0, not 0 / 0
    elif isinstance(num_valid_tokens, Tensor):
        denominator = num_valid_tokens.to(device).clamp_min(1)
    else:
        denominator = max(int(num_valid_tokens), 1)
    kd_scale = float(temperature) ** 2 if t_squared else 1.0
    settings = LossSettings(
        float(temperature),
        float(alpha),
        divergence,
        float(beta),
        float(skew),
        kd_scale,
        denominator,
        int(chunk_positions),
        bool(compile),
    )
    return targets, valid, settings


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def scale_saved_gradients(ctx, grad_loss: Tensor, grads: tuple[Tensor | None, ...]) -> tuple[Tensor | None, ...]:
    """The backward of a loss whose gradients were computed in forward: ``grads`` times ``grad_loss``.

    Scaled in place, so backward makes no second gradient-sized tensor (and, unlike a check for
    ``grad_loss == 1``, no host sync). The scaling goes through ``.data`` so the saved tensors' version
    does not change: a retained graph run backward again (gradcheck does) is scaled by the ratio to the
    previous ``grad_loss`` (after a zero ``grad_loss`` it cannot be)."""
    previous = getattr(ctx, "applied_scale", None)
    factor = grad_loss if previous is None else grad_loss / previous
    ctx.applied_scale = grad_loss.detach().clone()
    for g in grads:
        if g is not None:
            g.data.mul_(factor.to(g.dtype))
    return grads


def _chunk_terms(student: Tensor, teacher_chunk: Tensor | None, targets: Tensor, settings: LossSettings):
    """``(total, kd, ce)`` of one chunk: the sums of the divergence and of the CE over its rows, and the
    chunk's share of the loss before the denominator, with its graph back to ``student`` (fp32 rows).

    Rows whose target is -100 are computed but weighted 0 (no data-dependent shape, no sync); their
    gradient is exactly 0. The part :func:`compiled_chunk_terms` compiles."""
    temperature, alpha = settings.temperature, settings.alpha
    kd = torch.zeros((), dtype=student.dtype, device=student.device)
    student_logp = None
    if teacher_chunk is not None:
        teacher_logp = F.log_softmax(teacher_chunk.to(student.dtype) / temperature, dim=-1)
        student_logp = F.log_softmax(student / temperature if temperature != 1.0 else student, dim=-1)
        per_row = divergence(teacher_logp, student_logp, settings.divergence, beta=settings.beta, skew=settings.skew)
        kd = torch.where(targets != IGNORE_INDEX, per_row, 0.0).sum()
        del teacher_logp, per_row
    # At T = 1 the hard-label term reuses the tempered log-probabilities instead of a
    # second log-softmax; at alpha = 1 it is only reported, so it builds no graph.
    with torch.no_grad() if alpha == 1.0 else contextlib.nullcontext():
        hard_logp = student_logp if student_logp is not None and temperature == 1.0 else F.log_softmax(student, dim=-1)
        ce = F.nll_loss(hard_logp, targets, reduction="sum", ignore_index=IGNORE_INDEX)
    total = (alpha * settings.kd_scale) * kd if teacher_chunk is not None else kd
    if alpha < 1.0:
        total = total + (1.0 - alpha) * ce
    return total, kd, ce


_COMPILED: dict[str, object] = {}


def compiled_chunk_terms():
    """:func:`_chunk_terms` through ``torch.compile`` (made once per process; ``train.compile``).

    Compilation happens at the first call of each chunk shape (two per run: the full chunk and the last,
    shorter one), and fails there if the platform cannot compile (no C++ compiler, an unsupported
    device): :func:`chunk_terms_function` turns that into one clear sentence."""
    if "terms" not in _COMPILED:
        _COMPILED["terms"] = torch.compile(_chunk_terms, dynamic=False)
    return _COMPILED["terms"]


class CompileFailed(RuntimeError):
    """``torch.compile`` could not compile the loss on this platform (``train.compile``)."""

    @classmethod
    def of(cls, err: BaseException) -> CompileFailed:
        """The one-sentence form of whatever ``torch.compile`` raised (its first line)."""
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return cls(f"torch.compile could not compile the loss on this platform ({first[:200]})")


def _call_terms(student, teacher_chunk, targets, settings: LossSettings):
    if not settings.compile:
        return _chunk_terms(student, teacher_chunk, targets, settings)
    try:
        return compiled_chunk_terms()(student, teacher_chunk, targets, settings)
    except Exception as err:  # noqa: BLE001 - torch.compile raises many kinds (inductor, a missing compiler)
        raise CompileFailed.of(err) from err


def _is_forward_kl(settings: LossSettings) -> bool:
    """Whether the divergence is KL(p || q) exactly: forward KL, JSD at beta 0, or the skew forward KL at skew 0."""
    kind = settings.divergence
    return (
        kind == "forward_kl"
        or (kind == "jsd" and settings.beta == 0.0)
        or (kind == "skew_forward_kl" and settings.skew == 0.0)
    )


def forward_kl_chunk(student_chunk, teacher_chunk, targets, settings: LossSettings, want_grad, *, in_place=False):
    """:func:`_chunk_loss` for forward KL (or no teacher), with the gradient in closed form instead of autograd.

    With q_T = softmax(s / T), p_T = softmax(t / T) and c = softmax(s), the gradient of a row's share is
    ``alpha * kd_scale / T * (q_T - p_T) + (1 - alpha) * (c - onehot(target))``, over the denominator,
    and 0 on rows whose target is -100. The same value as autograd through :func:`_chunk_terms` (tests:
    test_losses.py), in about half the passes over the ``[chunk, V]`` rows: forward KL is the default
    divergence and this loss is most of what distillation adds to a plain CE step.

    ``in_place``: the chunks are the caller's own compute-dtype temporaries (the fused loss's chunk logits);
    they are overwritten, and the gradient returned is ``student_chunk`` itself, so a chunk allocates two
    ``[chunk, V]`` tensors fewer.
    """
    dtype = _compute_dtype(student_chunk.dtype)
    temperature, alpha = settings.temperature, settings.alpha
    # Aliasing log_softmax's output with its input is safe in PyTorch's CPU kernel (each element is read before
    # it is written); other devices' kernels make no such promise, so they get fresh tensors.
    in_place = (
        in_place
        and student_chunk.device.type == "cpu"
        and student_chunk.dtype == dtype
        and (teacher_chunk is None or teacher_chunk.dtype == dtype)
    )
    with torch.autocast(student_chunk.device.type, enabled=False), torch.no_grad():
        student = student_chunk.detach().to(dtype)
        counted = targets != IGNORE_INDEX
        weight = counted.to(dtype)
        safe_targets = targets.clamp_min(0)[:, None]  # an ignored row's index is never used with a non-zero weight
        if temperature == 1.0 or teacher_chunk is None:  # one log-softmax: the hard one (and the tempered)
            hard_logp = torch.log_softmax(student, dim=-1, out=student) if in_place else F.log_softmax(student, dim=-1)
            tempered_logp = hard_logp
        else:
            hard_logp = F.log_softmax(student, dim=-1)
            if in_place:
                tempered_logp = torch.log_softmax(student.div_(temperature), dim=-1, out=student)
            else:
                tempered_logp = F.log_softmax(student / temperature, dim=-1)
        # Ignored rows are selected out with where, not weighted 0: their terms may be infinite (a -inf
        # student logit at token 0, which an ignored row looks up), and inf x 0 would make the sum NaN.
        ce = -torch.where(counted, hard_logp.gather(1, safe_targets)[:, 0], 0.0).sum()
        kd = torch.zeros((), dtype=dtype, device=student.device)
        teacher_p = None
        if teacher_chunk is not None:
            if in_place:
                teacher_logp = torch.log_softmax(teacher_chunk.div_(temperature), dim=-1, out=teacher_chunk)
            else:
                teacher_logp = F.log_softmax(teacher_chunk.to(dtype) / temperature, dim=-1)
            teacher_p = teacher_logp.exp()
            # p * (log p - log q) in place; where p is 0 beside a -inf log p the product is NaN and nansum
            # leaves it out (the entry contributes nothing), and p > 0 against log q = -inf stays +inf.
            per_row = torch.nansum(teacher_logp.sub_(tempered_logp).mul_(teacher_p), dim=-1)
            del teacher_logp
            kd = torch.where(counted, per_row, 0.0).sum()
        if not want_grad:
            return kd, ce, None
        denominator = torch.as_tensor(settings.denominator, dtype=dtype, device=student.device)
        hard_weight = weight * ((1.0 - alpha) / denominator)
        if teacher_p is None:
            grad = hard_logp.exp_().mul_(hard_weight[:, None])
        else:
            kd_weight = weight * (alpha * settings.kd_scale / temperature / denominator)
            if temperature == 1.0:  # tempered and hard probabilities are the same rows: one pass fewer
                grad = tempered_logp.exp_().mul_((kd_weight + hard_weight)[:, None])
                grad.sub_(teacher_p.mul_(kd_weight[:, None]))
            else:
                grad = tempered_logp.exp_().sub_(teacher_p).mul_(kd_weight[:, None])
                if alpha < 1.0:
                    grad.addcmul_(hard_logp.exp_(), hard_weight[:, None])
        if alpha < 1.0 or teacher_p is None:
            grad.scatter_add_(1, safe_targets, -hard_weight[:, None])
    return kd, ce, grad


def _chunk_loss(student_chunk, teacher_chunk, targets, settings: LossSettings, want_grad, *, in_place=False):
    """Sum of the divergence and of the CE over one chunk of rows, and the gradient of
    this chunk's share of the loss with respect to those student logits (or None).

    A function of its own so every [chunk, V] temporary is freed when it returns. Forward KL (and plain CE)
    takes the closed form of :func:`forward_kl_chunk` unless the terms are compiled (``train.compile``);
    ``in_place`` lets that form overwrite both chunks (see there).
    """
    if not settings.compile and (teacher_chunk is None or _is_forward_kl(settings)):
        return forward_kl_chunk(student_chunk, teacher_chunk, targets, settings, want_grad, in_place=in_place)
    return _autograd_chunk_loss(student_chunk, teacher_chunk, targets, settings, want_grad)


def _autograd_chunk_loss(student_chunk, teacher_chunk, targets, settings: LossSettings, want_grad):
    """:func:`_chunk_loss` through autograd on :func:`_chunk_terms`: every divergence, compiled or not."""
    dtype = _compute_dtype(student_chunk.dtype)
    student = student_chunk.detach().to(dtype).requires_grad_(want_grad)
    # The caller may run under bf16/fp16 autocast; the loss stays in fp32 regardless.
    with torch.autocast(student.device.type, enabled=False), torch.enable_grad() if want_grad else torch.no_grad():
        total, kd, ce = _call_terms(student, teacher_chunk, targets, settings)
        if not want_grad:
            return kd, ce, None
        # Scale before differentiating so the stored gradient is the final one
        # (and sits well inside bf16's range).
        (grad,) = torch.autograd.grad(total / settings.denominator, student)
    return kd.detach(), ce.detach(), grad


class _ChunkedDistillLoss(torch.autograd.Function):
    """Loss over the rows of the logits, a chunk at a time, with its gradient precomputed.

    Forward takes each chunk of rows, upcasts it to fp32, computes the chunk's
    share of the loss and, through ``torch.autograd.grad`` on a detached leaf,
    its gradient with respect to those student logits, which it writes into one
    buffer of the logits' dtype. Backward only scales that buffer. So the fp32
    temporaries never exceed one chunk, whatever the divergence, and nothing else
    is kept for backward.
    """

    @staticmethod
    def forward(ctx, student_logits, teacher_logits, targets, settings: LossSettings):  # noqa: D401
        want_grad = ctx.needs_input_grad[0]
        vocab = student_logits.shape[-1]
        dtype = _compute_dtype(student_logits.dtype)
        flat_student = student_logits.reshape(-1, vocab)
        flat_teacher = teacher_logits.reshape(-1, vocab) if teacher_logits is not None else None
        grad_buffer = torch.empty_like(flat_student) if want_grad else None
        kd_sum = torch.zeros((), dtype=dtype, device=student_logits.device)
        ce_sum = torch.zeros((), dtype=dtype, device=student_logits.device)

        chunk = settings.chunk_positions
        for start in range(0, flat_student.shape[0], chunk):
            stop = start + chunk
            kd, ce, grad = _chunk_loss(
                flat_student[start:stop],
                flat_teacher[start:stop] if flat_teacher is not None else None,
                targets[start:stop],
                settings,
                want_grad,
            )
            if grad is not None:
                grad_buffer[start:stop].copy_(grad)
            kd_sum += kd
            ce_sum += ce
            del grad  # before the next chunk is allocated, so two chunks never coexist

        loss, kd_mean, ce_mean = settings.means(kd_sum, ce_sum)
        if want_grad:
            ctx.save_for_backward(grad_buffer.view(student_logits.shape))
        ctx.mark_non_differentiable(kd_mean, ce_mean)
        return loss, kd_mean, ce_mean

    @staticmethod
    def backward(ctx, grad_loss, _grad_kd, _grad_ce):
        (grad_buffer,) = scale_saved_gradients(ctx, grad_loss, ctx.saved_tensors)
        return grad_buffer, None, None, None


def distill_loss(
    student_logits: Tensor,
    teacher_logits: Tensor | None,
    labels: Tensor,
    *,
    temperature: float = 1.0,
    alpha: float = 0.5,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    skew: float = 0.1,
    t_squared: bool = True,
    num_valid_tokens: int | Tensor | None = None,
    chunk_positions: int = 1024,
    compile: bool = False,
) -> LossParts:
    """The distillation objective for one micro-batch.

    ``student_logits`` and ``teacher_logits`` are ``[B, L, V]`` in any float dtype
    (computed in fp32); ``labels`` is ``[B, L]`` token ids with -100 for ignored
    positions (padding). The logits at position t predict ``labels[:, t + 1]``.

    ``loss = alpha * (T^2 if t_squared) * sum(D) / n + (1 - alpha) * sum(CE) / n``
    where D is :func:`divergence` between the tempered teacher and student, CE the
    hard-label cross-entropy of the untempered student, and n is
    ``num_valid_tokens`` when given (the valid tokens of the whole optimizer step,
    across micro-batches and processes; an int or a 0-d tensor) or else this call's count.

    ``teacher_logits`` None or ``alpha == 0`` gives plain cross-entropy (the
    teacher stage, or a hard-label baseline). The teacher never receives a
    gradient. Memory: fp32 temporaries for ``chunk_positions`` positions at a time
    plus one gradient buffer the size of ``student_logits``. No host sync. ``compile`` runs each chunk's
    terms through ``torch.compile`` (``train.compile``).
    """
    if student_logits.dim() != 3:
        raise ValueError(f"student_logits must be [batch, seq, vocab], got shape {tuple(student_logits.shape)}")
    if labels.shape != student_logits.shape[:2]:
        raise ValueError(
            f"labels shape {tuple(labels.shape)} does not match the logits' [batch, seq] {tuple(student_logits.shape[:2])}"
        )
    check_loss_arguments(temperature, alpha, divergence, chunk_positions)
    if teacher_logits is None:
        alpha = 0.0  # no teacher: the hard-label objective, whatever alpha says
    if alpha == 0.0:
        teacher_logits = None
    if teacher_logits is not None:
        if teacher_logits.shape[-1] != student_logits.shape[-1]:
            raise ValueError(
                f"teacher vocabulary ({teacher_logits.shape[-1]}) differs from the student's ({student_logits.shape[-1]}); "
                "distillation needs the same tokenizer and the same logits width on both sides"
            )
        if teacher_logits.shape != student_logits.shape:
            raise ValueError(
                f"teacher logits {tuple(teacher_logits.shape)} and student logits {tuple(student_logits.shape)} differ in shape"
            )
        teacher_logits = teacher_logits.detach()

    targets, valid, settings = loss_targets_and_settings(
        labels,
        student_logits.device,
        temperature=temperature,
        alpha=alpha,
        divergence=divergence,
        beta=beta,
        skew=skew,
        t_squared=t_squared,
        num_valid_tokens=num_valid_tokens,
        chunk_positions=chunk_positions,
        compile=compile,
    )
    loss, kd, ce = _ChunkedDistillLoss.apply(student_logits, teacher_logits, targets, settings)
    return LossParts(loss=loss, kd=kd.detach(), ce=ce.detach(), valid=valid)


# -- metrics -----------------------------------------------------------------------


@torch.no_grad()
def kl_per_position(
    teacher_logits: Tensor, student_logits: Tensor, temperature: float = 1.0, *, chunk_positions: int = 1024
) -> Tensor:
    """True KL(teacher || student) at each position, fp32, shape ``[N]``.

    Logits are ``[..., V]``; all leading dimensions are flattened, no shift or mask
    is applied (select positions before or after). This is the KL itself, not the
    soft cross-entropy, so a student that matches the teacher scores 0.
    """
    if teacher_logits.shape[-1] != student_logits.shape[-1]:
        raise ValueError(
            f"teacher vocabulary ({teacher_logits.shape[-1]}) differs from the student's ({student_logits.shape[-1]})"
        )
    vocab = teacher_logits.shape[-1]
    teacher = teacher_logits.reshape(-1, vocab)
    student = student_logits.reshape(-1, vocab)
    if teacher.shape != student.shape:
        raise ValueError(
            f"teacher logits {tuple(teacher_logits.shape)} and student logits {tuple(student_logits.shape)} differ in shape"
        )
    out = torch.empty(teacher.shape[0], dtype=torch.float32, device=teacher.device)
    for start in range(0, teacher.shape[0], chunk_positions):
        stop = start + chunk_positions
        teacher_logp = F.log_softmax(teacher[start:stop].float() / temperature, dim=-1)
        student_logp = F.log_softmax(student[start:stop].float() / temperature, dim=-1)
        out[start:stop] = _kl(teacher_logp, student_logp)
    return out


def sequence_term(
    student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, num_valid_tokens, chunk_positions: int = 1024
) -> Tensor:
    """``distill.on_policy_sequence_weight``'s term: the long-term part of the sequence-level reverse KL
    ``J = E_student[sum_t c_t]``, ``c_t = log s(x_t | x<t) - log t(x_t | x<t)``, on a batch of the student's
    own samples ``x``.

    ``grad J = E[sum_t grad KL_t(x<t)] + E[sum_t grad log s(x_t | x<t) * sum_{t' > t} c_t']``: the first part is
    each visited position's own reverse KL, which the divergence term gives exactly; this is the second, the
    score-function (REINFORCE) estimate ``sum_t log s(x_t) * A_t`` with ``A_t`` (no gradient) the summed cost
    of the sample's later tokens minus the same sum averaged over the batch's other rows (a leave-one-out
    baseline: it lowers the variance and leaves the expectation exactly as it is; a batch of one row has
    none). So with reverse KL as the on-policy divergence and weight 1, the two terms together are an
    unbiased estimate of the gradient of the whole samples' reverse KL. Positions whose label is -100 (the
    prompt) cost nothing and are not pushed. Log-probabilities at T = 1, the distribution the samples come
    from when ``on_policy_temperature`` is 1 and ``on_policy_top_p`` is 1 (otherwise the samples come from
    another distribution and the estimate is of a nearby objective). The per-position part is the divergence
    term at ``distill.temperature``: only at T = 1 do the two add up to the sequence-level reverse KL (at T = 2
    with T² on, that part weighs 4x its share). Divided by ``num_valid_tokens`` like the other terms. The
    log-probabilities are taken ``chunk_positions`` positions at a time, so no fp32 copy of the logits is
    made beyond one chunk. Makes no host sync.
    """
    targets = labels[:, 1:]
    valid = targets != -100
    safe = targets.clamp(min=0)
    rows, positions = targets.shape
    dtype = _compute_dtype(student_logits.dtype)
    step = max(1, chunk_positions // max(rows, 1))
    log_s_parts, log_t_parts = [], []
    for start in range(0, positions, step):
        end = min(start + step, positions)
        student = student_logits[:, start:end].to(dtype)
        index = safe[:, start:end].unsqueeze(-1)
        log_s_parts.append(student.gather(-1, index).squeeze(-1) - torch.logsumexp(student, dim=-1))
        with torch.no_grad():
            teacher = teacher_logits[:, start:end].to(dtype)
            log_t_parts.append(teacher.gather(-1, index).squeeze(-1) - torch.logsumexp(teacher, dim=-1))
    log_s, log_t = torch.cat(log_s_parts, dim=1), torch.cat(log_t_parts, dim=1)
    with torch.no_grad():
        zero = torch.zeros((), device=log_s.device, dtype=log_s.dtype)
        cost = torch.where(valid, log_s.detach() - log_t, zero)
        later = cost.flip(1).cumsum(1).flip(1) - cost  # the summed cost of the sample's tokens after t
        others = (later.sum(0, keepdim=True) - later) / max(rows - 1, 1)  # the other rows' mean
        advantage = torch.where(valid, later - others, zero)
    denominator = num_valid_tokens.clamp(min=1) if isinstance(num_valid_tokens, Tensor) else max(num_valid_tokens, 1)
    return (log_s * advantage).sum() / denominator
