"""The KD + CE loss computed from the final hidden states, without ever materialising the logits.

:func:`fused_distill_loss` gives what :func:`workbench.engine.losses.distill_loss` gives on
``logits = hidden @ weight.T (+ bias)``, for the student and (when there is one) the teacher, but it
forms those logits a chunk of positions at a time: per chunk it computes the chunk's logits, the
chunk's loss and the gradient with respect to those logits (the same ``_chunk_loss``, so every
divergence and the alpha / T / T^2 rules are those of losses.py), and turns that gradient at once
into the gradient with respect to the hidden states (``grad_logits @ W``) and to the output weight
(``grad_logits.T @ h``). No ``[batch * seq, vocab]`` tensor exists, neither fp32 nor in the model's
dtype: memory is one chunk's fp32 temporaries plus gradient buffers the size of the hidden states and
of the output weight.

The loss is computed in fp32 (fp64 for fp64 inputs). The matrix products that make the logits and
their gradients run in fp32 too, or, with ``matmul_dtype`` (a bf16/fp16 run passes its autocast dtype), in
that dtype, as the model's own head runs under autocast: on a GPU, fp32 products run on the plain fp32
units, about a tenth of the bf16 tensor cores' rate (four products of 1.4 TFLOP each per micro-batch at
vocabulary 151936, 8192 positions and hidden 576).
"""

from __future__ import annotations

import torch
from torch import Tensor

from workbench.engine.losses import (
    LossParts,
    LossSettings,
    _chunk_loss,
    _compute_dtype,
    check_loss_arguments,
    loss_chunk_positions,
    loss_targets_and_settings,
    scale_saved_gradients,
)

__all__ = ["fused_distill_loss"]

GRADIENT_GROUP = 3
"""Loss chunks whose logits' gradients are turned into the weight's gradient in one matrix product. More
is fewer passes over the ``[V, H]`` weight gradient and more memory: at the CPU's 2**22-logit chunk cap each
chunk in the group is 16 MB of fp32 (scripts/bench_fused.py)."""


def _chunk_logits(
    hidden_chunk: Tensor, weight: Tensor, bias: Tensor | None, dtype, out: Tensor | None = None
) -> Tensor:
    """The chunk's logits in ``dtype`` (in ``out`` when given), the product in ``weight``'s dtype."""
    if weight.dtype == dtype:
        logits = torch.mm(hidden_chunk.to(dtype), weight.t(), out=out)
    else:  # a half-precision product, widened
        product = torch.mm(hidden_chunk.to(weight.dtype), weight.t())
        logits = out.copy_(product) if out is not None else product.to(dtype)
        del product
    if bias is not None:
        logits += bias
    return logits


