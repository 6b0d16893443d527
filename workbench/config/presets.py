"""Presets and config files: names, loading, field documentation, differences between two configs and
the overrides that turn one into the other (ground floor)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, get_type_hints

from workbench.config.schema import RunConfig
from workbench.errors import ConfigError
from workbench.paths import PRESETS_DIR


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def preset_description(name: str) -> str:
    """The first comment line of a preset file."""
    for line in (PRESETS_DIR / f"{name}.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def load_config(name_or_path: str | Path, *, validate: bool = True) -> RunConfig:
    """A preset name (``toy``) or a path to a TOML file.

    ``validate=False`` accepts values the run would refuse (a model file not fetched yet, an alpha of 2):
    for the window, which marks them at their fields, and for the CLI, which checks after ``--set``."""
    path = Path(name_or_path).expanduser()
    if not path.suffix and not path.exists():
        candidate = PRESETS_DIR / f"{name_or_path}.toml"
        if not candidate.exists():
            raise ConfigError(
                "", f"{name_or_path!r} is neither a preset nor a file", f"presets: {', '.join(preset_names())}"
            )
        path = candidate
    if path.is_dir():
        raise ConfigError(
            "", f"{str(path)!r} is a folder, not a config file", "give a preset name or a path to a .toml file"
        )
    if not path.is_file():
        raise ConfigError(
            "", f"config file {str(path)!r} does not exist", "give a preset name or a path to a .toml file"
        )
    return RunConfig.from_toml(read_config_text(path), source=str(path), validate=validate)


def read_config_text(path: Path) -> str:
    """A config file's text; unreadable or non-UTF-8 files are a ConfigError, not a traceback."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            "",
            f"{str(path)!r} is not a UTF-8 text file",
            "a config is a .toml text file, e.g. one saved by the window or by `workbench run`",
        ) from None
    except OSError as err:
        raise ConfigError(
            "", f"{str(path)!r} cannot be read: {err.strerror or err}", "check the file's permissions"
        ) from None


def field_help(dotted: str) -> str:
    """The documentation of a field, for tooltips and ``--help``."""
    return field_meta(dotted).get("help", "")


def field_meta(dotted: str) -> dict[str, Any]:
    cls: Any = RunConfig
    meta: dict[str, Any] = {}
    for part in dotted.split("."):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            raise KeyError(dotted)
        meta = dict(fields[part].metadata)
        cls = get_type_hints(cls)[part]
    return meta


def diff_configs(a: RunConfig, b: RunConfig) -> list[tuple[str, Any, Any]]:
    """(dotted field, value in a, value in b) for each field that differs."""
    out: list[tuple[str, Any, Any]] = []

    def walk(x: dict, y: dict, prefix: str) -> None:
        for key in x:
            name = f"{prefix}{key}"
            if isinstance(x[key], dict):
                walk(x[key], y[key], name + ".")
            elif x[key] != y[key]:
                out.append((name, x[key], y[key]))

    walk(a.to_dict(), b.to_dict(), "")
    return out


def overrides_between(base: RunConfig, config: RunConfig) -> list[str]:
    """``key=value`` strings that turn ``base`` into ``config`` (for "copy command")."""
    items = []
    for name, _, value in diff_configs(base, config):
        if isinstance(value, list):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        items.append(f"{name}={text}")
    return items
