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

import json
import re
from pathlib import Path
from typing import Any

from workbench.config.schema import DataConfig
from workbench.errors import ConfigError, one_line
from workbench.paths import resolve_path

FILE_SUFFIXES = (".txt", ".jsonl", ".csv", ".parquet")


def read_documents(data: DataConfig) -> tuple[list[str], str]:
    """The documents of a ``file``, ``hf`` or ``disk`` source and a one-line label for them."""
    limit = data.max_documents or None
    if data.source == "file":
        path = _existing_file(data.path)
        suffix = path.suffix.lower()
        if suffix == ".txt":
            documents, label = _read_txt(path, limit), f"file {path.name}"
        else:
            reader = {".jsonl": _read_jsonl, ".csv": _read_csv, ".parquet": _read_parquet}[suffix]
            documents, label = reader(path, data.text_column, limit), f"file {path.name} (column {data.text_column})"
    elif data.source == "hf":
        documents = _dataset_texts(_load_hub(data), data, f"hub dataset {data.path!r}", limit)
        label = f"hub dataset {data.path}{'/' + data.hf_config if data.hf_config else ''} ({data.split} split, column {data.text_column})"
    elif data.source == "disk":
        dataset, split = _load_disk(data)
        documents = _dataset_texts(dataset, data, f"the dataset in {data.path!r}", limit)
        where = f"{split} split, " if split else ""
        label = f"dataset folder {Path(data.path).name} ({where}column {data.text_column})"
    else:
        raise ValueError(f"read_documents does not read {data.source!r} data")
    if not documents:
        raise ConfigError("data.path", f"{label} contains no text", "choose a file or dataset with text in it")
    return documents, label


# -- files ----------------------------------------------------------------------


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


def _read_txt(path: Path, limit: int | None) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            "data.path", f"{path.name} is not UTF-8 text", "save it as UTF-8 text, or choose another file"
        ) from None
    paragraphs = (p.strip() for p in re.split(r"\n[ \t]*\n", text))
    documents = [p for p in paragraphs if p]
    return documents[:limit] if limit else documents


def _read_jsonl(path: Path, column: str, limit: int | None) -> list[str]:
    documents: list[str] = []
    keys: dict[str, str] = {}  # every key seen in any row, with the kind of its first value
    try:
        handle = path.open(encoding="utf-8")
        with handle:
            for number, line in enumerate(handle, start=1):
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
                    documents.append(value)
                    if limit and len(documents) >= limit:
                        break
    except UnicodeDecodeError:
        raise ConfigError("data.path", f"{path.name} is not UTF-8 text", "save it as UTF-8 JSON lines") from None
    if keys:
        _check_column(column, keys, path.name)  # no row at all had it
    return documents


def _read_csv(path: Path, column: str, limit: int | None) -> list[str]:
    import pandas as pd

    try:
        # keep_default_na=False: an empty cell is an empty string, not NaN (which would look like a number).
        frame = pd.read_csv(path, keep_default_na=False, nrows=limit)
    except pd.errors.EmptyDataError:
        raise ConfigError(
            "data.path", f"{path.name} has no rows", "choose a CSV file with a header and rows of text"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise _corrupt(path, "CSV", err) from None
    kinds = {str(name): _pandas_kind(frame[name]) for name in frame.columns}
    _check_column(column, kinds, path.name)
    if kinds[column] != "text":
        raise _not_text(column, kinds[column], kinds, path.name)
    return [str(value) for value in frame[column].tolist() if str(value).strip()]


def _pandas_kind(series: Any) -> str:
    from pandas.api import types

    if types.is_bool_dtype(series) or types.is_numeric_dtype(series):
        return str(series.dtype)
    return "text"


def _read_parquet(path: Path, column: str, limit: int | None) -> list[str]:
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
    documents: list[str] = []
    try:
        for batch in parquet.iter_batches(columns=[column]):
            documents.extend(v for v in batch.column(0).to_pylist() if v is not None and v.strip())
            if limit and len(documents) >= limit:
                return documents[:limit]
    except (pa.ArrowException, OSError) as err:
        raise _corrupt(path, "Parquet", err) from None
    return documents


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


def _dataset_texts(dataset: Any, data: DataConfig, where: str, limit: int | None) -> list[str]:
    """The text column of a ``datasets.Dataset`` (or an iterable one whose types are unknown)."""
    column = data.text_column
    features = getattr(dataset, "features", None)
    if features is not None:
        kinds = {name: _feature_kind(feature) for name, feature in features.items()}
        _check_column(column, kinds, where)
        if kinds[column] != "text":
            raise _not_text(column, kinds[column], kinds, where)
    if limit and hasattr(dataset, "select"):
        dataset = dataset.select(range(min(limit, len(dataset))))
    documents: list[str] = []
    for value in dataset[column] if hasattr(dataset, "select") else (row.get(column) for row in dataset):
        if value is None:
            continue
        if not isinstance(value, str):
            raise _not_text(column, _kind_of(value), {}, where)
        if value.strip():
            documents.append(value)
            if limit and len(documents) >= limit:
                break
    return documents


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
