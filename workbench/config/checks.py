"""Relations between fields: the rules no single field's bounds can state (ground floor).

Which field matters when is decided here too: a rule about the derived student's layers only applies
when the student is derived. :func:`derived_layers` is the one rule for which teacher layers a derived
student keeps; the config check, the plan and the model builder all ask it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import ConfigError
from workbench.paths import resolve_path

NAME_MAX = 100
"""Longest run name in bytes (UTF-8): the folder's name adds a date stamp, and most file systems stop at 255 bytes."""

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig, StudentConfig


def by_importance(student: StudentConfig) -> bool:
    """True when a derived student's layers are chosen by measuring the teacher (``keep = "importance"``
    and no explicit ``layer_ids``): which ones is known only once a run has measured them."""
    return student.source == "derived" and student.keep == "importance" and not student.layer_ids


def derived_layers(student: StudentConfig, teacher_layers: int, scores: Sequence[float] | None = None) -> list[int]:
    """The teacher layers (0-based) a derived student keeps: ``student.layer_ids`` as given (in that
    order), else ``student.keep_layers`` of them: evenly spaced, first and last included (one layer: the
    first, whose input is the embeddings, which are copied too), or with ``keep = "importance"`` the
    highest ``scores`` (one per teacher layer) in their original order. Raises ConfigError (at
    ``student.layer_ids``, ``student.keep_layers`` or ``student.keep``) when the choice is not a smaller
    student of this teacher, or when the layers are chosen by importance and no ``scores`` are given
    (never a silent fall-back to evenly spaced layers)."""
    if student.layer_ids:
        ids = list(student.layer_ids)
        bad = [i for i in ids if i < 0 or i >= teacher_layers]
        if bad:
            raise ConfigError(
                "student.layer_ids",
                f"{bad} are not layers of a {teacher_layers}-layer teacher",
                f"use numbers from 0 to {teacher_layers - 1}",
            )
        if len(set(ids)) != len(ids):
            raise ConfigError("student.layer_ids", f"{ids} repeats a layer", "list each layer once")
        if len(ids) >= teacher_layers:
            raise ConfigError(
                "student.layer_ids",
                f"keeps {len(ids)} of {teacher_layers} teacher layers, so the student is not smaller",
                f"keep fewer than {teacher_layers}",
            )
        return ids
    keep = student.keep_layers
    if keep >= teacher_layers:
        raise ConfigError(
            "student.keep_layers",
            f"{keep} is not fewer than the teacher's {teacher_layers} layers, so the student would not be smaller",
            f"choose 1 to {teacher_layers - 1}"
            if teacher_layers > 1
            else "a 1-layer teacher cannot be made smaller by dropping layers",
        )
    if keep < 1:
        raise ConfigError("student.keep_layers", f"{keep} keeps no layer", "keep at least 1")
    if student.keep == "importance":
        if scores is None:
            raise ConfigError(
                "student.keep",
                "the student's layers are chosen by importance, and no measurement of the teacher was given",
                "a run measures them when it starts (its layers.json); `workbench layers CONFIG` shows them",
            )
        if len(scores) != teacher_layers:
            raise ConfigError(
                "student.keep",
                f"{len(scores)} importance scores for a {teacher_layers}-layer teacher",
                "measure this teacher again",
            )
        return keep_by_importance(scores, keep)
    return evenly_spaced(teacher_layers, keep)


def evenly_spaced(n_layers: int, keep: int) -> list[int]:
    """``keep`` (1 to ``n_layers``) evenly spaced layer indices out of ``n_layers``, first and last included;
    one layer is the first."""
    if keep == 1:
        return [0]
    return [round(i * (n_layers - 1) / (keep - 1)) for i in range(keep)]


