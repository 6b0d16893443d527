"""Where things are: the package's resources, the workbench's home, paths as configs write them, and
the one way files and folders are written atomically (ground floor: no torch, no Qt).

``WORKBENCH_HOME`` (default ``~/.cache/distillation-workbench``) holds:

- ``models/``: fetched models (``scripts/fetch_smollm2.py`` puts the SmolLM2 GGUF here);
- ``cache/gguf/``: GGUF files converted to safetensors, keyed by the file's hash;
- ``cache/generated/``: teacher-generated datasets, keyed by teacher and settings;
- ``cache/teacher_topk/``: the teacher's top-k tokens per position of a set of blocks, keyed by its
  weights, the blocks and k (``engine/teacher_cache.py``);
- ``cache/text/``: files and datasets tokenized into blocks (Arrow, and the held-out split as flat
  int32 files), keyed by source, tokenizer and block length (``engine/data/corpus.py``).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workbench.errors import ConfigError

RESOURCES = Path(__file__).resolve().parent / "resources"
PRESETS_DIR = RESOURCES / "presets"


def home() -> Path:
    root = os.environ.get("WORKBENCH_HOME")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "distillation-workbench"


def models_dir() -> Path:
    return _made(home() / "models")


def cache_dir(kind: str) -> Path:
    return _made(home() / "cache" / kind)


def cache_path(kind: str) -> Path:
    """``cache_dir(kind)`` without making it: for a cache that is a convenience, written through
    ``atomic_target`` inside ``writing(...)`` (which makes the folder), so that a home the workbench cannot
    write costs a warning, not the run."""
    return home() / "cache" / kind


def _made(path: Path) -> Path:
    """``path``, made if need be; a home the workbench cannot write is one ConfigError, not a traceback."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            "",
            f"the workbench's folder {str(path)!r} cannot be made ({err.strerror or type(err).__name__})",
            "set WORKBENCH_HOME to a folder you can write (default ~/.cache/distillation-workbench)",
        ) from None
    return path


def temp_sibling(path: Path) -> Path:
    """A hidden name beside ``path`` that no other writer uses (process id and a random part), for
    writing there and renaming over ``path``: processes under torchrun, or two threads, that
    fill the same cache entry at once each write their own file and the last rename wins."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def resolve_path(text: str) -> Path:
    """A path as written in a config, made real.

    ``models:NAME`` is the workbench's models folder (``$WORKBENCH_HOME/models``, where
    ``scripts/fetch_smollm2.py`` puts files); ``resources:REL`` is the package's own
    resources folder; anything else is expanded (``~``) and taken as is. The prefixes
    keep presets portable across machines.
    """
    text = text.strip()
    if text.startswith("models:"):
        return home() / "models" / text[len("models:") :].lstrip("/\\")
    if text.startswith("resources:"):
        return RESOURCES / text[len("resources:") :].lstrip("/\\")
    return Path(text).expanduser()


def folder_write_problem(path: Path) -> str | None:
    """Why files could not be made in folder ``path`` (made first when missing), or None; makes nothing.

    A look, not a try (the run's own ``mkdir`` and probe file stay the final word): the nearest part of
    ``path`` that exists must be a folder this process may write into and enter."""
    path = Path(path).expanduser().absolute()
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            return None
        existing = existing.parent
    if not existing.is_dir():
        return f"{str(existing)!r} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{str(existing)!r} cannot be written to"
    return None


@contextmanager
def atomic_target(path: Path, *, keep_existing: bool = False) -> Iterator[Path]:
    """The one way the workbench writes a file or a folder that others read.

    Yields a temporary sibling of ``path`` (see :func:`temp_sibling`); write the file or fill the
    folder there. When the block ends normally it is renamed onto ``path`` (an existing folder is
    replaced), so readers see the old version or the new one, never half of one; when the block
    raises, or the rename fails, the temporary is removed and ``path`` is untouched. With
    ``keep_existing``, a ``path`` that another writer finished first is kept and ours dropped. The folder
    that holds ``path`` is made if need be (an ``OSError`` when it cannot be: the caller's ``writing(...)``
    names it).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        yield tmp
        if keep_existing and path.exists():
            return
        _as_umask_allows(tmp)
        if path.is_dir() and not path.is_symlink():
            old = temp_sibling(path)  # os.replace cannot rename over a folder that has files
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except OSError:
                os.replace(old, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists() or tmp.is_symlink():
            tmp.unlink(missing_ok=True)


def _umask() -> int:
    try:  # Linux says it without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _as_umask_allows(target: Path) -> None:
    """Give the files of ``target`` (a file, or a folder's files) the permissions a new file gets here.

    Some writers create files only their owner may read: safetensors 0.8 writes ``model.safetensors`` as
    0600 whatever the umask, so an exported student would be unreadable to the other users of a shared
    machine while its config.json beside it is readable. Only files that no one else may read are
    changed; a failure to change them is not an error (the file is still written)."""
    wanted = 0o666 & ~_umask()
    if not wanted & 0o044:
        return  # this user's umask keeps files private: so be it
    files = [target] if not target.is_dir() else [p for p in target.rglob("*") if p.is_file()]
    for file in files:
        try:
            mode = file.stat().st_mode & 0o777
            if not mode & 0o077 and not file.is_symlink():
                os.chmod(file, wanted)
        except OSError:
            pass


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_target`."""
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
