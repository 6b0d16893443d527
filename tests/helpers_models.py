"""Tiny models, tokenizers and GGUF files for tests (plain functions: import what you need).

Everything here builds in well under a second on one CPU core.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from workbench.config.schema import ArchConfig
from workbench.engine.models.build import build_model

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
WORDS = (
    "the a cat cats dog dogs bird mat house tree garden is are was sitting sleeping running "
    "on in near under over big small red blue green happy quiet . , and"
).split()


def tiny_vocab(words: list[str] | None = None) -> dict[str, int]:
    """Special tokens first, then the words, numbered in order."""
    tokens = SPECIALS + list(words or WORDS)
    return {token: index for index, token in enumerate(tokens)}


def tiny_tokenizer(vocab: dict[str, int] | None = None) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over ``vocab`` (default :func:`tiny_vocab`), splitting on whitespace."""
    backend = Tokenizer(models.WordLevel(vocab or tiny_vocab(), unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


def tiny_arch(family: str = "llama", layers: int = 2, hidden: int = 32, heads: int = 4, **kwargs) -> ArchConfig:
    return ArchConfig(family=family, layers=layers, hidden=hidden, heads=heads, max_positions=64, **kwargs)


def tiny_model(
    tokenizer: PreTrainedTokenizerFast, family: str = "llama", layers: int = 2, seed: int = 0, **arch
) -> PreTrainedModel:
    """A randomly initialised tiny causal LM whose vocabulary is ``tokenizer``'s."""
    return build_model(
        tiny_arch(family, layers, **arch),
        len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        seed=seed,
    )


def save_tiny_model(
    folder: Path, family: str = "llama", layers: int = 2, seed: int = 0, vocab: dict[str, int] | None = None, **arch
):
    """Write a save_pretrained folder (model + tokenizer); returns (model, tokenizer)."""
    tokenizer = tiny_tokenizer(vocab)
    model = tiny_model(tokenizer, family, layers, seed, **arch)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


# -- GGUF ------------------------------------------------------------------------------------

BPE_MERGES = ["Ġ t", "h e", "Ġt he", "c a", "ca t", "Ġ ca", "Ġca t", "Ġ s", "Ġ o", "Ġo n", "a t", "Ġs at"]


def _bpe_tokens() -> list[str]:
    """A byte-level BPE vocabulary (GPT-2 alphabet: 'Ġ' is the space) able to spell lowercase text."""
    tokens = ["<|endoftext|>"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["Ġ", "."]
    for merge in BPE_MERGES:
        joined = merge.replace(" ", "")
        if joined not in tokens:
            tokens.append(joined)
    return tokens


def _llama_cpp_permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's reordering of q/k rows for its RoPE layout (transformers undoes it on load)."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def write_tiny_gguf(path: Path, layers: int = 2, hidden: int = 32, heads: int = 4, seed: int = 0) -> PreTrainedModel:
    """Write a llama-architecture .gguf (fp32 tensors, tied head, byte-level BPE tokenizer in its
    metadata) the way llama.cpp's converter lays it out; returns the HF model it was made from."""
    import gguf

    tokens = _bpe_tokens()
    arch = tiny_arch("llama", layers, hidden, heads, kv_heads=heads // 2)
    arch.max_positions = 128
    model = build_model(arch, len(tokens), pad_token_id=0, bos_token_id=0, eos_token_id=0, seed=seed)
    config = model.config
    state = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL] + [gguf.TokenType.NORMAL] * (len(tokens) - 1))
    writer.add_token_merges(BPE_MERGES)
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(0)

    writer.add_tensor("token_embd.weight", state["model.embed_tokens.weight"])
    writer.add_tensor("output_norm.weight", state["model.norm.weight"])
    names = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for layer in range(config.num_hidden_layers):
        for hf_name, gguf_name in names.items():
            weight = state[f"model.layers.{layer}.{hf_name}.weight"]
            if gguf_name == "attn_q":
                weight = _llama_cpp_permute(weight, config.num_attention_heads)
            elif gguf_name == "attn_k":
                weight = _llama_cpp_permute(weight, config.num_key_value_heads)
            writer.add_tensor(f"blk.{layer}.{gguf_name}.weight", np.ascontiguousarray(weight))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return model


def next_token_logits(model: PreTrainedModel, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]
