"""A model's configuration and vocabulary read without its weights (a local folder, a hub id in the local
cache, a .gguf header), cached by path and modification time: what the plan needs to answer on every
keystroke in well under a second."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from workbench.engine.models.gguf_header import GGUFHeaderError, hf_config_from_header, read_header
from workbench.errors import ConfigError
from workbench.paths import resolve_path


def file_mtime(path: str) -> int:
    try:
        folder = Path(path)
        target = folder / "config.json" if folder.is_dir() else folder
        return target.stat().st_mtime_ns
    except OSError:
        return 0


def local_config(path: str, field_name: str, trust_remote_code: bool = False) -> Any:
    folder = Path(path)
    if not folder.exists():
        raise ConfigError(field_name, f"the model folder {path!r} does not exist", "check the path")
    if folder.is_file():
        raise ConfigError(
            field_name, f"{path!r} is a file, not a model folder", "choose the folder that holds config.json"
        )
    if not (folder / "config.json").is_file():
        raise ConfigError(
            field_name,
            f"{path!r} has no config.json, so it is not a save_pretrained folder",
            "choose the folder save_pretrained wrote",
        )
    return copy.deepcopy(_cached_auto_config(path, "", trust_remote_code, True, file_mtime(path)))


def hub_config(model_id: str, revision: str, trust_remote_code: bool) -> Any | None:
    try:
        return copy.deepcopy(_cached_auto_config(model_id, revision, trust_remote_code, True, 0))
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=16)
def _cached_auto_config(where: str, revision: str, trust_remote_code: bool, local_only: bool, mtime: int) -> Any:
    del mtime  # part of the cache key: an edited config.json is read again
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(
        where, revision=revision or None, trust_remote_code=trust_remote_code, local_files_only=local_only
    )


def gguf_config(file: Path) -> Any:
    header = read_header(file)
    try:
        return hf_config_from_header(header, file.name)
    except GGUFHeaderError:
        if header.get("general.architecture") in (None, "llama"):
            raise
    # other architectures: let transformers map the metadata (slower, once per file)
    return copy.deepcopy(_cached_gguf_auto_config(str(file), file_mtime(str(file))))


@functools.lru_cache(maxsize=4)
def _cached_gguf_auto_config(path: str, mtime: int) -> Any:
    del mtime
    from transformers import AutoConfig

    file = Path(path)
    return AutoConfig.from_pretrained(str(file.parent), gguf_file=file.name)


def tokenizer_vocab(source: str, path: str, revision: str = "") -> dict[str, int] | None:
    if source not in ("local", "hub"):
        return None
    where = str(resolve_path(path)) if source == "local" else path.strip()
    try:
        return _cached_vocab(where, revision, file_mtime(where) if source == "local" else 0)
    except Exception:  # noqa: BLE001 - no tokenizer files means "unknown", not an error here
        return None


@functools.lru_cache(maxsize=8)
def _cached_vocab(where: str, revision: str, mtime: int) -> dict[str, int]:
    del mtime
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(where, revision=revision or None, local_files_only=True)
    return dict(tokenizer.get_vocab())
