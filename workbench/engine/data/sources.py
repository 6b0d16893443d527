"""Text documents from files, hub datasets and ``save_to_disk`` folders, streamed.

The file readers (.txt, .jsonl, .csv, .parquet) live here; the dataset readers in datasets.py, and what they
share (the position, the column checks) in reading.py.

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
from workbench.engine.data.datasets import dataset_texts, load_disk, load_hub
from workbench.engine.data.reading import (
    ROWS_PER_READ,
    Position,
    arrow_is_text,
    check_column,
    kind_of,
    not_text,
    pandas_kind,
)
from workbench.errors import ConfigError, one_line
from workbench.paths import resolve_path

FILE_SUFFIXES = (".txt", ".jsonl", ".csv", ".parquet")


SPLIT_CHARS = 4000
"""The longest text the tokenizer is given at once: longer documents (a file on one line) are cut at
whitespace into pieces of at most this many characters, so memory stays bounded by a batch of pieces.
The whitespace goes to the start of the next piece, where byte-level tokenizers put it anyway."""
READ_BYTES = 1 << 20  # bytes read from a .txt file at a time


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
        position = Position()
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
        dataset = load_hub(data)
        where = f"hub dataset {data.path!r}"
        label = f"hub dataset {data.path}{'/' + data.hf_config if data.hf_config else ''} ({data.split} split, column {data.text_column})"
        identity = {**settings, "name": data.path.strip(), "config": data.hf_config, "split": data.split}
    elif data.source == "disk":
        dataset, split = load_disk(data)
        where = f"the dataset in {data.path!r}"
        label = (
            f"dataset folder {Path(data.path).name} ({f'{split} split, ' if split else ''}column {data.text_column})"
        )
        identity = {**settings, **_folder_identity(resolve_path(data.path)), "split": split}
    else:
        raise ValueError(f"open_documents does not read {data.source!r} data")
    identity.update(text_column=data.text_column, fingerprint=getattr(dataset, "_fingerprint", None))
    position = Position()
    documents = dataset_texts(dataset, data, where, limit, position)
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
            "choose one file (join a folder of text files into one .txt), or the source 'disk' for a folder "
            "made by datasets' save_to_disk",
        )
    if not path.is_file():
        raise ConfigError(
            "data.path", f"{path.name!r} is not a regular file (a pipe or a device)", "choose a file saved on disk"
        )
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise ConfigError(
            "data.path",
            f"{path.name!r} is not a file type the workbench reads",
            f"use one of {', '.join(FILE_SUFFIXES)}"
            + (
                "; a plain text file without an ending can be copied to a name ending in .txt"
                if not path.suffix
                else ""
            ),
        )
    if path.stat().st_size == 0:
        raise ConfigError("data.path", f"{path.name} is empty", "choose a file with text in it")
    return path


def check_file(data: DataConfig) -> None:
    """The checks of a ``file`` source that need no reading through (a ConfigError at ``data.path``): it exists,
    is a regular file of a type read here, not empty, not UTF-16 and not binary. For the plan, so that the
    form marks such a file before Start."""
    path = _existing_file(data.path)
    if path.suffix.lower() in (".txt", ".jsonl"):
        _refuse_binary_or_utf16(path)


def _refuse_binary_or_utf16(path: Path) -> None:
    """A file the reader would take for text but is not: UTF-16 (its byte-order mark) or binary (NUL bytes,
    which text in UTF-8 does not contain; more than 1% of the first 64 KiB)."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError("data.path", f"{path.name} is UTF-16 text, not UTF-8", "save it as UTF-8 text")
    if head.count(0) > len(head) // 100:
        raise ConfigError(
            "data.path",
            f"{path.name} looks like a binary file, not text (it is {head.count(0) / len(head):.0%} NUL bytes)",
            "choose a text file saved as UTF-8",
        )


def _corrupt(path: Path, kind: str, err: Exception) -> ConfigError:
    if isinstance(err, UnicodeDecodeError):
        return ConfigError("data.path", f"{path.name} is not UTF-8 text", f"save it as UTF-8 {kind}")
    reason = one_line(err, 160)
    return ConfigError(
        "data.path", f"{path.name} could not be read as {kind}: {reason}", f"check that it is a valid {kind} file"
    )


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def _txt_pieces(path: Path, limit: int | None, position: Position) -> Iterator[tuple[str, bool]]:
    """The paragraphs of a UTF-8 text file, read a megabyte at a time; a paragraph longer than
    :data:`SPLIT_CHARS` (a file on one line) comes out in pieces as it is read."""
    position.total = float(path.stat().st_size)
    _refuse_binary_or_utf16(path)
    decoder = codecs.getincrementaldecoder("utf-8-sig")()  # a byte-order mark at the start is not text
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


def _read_jsonl(path: Path, column: str, limit: int | None, position: Position) -> Iterator[str]:
    position.total = float(path.stat().st_size)
    documents = 0
    keys: dict[str, str] = {}  # every key seen in any row, with the kind of its first value
    _refuse_binary_or_utf16(path)
    with path.open("rb") as handle:
        position.done = handle.tell
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a byte-order mark is not JSON
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
                    f"line {number} of {path.name} is not valid JSON ({err.msg.removesuffix(' at')} at column {err.colno})",
                    "each line must be one JSON object",
                ) from None
            if not isinstance(row, dict):
                raise ConfigError(
                    "data.path",
                    f"line {number} of {path.name} is not a JSON object",
                    'each line must be an object such as {"text": "..."}',
                )
            for key, item in row.items():
                keys.setdefault(key, kind_of(item))
            value = row.get(column)
            if value is None:
                continue  # a row without this field holds no text
            if not isinstance(value, str):
                raise not_text(column, kind_of(value), keys, f"{path.name} (line {number})")
            if value.strip():
                yield value
                documents += 1
                if limit and documents >= limit:
                    return
    if keys:
        check_column(column, keys, path.name)  # no row at all had it


def _read_csv(path: Path, column: str, limit: int | None, position: Position) -> Iterator[str]:
    import pandas as pd

    position.total = float(path.stat().st_size)
    documents = 0
    with path.open("rb") as handle:
        position.done = handle.tell
        try:
            # keep_default_na=False: an empty cell is an empty string, not NaN (which would look like a number).
            for frame in pd.read_csv(handle, keep_default_na=False, nrows=limit, chunksize=ROWS_PER_READ):
                kinds = {str(name): pandas_kind(frame[name]) for name in frame.columns}
                check_column(column, kinds, path.name)
                if kinds[column] != "text":
                    raise not_text(column, kinds[column], kinds, path.name)
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


def _read_parquet(path: Path, column: str, limit: int | None, position: Position) -> Iterator[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as err:
        raise _corrupt(path, "Parquet", err) from None
    kinds = {f.name: ("text" if arrow_is_text(f.type) else str(f.type)) for f in schema}
    check_column(column, kinds, path.name)
    if kinds[column] != "text":
        raise not_text(column, kinds[column], kinds, path.name)
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
