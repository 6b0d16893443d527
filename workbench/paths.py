"""Where the workbench keeps things outside run folders.

``WORKBENCH_HOME`` (default ``~/.cache/distillation-workbench``) holds:

- ``models/``: fetched models (``scripts/fetch_smollm2.py`` puts the SmolLM2 GGUF here);
- ``cache/gguf/``: GGUF files converted to safetensors, keyed by the file's hash;
- ``cache/generated/``: teacher-generated datasets, keyed by teacher and settings.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def home() -> Path:
    root = os.environ.get("WORKBENCH_HOME")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "distillation-workbench"


def models_dir() -> Path:
    path = home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(kind: str) -> Path:
    path = home() / "cache" / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def temp_sibling(path: Path) -> Path:
    """A hidden name beside ``path`` that no other writer uses (process id and a random part), for
    writing there and renaming over ``path``: processes under torchrun, or two threads, that
    fill the same cache entry at once each write their own file and the last rename wins."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary sibling, then rename it over ``path``: readers see the old
    file or the new one, never half of one."""
    tmp = temp_sibling(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
