"""Building models from scratch and deriving students (both Hugging Face causal LMs: Llama family by
default, GPT-2 supported).

- :func:`build_model` makes a randomly initialised model from an :class:`ArchConfig`;
- :func:`derive_student` keeps some of a teacher's layers (embeddings, norms and head copied);
  which layers is :func:`workbench.config.checks.derived_layers`;
- :func:`make_student` is the student a config asks for (derived, custom, or loaded and checked).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from workbench.config.checks import derived_layers
from workbench.config.schema import ArchConfig, StudentConfig
from workbench.engine.models.load import load_pretrained, load_tokenizer
from workbench.engine.models.sizes import one_model_at_a_time
from workbench.engine.models.tokenizers import check_tokenizers
from workbench.errors import ConfigError


def _default_intermediate(arch: ArchConfig) -> int:
    if arch.intermediate:
        return arch.intermediate
    if arch.family == "gpt2":
        return 4 * arch.hidden
    # SwiGLU has three matrices, so 8/3 x hidden keeps the MLP's size near a 4 x hidden GELU MLP.
    return max(8, 8 * round(8 * arch.hidden / 3 / 8))


def hf_config_from_arch(
    arch: ArchConfig,
    vocab_size: int,
    *,
    pad_token_id: int,
    bos_token_id: int | None,
    eos_token_id: int | None,
) -> PretrainedConfig:
    """The Hugging Face config for a model of this shape and vocabulary."""
    if arch.family == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size,
            n_embd=arch.hidden,
            n_layer=arch.layers,
            n_head=arch.heads,
            n_positions=arch.max_positions,
            n_inner=_default_intermediate(arch),
            resid_pdrop=arch.dropout,
            embd_pdrop=arch.dropout,
            attn_pdrop=arch.dropout,
            tie_word_embeddings=arch.tie_embeddings,
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
        )
    if arch.family != "llama":
        raise ConfigError("arch.family", f"{arch.family!r} is not a supported family", "use llama or gpt2")
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=arch.hidden,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        num_key_value_heads=arch.kv_heads or arch.heads,
        intermediate_size=_default_intermediate(arch),
        max_position_embeddings=arch.max_positions,
        tie_word_embeddings=arch.tie_embeddings,
        rms_norm_eps=1e-5,
        attention_dropout=arch.dropout,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
    )


@one_model_at_a_time
def build_model(
    arch: ArchConfig,
    vocab_size: int,
    *,
    pad_token_id: int = 0,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    seed: int = 0,
) -> PreTrainedModel:
    """A randomly initialised fp32 model; the same seed gives the same weights.

    The global torch RNG is left as it was, so building a model does not shift the data order.
    """
    config = hf_config_from_arch(
        arch, vocab_size, pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model


# -- deriving a student ----------------------------------------------------------------------

_LAYER_LISTS = ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers")


def _layer_list_name(model: nn.Module) -> str:
    """Dotted name of the ModuleList holding the transformer blocks."""
    modules = dict(model.named_modules())
    for name in _LAYER_LISTS:
        if isinstance(modules.get(name), nn.ModuleList):
            return name
    raise ConfigError(
        "student.source",
        f"cannot find the transformer layers of a {type(model).__name__}",
        "derive students from Llama-family or GPT-2 models, or use a custom student",
    )


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The ModuleList of ``model``'s transformer blocks; ConfigError (at ``student.source``) when it has none
    this module knows."""
    return model.get_submodule(_layer_list_name(model))


@one_model_at_a_time
def derive_student(teacher: PreTrainedModel, layer_ids: list[int]) -> PreTrainedModel:
    """A copy of ``teacher`` with only the layers ``layer_ids`` (in that order).

    Embeddings, final norm, head and the kept layers are deep copies (no storage is shared
    with the teacher). The student is fp32 (its weights are the optimizer's master copy),
    trainable, in train mode, on the teacher's device. Each attention module's ``layer_idx``
    (its slot in the KV cache) is renumbered, so the student generates.
    """
    n_layers = teacher.config.num_hidden_layers
    bad = [i for i in layer_ids if not 0 <= i < n_layers]
    if not layer_ids or bad or len(set(layer_ids)) != len(layer_ids):
        raise ConfigError(
            "student.layer_ids",
            f"{list(layer_ids)} is not a list of distinct layers of a {n_layers}-layer teacher",
            f"use distinct numbers from 0 to {n_layers - 1}",
        )
    parent_name, _, attr = _layer_list_name(teacher).rpartition(".")
    parent = teacher.get_submodule(parent_name)
    layers = getattr(parent, attr)
    # Copying the teacher with its layer list swapped for the kept layers copies nothing else
    # twice and needs no random init (which costs seconds for a 100M-parameter student).
    setattr(parent, attr, nn.ModuleList([layers[i] for i in layer_ids]))
    try:
        student = copy.deepcopy(teacher)
    finally:
        setattr(parent, attr, layers)
    config = student.config
    config.num_hidden_layers = len(layer_ids)
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = [config.layer_types[i] for i in layer_ids]
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    for new_index, layer in enumerate(getattr(student.get_submodule(parent_name), attr)):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    student.to(torch.float32)
    config.dtype = torch.float32
    student.requires_grad_(True)
    for param in student.parameters():
        param.grad = None  # a teacher trained here may still hold its last gradients
    student.train()
    return student


def _family_of(model: PreTrainedModel) -> str:
    return "gpt2" if model.config.model_type == "gpt2" else "llama"


def make_student(
    cfg: StudentConfig, teacher: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, seed: int = 0
) -> PreTrainedModel:
    """The student the config asks for, compatible with ``teacher`` and its ``tokenizer``.

    derived: the teacher's layers :func:`~workbench.config.checks.derived_layers` picks;
    custom: ``build_model(cfg.arch)`` in the teacher's family and vocabulary; local/hub: a
    pretrained model whose tokenizer must match (checked before its weights are loaded).
    """
    n_layers = teacher.config.num_hidden_layers
    if cfg.source == "derived":
        return derive_student(teacher, derived_layers(cfg, n_layers))
    if cfg.source == "custom":
        arch = copy.deepcopy(cfg.arch)
        arch.family = _family_of(teacher)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (teacher.config.pad_token_id or 0)
        model = build_model(
            arch,
            teacher.config.vocab_size,
            pad_token_id=pad,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            seed=seed,
        )
        return model.to(next(teacher.parameters()).device)
    if cfg.source in ("local", "hub"):
        student_tok = load_tokenizer(cfg.source, cfg.path, field="student.path")
        check_tokenizers(tokenizer, student_tok)
        model, _ = load_pretrained(cfg.source, cfg.path, field="student.path")
        model.train()
        return model.to(next(teacher.parameters()).device)
    raise ConfigError("student.source", f"{cfg.source!r} is not a student source", "use derived, custom, local or hub")
