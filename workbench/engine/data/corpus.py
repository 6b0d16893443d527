"""Text of any size into token blocks, through Hugging Face ``datasets`` and an Arrow cache.

The documents of a file, hub or disk source are read piece by piece (:func:`sources.open_documents`:
no piece longer than ``SPLIT_CHARS`` characters) into an Arrow file; ``Dataset.map(batched=True)``
tokenizes a batch of pieces at a time and packs the token stream (each document followed by the
end-of-text token) into blocks of ``seq_len``, carrying the tokens short of a whole block into the next
batch, so the blocks are the stream cut into blocks exactly as if it had been tokenized whole. The
held-out blocks are then drawn as before (a seeded permutation of the block indices) and written as
two flat files that the returned tensors memory-map, so memory stays bounded by a batch, not by the file.

The cache (``$WORKBENCH_HOME/cache/text/<key>/``) is keyed by the source (a file's path, size and
modification time, or its content when small; a dataset's fingerprint), the tokenizer (its whole
definition, hashed), ``seq_len`` and the data settings that change the text; the split below it by the
seed and ``val_fraction``. A cache that cannot be written is a warning: the blocks are then built in a
temporary folder that goes away with the process.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench import paths
from workbench.config.schema import DataConfig
from workbench.engine.data.sources import SPLIT_CHARS, DocumentStream, open_documents
from workbench.errors import ConfigError, WriteFailed, writing

CACHE_VERSION = 2  # bump when the way blocks are made or stored changes (2: a UTF-8 byte-order mark is dropped)
PIECES_PER_BATCH = 1000  # pieces per tokenizer call (at most SPLIT_CHARS characters each)
EXAMPLES_KEPT = 5
EXAMPLE_CHARS = 400
UNKNOWN_WARN_FRACTION = 0.05
UNKNOWN_SAMPLE_TOKENS = 200_000  # the unknown-token check looks at the start of the stream
PROGRESS_AFTER_S = 2.0  # no progress lines for data that is ready sooner
TOKEN_DTYPE = np.int32

Log = Callable[[str], None]


def tokenizer_identity(tokenizer: Any) -> dict[str, Any]:
    """What a tokenizer's ids depend on: its whole definition (hashed), its size and end-of-text id."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    definition = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    return {
        "name": str(getattr(tokenizer, "name_or_path", "")),
        "vocab": len(tokenizer),
        "eos": tokenizer.eos_token_id,
        "sha256": hashlib.sha256(definition.encode()).hexdigest(),
    }


