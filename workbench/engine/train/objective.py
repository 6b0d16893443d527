"""The loss of one micro-batch: the teacher's side, the student's forward pass and the objective.

:class:`Objective` is the one place the training loop asks "what is this batch's loss?". Keeping it apart
from the loop (train/stages.py: schedule, logging, evaluation, checkpoints) gives each way of producing the
teacher's side (a forward pass, or the top-k teacher cache of engine/teacher_cache.py) and each way of computing the student's side its own seam, without
touching the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from workbench.config.schema import DistillConfig
from workbench.engine.fused_loss import fused_distill_loss
from workbench.engine.hidden_match import hidden_match_loss, layer_outputs
from workbench.engine.losses import CompileFailed, LossParts, distill_loss, sequence_term, valid_token_count
from workbench.engine.teacher_cache import TopKCache, topk_distill_loss
from workbench.errors import ConfigError


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

    def valid_tokens(self) -> Tensor:
        """0-d int64 on the labels' device: the batch's valid targets (a tensor, so counting makes no sync)."""
        return valid_token_count(self.labels)

    def to(self, device: torch.device) -> Batch:
        ids = self.ids.to(device, non_blocking=True)
        labels = ids if self.labels is self.ids else self.labels.to(device, non_blocking=True)
        return Batch(ids=ids, labels=labels, block_index=self.block_index)


class Objective:
    """``alpha * T^2 * D(teacher_T || student_T) + (1 - alpha) * CE`` for one stage.

    ``teacher`` None (the teacher stage, a hard-label baseline) or ``alpha == 0`` is plain cross-entropy, and
    then no teacher forward pass is run at all. With ``teacher_topk`` (``distill.teacher_cache = "topk"``) the
    teacher's side comes from that cache of the training blocks, looked up by ``Batch.block_index``, and the
    teacher is never run.
    """

    def __init__(
        self,
        settings: DistillConfig,
        *,
        alpha: float,
        teacher: torch.nn.Module | None,
        autocast: Callable[[], object],
        chunk_positions: int,
        teacher_topk: TopKCache | None = None,
        hidden_layers: list[int] | None = None,
        compile: bool = False,
        sequence_weight: float = 0.0,
    ):
        self.settings = settings
        # distill.on_policy_sequence_weight: given to the on-policy steps' objective only (train/stages.py)
        self.sequence_weight = sequence_weight if teacher is not None and alpha > 0 else 0.0
        self.compile = compile  # train.compile: the loss's chunk function through torch.compile
        self.alpha = alpha
        self.teacher_topk = teacher_topk if alpha > 0 else None
        self.teacher = teacher if alpha > 0 and self.teacher_topk is None else None
        self.autocast = autocast
        self._product_dtypes: dict[str, torch.dtype | None] = {}  # per device type, read from the autocast once
        self.chunk_positions = chunk_positions
        # distill.hidden_weight > 0 with a derived student: the teacher layer each student layer came from.
        self.hidden_layers = list(hidden_layers) if hidden_layers and settings.hidden_weight > 0 else None
        self.hidden_teacher = teacher if self.hidden_layers is not None else None
        if self.hidden_layers is not None and teacher is None:
            raise ValueError("hidden-state matching needs the teacher")

    def teacher_logits(self, batch: Batch) -> Tensor | None:
        """The teacher's logits for the batch, without grad (None when the objective needs none)."""
        if self.teacher is None:
            return None
        with torch.no_grad(), self.autocast():
            return self.teacher(input_ids=batch.ids, use_cache=False).logits

    def __call__(self, model: torch.nn.Module, batch: Batch, num_valid_tokens: int | Tensor) -> LossParts:
        """The micro-batch's loss, divided by ``num_valid_tokens`` (those of the whole optimizer step; an int
        or a 0-d tensor). ``model`` may be the student wrapped for data parallelism (train/parallel.py).
        Makes no host sync (tests/engine/test_syncs.py)."""
        try:
            return self._loss(model, batch, num_valid_tokens)
        except CompileFailed as err:
            raise ConfigError(
                "train.compile",
                f"{err}.",
                "set train.compile = false (the loss is the same without it, only slower or faster)",
            ) from err

    def _loss(self, model: torch.nn.Module, batch: Batch, num_valid_tokens: int | Tensor) -> LossParts:
        if self.hidden_layers is not None:
            return self._with_hidden(model, batch, num_valid_tokens)
        if self.teacher_topk is not None:
            return self._from_cache(model, batch, num_valid_tokens)
        if self.settings.fused_loss and not self.sequence_weight:
            student_head = fusable_head(unwrap(model))
            teacher_head = fusable_head(self.teacher) if self.teacher is not None else None
            if student_head is not None and (self.teacher is None or teacher_head is not None):
                if model is unwrap(model):
                    return self._fused(student_head, teacher_head, batch, num_valid_tokens)
                # Wrapped by DistributedDataParallel: the fused loss runs inside the wrapper's forward, so
                # DDP sees the output weight's gradient and all-reduces it with the others.
                return model(run=lambda _inner: self._fused(student_head, teacher_head, batch, num_valid_tokens))
        teacher_logits = self.teacher_logits(batch)
        with self.autocast():
            student_logits = model(input_ids=batch.ids, use_cache=False).logits
        parts = distill_loss(student_logits, teacher_logits, batch.labels, **self._loss_kwargs(num_valid_tokens))
        return self._with_sequence_term(parts, student_logits, teacher_logits, batch, num_valid_tokens)

    def _with_sequence_term(self, parts: LossParts, student_logits, teacher_logits, batch: Batch, num_valid_tokens):
        """``parts`` plus ``sequence_weight`` x the on-policy sequence-level term (engine/losses.py
        ``sequence_term``), if on; its value goes to ``parts.surrogate`` too, so the log can leave it out."""
        if self.sequence_weight:
            term = self.sequence_weight * sequence_term(
                student_logits, teacher_logits, batch.labels, num_valid_tokens, self.chunk_positions
            )
            parts.loss = parts.loss + term
            parts.surrogate = term.detach()
        return parts

    def _with_hidden(self, model: torch.nn.Module, batch: Batch, num_valid_tokens: int | Tensor) -> LossParts:
        """distill.hidden_weight > 0: the usual loss plus ``hidden_weight`` x the hidden-state matching term
        (engine/hidden_match.py), from forward passes that also record each decoder layer's output."""
        with (
            layer_outputs(self.hidden_teacher, keep=self.hidden_layers) as teacher_layers,
            torch.no_grad(),
            self.autocast(),
        ):
            teacher_logits = self.hidden_teacher(input_ids=batch.ids, use_cache=False).logits
        with layer_outputs(model) as student_layers, self.autocast():
            student_logits = model(input_ids=batch.ids, use_cache=False).logits
        parts = distill_loss(
            student_logits,
            teacher_logits if self.teacher is not None else None,
            batch.labels,
            **self._loss_kwargs(num_valid_tokens),
        )
        hidden = hidden_match_loss(
            student_layers,
            teacher_layers,
            self.hidden_layers,
            batch.labels,
            kind=self.settings.hidden_loss,
            num_valid_tokens=num_valid_tokens,
        )
        parts.loss = parts.loss + self.settings.hidden_weight * hidden
        parts.hidden = hidden.detach()
        return self._with_sequence_term(parts, student_logits, teacher_logits, batch, num_valid_tokens)

    def _from_cache(self, model: torch.nn.Module, batch: Batch, num_valid_tokens: int | Tensor) -> LossParts:
        """distill.teacher_cache = "topk": the sparse forward KL against the cached top-k of the batch's blocks."""
        if batch.block_index is None:
            raise ValueError("the top-k teacher cache needs the batch's block indices")
        teacher = self.teacher_topk.lookup(batch.block_index, batch.ids.device)
        with self.autocast():
            student_logits = model(input_ids=batch.ids, use_cache=False).logits
        s = self.settings
        return topk_distill_loss(
            student_logits,
            teacher,
            batch.labels,
            temperature=s.temperature,
            alpha=self.alpha,
            t_squared=s.t_squared,
            num_valid_tokens=num_valid_tokens,
            chunk_positions=self.chunk_positions,
            tail=s.cache_tail,
            compile=self.compile,
        )

    def _loss_kwargs(self, num_valid_tokens: int | Tensor) -> dict:
        s = self.settings
        return dict(
            temperature=s.temperature,
            alpha=self.alpha,
            divergence=s.divergence,
            beta=s.beta,
            skew=s.skew,
            t_squared=s.t_squared,
            num_valid_tokens=num_valid_tokens,
            chunk_positions=self.chunk_positions,
            compile=self.compile,
        )

    def _autocast_dtype(self, device_type: str) -> torch.dtype | None:
        """The dtype this objective's autocast computes products in (None when it is off: fp32)."""
        if device_type not in self._product_dtypes:
            with self.autocast():
                try:
                    on = torch.is_autocast_enabled(device_type)
                    self._product_dtypes[device_type] = torch.get_autocast_dtype(device_type) if on else None
                except (AttributeError, TypeError):  # a torch without the device-generic autocast API: fp32
                    self._product_dtypes[device_type] = None
        return self._product_dtypes[device_type]

    def _fused(self, student_head, teacher_head, batch: Batch, num_valid_tokens: int | Tensor) -> LossParts:
        """distill.fused_loss: the base models' final hidden states and the heads' weights, no logits."""
        teacher_hidden = None
        if teacher_head is not None:
            with torch.no_grad(), self.autocast():
                teacher_hidden = teacher_head[0](input_ids=batch.ids, use_cache=False).last_hidden_state
        base, head = student_head
        with self.autocast():
            hidden = base(input_ids=batch.ids, use_cache=False).last_hidden_state
        return fused_distill_loss(
            hidden,
            head.weight,
            teacher_hidden,
            teacher_head[1].weight if teacher_head is not None else None,
            batch.labels,
            student_bias=head.bias,
            teacher_bias=teacher_head[1].bias if teacher_head is not None else None,
            matmul_dtype=self._autocast_dtype(hidden.device.type),
            **self._loss_kwargs(num_valid_tokens),
        )


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model itself inside DistributedDataParallel and train/parallel.py's ``Forward`` (each holds it as
    ``module``)."""
    while isinstance(getattr(model, "module", None), torch.nn.Module):
        model = model.module
    return model


def fusable_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Linear] | None:
    """``(base model, output projection)`` when the logits are exactly ``head(base(...).last_hidden_state)``.

    A Hugging Face causal LM with a plain ``nn.Linear`` head and its base model (``model.model`` /
    ``model.transformer``, ``get_decoder()``); None for anything else: a wrapper (pass :func:`unwrap`'s
    model; the objective calls a DistributedDataParallel wrapper itself, so its gradient hooks run), a
    head with logit scaling or soft-capping, a model of another shape. Then the objective takes the usual path.
    """
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    if type(head) is not torch.nn.Linear:
        return None
    config = getattr(model, "config", None)
    for name in ("final_logit_softcapping", "logit_scale", "output_multiplier_scale", "logits_scaling"):
        if getattr(config, name, None) not in (None, 1, 1.0):
            return None
    base = getattr(model, "base_model", None)
    if base is None or base is model:
        get_decoder = getattr(model, "get_decoder", None)
        base = get_decoder() if callable(get_decoder) else None
    if base is None or base is model or not isinstance(base, torch.nn.Module):
        return None
    return base, head