class _FusedDistillLoss(torch.autograd.Function):
    """Loss over the rows (a -100 target weighs 0), from hidden states and output weights, a chunk at a time.

    Forward computes, per chunk, the logits, the loss and (through ``_chunk_loss``) the gradient of
    the chunk's share of the loss with respect to those logits, and accumulates it into gradients for
    the hidden states, the weight and the bias; backward only scales them.
    """

    @staticmethod
    def forward(
        ctx,
        hidden,
        weight,
        bias,
        teacher_hidden,
        teacher_weight,
        teacher_bias,
        targets,
        settings: LossSettings,
        matmul_dtype,
    ):  # noqa: D401
        want_hidden, want_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        want_bias = bias is not None and ctx.needs_input_grad[2]
        want_grad = want_hidden or want_weight or want_bias
        dtype = _compute_dtype(hidden.dtype)
        device = hidden.device
        width = hidden.shape[-1]
        flat_hidden = hidden.reshape(-1, width)
        products = matmul_dtype or dtype  # the dtype of the matrix products
        with torch.autocast(device.type, enabled=False), torch.no_grad():
            w = weight.to(products)  # no copy when it is already in that dtype
            b = bias.to(dtype) if bias is not None else None
            teacher = None
            if teacher_hidden is not None:
                flat_teacher = teacher_hidden.reshape(-1, teacher_hidden.shape[-1])
                tw = teacher_weight.to(products)
                tb = teacher_bias.to(dtype) if teacher_bias is not None else None
                teacher = (flat_teacher, tw, tb)
            grad_hidden = torch.empty(flat_hidden.shape, dtype=dtype, device=device) if want_hidden else None
            grad_weight = torch.zeros(w.shape, dtype=dtype, device=device) if want_weight else None  # fp32 sums
            grad_bias = torch.zeros(w.shape[0], dtype=dtype, device=device) if want_bias else None
            kd_sum = torch.zeros((), dtype=dtype, device=device)
            ce_sum = torch.zeros((), dtype=dtype, device=device)
            chunk = settings.chunk_positions
            rows = flat_hidden.shape[0]
            # The gradients of GRADIENT_GROUP chunks' logits are kept side by side and turned into the hidden
            # states' and the weight's gradients together: one matrix product over up to GRADIENT_GROUP x chunk
            # positions reads and writes the [V, H] weight gradient once, where one per chunk did so for each.
            group_rows = min(rows, chunk * GRADIENT_GROUP) if want_grad else 0
            group = torch.empty((group_rows, w.shape[0]), dtype=dtype, device=device) if want_grad else None
            for group_start in range(0, rows, group_rows or chunk):
                group_stop = min(rows, group_start + (group_rows or chunk))
                for start in range(group_start, group_stop, chunk):
                    stop = min(group_stop, start + chunk)
                    # With a gradient, the chunk's logits are made in the group buffer and become its gradient there.
                    out = group[start - group_start : stop - group_start] if want_grad else None
                    student_logits = _chunk_logits(flat_hidden[start:stop], w, b, dtype, out)
                    teacher_logits = (
                        _chunk_logits(teacher[0][start:stop], teacher[1], teacher[2], dtype) if teacher else None
                    )
                    kd, ce, grad = _chunk_loss(
                        student_logits, teacher_logits, targets[start:stop], settings, want_grad, in_place=True
                    )
                    if grad is not None and grad.data_ptr() != student_logits.data_ptr():
                        student_logits.copy_(grad)  # the autograd path's gradient is a tensor of its own
                    del student_logits, teacher_logits, grad
                    kd_sum += kd
                    ce_sum += ce
                if want_grad:
                    grads = group[: group_stop - group_start]
                    # the products in their dtype (a half-precision copy of the group's gradients when it
                    # is not fp32); the bias's gradient, a sum, stays fp32
                    grads_mm = grads if products == dtype else grads.to(products)
                    if want_hidden:
                        if products == dtype:
                            torch.mm(grads_mm, w, out=grad_hidden[group_start:group_stop])
                        else:
                            grad_hidden[group_start:group_stop].copy_(torch.mm(grads_mm, w))
                    if want_weight:
                        h = flat_hidden[group_start:group_stop].to(products)
                        if products == dtype:
                            grad_weight.addmm_(grads_mm.t(), h)
                        else:
                            grad_weight.add_(torch.mm(grads_mm.t(), h))
                        del h
                    if want_bias:
                        grad_bias += grads.sum(0)
                    del grads, grads_mm
            del group

        loss, kd_mean, ce_mean = settings.means(kd_sum, ce_sum)
        ctx.save_for_backward(
            grad_hidden.view(hidden.shape).to(hidden.dtype) if want_hidden else None,
            grad_weight.to(weight.dtype) if want_weight else None,
            grad_bias.to(bias.dtype) if want_bias else None,
        )
        ctx.mark_non_differentiable(kd_mean, ce_mean)
        return loss, kd_mean, ce_mean

    @staticmethod
    def backward(ctx, grad_loss, _grad_kd, _grad_ce):
        grads = scale_saved_gradients(ctx, grad_loss, ctx.saved_tensors)
        return (*grads, None, None, None, None, None, None)