def encode(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """The ids of each text, without special tokens: the Rust tokenizer's batch call without offsets
    where there is one (a third faster), else the tokenizer itself."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "encode_batch_fast"):
        return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    # verbose=False: long pieces are expected here; they are cut into blocks afterwards.
    return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]


def too_few_blocks(label: str, tokens: int, seq_len: int, data: DataConfig) -> ConfigError:
    """The error for text that packs into fewer than 2 blocks (one to train on, one held out)."""
    fits = tokens // 2
    hint = f"use train.seq_len {fits} or less, or give more text" if fits >= 8 else "give more text"
    if data.max_documents:
        hint += ", or raise data.max_documents"
    return ConfigError(
        "train.seq_len",
        f"{label} has {tokens:,} tokens, too few for 2 blocks of {seq_len} (one to train on, one held out)",
        hint,
    )


def text_blocks(data: DataConfig, tokenizer: Any, seq_len: int, seed: int, on_log: Log | None) -> dict[str, Any]:
    """Train and held-out blocks of a file, hub or disk source: the fields of a ``TokenBlocks``.

    ``cached`` is True when the tokenized blocks came from the cache. Progress (with an estimate of the
    time left) and warnings go to ``on_log``.
    """
    stream = open_documents(data)
    key = _key({"source": stream.identity, "tokenizer": tokenizer_identity(tokenizer), "seq_len": seq_len})
    entry, temporary = _entry_folder(key, on_log)
    meta = _read_meta(entry)
    cached = meta is not None
    if meta is None:
        entry, temporary, meta = _build(entry, temporary, data, stream, tokenizer, seq_len, key, on_log)
    n_blocks = meta["blocks"]
    if n_blocks < 2:
        raise too_few_blocks(stream.label, meta["tokens"], seq_len, data)
    train, val = _split(entry, n_blocks, seq_len, seed, data.val_fraction, on_log, temporary)
    if temporary:
        shutil.rmtree(entry.parent, ignore_errors=True)  # the mappings keep the files' data while they live
    if on_log:
        if meta["unknown_fraction"] > UNKNOWN_WARN_FRACTION:
            on_log(
                f"warning: {meta['unknown_fraction']:.0%} of the tokens are unknown to the tokenizer; "
                "the text does not suit it"
            )
        on_log(
            f"{stream.label}: {meta['documents']:,} documents, {meta['tokens']:,} tokens, {len(train):,} training "
            f"and {len(val):,} held-out blocks of {seq_len}{' (cached)' if cached else ''}"
        )
    return {
        "train": train,
        "val": val,
        "documents": meta["documents"],
        "tokens": meta["tokens"],
        "source_label": stream.label,
        "examples": meta["examples"],
        "cached": cached,
    }


def _key(parts: dict[str, Any]) -> str:
    text = json.dumps({"version": CACHE_VERSION, "split_chars": SPLIT_CHARS, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _entry_folder(key: str, on_log: Log | None) -> tuple[Path, bool]:
    """The cache entry for ``key``, or a temporary folder (True) when the cache cannot be written."""
    try:
        with writing("the token cache", paths.home() / "cache" / "text"):
            folder = paths.cache_path("text")
            folder.mkdir(parents=True, exist_ok=True)
            return folder / key, False
    except WriteFailed as err:
        _warn_uncached(err, on_log)
        return Path(tempfile.mkdtemp(prefix="workbench-blocks-")) / key, True


def _warn_uncached(err: WriteFailed, on_log: Log | None) -> None:
    from workbench.errors import warn_user

    warn_user(
        f"the tokenized text could not be cached in {err.where} ({err.reason}); the next run tokenizes it again",
        on_log and (lambda message: on_log(f"warning: {message}")),
    )


def _read_meta(entry: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if (entry / "blocks.arrow").is_file() else None


# -- tokenizing ----------------------------------------------------------------------


class _Progress:
    """One line per tenth done, with the time left, once the work has taken more than a moment."""

    def __init__(self, what: str, on_log: Log | None):
        self.what, self.on_log = what, on_log
        self.started = time.perf_counter()
        self.next_tenth = 1

    def update(self, fraction: float) -> None:
        if self.on_log is None or fraction * 10 < self.next_tenth:
            return
        elapsed = time.perf_counter() - self.started
        self.next_tenth = int(fraction * 10) + 1
        if elapsed < PROGRESS_AFTER_S or fraction >= 1:
            return
        left = elapsed / max(fraction, 1e-9) * (1 - fraction)
        self.on_log(f"{self.what}: {fraction:.0%}, about {_duration(left)} left")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _build(
    entry: Path,
    temporary: bool,
    data: DataConfig,
    stream: DocumentStream,
    tokenizer: Any,
    seq_len: int,
    key: str,
    on_log: Log | None,
) -> tuple[Path, bool, dict[str, Any]]:
    """Tokenize into the cache entry; where it cannot be written, warn and do it in a temporary folder
    (True with the folder)."""
    try:
        with writing("the token cache", entry.parent), paths.atomic_target(entry, keep_existing=True) as tmp:
            tmp.mkdir(parents=True)
            meta = _tokenize_into(tmp, stream, tokenizer, seq_len, key, on_log)
        return entry, temporary, _read_meta(entry) or meta
    except WriteFailed as err:
        if temporary:
            raise
        _warn_uncached(err, on_log)
    entry = Path(tempfile.mkdtemp(prefix="workbench-blocks-")) / key
    entry.mkdir()
    meta = _tokenize_into(entry, open_documents(data), tokenizer, seq_len, key, on_log)
    return entry, True, meta


def _tokenize_into(
    folder: Path, stream: DocumentStream, tokenizer: Any, seq_len: int, key: str, on_log: Log | None
) -> dict[str, Any]:
    """Write ``blocks.arrow`` and ``meta.json`` into ``folder``; the counts and examples as a dict."""
    import datasets
    import pyarrow as pa

    pieces_file = folder / "pieces.arrow"
    schema = pa.schema([("text", pa.large_string()), ("last", pa.bool_())])
    documents = 0
    examples: list[str] = []
    example = ""
    reading = _Progress(f"reading {stream.label}", on_log)
    with pa.OSFile(str(pieces_file), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        texts: list[str] = []
        lasts: list[bool] = []
        for text, last in stream.pieces:
            texts.append(text)
            lasts.append(last)
            if len(examples) < EXAMPLES_KEPT and len(example) <= EXAMPLE_CHARS:
                example += text[: EXAMPLE_CHARS + 1]
            if last:
                documents += 1
                if len(examples) < EXAMPLES_KEPT:
                    examples.append(_shorten(example))
                example = ""
            if len(texts) == PIECES_PER_BATCH:
                writer.write_batch(pa.record_batch([texts, lasts], schema=schema))
                texts, lasts = [], []
                reading.update(stream.fraction_read())
        if texts:
            writer.write_batch(pa.record_batch([texts, lasts], schema=schema))
    if not documents:
        raise ConfigError("data.path", f"{stream.label} contains no text", "choose a file or dataset with text in it")

    eos = tokenizer.eos_token_id
    state = {"carry": np.zeros(0, dtype=TOKEN_DTYPE), "tokens": 0, "unknown": 0, "sampled": 0, "rows": 0}
    unk = getattr(tokenizer, "unk_token_id", None)
    pieces = datasets.Dataset.from_file(str(pieces_file))
    total_rows = max(len(pieces), 1)
    tokenizing = _Progress(f"tokenizing {stream.label}", on_log)

    def pack(batch: dict[str, list[Any]]) -> dict[str, Any]:
        encoded = encode(tokenizer, batch["text"])
        parts = [state["carry"]]
        for ids, last in zip(encoded, batch["last"], strict=True):
            parts.append(np.asarray(ids, dtype=TOKEN_DTYPE))
            if last and eos is not None:
                parts.append(np.asarray([eos], dtype=TOKEN_DTYPE))
        stream_ids = np.concatenate(parts)
        new = stream_ids.size - state["carry"].size
        state["tokens"] += new
        if unk is not None and state["sampled"] < UNKNOWN_SAMPLE_TOKENS:
            state["unknown"] += int(np.count_nonzero(stream_ids[state["carry"].size :] == unk))
            state["sampled"] += new
        whole = stream_ids.size // seq_len * seq_len
        state["carry"] = stream_ids[whole:].copy()  # short of a whole block: goes on into the next batch
        state["rows"] += len(batch["text"])
        tokenizing.update(state["rows"] / total_rows)
        return {"input_ids": stream_ids[:whole].reshape(-1, seq_len)}

    features = datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int32"), length=seq_len)})
    bars_were_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # the workbench reports its own progress
    try:
        blocks = pieces.map(
            pack,
            batched=True,
            batch_size=PIECES_PER_BATCH,
            remove_columns=pieces.column_names,
            features=features,
            cache_file_name=str(folder / "blocks.arrow"),
            new_fingerprint=key,
            load_from_cache_file=False,
        )
        n_blocks = len(blocks)
        del blocks, pieces
    finally:
        if not bars_were_off:
            datasets.enable_progress_bars()
    pieces_file.unlink()
    meta = {
        "documents": documents,
        "tokens": state["tokens"],  # the tokens short of a last whole block are counted, not packed
        "blocks": n_blocks,
        "seq_len": seq_len,
        "examples": examples,
        "unknown_fraction": state["unknown"] / state["sampled"] if state["sampled"] else 0.0,
    }
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return meta


def _shorten(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1].rstrip() + "…"


# -- the held-out split ------------------------------------------------------------------


def held_out(n_blocks: int, seed: int, val_fraction: float) -> torch.Tensor:
    """A mask over the blocks: True for the held-out ones (a seeded draw of ``val_fraction`` of them)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n_blocks, generator=generator)
    n_val = max(1, round(n_blocks * val_fraction))
    mask = torch.zeros(n_blocks, dtype=torch.bool)
    mask[order[:n_val]] = True
    return mask


