"""Errors and warnings shared by the whole package (ground floor: no torch, no Qt).

- :class:`ConfigError`: a value a user chose is not allowed, or a thing the config names cannot be
  used. It carries the field (so the window can mark it), the message and a hint, and renders itself
  as one line (:attr:`ConfigError.line`); every place that shows one uses that.
- :class:`WorkbenchWarning`: something the user should know that does not stop the work.
- :func:`one_line`: the first sentence of any exception's text, for messages that quote a library.
- :func:`warn_user`: where loading code sends a warning (a run's log, or ``warnings.warn``).
"""

from __future__ import annotations

import warnings
from typing import Callable

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
