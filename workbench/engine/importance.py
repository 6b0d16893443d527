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

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workbench.config.checks import by_importance, derived_layers, keep_by_importance
from workbench.config.checks import rank_layers as ranking
from workbench.config.schema import RunConfig, StudentConfig
from workbench.engine.models.build import decoder_layers
from workbench.errors import ConfigError
from workbench.run_folder import write_json

__all__ = [
    "IMPORTANCE_BLOCKS",
    "LAYERS_FILE",
    "LayerImportance",
    "choose_layers",
    "keep_by_importance",
    "layer_importance",
    "measure_teacher",
    "ranking",
    "read_layers",
    "student_with_layers",
    "write_layers",
]

LAYERS_FILE = "layers.json"
"""In a run folder whose derived student keeps layers by importance: which ones, and the measurement."""

IMPORTANCE_BLOCKS = 8
"""Held-out blocks a run measures its teacher's layers on (``student.keep = "importance"``)."""


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


# -- a run's choice ------------------------------------------------------------------------------


def choose_layers(
    student: StudentConfig, teacher: nn.Module, eval_blocks: torch.Tensor, *, blocks: int = IMPORTANCE_BLOCKS
) -> tuple[list[int], LayerImportance]:
    """The teacher layers a derived student with ``keep = "importance"`` keeps (the ``keep_layers`` highest
    by ``kl``, in their original order), measured on ``eval_blocks[:blocks]``, and the measurement."""
    n_layers = len(decoder_layers(teacher))
    derived_layers(student, n_layers, [0.0] * n_layers)  # a count this teacher cannot give is refused before measuring
    importance = layer_importance(teacher, eval_blocks[:blocks])
    return derived_layers(student, len(importance.kl), importance.kl), importance


def write_layers(run_dir: Path, layer_ids: list[int], importance: LayerImportance) -> None:
    """``layers.json``: the kept layers and the scores they were chosen by."""
    write_json(
        run_dir / LAYERS_FILE,
        {
            "keep": "importance",
            "measure": "kl",
            "layer_ids": list(layer_ids),
            "teacher_layers": len(importance.kl),
            "kl": importance.kl,
            "cosine": importance.cosine,
            "ranking": importance.ranking,
            "blocks": importance.blocks,
            "positions": importance.positions,
        },
    )


def read_layers(run_dir: Path) -> dict[str, Any]:
    """A run folder's ``layers.json`` (its ``layer_ids`` checked to be a list of layer numbers); ConfigError
    when it is missing or damaged: the layers are never measured again nor guessed."""
    path = Path(run_dir) / LAYERS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            "",
            f"run {Path(run_dir).name} keeps its student's layers by importance and has no {LAYERS_FILE}",
            "the run writes it before distillation starts; without it this student's layers are unknown",
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError("", f"run {Path(run_dir).name}: {LAYERS_FILE} cannot be read ({err})", "") from None
    ids = data.get("layer_ids") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and i >= 0 for i in ids):
        raise ConfigError("", f"run {Path(run_dir).name}: {LAYERS_FILE} names no list of layers", "")
    return data


def student_with_layers(student: StudentConfig, run_dir: Path) -> StudentConfig:
    """``student`` as a run folder built it: with ``keep = "importance"`` the layers its ``layers.json``
    recorded become ``layer_ids`` (read, never measured again); any other student as it is."""
    if not by_importance(student):
        return student
    return dataclasses.replace(student, layer_ids=list(read_layers(run_dir)["layer_ids"]))


def measure_teacher(
    config: RunConfig,
    teacher_dir: Path | None = None,
    blocks: int = IMPORTANCE_BLOCKS,
    *,
    on_log: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Layer importance of ``config``'s loaded teacher (or the one saved in ``teacher_dir``: a run folder's
    trained teacher) on the first ``blocks`` held-out blocks of its data (the ones a run measures on), with
    the layers ``student.keep_layers`` keeps by importance and evenly spaced, as plain data (what ``workbench
    layers --json`` prints and the window's architecture view draws)."""
    from transformers.utils import logging as hf_logging

    from workbench.config.checks import evenly_spaced
    from workbench.engine.data.blocks import load_blocks
    from workbench.engine.data.generated import teacher_cache_key
    from workbench.engine.device import pick_device
    from workbench.engine.models.load import load_pretrained, load_teacher

    hf_logging.disable_progress_bar()
    dev = pick_device(config.train.device, config.train.precision)
    if teacher_dir is not None:
        teacher, tokenizer = load_pretrained("local", str(teacher_dir), field="")
        label = str(teacher_dir)
    else:
        teacher, tokenizer = load_teacher(config.teacher, on_warning=on_log)
        label = f"{config.teacher.source} {config.teacher.path}"
    teacher = teacher.to(dev.device).eval()
    kwargs: dict[str, Any] = {}
    if config.data.source == "generated":
        kwargs.update(teacher=teacher, teacher_key=teacher_cache_key(config.teacher))
    data = load_blocks(config.data, tokenizer, config.train.seq_len, seed=config.train.seed, on_log=on_log, **kwargs)
    held_out = data.val[:blocks].long()
    if len(held_out) == 0:
        raise ConfigError("data", "the data has no held-out block to measure on", "give more text, or a longer file")
    result = layer_importance(teacher, held_out, on_progress=on_progress)
    n_layers = len(result.kl)
    keep = config.student.keep_layers
    kept_imp = keep_by_importance(result.kl, keep) if 1 <= keep < n_layers else []
    kept_even = evenly_spaced(n_layers, keep) if 1 <= keep < n_layers else []
    return {
        "teacher": label,
        "teacher_layers": n_layers,
        "blocks": result.blocks,
        "positions": result.positions,
        "keep_layers": keep,
        "by_importance": kept_imp,
        "evenly": kept_even,
        "layers": [
            {
                "layer": i,
                "kl": result.kl[i],
                "cosine": result.cosine[i],
                "rank": result.rank(i),
                "kept_by_importance": i in kept_imp,
                "kept_evenly": i in kept_even,
            }
            for i in range(n_layers)
        ],
    }
