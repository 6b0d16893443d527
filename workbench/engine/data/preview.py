"""What a config's data looks like before a run: examples, token and block counts, the cache (the form's data
preview and `workbench data`), without training anything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.config.schema import DataConfig
from workbench.engine.data.blocks import load_blocks, load_documents
from workbench.engine.data.generated import cached_corpus, format_prompt, generation_prompts, train_tokenizer


def preview(
    data: DataConfig,
    tokenizer: Any,
    seq_len: int,
    *,
    seed: int = 0,
    n_examples: int = 3,
    teacher_key: str = "",
    on_log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """What the data settings give, for ``workbench data CONFIG`` and the window.

    Keys: ``source``, ``documents``, ``tokens``, ``train_blocks``, ``val_blocks``,
    ``examples``, ``estimated`` and ``cached`` (the blocks were read back from the cache). For teacher-generated data that is not
    cached yet nothing is generated: the counts are upper estimates
    (``estimated`` is True) and the examples are the prompts as the teacher
    will see them. Without a tokenizer, text data is tokenized with one
    trained on it (as a teacher trained here would be).
    """
    if data.source == "generated":
        cached = cached_corpus(tokenizer, data, seed=seed, teacher_key=teacher_key) if teacher_key else None
        if cached is None:
            return _generated_estimate(data, tokenizer, seq_len, n_examples)
    if tokenizer is None and data.source not in ("toy", "generated"):
        documents, _ = load_documents(data)
        tokenizer = train_tokenizer(documents)
    blocks = load_blocks(data, tokenizer, seq_len, seed=seed, teacher_key=teacher_key, on_log=on_log)
    return {
        "source": blocks.source_label,
        "documents": blocks.documents,
        "tokens": blocks.tokens,
        "train_blocks": int(blocks.train.shape[0]),
        "val_blocks": int(blocks.val.shape[0]),
        "examples": blocks.examples[:n_examples],
        "estimated": False,
        "cached": blocks.cached,
    }


def _generated_estimate(data: DataConfig, tokenizer: Any, seq_len: int, n_examples: int) -> dict[str, Any]:
    prompts = generation_prompts(data)
    formatted = [format_prompt(tokenizer, p) for p in prompts]
    total = data.gen_samples
    # Upper bound: every sample runs to max_new_tokens, plus the end-of-text token.
    tokens = sum(len(formatted[i % len(prompts)][1]) + data.gen_max_new_tokens + 1 for i in range(total))
    n_blocks = tokens // seq_len
    n_val = max(1, round(n_blocks * data.val_fraction)) if n_blocks >= 2 else 0
    return {
        "source": (
            f"teacher-generated text (not generated yet): {total} samples of up to "
            f"{data.gen_max_new_tokens} new tokens from {len(prompts)} prompt{'s' if len(prompts) > 1 else ''}"
        ),
        "documents": total,
        "tokens": tokens,
        "train_blocks": n_blocks - n_val,
        "val_blocks": n_val,
        "examples": [text for text, _ in formatted[:n_examples]],
        "estimated": True,
        "cached": False,
    }


def describe(
    data: DataConfig,
    tokenizer: Any,
    seq_len: int,
    *,
    seed: int = 0,
    teacher_key: str = "",
    on_log: Callable[[str], None] | None = None,
) -> str:
    """A few lines for ``workbench data CONFIG``: source, counts, blocks, the cache and examples.

    ``teacher_key`` (:func:`~workbench.engine.generate.teacher_cache_key`) and the run's ``seed``
    let teacher-generated data that is already cached be described as it is.
    """
    info = preview(data, tokenizer, seq_len, seed=seed, teacher_key=teacher_key, on_log=on_log)
    about = "at most " if info["estimated"] else ""
    lines = [
        f"source:    {info['source']}",
        f"documents: {info['documents']:,}",
        f"tokens:    {about}{info['tokens']:,}",
        f"blocks:    {about}{info['train_blocks']:,} for training + {info['val_blocks']:,} held out, {seq_len} tokens each",
    ]
    if not info["estimated"] and data.source != "generated":
        lines.append(
            f"cache:     {'hit (read back, not tokenized again)' if info['cached'] else 'miss (tokenized now)'}"
        )
    if info["val_blocks"] == 0:
        lines.append(
            f"warning:   too little text for 2 blocks of {seq_len} tokens; use more samples or a shorter train.seq_len"
        )
    if info["examples"]:
        lines.append("prompts:" if info["estimated"] else "first documents:")
        for text in info["examples"]:
            flat = " ".join(text.split())
            lines.append(f"  - {flat[:160]}{'…' if len(flat) > 160 else ''}")
    return "\n".join(lines)
