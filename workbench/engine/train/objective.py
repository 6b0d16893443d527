"""The loss of one micro-batch: the teacher's side, the student's forward pass and the objective.

:class:`Objective` is the one place the training loop asks "what is this batch's loss?". Keeping it apart
from the loop (train/stages.py: schedule, logging, evaluation, checkpoints) gives each way of producing the
teacher's side (a forward pass today) and each way of computing the student's side its own seam, without
touching the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from workbench.config.schema import DistillConfig
from workbench.engine.losses import LossParts, count_valid_tokens, distill_loss


@dataclass
class Batch:
    """One micro-batch as the objective sees it."""

    ids: Tensor
    """``[B, L]`` input token ids."""
    labels: Tensor
    """``[B, L]`` targets: the logits at position t predict ``labels[:, t + 1]``; -100 leaves a position out."""
    block_index: Tensor | None = None
    """``[B]`` indices of the batch's blocks in the stage's training blocks (None for text made on the fly)."""

    @classmethod
    def of_blocks(cls, ids: Tensor, block_index: Tensor | None = None) -> Batch:
        """A batch of training blocks: every next token is a target."""
        return cls(ids=ids, labels=ids, block_index=block_index)

    def valid_tokens(self) -> int:
        return count_valid_tokens(self.labels)

    def to(self, device: torch.device) -> Batch:
        ids = self.ids.to(device, non_blocking=True)
        labels = ids if self.labels is self.ids else self.labels.to(device, non_blocking=True)
        return Batch(ids=ids, labels=labels, block_index=self.block_index)


class Objective:
    """``alpha * T^2 * D(teacher_T || student_T) + (1 - alpha) * CE`` for one stage.

    ``teacher`` None (the teacher stage, a hard-label baseline) or ``alpha == 0`` is plain cross-entropy, and
    then no teacher forward pass is run at all.
    """

    def __init__(
        self,
        settings: DistillConfig,
        *,
        alpha: float,
        teacher: torch.nn.Module | None,
        autocast: Callable[[], object],
        chunk_positions: int,
    ):
        self.settings = settings
        self.alpha = alpha
        self.teacher = teacher if alpha > 0 else None
        self.autocast = autocast
        self.chunk_positions = chunk_positions

    @property
    def uses_teacher(self) -> bool:
        return self.teacher is not None

    def teacher_logits(self, batch: Batch) -> Tensor | None:
        """The teacher's logits for the batch, without grad (None when the objective needs none)."""
        if self.teacher is None:
            return None
        with torch.no_grad(), self.autocast():
            return self.teacher(input_ids=batch.ids, use_cache=False).logits

    def __call__(self, model: torch.nn.Module, batch: Batch, num_valid_tokens: int) -> LossParts:
        """The micro-batch's loss, divided by ``num_valid_tokens`` (those of the whole optimizer step)."""
        teacher_logits = self.teacher_logits(batch)
        with self.autocast():
            student_logits = model(input_ids=batch.ids, use_cache=False).logits
        s = self.settings
        return distill_loss(
            student_logits,
            teacher_logits,
            batch.labels,
            temperature=s.temperature,
            alpha=self.alpha,
            divergence=s.divergence,
            beta=s.beta,
            skew=s.skew,
            t_squared=s.t_squared,
            num_valid_tokens=num_valid_tokens,
            chunk_positions=self.chunk_positions,
        )
