"""Errors and warnings shared by the whole package (ground floor: no torch, no Qt).

- :class:`ConfigError`: a value a user chose is not allowed, or a thing the config names cannot be
  used. It carries the field (so the window can mark it), the message and a hint, and renders itself
  as one line (:attr:`ConfigError.line`); every place that shows one uses that.
- :class:`WorkbenchWarning`: something the user should know that does not stop the work.
- :func:`one_line`: the first sentence of any exception's text, for messages that quote a library.
- :func:`warn_user`: where loading code sends a warning (a run's log, or ``warnings.warn``).
- :class:`WriteFailed` and :func:`writing`: a file the workbench writes could not be written (disk full,
  read-only, no permission), named by what was being written.
"""

from __future__ import annotations

import errno
import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ONE_LINE_MAX = 300


class WorkbenchWarning(UserWarning):
    """Something the user should know that does not stop the work (remote code will run, a cache
    could not be written). The CLI prints it as one ``warning:`` line; inside a run it becomes a
    warning ``Log`` event instead, so it is also in the run's record and the window's log."""


class ConfigError(ValueError):
    """A value a user chose is not allowed. ``str(err)`` is :attr:`line`.

    ``field`` is the dotted path (``distill.temperature``) when the error is about
    one field, so the GUI can mark it; ``hint`` says what to do about it.
    """

    def __init__(self, field: str, message: str, hint: str = ""):
        self.field = field
        self.message = message
        self.hint = hint
        super().__init__(self.line)

    @property
    def what(self) -> str:
        """The field and the message, without the hint: ``distill.alpha: 2 is above the maximum 1``."""
        return f"{self.field}: {self.message}" if self.field else self.message

    @property
    def line(self) -> str:
        """The whole error as one line: ``field: message (hint)``."""
        return self.what + (f" ({self.hint})" if self.hint else "")


Warn = Callable[[str], None]
"""Where loading functions send warnings for the user (a run passes its log); None: ``warnings.warn``."""


def warn_user(message: str, on_warning: Warn | None, category: type[Warning] = WorkbenchWarning) -> None:
    if on_warning is not None:
        on_warning(message)
    else:
        warnings.warn(message, category, stacklevel=3)


def one_line(err: BaseException, limit: int = ONE_LINE_MAX) -> str:
    """The first sentence of an error's text (a line ending in ':' runs on into the next one), at most
    ``limit`` characters; the exception's type name when it has no text."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    text = lines[0]
    if text.endswith(":") and len(lines) > 1:
        text = f"{text} {lines[1]}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class WriteFailed(Exception):
    """Writing ``what`` (``checkpoint distill-step-000040``, ``events.jsonl``) into ``where`` failed with an
    ``OSError`` the user can do something about: a full disk, a read-only disk, no permission.

    :attr:`message` is one sentence (``The disk is full: writing checkpoint distill-step-000040 failed.``),
    :attr:`hint` what to do about the disk; the caller adds what survived (the checkpoint to resume from).
    """

    def __init__(self, what: str, where: str | Path, err: OSError):
        self.what, self.where, self.errno = what, str(where), err.errno
        self.reason = {
            errno.ENOSPC: "the disk is full",
            errno.EDQUOT: "the disk quota is used up",
            errno.EROFS: "the disk is read-only",
            errno.EACCES: "permission denied",
            errno.EPERM: "permission denied",
        }.get(err.errno or 0, (err.strerror or type(err).__name__).rstrip(".").lower())
        if err.errno in DISK_FULL:
            self.message = f"The disk is full: writing {what} failed."
            self.hint = f"free space on the disk that holds {self.where}"
        elif err.errno == errno.EROFS:
            self.message = f"The disk is read-only: writing {what} failed."
            self.hint = f"{self.where} is on a read-only disk: remount it writable or choose another folder"
        elif err.errno in (errno.EACCES, errno.EPERM):
            self.message = f"Permission denied: writing {what} failed."
            self.hint = f"make {self.where} writable for this user, or choose another folder"
        else:
            self.message = f"Writing {what} failed ({self.reason})."
            self.hint = f"check the disk that holds {self.where}"
        super().__init__(self.message)


@contextmanager
def writing(what: str, where: str | Path) -> Iterator[None]:
    """Any ``OSError`` in the block becomes a :class:`WriteFailed` naming ``what`` and ``where``, and so does
    an I/O error that a library reports as an exception of its own with the OS's error code in its text
    (safetensors: ``SafetensorError: Error while serializing: IoError(Os { code: 28, ... })``)."""
    try:
        yield
    except WriteFailed:
        raise
    except OSError as err:
        raise WriteFailed(what, where, err) from err
    except Exception as err:
        code = _os_error_code(err)
        if code is None:
            raise
        raise WriteFailed(what, where, OSError(code, os.strerror(code))) from err


def _os_error_code(err: Exception) -> int | None:
    """The OS error code in the text of a safetensors error (Rust's ``std::io::Error``), or None."""
    if type(err).__name__ != "SafetensorError":
        return None
    found = re.search(r"\bcode: (\d+)|os error (\d+)", str(err))
    return int(found.group(1) or found.group(2)) if found else None
