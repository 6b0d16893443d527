"""How much each decoder layer of a teacher matters, measured on a few held-out token blocks (no Qt).

Two measures per layer, both larger for a layer that matters more:

- ``kl``: the mean, over valid positions, of KL(teacher || teacher without this layer) on the next-token
  distribution, the layer skipped (its output is its input). One forward pass per layer.
- ``cosine``: the mean, over valid positions, of 1 - cos(hidden state into the block, hidden state out of
  it): how much the block turns the residual stream. All layers from one forward pass, with hooks.

:func:`keep_by_importance` turns scores into the layers a derived student keeps (``student.keep =
"importance"`` ranks by ``kl``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workbench.config.checks import keep_by_importance
from workbench.config.checks import rank_layers as ranking
from workbench.engine.models.build import decoder_layers

__all__ = ["LayerImportance", "keep_by_importance", "layer_importance", "ranking"]


@dataclass
class LayerImportance:
    """Per teacher layer (index = layer): ``kl`` and ``cosine`` (see the module), and ``ranking``: the layer
    indices by ``kl``, most important first (ties: the earlier layer first)."""

    kl: list[float]
    cosine: list[float]
    ranking: list[int] = field(default_factory=list)
    blocks: int = 0
    positions: int = 0

    def rank(self, layer: int) -> int:
        """1 for the layer that matters most by ``kl``."""
        return self.ranking.index(layer) + 1


def _hidden_in(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _hidden_out(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def _skip(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
    """A forward hook that makes a block the identity: its output is its input."""
    hidden = _hidden_in(args, kwargs)
    if isinstance(output, tuple):
        return (hidden, *output[1:])
    return hidden


def _as_batch(blocks: torch.Tensor | Sequence[Sequence[int]]) -> torch.Tensor:
    ids = blocks if isinstance(blocks, torch.Tensor) else torch.tensor([list(b) for b in blocks])
    if ids.dim() != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError("blocks must be a non-empty batch of token blocks (blocks x positions)")
    return ids.long()


@torch.no_grad()
def layer_importance(
    model: nn.Module,
    blocks: torch.Tensor | Sequence[Sequence[int]],
    *,
    attention_mask: torch.Tensor | None = None,
    batch_size: int = 8,
    on_progress: Callable[[int, int], None] | None = None,
) -> LayerImportance:
    """Both measures for every decoder layer of ``model`` (a Hugging Face causal LM) on ``blocks``.

    ``attention_mask`` (1 = a real token) marks the valid positions; without it every position is valid.
    Logits are compared in fp32. ``on_progress(done, total)`` is called after each forward pass. The model
    is put in eval mode and left there; no hook outlives the call. ConfigError when the model's layers
    cannot be found (a family that cannot be derived from).
    """
    layers = decoder_layers(model)
    n_layers = len(layers)
    ids = _as_batch(blocks)
    mask = torch.ones_like(ids) if attention_mask is None else attention_mask.long()
    device = next(model.parameters()).device
    model.eval()
    kl_sum = torch.zeros(n_layers, dtype=torch.float64)
    cos_sum = torch.zeros(n_layers, dtype=torch.float64)
    count = 0
    starts = list(range(0, ids.shape[0], batch_size))
    total, done = len(starts) * (n_layers + 1), 0
    for start in starts:
        batch = ids[start : start + batch_size].to(device)
        batch_mask = mask[start : start + batch_size].to(device)
        valid = batch_mask.bool()
        n_valid = int(valid.sum())
        if n_valid == 0:
            continue
        count += n_valid
        turned: list[torch.Tensor] = [torch.zeros(())] * n_layers

        def measure_turn(index: int, turned: list[torch.Tensor], valid: torch.Tensor) -> Callable:
            def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
                into, out = _hidden_in(args, kwargs).float(), _hidden_out(output).float()
                cos = F.cosine_similarity(into, out, dim=-1, eps=1e-8)
                turned[index] = (1.0 - cos)[valid].double().sum().cpu()

            return hook

        handles = [
            layer.register_forward_hook(measure_turn(i, turned, valid), with_kwargs=True)
            for i, layer in enumerate(layers)
        ]
        try:
            logits = model(input_ids=batch, attention_mask=batch_mask, use_cache=False).logits
        finally:
            for handle in handles:
                handle.remove()
        cos_sum += torch.stack(turned)
        teacher_logp = F.log_softmax(logits.float(), dim=-1)[valid]
        del logits
        done += 1
        if on_progress is not None:
            on_progress(done, total)
        for index, layer in enumerate(layers):
            handle = layer.register_forward_hook(_skip, with_kwargs=True)
            try:
                skipped = model(input_ids=batch, attention_mask=batch_mask, use_cache=False).logits
            finally:
                handle.remove()
            skipped_logp = F.log_softmax(skipped.float(), dim=-1)[valid]
            kl = (teacher_logp.exp() * (teacher_logp - skipped_logp)).sum(-1)
            kl_sum[index] += kl.double().sum().cpu()
            done += 1
            if on_progress is not None:
                on_progress(done, total)
    if count == 0:
        raise ValueError("the blocks have no valid position")
    kl_mean = (kl_sum / count).tolist()
    return LayerImportance(
        kl=kl_mean,
        cosine=(cos_sum / count).tolist(),
        ranking=ranking(kl_mean),
        blocks=int(ids.shape[0]),
        positions=count,
    )
