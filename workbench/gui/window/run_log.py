"""The Log tab: the run's messages, one time-stamped line each."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QPlainTextEdit, QWidget

LOG_LINES = 5000


class RunLog(QPlainTextEdit):
    """Read-only text of the last ``LOG_LINES`` messages."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(LOG_LINES)
        self.setPlaceholderText("Messages from the run appear here.")

    def add(self, message: str, level: str = "info") -> None:
        """Append ``[HH:MM:SS] message``, prefixed ``warning:`` or ``error:`` for those levels."""
        stamp = time.strftime("%H:%M:%S")
        prefix = {"warning": "warning: ", "error": "error: "}.get(level, "")
        self.appendPlainText(f"[{stamp}] {prefix}{message}")
