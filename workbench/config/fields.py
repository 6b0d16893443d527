"""Single fields: coercion of TOML and command-line values to a field's type, the metadata checks
(choices, bounds, NaN), and reading nested dicts into the dataclasses (ground floor)."""

from __future__ import annotations

import dataclasses
from typing import Any, get_args, get_origin, get_type_hints

from workbench.errors import ConfigError


def field_names(obj: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else []


def child(obj: Any, part: str, dotted: str) -> Any:
    if not dataclasses.is_dataclass(obj) or part not in field_names(obj):
        raise ConfigError(dotted, "unknown field", f"fields here: {', '.join(field_names(obj))}")
    child = getattr(obj, part)
    if not dataclasses.is_dataclass(child):
        raise ConfigError(dotted, "unknown field", f"{part} has no sub-fields")
    return child


def coerce(value: Any, hint: Any, dotted: str) -> Any:
    """Convert a TOML or command-line value to the field's type, or raise ConfigError."""
    origin = get_origin(hint)
    if origin is list:
        (item_type,) = get_args(hint)
        if isinstance(value, str) and value.strip().startswith("["):  # a TOML array: --set 'x=["a, b", "c"]'
            value = _toml_array(value, dotted)
        elif isinstance(value, str):
            value = [v for v in (p.strip() for p in value.split(",")) if v] if value.strip() else []
            if item_type is str:
                return value
        if not isinstance(value, list):
            raise ConfigError(dotted, f"{value!r} is not a list", "write a list, e.g. [1, 2] in TOML or 1,2 with --set")
        return [coerce(v, item_type, dotted) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(dotted, f"{value!r} is not true or false", "write true or false")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(dotted, f"{value!r} is not a whole number", "write e.g. 100")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            text = value.strip().replace("_", "")
            try:
                return int(text)  # exactly, however many digits ("1e3" goes through float below)
            except ValueError:
                pass
            try:
                number = float(text)
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        raise ConfigError(dotted, f"{value!r} is not a whole number", "write e.g. 100")
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(dotted, f"{value!r} is not a number", "write e.g. 0.5")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(dotted, f"{value!r} is not a number", "write e.g. 0.5")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(dotted, f"{value!r} is not text", "quote it in TOML")
    raise TypeError(f"unsupported field type {hint!r} for {dotted}")


def _toml_array(text: str, dotted: str) -> list:
    import tomllib

    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = None
    if not isinstance(value, list):
        raise ConfigError(
            dotted, f"{text!r} is not a TOML list", 'quote each item, as in ["the cat is", "a dog"], or write a,b'
        )
    return value


def from_dict(cls: Any, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(
            prefix.rstrip("."), f"should be a table of fields, got {data!r}", "see `workbench presets --fields`"
        )
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}", "unknown field", f"fields here: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = from_dict(hint, value, f"{prefix}{key}.")
        else:
            kwargs[key] = coerce(value, hint, f"{prefix}{key}")
    return cls(**kwargs)


def field_errors(obj: Any, prefix: str):
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from field_errors(value, name + ".")
            continue
        meta = f.metadata
        if "choices" in meta and value not in meta["choices"]:
            yield ConfigError(name, f"{value!r} is not one of {', '.join(meta['choices'])}", "pick one of those")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value != value:  # NaN
                yield ConfigError(name, "is not a number", "write a finite number")
                continue
            low, high = meta.get("min"), meta.get("max")
            if low is not None:
                if meta.get("min_exclusive") and value <= low:
                    yield ConfigError(name, f"{value} must be greater than {low}", f"use a value above {low}")
                elif value < low:
                    yield ConfigError(name, f"{value} is below the minimum {low}", f"use {low} or more")
            if high is not None and value > high:
                yield ConfigError(name, f"{value} is above the maximum {high}", f"use {high} or less")


def drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    return value
