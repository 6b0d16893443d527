"""GGUF teachers: load a ``.gguf`` file (llama.cpp / Ollama / LM Studio format) as a
Hugging Face model.

Transformers reads the GGUF metadata as the config and tokenizer and dequantizes the
weights to fp32. That takes a while for big files, so the result is cached as a normal
``save_pretrained`` folder (safetensors + tokenizer) under
``paths.cache_dir("gguf") / <first 16 hex digits of the file's sha256>/``; the next load of the
same bytes, under any name, reads that folder instead. A conversion is written to a hidden
temporary folder and renamed into place when complete, so a killed conversion never leaves a
half cache behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from workbench import paths
from workbench.engine.models.errors import UNREADABLE_WEIGHTS, ModelSourceError
from workbench.engine.models.fetch import FETCH_HINT, SMOLLM2_FILE
from workbench.engine.models.sizes import one_model_at_a_time
from workbench.engine.models.tokenizers import ensure_pad_token
from workbench.errors import Warn, one_line, warn_user
from workbench.paths import resolve_path

MARKER = "workbench-gguf.json"
"""Written last into a converted folder; its presence means the conversion completed."""


# -- hashing -----------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """The file's sha256, remembered per (path, size, mtime) so big files are hashed once."""
    path = path.resolve()
    stat = path.stat()
    memo_path = paths.cache_dir("gguf") / "hashes.json"
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    entry = memo.get(str(path))
    if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return entry["sha256"]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    memo[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest.hexdigest()}
    paths.write_text_atomic(memo_path, json.dumps(memo, indent=1))
    return digest.hexdigest()


# -- checking and loading ------------------------------------------------------------------


def _check_gguf_file(file: Path, shown: str, field: str) -> None:
    """Raise ModelSourceError unless ``file`` exists and starts like a GGUF file (cheap)."""
    if not file.exists():
        hint = FETCH_HINT if file.name == SMOLLM2_FILE else "check the path"
        raise ModelSourceError(field, f"the GGUF file {shown!r} does not exist", hint)
    if not file.is_file():
        raise ModelSourceError(
            field,
            f"{shown!r} is a folder, not a .gguf file",
            "choose the .gguf file itself, or use the local source for a save_pretrained folder",
        )
    with file.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        what = "is empty" if not magic else "does not start with the GGUF signature"
        raise ModelSourceError(
            field,
            f"{shown!r} {what}, so it is not a GGUF model file",
            "choose a .gguf file written by llama.cpp, Ollama or LM Studio; download it again if it was cut short",
        )


def _check_gguf_contents(file: Path, shown: str, field: str) -> None:
    """Parse the whole header and tensor table (only needed before a conversion)."""
    import gguf

    damaged = ModelSourceError(
        field, f"{shown!r} is damaged or cut short and cannot be read as GGUF", "download the file again"
    )
    try:
        reader = gguf.GGUFReader(str(file))
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    except Exception:  # noqa: BLE001  (the reader raises many kinds of errors on bad bytes)
        raise damaged from None
    if not reader.tensors or end > file.stat().st_size:
        raise damaged


def _convert(file: Path, field: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Dequantize ``file`` to an fp32 model and build its tokenizer from the metadata."""
    from transformers import GgufConfig

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(file.parent), gguf_file=file.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(file.parent),
            gguf_file=file.name,
            dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
        )
    except (ValueError, KeyError, NotImplementedError, RuntimeError, OSError) as err:
        raise ModelSourceError(
            field,
            f"{file.name!r} could not be converted: {one_line(err)}",
            "transformers supports GGUF files of common architectures (llama, mistral, qwen2, gemma, ...); try another file or a save_pretrained folder",
        ) from None
    # The dequantized weights are plain fp32 tensors; the quantizer must go before saving, or
    # save_pretrained refuses / the saved config claims a quantization that is not there.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


def _cache_folder(file: Path) -> Path:
    return paths.cache_dir("gguf") / file_sha256(file)[:16]


def _cached(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def _save_cache(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, file: Path, folder: Path, on_warning: Warn | None
) -> None:
    try:
        # keep_existing: another process that converted the same file at the same time may have won
        with paths.atomic_target(folder, keep_existing=True) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            marker = {
                "source": str(file.resolve()),
                "size": file.stat().st_size,
                "converted_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            (tmp / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
    except OSError as err:
        warn_user(
            f"the converted GGUF could not be cached in {folder} ({one_line(err)}); the next load converts again",
            on_warning,
        )


@one_model_at_a_time
def load_gguf(
    path: str,
    *,
    dtype: torch.dtype = torch.float32,
    field: str = "teacher.path",
    on_warning: Warn | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model and tokenizer from a ``.gguf`` file, through the converted-weights cache.

    ``path`` may start with ``models:`` (see :func:`workbench.paths.resolve_path`).
    Errors a user can cause (missing, empty, corrupt, unsupported file) raise ModelSourceError.
    """
    file = resolve_path(path)
    _check_gguf_file(file, path, field)
    folder = _cache_folder(file)
    if _cached(folder):
        try:
            model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            ensure_pad_token(tokenizer)
            return model, tokenizer
        except (ValueError, *UNREADABLE_WEIGHTS) as err:
            warn_user(
                f"the cached conversion in {folder} is unreadable ({one_line(err)}); converting again", on_warning
            )
            shutil.rmtree(folder, ignore_errors=True)
    _check_gguf_contents(file, path, field)
    model, tokenizer = _convert(file, field)
    _save_cache(model, tokenizer, file, folder, on_warning)
    ensure_pad_token(tokenizer)
    model.eval()
    return model.to(dtype), tokenizer


def load_gguf_tokenizer(path: str, *, field: str = "teacher.path") -> PreTrainedTokenizerBase:
    """Only the tokenizer of a ``.gguf`` file (from the cache when converted before)."""
    file = resolve_path(path)
    _check_gguf_file(file, path, field)
    folder = _cache_folder(file)
    if _cached(folder):
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    else:
        _check_gguf_contents(file, path, field)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(file.parent), gguf_file=file.name)
        except (ValueError, KeyError, OSError) as err:
            raise ModelSourceError(
                field, f"the tokenizer of {file.name!r} could not be read: {one_line(err)}", "try another .gguf file"
            ) from None
    ensure_pad_token(tokenizer)
    return tokenizer