def _split(
    entry: Path, n_blocks: int, seq_len: int, seed: int, val_fraction: float, on_log: Log | None, temporary: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training and held-out blocks, each in the order of the text, memory-mapped from files in
    ``entry/split-<seed>-<val_fraction>/`` (written on first use; the other splits of the entry removed)."""
    name = f"split-{seed}-{val_fraction!r}"
    folder = entry / name
    mask = held_out(n_blocks, seed, val_fraction)
    n_val = int(mask.sum())
    shapes = {"train": (n_blocks - n_val, seq_len), "val": (n_val, seq_len)}
    if temporary:
        folder.mkdir()
        _write_split(entry / "blocks.arrow", folder, mask.numpy(), seq_len)
    elif not all(_complete(folder / f"{part}.bin", shape) for part, shape in shapes.items()):
        try:
            with writing("the token cache", entry), paths.atomic_target(folder, keep_existing=True) as tmp:
                tmp.mkdir()
                _write_split(entry / "blocks.arrow", tmp, mask.numpy(), seq_len)
            for other in entry.glob("split-*"):
                if other.name != name and other.is_dir():
                    shutil.rmtree(other, ignore_errors=True)
        except WriteFailed as err:
            _warn_uncached(err, on_log)
            folder = Path(tempfile.mkdtemp(prefix="workbench-split-"))
            _write_split(entry / "blocks.arrow", folder, mask.numpy(), seq_len)
    return _mapped(folder / "train.bin", shapes["train"]), _mapped(folder / "val.bin", shapes["val"])


def _write_split(blocks_file: Path, folder: Path, mask: np.ndarray, seq_len: int) -> None:
    import pyarrow as pa

    start = 0
    with (
        (folder / "train.bin").open("wb") as train,
        (folder / "val.bin").open("wb") as val,
        pa.OSFile(str(blocks_file), "rb") as source,
    ):
        # Read, not memory-mapped: a batch at a time in memory, whatever the file's size.
        for batch in pa.ipc.open_stream(source):
            ids = batch.column(0).flatten().to_numpy().reshape(-1, seq_len)
            chosen = mask[start : start + len(ids)]
            ids[~chosen].astype(TOKEN_DTYPE, copy=False).tofile(train)
            ids[chosen].astype(TOKEN_DTYPE, copy=False).tofile(val)
            start += len(ids)


def _complete(path: Path, shape: tuple[int, int]) -> bool:
    try:
        return path.stat().st_size == shape[0] * shape[1] * np.dtype(TOKEN_DTYPE).itemsize
    except OSError:
        return False


def _mapped(path: Path, shape: tuple[int, int]) -> torch.Tensor:
    if shape[0] == 0:
        return torch.zeros(shape, dtype=torch.int32)
    # Copy-on-write: the tensor is writable (as torch wants) and nothing written reaches the cache.
    return torch.from_numpy(np.memmap(path, dtype=TOKEN_DTYPE, mode="c", shape=shape))
