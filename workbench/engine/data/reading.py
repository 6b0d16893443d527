"""What every document reader shares: how far it has come, and the checks of a text column (one ConfigError
naming the columns there are when the one asked for is missing or holds no text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.errors import ConfigError

ROWS_PER_READ = 10_000  # rows read from a CSV file or a dataset at a time


class Position:
    """How far a reader has come, as a fraction (a file's bytes, a dataset's rows)."""

    def __init__(self) -> None:
        self.done: Callable[[], float] = lambda: 0.0
        self.total = 1.0

    def fraction(self) -> float:
        return min(1.0, self.done() / self.total) if self.total else 1.0


def kind_of(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "numbers"
    if value is None:
        return "empty"
    return type(value).__name__


def text_columns(kinds: dict[str, str]) -> list[str]:
    return [name for name, kind in kinds.items() if kind == "text"]


def check_column(column: str, kinds: dict[str, str], where: str) -> None:
    """Raise when ``column`` is not there, naming the columns that are."""
    if column in kinds:
        return
    texts = text_columns(kinds)
    listing = ", ".join(f"{name} ({kind})" for name, kind in kinds.items()) or "none"
    if not texts:
        raise ConfigError(
            "data.path", f"{where} has no text column (its columns: {listing})", "choose data with a column of text"
        )
    raise ConfigError(
        "data.text_column",
        f"{where} has no column {column!r} (its columns: {listing})",
        f"set data.text_column to one of: {', '.join(texts)}",
    )


def not_text(column: str, kind: str, kinds: dict[str, str], where: str) -> ConfigError:
    others = [c for c in text_columns(kinds) if c != column]
    hint = (
        f"set data.text_column to one of: {', '.join(others)}"
        if others
        else "choose a column (or data) that holds text"
    )
    return ConfigError("data.text_column", f"column {column!r} of {where} holds {kind}, not text", hint)


def feature_kind(feature: Any) -> str:
    dtype = getattr(feature, "dtype", None)
    if dtype in ("string", "large_string", "string_view"):
        return "text"
    return str(dtype) if isinstance(dtype, str) else type(feature).__name__


def arrow_is_text(arrow_type: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type)


def pandas_kind(series: Any) -> str:
    from pandas.api import types

    if types.is_bool_dtype(series) or types.is_numeric_dtype(series):
        return str(series.dtype)
    return "text"
