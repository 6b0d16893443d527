"""Text documents from files, hub datasets and ``save_to_disk`` folders.

Each reader returns plain strings (empty documents dropped, at most
``max_documents``) or raises one :class:`~workbench.config.ConfigError` that
names the field to change, says what is wrong in one sentence and hints at the
fix: a missing or empty file, an extension we do not read, a column that is not
there (the error lists the ones that are), a column of numbers, a corrupt file,
a hub dataset that cannot be reached.

``.txt`` files hold one document per paragraph (paragraphs are separated by a
blank line); a file without blank lines is a single document, which packs into
blocks just the same.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config.schema import DataConfig
from workbench.errors import ConfigError, one_line
from workbench.paths import resolve_path

FILE_SUFFIXES = (".txt", ".jsonl", ".csv", ".parquet")


SPLIT_CHARS = 4000
"""The longest text the tokenizer is given at once: longer documents (a file on one line) are cut at
whitespace into pieces of at most this many characters, so memory stays bounded by a batch of pieces.
The whitespace goes to the start of the next piece, where byte-level tokenizers put it anyway."""
READ_BYTES = 1 << 20  # bytes read from a .txt file at a time
ROWS_PER_READ = 10_000  # rows read from a CSV file or a dataset at a time


@dataclass
class DocumentStream:
    """The text of a ``file``, ``hf`` or ``disk`` source, read piece by piece.

    ``pieces`` yields ``(text, last)``: documents cut into pieces of at most :data:`SPLIT_CHARS`
    characters, ``last`` marking the piece that ends a document. ``identity`` is what the text
    depends on (the file's path, size and modification time, or its content hash when small; the
    dataset's fingerprint), for cache keys. ``fraction_read()`` says how far reading has come.
    """

    label: str
    pieces: Iterator[tuple[str, bool]]
    identity: dict[str, Any]
    fraction_read: Callable[[], float]


def open_documents(data: DataConfig) -> DocumentStream:
    """Check a ``file``, ``hf`` or ``disk`` source and start reading it (nothing is read whole)."""
    limit = data.max_documents or None
    settings = {"source": data.source, "max_documents": data.max_documents}
    if data.source == "file":
        path = _existing_file(data.path)
        suffix = path.suffix.lower()
        position = _Position()
        identity = {**settings, **_file_identity(path)}
        if suffix == ".txt":
            pieces, label = _txt_pieces(path, limit, position), f"file {path.name}"
        else:
            reader = {".jsonl": _read_jsonl, ".csv": _read_csv, ".parquet": _read_parquet}[suffix]
            documents = reader(path, data.text_column, limit, position)
            pieces = _split_documents(documents)
            label = f"file {path.name} (column {data.text_column})"
            identity["text_column"] = data.text_column
        return DocumentStream(label, pieces, identity, position.fraction)
    if data.source == "hf":
        dataset = _load_hub(data)
        where = f"hub dataset {data.path!r}"
        label = f"hub dataset {data.path}{'/' + data.hf_config if data.hf_config else ''} ({data.split} split, column {data.text_column})"
        identity = {**settings, "name": data.path.strip(), "config": data.hf_config, "split": data.split}
    elif data.source == "disk":
        dataset, split = _load_disk(data)
        where = f"the dataset in {data.path!r}"
        label = (
            f"dataset folder {Path(data.path).name} ({f'{split} split, ' if split else ''}column {data.text_column})"
        )
        identity = {**settings, **_folder_identity(resolve_path(data.path)), "split": split}
    else:
        raise ValueError(f"open_documents does not read {data.source!r} data")
    identity.update(text_column=data.text_column, fingerprint=getattr(dataset, "_fingerprint", None))
    position = _Position()
    documents = _dataset_texts(dataset, data, where, limit, position)
    return DocumentStream(label, _split_documents(documents), identity, position.fraction)


def read_documents(data: DataConfig) -> tuple[list[str], str]:
    """The documents of a ``file``, ``hf`` or ``disk`` source, whole, and a one-line label for them."""
    stream = open_documents(data)
    documents = list(join_pieces(stream.pieces))
    if not documents:
        raise ConfigError("data.path", f"{stream.label} contains no text", "choose a file or dataset with text in it")
    return documents, stream.label


def join_pieces(pieces: Iterable[tuple[str, bool]]) -> Iterator[str]:
    """Whole documents back from the pieces of a :class:`DocumentStream`."""
    parts: list[str] = []
    for text, last in pieces:
        parts.append(text)
        if last:
            yield "".join(parts)
            parts = []


class _Position:
    """How far a reader has come, as a fraction (a file's bytes, a dataset's rows)."""

    def __init__(self) -> None:
        self.done: Callable[[], float] = lambda: 0.0
        self.total = 1.0

    def fraction(self) -> float:
        return min(1.0, self.done() / self.total) if self.total else 1.0


def _file_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    identity: dict[str, Any] = {"path": str(path.resolve()), "size": stat.st_size}
    if stat.st_size <= 1 << 20:  # small: the content itself (a rewrite within the clock's granularity is seen)
        identity["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        identity["mtime_ns"] = stat.st_mtime_ns
    return identity


def _folder_identity(folder: Path) -> dict[str, Any]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {
        "path": str(folder.resolve()),
        "files": [[str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns] for p in files],
    }


def split_long(text: str, limit: int = SPLIT_CHARS) -> list[str]:
    """``text`` cut into pieces of at most ``limit`` characters, each cut just before the last whitespace
    character ahead of a word (so ``"a b"`` splits as ``"a"``, ``" b"``); a stretch without whitespace is
    cut at ``limit``. The pieces join back into ``text``."""
    pieces: list[str] = []
    start = 0
    while len(text) - start > limit:
        cut = _cut_point(text, start, start + limit)
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


_WORD_AFTER_SPACE = re.compile(r"\s(?=\S)")


def _cut_point(text: str, start: int, end: int) -> int:
    """The last whitespace position in ``text[start + 1 : end]`` followed by a non-space (within ``end``),
    or ``end`` when there is none in the second half of the window."""
    lower = start + max(1, (end - start) // 2)
    best = -1
    for match in _WORD_AFTER_SPACE.finditer(text, lower, end + 1):
        best = match.start()
    return best if best > start else end


def _split_documents(documents: Iterable[str]) -> Iterator[tuple[str, bool]]:
    for document in documents:
        pieces = split_long(document) if len(document) > SPLIT_CHARS else [document]
        for index, piece in enumerate(pieces):
            yield piece, index == len(pieces) - 1


def _existing_file(text: str) -> Path:
    if not text.strip():
        raise ConfigError(
            "data.path", "is empty but the data source is a file", "choose a .txt, .jsonl, .csv or .parquet file"
        )
    path = resolve_path(text)
    if not path.exists():
        raise ConfigError("data.path", f"{text!r} does not exist", "check the path")
    if path.is_dir():
        raise ConfigError(
            "data.path",
            f"{text!r} is a folder, not a file",
            "choose a file, or the source 'disk' for a save_to_disk folder",
        )
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise ConfigError(
            "data.path",
            f"{path.name!r} is not a file type the workbench reads",
            f"use one of {', '.join(FILE_SUFFIXES)}",
        )
    if path.stat().st_size == 0:
        raise ConfigError("data.path", f"{path.name} is empty", "choose a file with text in it")
    return path


def _corrupt(path: Path, kind: str, err: Exception) -> ConfigError:
    reason = one_line(err, 160)
    return ConfigError(
        "data.path", f"{path.name} could not be read as {kind}: {reason}", f"check that it is a valid {kind} file"
    )


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def _txt_pieces(path: Path, limit: int | None, position: _Position) -> Iterator[tuple[str, bool]]:
    """The paragraphs of a UTF-8 text file, read a megabyte at a time; a paragraph longer than
    :data:`SPLIT_CHARS` (a file on one line) comes out in pieces as it is read."""
    position.total = float(path.stat().st_size)
    decoder = codecs.getincrementaldecoder("utf-8")()
    documents = 0
    buffer = ""  # the paragraph being read (its start already given out when ``inside``)
    inside = False
    pending = ""  # a \r at the end of a read, which may be half of a \r\n
    with path.open("rb") as handle:
        position.done = handle.tell
        while True:
            chunk = handle.read(READ_BYTES)
            try:
                text = pending + decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                raise ConfigError(
                    "data.path", f"{path.name} is not UTF-8 text", "save it as UTF-8 text, or choose another file"
                ) from None
            pending = ""
            if chunk and text.endswith("\r"):
                text, pending = text[:-1], "\r"
            buffer += text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as read_text had
            parts = _PARAGRAPH_BREAK.split(buffer)
            buffer = parts.pop() if chunk else ""  # at the end of the file the last paragraph is complete too
            for part in parts:
                paragraph = part.rstrip() if inside else part.strip()
                if paragraph or inside:
                    pieces = split_long(paragraph)
                    for index, piece in enumerate(pieces):
                        yield piece, index == len(pieces) - 1
                    documents += 1
                    inside = False
                    if limit and documents >= limit:
                        return
            if not chunk:
                return
            if not inside:
                buffer = buffer.lstrip()
            if len(buffer) > 2 * SPLIT_CHARS:
                # A long paragraph: give out its start, keeping its end (where a break may begin).
                keep_from = _cut_point(buffer, 0, len(buffer) - SPLIT_CHARS)
                for piece in split_long(buffer[:keep_from]):
                    yield piece, False
                buffer = buffer[keep_from:]
                inside = True


def _read_jsonl(path: Path, column: str, limit: int | None, position: _Position) -> Iterator[str]:
    position.total = float(path.stat().st_size)
    documents = 0
    keys: dict[str, str] = {}  # every key seen in any row, with the kind of its first value
    with path.open("rb") as handle:
        position.done = handle.tell
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigError(
                    "data.path", f"{path.name} is not UTF-8 text", "save it as UTF-8 JSON lines"
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(
                    "data.path",
                    f"line {number} of {path.name} is not valid JSON ({err.msg})",
                    "each line must be one JSON object",
                ) from None
            if not isinstance(row, dict):
                raise ConfigError(
                    "data.path",
                    f"line {number} of {path.name} is not a JSON object",
                    'each line must be an object such as {"text": "..."}',
                )
            for key, item in row.items():
                keys.setdefault(key, _kind_of(item))
            value = row.get(column)
            if value is None:
                continue  # a row without this field holds no text
            if not isinstance(value, str):
                raise _not_text(column, _kind_of(value), keys, f"{path.name} (line {number})")
            if value.strip():
                yield value
                documents += 1
                if limit and documents >= limit:
                    return
    if keys:
        _check_column(column, keys, path.name)  # no row at all had it


def _read_csv(path: Path, column: str, limit: int | None, position: _Position) -> Iterator[str]:
    import pandas as pd

    position.total = float(path.stat().st_size)
    documents = 0
    with path.open("rb") as handle:
        position.done = handle.tell
        try:
            # keep_default_na=False: an empty cell is an empty string, not NaN (which would look like a number).
            for frame in pd.read_csv(handle, keep_default_na=False, nrows=limit, chunksize=ROWS_PER_READ):
                kinds = {str(name): _pandas_kind(frame[name]) for name in frame.columns}
                _check_column(column, kinds, path.name)
                if kinds[column] != "text":
                    raise _not_text(column, kinds[column], kinds, path.name)
                for value in frame[column].tolist():
                    if str(value).strip():
                        yield str(value)
                        documents += 1
                        if limit and documents >= limit:
                            return
        except pd.errors.EmptyDataError:
            raise ConfigError(
                "data.path", f"{path.name} has no rows", "choose a CSV file with a header and rows of text"
            ) from None
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            raise _corrupt(path, "CSV", err) from None
        except ConfigError:
            raise
        except ValueError as err:
            raise _corrupt(path, "CSV", err) from None


def _pandas_kind(series: Any) -> str:
    from pandas.api import types

    if types.is_bool_dtype(series) or types.is_numeric_dtype(series):
        return str(series.dtype)
    return "text"


def _read_parquet(path: Path, column: str, limit: int | None, position: _Position) -> Iterator[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as err:
        raise _corrupt(path, "Parquet", err) from None
    kinds = {f.name: ("text" if _arrow_is_text(f.type) else str(f.type)) for f in schema}
    _check_column(column, kinds, path.name)
    if kinds[column] != "text":
        raise _not_text(column, kinds[column], kinds, path.name)
    rows_read = 0
    position.total = float(parquet.metadata.num_rows)
    position.done = lambda: float(rows_read)
    documents = 0
    try:
        for batch in parquet.iter_batches(columns=[column], batch_size=ROWS_PER_READ):
            rows_read += batch.num_rows
            for value in batch.column(0).to_pylist():
                if value is not None and value.strip():
                    yield value
                    documents += 1
                    if limit and documents >= limit:
                        return
    except (pa.ArrowException, OSError) as err:
        raise _corrupt(path, "Parquet", err) from None


def _arrow_is_text(arrow_type: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type)


# -- datasets -------------------------------------------------------------------


def _load_hub(data: DataConfig) -> Any:
    import datasets

    name = data.path.strip()
    offline = not _hub_reachable(name)
    saved = datasets.config.HF_HUB_OFFLINE
    try:
        # Unreachable hub: read the local cache only, instead of retrying for half a minute.
        datasets.config.HF_HUB_OFFLINE = saved or offline
        return datasets.load_dataset(name, data.hf_config or None, split=data.split)
    except ConnectionError:
        raise ConfigError(
            "data.path",
            f"hub dataset {name!r} could not be reached and is not in the local cache",
            "connect to the internet, or save it with save_to_disk on a machine that is online and use the source 'disk'",
        ) from None
    except FileNotFoundError as err:  # DatasetNotFoundError and missing data files
        raise ConfigError(
            "data.path",
            f"hub dataset {name!r} was not found ({one_line(err, 160)})",
            "check the name; gated datasets need `hf auth login`",
        ) from None
    except ValueError as err:
        text = str(err)
        if "split" in text.lower():
            raise ConfigError(
                "data.split",
                f"{data.split!r} is not a split of {name!r} ({one_line(err, 160)})",
                "pick one of the dataset's splits, e.g. train",
            ) from None
        if "config" in text.lower():
            raise ConfigError(
                "data.hf_config",
                f"{data.hf_config!r} does not fit {name!r} ({one_line(err, 160)})",
                "pick one of the dataset's configurations",
            ) from None
        raise
    except Exception as err:  # noqa: BLE001 - offline cache misses come in several types
        if offline:
            raise ConfigError(
                "data.path",
                f"hub dataset {name!r} could not be reached and is not in the local cache",
                "connect to the internet, or save it with save_to_disk on a machine that is online and use the source 'disk'",
            ) from None
        raise ConfigError(
            "data.path",
            f"hub dataset {name!r} could not be read ({one_line(err, 160)})",
            "check the name, configuration and split",
        ) from None
    finally:
        datasets.config.HF_HUB_OFFLINE = saved


def _hub_reachable(name: str) -> bool:
    """One quick question to the hub (5 s at most); False when offline or unreachable."""
    import os

    if (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE") or "").strip().upper() in (
        "1",
        "ON",
        "YES",
        "TRUE",
    ):
        return False
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        HfApi().dataset_info(name, timeout=5)
    except HfHubHTTPError:
        return True  # the hub answered (not found, gated...): let datasets say what is wrong
    except Exception:  # noqa: BLE001 - any network failure
        return False
    return True


def _load_disk(data: DataConfig) -> tuple[Any, str]:
    import datasets

    path = resolve_path(data.path)
    if not path.exists():
        raise ConfigError("data.path", f"{data.path!r} does not exist", "check the path")
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError):
        raise ConfigError(
            "data.path",
            f"{data.path!r} is not a folder written by save_to_disk",
            "choose the folder that Dataset.save_to_disk wrote, or use the source 'file' for a single file",
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        if data.split not in loaded:
            raise ConfigError(
                "data.split",
                f"{data.split!r} is not a split of {data.path!r}",
                f"splits here: {', '.join(loaded.keys())}",
            )
        return loaded[data.split], data.split
    return loaded, ""


def _dataset_texts(dataset: Any, data: DataConfig, where: str, limit: int | None, position: _Position) -> Iterator[str]:
    """The text column of a ``datasets.Dataset`` (or an iterable one whose types are unknown), a batch of
    rows at a time."""
    column = data.text_column
    features = getattr(dataset, "features", None)
    if features is not None:
        kinds = {name: _feature_kind(feature) for name, feature in features.items()}
        _check_column(column, kinds, where)
        if kinds[column] != "text":
            raise _not_text(column, kinds[column], kinds, where)
    return _dataset_rows(dataset, column, where, limit, position)


def _dataset_rows(dataset: Any, column: str, where: str, limit: int | None, position: _Position) -> Iterator[str]:
    rows_read = 0
    position.done = lambda: float(rows_read)
    if hasattr(dataset, "select_columns") and hasattr(dataset, "__len__"):
        position.total = float(min(limit, len(dataset)) if limit else len(dataset))
        batches = (batch[column] for batch in dataset.select_columns([column]).iter(batch_size=ROWS_PER_READ))
    else:
        position.total = 0.0
        batches = ([row.get(column)] for row in dataset)
    documents = 0
    for values in batches:
        rows_read += len(values)
        for value in values:
            if value is None:
                continue
            if not isinstance(value, str):
                raise _not_text(column, _kind_of(value), {}, where)
            if value.strip():
                yield value
                documents += 1
                if limit and documents >= limit:
                    return


def _feature_kind(feature: Any) -> str:
    dtype = getattr(feature, "dtype", None)
    if dtype in ("string", "large_string", "string_view"):
        return "text"
    return str(dtype) if isinstance(dtype, str) else type(feature).__name__


# -- column checks -----------------------------------------------------------------


def _kind_of(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "numbers"
    if value is None:
        return "empty"
    return type(value).__name__


def _text_columns(kinds: dict[str, str]) -> list[str]:
    return [name for name, kind in kinds.items() if kind == "text"]


def _check_column(column: str, kinds: dict[str, str], where: str) -> None:
    """Raise when ``column`` is not there, naming the columns that are."""
    if column in kinds:
        return
    text_columns = _text_columns(kinds)
    listing = ", ".join(f"{name} ({kind})" for name, kind in kinds.items()) or "none"
    if not text_columns:
        raise ConfigError(
            "data.path", f"{where} has no text column (its columns: {listing})", "choose data with a column of text"
        )
    raise ConfigError(
        "data.text_column",
        f"{where} has no column {column!r} (its columns: {listing})",
        f"set data.text_column to one of: {', '.join(text_columns)}",
    )


def _not_text(column: str, kind: str, kinds: dict[str, str], where: str) -> ConfigError:
    text_columns = [c for c in _text_columns(kinds) if c != column]
    hint = (
        f"set data.text_column to one of: {', '.join(text_columns)}"
        if text_columns
        else "choose a column (or data) that holds text"
    )
    return ConfigError("data.text_column", f"column {column!r} of {where} holds {kind}, not text", hint)