def rank_layers(scores: Sequence[float]) -> list[int]:
    """Layer indices by score, highest first; ties go to the earlier layer."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def keep_by_importance(scores: Sequence[float], n: int) -> list[int]:
    """The ``n`` layers with the highest scores (ties: the earlier layer), in their original order."""
    if not 1 <= n <= len(scores):
        raise ValueError(f"cannot keep {n} of {len(scores)} layers")
    return sorted(rank_layers(scores)[:n])


def relation_errors(config: RunConfig) -> list[ConfigError]:
    errors: list[ConfigError] = []
    t, s, tr, d = config.teacher, config.student, config.train, config.data
    for prefix, arch in (("teacher.arch", t.arch), ("student.arch", s.arch)):
        if arch.hidden % arch.heads:
            errors.append(
                ConfigError(
                    f"{prefix}.heads",
                    f"{arch.heads} heads do not divide hidden size {arch.hidden}",
                    "pick a divisor of the hidden size",
                )
            )
        kv = arch.kv_heads or arch.heads
        if arch.heads % kv:
            errors.append(
                ConfigError(
                    f"{prefix}.kv_heads",
                    f"{kv} key/value heads do not divide {arch.heads} heads",
                    "pick a divisor of the number of heads",
                )
            )
        if arch.family == "llama" and (arch.hidden // arch.heads) % 2:
            errors.append(
                ConfigError(
                    f"{prefix}.heads",
                    f"head size {arch.hidden // arch.heads} is odd; rotary embeddings need an even head size",
                    "change hidden or heads",
                )
            )
    if tr.precision == "fp16":
        errors.append(
            ConfigError(
                "train.precision",
                "fp16 is not supported: it needs loss scaling, which the KD loss's precomputed gradients do not get",
                "use bf16 (NVIDIA Ampere or newer) or fp32",
            )
        )
    if t.source != "train" and not t.path.strip():
        errors.append(
            ConfigError(
                "teacher.path",
                f"is empty but the teacher source is {t.source!r}",
                "give a folder, a hub id or a .gguf file",
            )
        )
    if t.source == "gguf" and t.path and not t.path.lower().endswith(".gguf"):
        errors.append(
            ConfigError(
                "teacher.path",
                f"{t.path!r} is not a .gguf file",
                "choose a file ending in .gguf, or change the teacher source",
            )
        )
    if t.source in ("local", "gguf") and t.path and not resolve_path(t.path).exists():
        hint = (
            "fetch it first: python scripts/fetch_smollm2.py (or the Fetch button in the window)"
            if t.path.startswith("models:")
            else "check the path"
        )
        errors.append(ConfigError("teacher.path", f"{t.path!r} does not exist", hint))
    elif t.source == "gguf" and t.path.lower().endswith(".gguf"):
        problem = gguf_signature_problem(resolve_path(t.path))
        if problem:
            errors.append(
                ConfigError(
                    "teacher.path",
                    f"{t.path!r} {problem}",
                    "choose a model file in the GGUF format (as llama.cpp, Ollama and LM Studio keep them), "
                    "or fetch it again",
                )
            )
    if s.source in ("local", "hub") and not s.path.strip():
        errors.append(
            ConfigError("student.path", f"is empty but the student source is {s.source!r}", "give a folder or a hub id")
        )
    if s.source == "local" and s.path and not resolve_path(s.path).exists():
        errors.append(ConfigError("student.path", f"{s.path!r} does not exist", "check the path"))
    if s.source == "derived" and t.source == "train":
        try:
            derived_layers(s, t.arch.layers, [0.0] * t.arch.layers if by_importance(s) else None)
        except ConfigError as err:
            errors.append(err)
    if s.source == "custom" and t.source == "train" and s.arch.family != t.arch.family:
        errors.append(
            ConfigError(
                "student.arch.family",
                f"{s.arch.family!r} differs from the teacher's {t.arch.family!r}",
                "a custom student uses the teacher's family",
            )
        )
    errors.extend(teacher_cache_errors(config))
    errors.extend(on_policy_errors(config))
    errors.extend(hidden_matching_errors(config))
    if t.source == "train":
        if tr.teacher_steps < 1:
            errors.append(
                ConfigError(
                    "train.teacher_steps",
                    "is 0 but the teacher is trained here",
                    "give it at least 1 step, or load a trained teacher",
                )
            )
        if tr.seq_len > t.arch.max_positions:
            errors.append(
                ConfigError(
                    "train.seq_len",
                    f"{tr.seq_len} is above the teacher's {t.arch.max_positions} positions",
                    f"use at most {t.arch.max_positions}",
                )
            )
    if s.source == "custom" and tr.seq_len > s.arch.max_positions:
        errors.append(
            ConfigError(
                "train.seq_len",
                f"{tr.seq_len} is above the student's {s.arch.max_positions} positions",
                f"use at most {s.arch.max_positions}, or raise student.arch.max_positions",
            )
        )
    if d.source == "file":
        if not d.path.strip():
            errors.append(
                ConfigError(
                    "data.path",
                    "is empty but the data source is a file",
                    "choose a .txt, .jsonl, .csv or .parquet file",
                )
            )
        elif not resolve_path(d.path).exists():
            errors.append(ConfigError("data.path", f"{d.path!r} does not exist", "check the path"))
    if d.source in ("hf", "disk") and not d.path.strip():
        errors.append(
            ConfigError(
                "data.path",
                f"is empty but the data source is {d.source!r}",
                "give a dataset name or a save_to_disk folder",
            )
        )
    if d.source == "disk" and d.path and not resolve_path(d.path).exists():
        errors.append(ConfigError("data.path", f"{d.path!r} does not exist", "check the path"))
    if d.source == "generated" and not any(p.strip() for p in d.gen_prompts):
        errors.append(
            ConfigError(
                "data.gen_prompts", "is empty but the data is generated by the teacher", "give at least one prompt"
            )
        )
    if d.source == "generated" and config.teacher.source == "train":
        errors.append(
            ConfigError(
                "data.source",
                "generated text needs a pretrained teacher to write it, and this teacher is trained here",
                "load a teacher (local, hub or .gguf), or choose another data source",
            )
        )
    if not config.name.strip():
        errors.append(
            ConfigError("name", "is empty", "name the run: it names the run's folder (letters, digits, '-', '_')")
        )
    elif any(c in config.name for c in "/\\:") or not config.name.isprintable() or config.name.strip() in (".", ".."):
        errors.append(
            ConfigError("name", f"{config.name!r} cannot be part of a folder name", "use letters, digits, '-' and '_'")
        )
    elif len(config.name.encode("utf-8")) > NAME_MAX:
        errors.append(
            ConfigError(
                "name",
                f"is {len(config.name.encode('utf-8'))} bytes long; a run folder's name allows {NAME_MAX}",
                f"use at most {NAME_MAX} letters",
            )
        )
    return errors


def gguf_signature_problem(path: Path) -> str:
    """What is wrong with the first bytes of a ``.gguf`` file ("" when they look right): the magic and a
    version the reader knows. Eight bytes read at every check, so a damaged file is marked as soon as it is
    chosen, not when the model's header has been parsed in the background (engine/models/gguf_header.py
    reads the rest)."""
    try:
        if path.is_dir():
            return "is a folder, not a .gguf file"
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    if len(head) < 8 or head[:4] != b"GGUF":
        return "is not a GGUF file (it does not start with the GGUF magic bytes)"
    version = int.from_bytes(head[4:8], "little")
    if version not in (2, 3):
        return f"is GGUF version {version}; only versions 2 and 3 are read"
    return ""


def teacher_cache_errors(config: RunConfig) -> list[ConfigError]:
    """distill.teacher_cache = "topk" keeps only the teacher's top-k tokens and a tail bucket: the
    divergences that need the teacher's whole distribution, and the fused loss (which recomputes the
    teacher's logits from its hidden states), do not go with it. alpha = 0 makes the cache pointless
    (nothing reads it) but is allowed: the run then builds none."""
    d = config.distill
    if d.teacher_cache != "topk":
        return []
    errors = []
    if d.divergence != "forward_kl":
        errors.append(
            ConfigError(
                "distill.divergence",
                f"{d.divergence!r} is not available with the top-k teacher cache, which supports forward_kl only",
                'use divergence = "forward_kl", or use teacher_cache = "full"',
            )
        )
    if d.fused_loss:
        errors.append(
            ConfigError(
                "distill.fused_loss",
                "the fused loss recomputes the teacher's logits, which the top-k teacher cache replaces",
                'turn fused_loss off, or use teacher_cache = "full"',
            )
        )
    return errors


def first_on_policy_step(start: float, total: int) -> int:
    """The first distillation step (0-based) that may be on-policy when the first ``start`` share of the
    ``total`` steps is off-policy (``distill.on_policy_start``): ``ceil(start * total)``, 0 without a warm
    start; ``total`` or more means no step is."""
    return math.ceil(round(float(start) * int(total), 6)) if start > 0 else 0


def on_policy_errors(config: RunConfig) -> list[ConfigError]:
    """distill.on_policy > 0: the student's own samples are scored by the teacher while training, so the
    teacher must run (no top-k cache, which holds only text that existed before), there must be a soft term
    (alpha > 0), a warm start (on_policy_start) must leave some step on-policy, and prompt + generated tokens
    must fit in a training sequence."""
    d, tr = config.distill, config.train
    if d.on_policy <= 0:
        return []
    errors = []
    if d.teacher_cache == "topk":
        errors.append(
            ConfigError(
                "distill.on_policy",
                "on-policy distillation scores the student's own samples, and the top-k teacher cache cannot: "
                "a cache cannot score text that did not exist yet",
                'use teacher_cache = "full", or on_policy = 0',
            )
        )
    if d.alpha == 0:
        errors.append(
            ConfigError(
                "distill.on_policy",
                "is on but alpha is 0, so there is no teacher term to score the student's samples with",
                "raise distill.alpha above 0, or set on_policy = 0",
            )
        )
    first = first_on_policy_step(d.on_policy_start, tr.max_steps)
    if first >= tr.max_steps:
        errors.append(
            ConfigError(
                "distill.on_policy_start",
                f"{d.on_policy_start:g} of the {tr.max_steps} distillation steps are off-policy, which leaves "
                "no step on-policy",
                f"keep on_policy_start below {(tr.max_steps - 1) / tr.max_steps:.4g}, or set on_policy = 0",
            )
        )
    length = d.on_policy_prompt_tokens + d.on_policy_new_tokens
    if length > tr.seq_len:
        errors.append(
            ConfigError(
                "distill.on_policy_new_tokens",
                f"prompt ({d.on_policy_prompt_tokens}) + new tokens ({d.on_policy_new_tokens}) = {length} "
                f"is above train.seq_len ({tr.seq_len})",
                f"keep on_policy_prompt_tokens + on_policy_new_tokens at most {tr.seq_len}",
            )
        )
    return errors


def hidden_matching_errors(config: RunConfig) -> list[ConfigError]:
    """distill.hidden_weight > 0 compares each student layer's output with the teacher layer it was copied
    from: only a derived student has such a pairing (and the teacher's width). The fused loss never makes the
    per-layer hidden states, and the top-k teacher cache has none."""
    d = config.distill
    if not d.hidden_weight > 0:
        return []
    errors = []
    if config.student.source != "derived":
        errors.append(
            ConfigError(
                "distill.hidden_weight",
                f"hidden-state matching needs a derived student (one made of the teacher's layers), "
                f"not a {config.student.source!r} one, whose layers have no teacher layer to match",
                'use student.source = "derived", or set hidden_weight = 0',
            )
        )
    if d.fused_loss:
        errors.append(
            ConfigError(
                "distill.hidden_weight",
                "hidden-state matching is not available with the fused loss",
                "turn distill.fused_loss off, or set hidden_weight = 0",
            )
        )
    if d.teacher_cache == "topk":
        errors.append(
            ConfigError(
                "distill.hidden_weight",
                "hidden-state matching needs the teacher's hidden states, which the top-k teacher cache does not keep",
                'use teacher_cache = "full", or set hidden_weight = 0',
            )
        )
    return errors
