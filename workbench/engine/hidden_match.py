"""Hidden-state matching for derived students (``distill.hidden_weight``).

A derived student is the teacher with some layers dropped (engine/models/build.py): its layer ``i`` is a
copy of the teacher's layer ``kept[i]``, so the two residual streams can be compared layer by layer, at the
same width. The term is

    hidden = (1 / |kept|) * sum_i  sum_{valid t} d(student_out[i][t], teacher_out[kept[i]][t]) / n

with ``out[j]`` the output of decoder layer ``j`` (what Hugging Face's ``output_hidden_states`` returns as
``hidden_states[j + 1]``), ``d`` either ``1 - cos`` or the mean squared difference over the hidden dimension,
and ``n`` the valid tokens of the whole optimizer step, as for the KD and CE terms (engine/losses.py).

The layer outputs are taken with forward hooks on the decoder layers rather than from ``hidden_states``:
for llama and gpt2 the last entry of ``hidden_states`` has the final norm applied, so a student whose last
layer is not the teacher's last one would compare a normed stream with a raw one.

Which positions count: the same rule as the KD/CE terms, position ``t`` of a row counts when its target
``labels[:, t + 1]`` is not -100 (the hidden state at ``t`` is what predicts that target). So the last
position of every row and the positions before padding are left out, and summing the term over a step's
micro-batches gives the step's mean per valid token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from workbench.config.schema import HIDDEN_LOSSES
from workbench.engine.losses import IGNORE_INDEX
from workbench.engine.models.build import decoder_layers


def hidden_distance(student: Tensor, teacher: Tensor, kind: str) -> Tensor:
    """Per-position distance ``[N]`` between ``[N, H]`` rows, in fp32."""
    student, teacher = student.float(), teacher.float()
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(student, teacher, dim=-1, eps=1e-8)
    if kind == "mse":
        return (student - teacher).pow(2).mean(-1)
    raise ValueError(f"unknown hidden_loss {kind!r}; choose one of {', '.join(HIDDEN_LOSSES)}")


def valid_positions(labels: Tensor) -> Tensor:
    """``[B, L]`` bool: position t counts when ``labels[:, t + 1]`` is not -100 (the last position never)."""
    valid = torch.zeros_like(labels, dtype=torch.bool)
    valid[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return valid


@contextlib.contextmanager
def layer_outputs(model: torch.nn.Module, keep: Sequence[int] | None = None) -> Iterator[list[Tensor | None]]:
    """While open, each forward pass of ``model`` appends its decoder layers' outputs (``[B, L, H]``, in
    layer order) to the yielded list. ``model`` may be wrapped (DistributedDataParallel, train/parallel.py's
    ``Forward``: each its ``module``).

    ``keep`` names the layers whose outputs are wanted: the others are appended as None, so that entry
    ``j`` is still layer ``j`` and a 30-layer teacher matched by 10 layers holds 10 outputs, not 30."""
    outputs: list[Tensor | None] = []
    wanted = None if keep is None else set(keep)

    def hook_for(index: int):
        def hook(_module, _inputs, output):
            if wanted is not None and index not in wanted:
                outputs.append(None)
            else:
                outputs.append(output[0] if isinstance(output, (tuple, list)) else output)

        return hook

    inner = model
    while isinstance(getattr(inner, "module", None), torch.nn.Module):
        inner = inner.module
    handles = [layer.register_forward_hook(hook_for(j)) for j, layer in enumerate(decoder_layers(inner))]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def hidden_match_loss(
    student_layers: Sequence[Tensor],
    teacher_layers: Sequence[Tensor | None],
    kept: Sequence[int],
    labels: Tensor,
    *,
    kind: str = "cosine",
    num_valid_tokens: int | Tensor | None = None,
) -> Tensor:
    """The term for one micro-batch (with gradient into the student only), divided by ``num_valid_tokens``.

    ``student_layers`` are the student's ``len(kept)`` layer outputs and ``teacher_layers`` the teacher's
    (``[B, L, H]`` each, see :func:`layer_outputs`; those not in ``kept`` may be None); student layer ``i``
    is matched with teacher layer ``kept[i]``. ``num_valid_tokens`` None divides by this call's valid positions (at least 1).
    """
    if len(student_layers) != len(kept):
        raise ValueError(f"the student gave {len(student_layers)} layer outputs for {len(kept)} kept layers")
    bad = [k for k in kept if not 0 <= k < len(teacher_layers)]
    if bad:
        raise ValueError(f"kept layers {bad} are not layers of a {len(teacher_layers)}-layer teacher")
    valid = valid_positions(labels.to(student_layers[0].device, non_blocking=True))
    if num_valid_tokens is None:
        denominator = valid.sum().clamp_min(1)  # a 0-d tensor: no host sync
    elif isinstance(num_valid_tokens, Tensor):
        denominator = num_valid_tokens.to(valid.device).clamp_min(1)
    else:
        denominator = max(int(num_valid_tokens), 1)
    total = student_layers[0].new_zeros((), dtype=torch.float32)
    for i, k in enumerate(kept):
        s, t = student_layers[i], teacher_layers[k]
        if s.shape != t.shape:
            raise ValueError(
                f"student layer {i} gives hidden states {tuple(s.shape)}, teacher layer {k} {tuple(t.shape)}: "
                "hidden-state matching needs a student of the teacher's width"
            )
        # Every position is compared and the invalid ones weighted 0 (selecting them would sync).
        distance = hidden_distance(s.reshape(-1, s.shape[-1]), t.detach().reshape(-1, t.shape[-1]), kind)
        total = total + torch.where(valid.reshape(-1), distance, 0.0).sum()
    return total / (len(kept) * denominator)
