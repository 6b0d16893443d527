"""How big a model is and how much memory training it takes, without allocating its weights.

Models are built on PyTorch's ``meta`` device (shapes only, no storage), so the answers are
exact and instant even for multi-billion-parameter configs. Re-exported by
:mod:`workbench.engine.models`, which is where callers import them from.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PretrainedConfig

from workbench.engine.losses import loss_chunk_positions

DEFAULT_CHUNK_POSITIONS = 1024
"""Positions per chunk of the distillation loss (DistillConfig.chunk_positions' default)."""

_LAYER_RE = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.(.*)$")


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters; a weight shared by two modules (tied embeddings) counts once."""
    # parameters() yields each Parameter object once, which is what tying shares.
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


CONSTRUCTION_LOCK = threading.RLock()
"""Held while a model is built or loaded. transformers builds models under process-wide patches (empty-weight
initialisation, default device contexts); two threads doing it at once (the window's planner or predictor
beside a run) get each other's meta tensors ("Cannot copy out of meta tensor")."""

_F = TypeVar("_F", bound=Callable[..., Any])


def one_model_at_a_time(fn: _F) -> _F:
    """Run ``fn`` under CONSTRUCTION_LOCK."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with CONSTRUCTION_LOCK:
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@one_model_at_a_time
def _meta_model(hf_config: PretrainedConfig) -> nn.Module:
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(hf_config)


def count_parameters_for_config(hf_config: PretrainedConfig) -> int:
    """Exact parameter count of the causal LM ``hf_config`` describes (built on the meta device)."""
    return count_parameters(_meta_model(hf_config))


def max_positions(model_or_config: Any) -> int:
    """Longest sequence the model accepts (``max_position_embeddings`` or ``n_positions``)."""
    config = getattr(model_or_config, "config", model_or_config)
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, name, None)
        if value:
            return int(value)
    raise ValueError(f"{type(config).__name__} does not say how many positions it supports")


def bytes_of(model: nn.Module) -> int:
    """Bytes of a model's parameters and buffers in memory (tied weights counted once)."""
    seen, total = set(), 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    return total


def _bytes_per_element(precision: str) -> int:
    # "auto" is counted as fp32: the pessimistic answer when the device is not known yet.
    return 2 if precision in ("bf16", "fp16") else 4


def estimate_training_memory(
    teacher_params: int,
    student_params: int,
    *,
    student_hf_config: PretrainedConfig,
    batch_size: int,
    seq_len: int,
    vocab_size: int,
    precision: str,
    grad_accum: int = 1,
    chunk_positions: int = DEFAULT_CHUNK_POSITIONS,
    fused_loss: bool = False,
    teacher_cache: str = "full",
    cache_k: int = 64,
    teacher_hidden_size: int | None = None,
    device_type: str = "cpu",
) -> dict[str, int]:
    """Rough peak bytes of one distillation step, by part.

    - ``teacher_weights``: teacher params x compute bytes (inference only; 2 for bf16/fp16, else 4);
    - ``student_weights``: fp32 master copy (4 bytes each);
    - ``gradients``: fp32, 4 bytes per student param;
    - ``optimizer``: AdamW's two fp32 moments, 8 bytes per student param;
    - ``activations``: what the student's backward pass keeps, per layer and token:
      ``(10 * hidden + 4 * intermediate)`` values for Llama (SwiGLU) and
      ``(10 * hidden + 2 * intermediate)`` for GPT-2, plus ``2 * heads * seq_len`` when the
      attention is "eager" (it stores the score matrix; SDPA does not), plus the embedding
      output; all x layers x batch x seq_len x compute bytes;
    - ``logits``: teacher logits, student logits and their gradient for one micro-batch
      (3 x batch x seq_len x vocab x compute bytes) plus the chunked loss workspace
      (about 6 fp32 copies of ``chunk x vocab``, the chunk being ``chunk_positions`` capped as the
      losses cap it on ``device_type``: 2**22 logits on the CPU, 2**26 on a GPU). With ``teacher_cache = "topk"`` the
      teacher's logits are replaced by the batch's cached top-k (``cache_k`` int64 ids and fp32
      log-probabilities and one fp32 tail per token). With ``fused_loss`` (and no cache) no
      ``[tokens, vocab]`` tensor exists: the teacher's final hidden states (``teacher_hidden_size``,
      default the student's, x compute bytes), fp32 gradient buffers for the student's hidden states
      and output weight (vocab x hidden), and the workspace of one chunk (about 8 fp32 copies: the
      two chunks' logits and the loss's temporaries);
    - ``total``: the sum.

    The teacher's weights are counted with the cache too: the run keeps the teacher for its own
    held-out metrics (measured once) and the probes.

    ``batch_size`` is the micro-batch; gradient accumulation adds no memory (activations are
    freed after each micro-batch), so ``grad_accum`` is accepted for symmetry and not used.
    """
    del grad_accum
    compute = _bytes_per_element(precision)
    config = student_hf_config
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    layers = config.num_hidden_layers
    heads = config.num_attention_heads
    if config.model_type == "gpt2":
        intermediate = config.n_inner or 4 * hidden
        per_token_layer = 10 * hidden + 2 * intermediate
    else:
        intermediate = getattr(config, "intermediate_size", 4 * hidden)
        per_token_layer = 10 * hidden + 4 * intermediate
    if getattr(config, "_attn_implementation", None) == "eager":
        per_token_layer += 2 * heads * seq_len
    tokens = batch_size * seq_len
    chunk = min(loss_chunk_positions(vocab_size, chunk_positions, device_type), tokens)  # the chunk the losses use
    parts = {
        "teacher_weights": teacher_params * compute,
        "student_weights": student_params * 4,
        "gradients": student_params * 4,
        "optimizer": student_params * 8,
        "activations": tokens * (layers * per_token_layer + hidden) * compute,
        "logits": 3 * tokens * vocab_size * compute + 6 * chunk * vocab_size * 4,
    }
    if teacher_cache == "topk":
        # No teacher logits: the student's logits, their gradient buffer, the cached top-k, the workspace.
        parts["logits"] = (
            2 * tokens * vocab_size * compute + tokens * (cache_k * (8 + 4) + 4) + 6 * chunk * vocab_size * 4
        )
    elif fused_loss:
        parts["logits"] = (
            tokens * (teacher_hidden_size or hidden) * compute
            + tokens * hidden * 4
            + vocab_size * hidden * 4
            + 8 * chunk * vocab_size * 4
        )
    parts["total"] = sum(parts.values())
    return parts


def _is_tied(model: nn.Module) -> bool:
    try:
        out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return False
    return out is not None and inp is not None and out.weight is inp.weight


def architecture_blocks(hf_config_or_model: Any) -> list[dict]:
    """The model as a list of blocks with parameter counts, for the GUI's architecture view.

    ``[{"name": "embeddings", "params": n}, {"name": "layer 0", "attention": n, "mlp": n,
    "norms": n, "params": n}, ..., {"name": "final norm", "params": n},
    {"name": "head", "params": n, "tied": bool}]``, plus ``{"name": "other", ...}`` if some
    parameter fits none of these. The ``params`` add up to :func:`count_parameters`; a tied head
    shows 0 (its weight is the embeddings').
    """
    model = hf_config_or_model if isinstance(hf_config_or_model, nn.Module) else _meta_model(hf_config_or_model)
    embeddings = final_norm = head = other = 0
    layers: dict[int, dict[str, int]] = {}
    for name, param in model.named_parameters():
        n = param.numel()
        match = _LAYER_RE.search(name)
        if match:
            block = layers.setdefault(int(match.group(1)), {"attention": 0, "mlp": 0, "norms": 0, "other": 0})
            rest = match.group(2)
            if "norm" in rest or rest.startswith("ln_"):
                block["norms"] += n
            elif "attn" in rest or "attention" in rest:
                block["attention"] += n
            elif "mlp" in rest or "feed_forward" in rest:
                block["mlp"] += n
            else:
                block["other"] += n
        elif any(key in name for key in ("embed_tokens", "wte", "wpe", "embed_positions", "embed_in")):
            embeddings += n
        elif "lm_head" in name or "embed_out" in name:
            head += n
        elif "norm" in name or "ln_f" in name:
            final_norm += n
        else:
            other += n
    blocks: list[dict] = [{"name": "embeddings", "params": embeddings}]
    for index in sorted(layers):
        block = layers[index]
        entry = {
            "name": f"layer {index}",
            "attention": block["attention"],
            "mlp": block["mlp"],
            "norms": block["norms"],
        }
        entry["params"] = sum(block.values())
        blocks.append(entry)
    blocks.append({"name": "final norm", "params": final_norm})
    blocks.append({"name": "head", "params": head, "tied": _is_tied(model)})
    if other:
        blocks.append({"name": "other", "params": other})
    return blocks
