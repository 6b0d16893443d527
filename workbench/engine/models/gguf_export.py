"""The student back out as a ``.gguf`` file, for llama.cpp, Ollama and LM Studio.

A user who brought a GGUF teacher takes the distilled student back to the same tools. Written with the
``gguf`` package's own writer, tensor-name map and vocabulary readers (``BpeVocab`` for GPT-2-style
byte-level BPE such as SmolLM2's, ``LlamaHfVocab`` for SentencePiece-style Llama tokenizers, and
``SpecialVocab`` for merges and special tokens), so names and metadata are the ones llama.cpp expects.

- Architecture: the Llama family (Llama, SmolLM2, and the students derived from or built like them).
- ``f16``: 2-D weights in float16, norms in float32. ``q8_0``: 2-D weights quantized to 8 bits in blocks
  of 32 (``gguf.quants``), the rest as for f16.
- q and k projections are permuted into llama.cpp's rotary layout (transformers undoes this on load).

The built-in language's word-level tokenizer has no GGUF form (llama.cpp reads BPE and SentencePiece
vocabularies only); exporting such a student is refused with a sentence that says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from workbench import paths
from workbench.errors import ConfigError, one_line

TYPES = ("f16", "q8_0")


def _permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order for q/k: the two halves of each head's rotary pairs interleaved."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def _vocab(folder: Path):
    import gguf

    for reader in (gguf.BpeVocab, gguf.LlamaHfVocab):
        try:
            return reader(folder)
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            continue
    raise ConfigError(
        "",
        f"the tokenizer in {folder.name}/ is neither a byte-level BPE nor a SentencePiece-style one, which is "
        "all a .gguf file can carry (the built-in language's word-level tokenizer is not)",
        "export a student of a BPE or SentencePiece teacher, e.g. one distilled from SmolLM2; the safetensors export works for every student",
    )


def export_gguf(model_folder: str | Path, target: str | Path, *, type_: str = "f16", name: str = "") -> Path:
    """Write the ``save_pretrained`` folder ``model_folder`` as ``target`` (a .gguf file); returns its path."""
    import gguf
    from safetensors.numpy import load_file

    folder, target = Path(model_folder), Path(target)
    if type_ not in TYPES:
        raise ConfigError(
            "--type", f"{type_!r} is not a GGUF type the workbench writes", f"use one of {', '.join(TYPES)}"
        )
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        weight_files = sorted(folder.glob("*.safetensors"))
        if not weight_files:
            raise FileNotFoundError(f"{folder / 'model.safetensors'}")
        state: dict[str, np.ndarray] = {}
        for file in weight_files:
            state.update(load_file(str(file)))
    except (OSError, ValueError) as err:
        raise ConfigError(
            "",
            f"the model in {str(folder)!r} could not be read: {one_line(err, 200)}",
            "export a run whose student was written (its student/ folder holds config.json and model.safetensors)",
        ) from None
    if config.get("model_type") != "llama":
        raise ConfigError(
            "",
            f"GGUF export writes the Llama family and this model is {config.get('model_type')!r}",
            "derive the student from a Llama-family teacher (SmolLM2 is one), or use the safetensors export",
        )
    vocab = _vocab(folder)
    layers, heads = int(config["num_hidden_layers"]), int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    hidden = int(config["hidden_size"])
    rope = config.get("rope_parameters") or {}
    rope_theta = float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))
    tensor_names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)
    file_type = gguf.LlamaFileType.MOSTLY_F16 if type_ == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0

    with paths.atomic_target(target) as tmp:
        writer = gguf.GGUFWriter(str(tmp), "llama")
        writer.add_name(name or folder.parent.name or folder.name)
        writer.add_context_length(int(config["max_position_embeddings"]))
        writer.add_embedding_length(hidden)
        writer.add_block_count(layers)
        writer.add_feed_forward_length(int(config["intermediate_size"]))
        writer.add_head_count(heads)
        writer.add_head_count_kv(kv_heads)
        writer.add_rope_dimension_count(int(config.get("head_dim") or hidden // heads))
        writer.add_rope_freq_base(rope_theta)
        writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
        writer.add_file_type(file_type)

        tokens, scores, types = [], [], []
        for text, score, token_type in vocab.all_tokens():
            tokens.append(text)
            scores.append(score)
            types.append(token_type)
        writer.add_vocab_size(len(tokens))
        writer.add_tokenizer_model(vocab.tokenizer_model)
        if vocab.tokenizer_model == "gpt2":
            writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        gguf.SpecialVocab(folder, load_merges=vocab.tokenizer_model == "gpt2", n_vocab=len(tokens)).add_to_gguf(
            writer, quiet=True
        )

        for hf_name, array in state.items():
            if hf_name == "lm_head.weight" and config.get("tie_word_embeddings"):
                continue  # llama.cpp reads a missing output.weight as tied to token_embd
            if hf_name.endswith("rotary_emb.inv_freq"):
                continue
            gguf_name = tensor_names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if gguf_name is None:
                raise ConfigError(
                    "",
                    f"the student holds a tensor GGUF has no name for ({hf_name})",
                    "use the safetensors export for this model",
                )
            array = np.asarray(array, dtype=np.float32)
            if gguf_name.endswith("attn_q.weight"):
                array = _permute(array, heads)
            elif gguf_name.endswith("attn_k.weight"):
                array = _permute(array, kv_heads)
            if array.ndim < 2:
                writer.add_tensor(gguf_name, np.ascontiguousarray(array))
            elif type_ == "q8_0" and array.shape[-1] % 32 == 0:
                quantized = gguf.quants.quantize(np.ascontiguousarray(array), gguf.GGMLQuantizationType.Q8_0)
                writer.add_tensor(gguf_name, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            else:
                writer.add_tensor(gguf_name, np.ascontiguousarray(array.astype(np.float16)))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return target
