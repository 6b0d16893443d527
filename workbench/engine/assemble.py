"""Putting a run's pieces together: the tokenizer it reads with, its teacher and student.

The one place that decides which tokenizer a config reads its data with (:func:`data_tokenizer`), shared
by the training loop, ``workbench data``, the window's data preview, and everything that reopens a
finished run (``predictor.Predictor``, ``workbench predict``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model

from workbench import paths
from workbench.config.schema import DataConfig, RunConfig, TeacherConfig
from workbench.engine.models.build import make_student
from workbench.engine.models.errors import UNREADABLE_WEIGHTS, ModelSourceError
from workbench.engine.models.load import load_pretrained, load_teacher, load_tokenizer
from workbench.engine.models.sizes import max_positions
from workbench.errors import ConfigError, one_line, writing
from workbench.run_folder import (
    latest_checkpoint,
    load_run_config,
    read_checkpoint_state,
)

TEXT_TOKENIZER_VOCAB = 4096
"""Vocabulary of the BPE tokenizer trained here when a teacher is trained from scratch on text files."""


def is_toy(config: RunConfig) -> bool:
    return config.data.source == "toy"


def toy_language() -> Any:
    from workbench.engine.toy.language import (
        get_language,  # late: building the language takes a moment
    )

    return get_language()


def data_tokenizer(teacher: TeacherConfig, data: DataConfig, *, train_on_text: bool = True) -> Any:
    """The tokenizer a config reads its data with.

    A teacher trained here reads with the built-in language's tokenizer, or with a BPE tokenizer trained
    on the text (``train_on_text=False`` returns None there instead: the window's preview trains it
    itself, on the documents it reads anyway). A loaded teacher reads with its own tokenizer (no
    weights are loaded). Raises ConfigError when that tokenizer cannot be had.
    """
    if teacher.source == "train":
        if data.source == "toy":
            return toy_language().tokenizer()
        if not train_on_text:
            return None
        from workbench.engine.data.generated import train_tokenizer
        from workbench.engine.data.sources import open_documents

        # Streamed: the trainer counts words piece by piece, so memory follows the vocabulary, not the file.
        stream = open_documents(data)
        seen = [False]

        def texts():
            for text, _last in stream.pieces:
                seen[0] = seen[0] or bool(text.strip())
                yield text

        entry = text_tokenizer_entry(stream.identity)
        cached = _load_cached_tokenizer(entry)
        if cached is not None:
            return cached
        tokenizer = train_tokenizer(texts(), vocab_size=TEXT_TOKENIZER_VOCAB)
        if not seen[0]:
            raise ConfigError(
                "data.path", f"{stream.label} contains no text", "choose a file or dataset with text in it"
            )
        _cache_tokenizer(tokenizer, entry, replace=entry.exists())  # a damaged entry is replaced
        return tokenizer
    return load_tokenizer(
        teacher.source, teacher.path, revision=teacher.revision, trust_remote_code=teacher.trust_remote_code
    )


TOKENIZER_CACHE_VERSION = 1  # bump when train_tokenizer's output for the same text changes


def text_tokenizer_entry(identity: dict[str, Any]) -> Path:
    """The cache folder of the BPE tokenizer trained on the text that ``identity`` (``DocumentStream.identity``)
    names: a later run on the same text loads it instead of training it again, and the plan reads its real
    size instead of assuming :data:`TEXT_TOKENIZER_VOCAB`."""
    key = {"version": TOKENIZER_CACHE_VERSION, "vocab_size": TEXT_TOKENIZER_VOCAB, **identity}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return paths.cache_path("tokenizers") / digest


def cached_tokenizer_size(entry: Path) -> int | None:
    """The vocabulary size of the tokenizer cached in ``entry`` (its ``tokenizer.json``), None when there is none
    or it cannot be read. Reads a JSON file: cheap enough for the plan."""
    try:
        spec = json.loads((entry / "tokenizer.json").read_text(encoding="utf-8"))
        vocab = spec["model"]["vocab"]
        added = {token["id"] for token in spec.get("added_tokens", [])}
        return max(len(vocab), max(added, default=-1) + 1, max(vocab.values(), default=-1) + 1)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _load_cached_tokenizer(entry: Path) -> Any:
    if not (entry / "tokenizer.json").is_file():
        return None
    from transformers import PreTrainedTokenizerFast

    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(entry))
    except Exception:  # noqa: BLE001 - a damaged entry is trained again (and rewritten), never fatal
        return None
    tokenizer.name_or_path = ""  # as trained: the token cache's key (corpus.tokenizer_identity) is the same
    return tokenizer


def _cache_tokenizer(tokenizer: Any, entry: Path, *, replace: bool) -> None:
    """Best effort: a home that cannot be written costs the next run a retraining, nothing else (the token
    cache beside it warns about the same folder)."""
    try:
        with writing("the tokenizer cache", entry.parent), paths.atomic_target(entry, keep_existing=not replace) as tmp:
            tokenizer.save_pretrained(str(tmp))
    except Exception:  # noqa: BLE001 - the tokenizers library reports a full disk as a plain Exception
        pass


def check_positions(config: RunConfig, model: torch.nn.Module, role: str) -> None:
    """Sequence length above the model's positions is a user error, caught before training starts."""
    limit = max_positions(model)
    if limit and config.train.seq_len > limit:
        raise ConfigError(
            "train.seq_len", f"{config.train.seq_len} is above the {role}'s {limit} positions", f"use at most {limit}"
        )


def load_run_models(run_dir: Path) -> tuple[torch.nn.Module, torch.nn.Module, Any, Any]:
    """(teacher, student, tokenizer, language or None) of a run folder, for inference.

    The config is read without its checks: a finished run's models are in its folder, so its training data
    need not exist any more (moved, deleted, on another machine)."""
    config = load_run_config(run_dir, validate=False)
    language = toy_language() if is_toy(config) else None
    if (run_dir / "teacher" / "config.json").is_file():
        teacher, tokenizer = load_pretrained("local", str(run_dir / "teacher"), field="")
    elif config.teacher.source == "train":
        raise ConfigError(
            "",
            f"run {run_dir.name} has no trained teacher yet",
            "wait for the teacher stage to finish, or pick another run",
        )
    else:
        teacher, tokenizer = load_teacher(config.teacher)
    if (run_dir / "student" / "config.json").is_file():
        student, _ = load_pretrained("local", str(run_dir / "student"), field="")
    else:
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None or read_checkpoint_state(checkpoint)["stage"] != "distill":
            raise ConfigError(
                "",
                f"run {run_dir.name} has no student yet",
                "wait for the first distillation checkpoint, or pick another run",
            )
        from workbench.engine.importance import student_with_layers

        student_cfg = student_with_layers(config.student, run_dir)  # keep = "importance": its layers.json
        student = make_student(student_cfg, teacher, tokenizer, seed=config.train.seed)
        try:
            load_model(student, str(checkpoint / "model.safetensors"))
        except UNREADABLE_WEIGHTS as err:
            raise ModelSourceError(
                "",
                f"checkpoint {checkpoint.name}: model.safetensors is damaged ({one_line(err, 160)})",
                "resume the run to write a new checkpoint, or pick another run",
            ) from None
    return teacher, student, tokenizer, language