def fused_distill_loss(
    student_hidden: Tensor,
    student_weight: Tensor,
    teacher_hidden: Tensor | None,
    teacher_weight: Tensor | None,
    labels: Tensor,
    *,
    student_bias: Tensor | None = None,
    teacher_bias: Tensor | None = None,
    temperature: float = 1.0,
    alpha: float = 0.5,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    skew: float = 0.1,
    t_squared: bool = True,
    num_valid_tokens: int | Tensor | None = None,
    chunk_positions: int = 1024,
    compile: bool = False,
    matmul_dtype: torch.dtype | None = None,
) -> LossParts:
    """:func:`~workbench.engine.losses.distill_loss` of ``hidden @ weight.T (+ bias)``, never forming those logits.

    ``student_hidden`` is ``[B, L, H]`` (the final hidden states, after the final norm),
    ``student_weight`` the output projection ``[V, H]`` (it may be tied to the input embeddings: its
    gradient is added to theirs); ``teacher_hidden`` ``[B, L, H_t]`` and ``teacher_weight``
    ``[V, H_t]`` (no gradient) or both None for plain cross-entropy. ``labels`` and the keyword
    arguments are those of ``distill_loss``; the chunk is capped as there
    (:func:`~workbench.engine.losses.loss_chunk_positions`). ``compile`` runs each chunk's loss through
    ``torch.compile`` (``train.compile``; see :func:`~workbench.engine.losses.compiled_chunk_terms`).
    ``matmul_dtype`` (bf16 or fp16; None: fp32): the dtype of the products that form the logits and their
    gradients, as autocast would give the model's head; the loss and the gradient sums stay fp32. No host sync.
    """
    if student_hidden.dim() != 3:
        raise ValueError(f"student_hidden must be [batch, seq, hidden], got shape {tuple(student_hidden.shape)}")
    if student_weight.dim() != 2 or student_weight.shape[1] != student_hidden.shape[-1]:
        raise ValueError(
            f"student_weight must be [vocab, {student_hidden.shape[-1]}], got shape {tuple(student_weight.shape)}"
        )
    if labels.shape != student_hidden.shape[:2]:
        raise ValueError(
            f"labels shape {tuple(labels.shape)} does not match the hidden states' [batch, seq] {tuple(student_hidden.shape[:2])}"
        )
    check_loss_arguments(temperature, alpha, divergence, chunk_positions)
    if (teacher_hidden is None) != (teacher_weight is None):
        raise ValueError("teacher_hidden and teacher_weight go together: pass both or neither")
    if teacher_hidden is None:
        alpha = 0.0  # no teacher: the hard-label objective, whatever alpha says
    if alpha == 0.0:
        teacher_hidden = teacher_weight = teacher_bias = None
    vocab = student_weight.shape[0]
    if teacher_hidden is not None:
        if teacher_weight.dim() != 2 or teacher_weight.shape[1] != teacher_hidden.shape[-1]:
            raise ValueError(
                f"teacher_weight must be [vocab, {teacher_hidden.shape[-1]}], got shape {tuple(teacher_weight.shape)}"
            )
        if teacher_weight.shape[0] != vocab:
            raise ValueError(
                f"teacher vocabulary ({teacher_weight.shape[0]}) differs from the student's ({vocab}); "
                "distillation needs the same tokenizer and the same logits width on both sides"
            )
        if teacher_hidden.shape[:2] != student_hidden.shape[:2]:
            raise ValueError(
                f"teacher hidden states {tuple(teacher_hidden.shape)} and student hidden states "
                f"{tuple(student_hidden.shape)} differ in [batch, seq]"
            )
        teacher_hidden, teacher_weight = teacher_hidden.detach(), teacher_weight.detach()
        teacher_bias = teacher_bias.detach() if teacher_bias is not None else None

    targets, valid, settings = loss_targets_and_settings(
        labels,
        student_hidden.device,
        temperature=temperature,
        alpha=alpha,
        divergence=divergence,
        beta=beta,
        skew=skew,
        t_squared=t_squared,
        num_valid_tokens=num_valid_tokens,
        chunk_positions=loss_chunk_positions(vocab, chunk_positions, student_hidden.device),
        compile=compile,
    )
    loss, kd, ce = _FusedDistillLoss.apply(
        student_hidden,
        student_weight,
        student_bias,
        teacher_hidden,
        teacher_weight,
        teacher_bias,
        targets,
        settings,
        matmul_dtype if matmul_dtype in (torch.bfloat16, torch.float16) else None,
    )
    return LossParts(loss=loss, kd=kd.detach(), ce=ce.detach(), valid=valid)
