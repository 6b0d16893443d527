"""Where the workbench keeps things outside run folders.

``WORKBENCH_HOME`` (default ``~/.cache/distillation-workbench``) holds:

- ``models/``: fetched models (``scripts/fetch_smollm2.py`` puts the SmolLM2 GGUF here);
- ``cache/gguf/``: GGUF files converted to safetensors, keyed by the file's hash;
- ``cache/generated/``: teacher-generated datasets, keyed by teacher and settings.
"""

from __future__ import annotations

import os
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
