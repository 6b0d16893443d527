"""The small "?" buttons that open the help panel ("What am I looking at?") at one of its sections."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton, QWidget

from workbench.explain import TITLES


def help_button(parent: QWidget, section: str, ask: Callable[[str], None]) -> QToolButton:
    """A flat "?" that calls ``ask(section)`` when clicked (``section``: one of ``workbench.explain.SECTIONS``)."""
    button = QToolButton(parent)
    button.setText("?")
    button.setAutoRaise(True)  # flat until hovered
    button.setObjectName(f"help_{section}")
    button.setProperty("help_section", section)
    button.setCursor(Qt.CursorShape.WhatsThisCursor)
    button.setToolTip(f"What is this? {TITLES[section]}, with the numbers on screen (F1: all of it)")
    button.setStyleSheet("QToolButton { font-weight: 700; padding: 0px 4px; }")
    button.clicked.connect(lambda *_: ask(section))  # clicked(bool): the flag is not the section
    return button
