"""The data preview under the Data section: counts and the first examples.

The numbers come from :class:`workbench.gui.form.preview_work.DataPreviewer`, run on the box's
background jobs (:mod:`workbench.gui.background.jobs`). Requests are debounced and wait until the box is
on screen, and the newest one wins, so typing a path does not queue one preview per key press and only
the answer for what the form shows now is displayed.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.config.schema import RunConfig
from workbench.gui import theme
from workbench.gui.background.jobs import Job, Jobs
from workbench.gui.form.preview_work import DataPreviewer, PreviewRequest


def _count(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{int(value):,}"
    return "\u2013" if value is None else str(value)


class DataPreviewBox(QFrame):
    """Shows ``data.preview(...)`` for the current config; ``updated`` fires after each shown answer."""

    updated = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("dataPreview")
        self._restyle()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 8)
        layout.setSpacing(4)
        head = QHBoxLayout()
        title = QLabel("Preview", self)
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        head.addWidget(title)
        head.addStretch(1)
        self.refresh_button = QToolButton(self)
        self.refresh_button.setText("\u21bb Refresh")
        self.refresh_button.setAutoRaise(True)
        self.refresh_button.setToolTip("Read the data again with the current settings.")
        self.refresh_button.clicked.connect(self.refresh)
        head.addWidget(self.refresh_button)
        layout.addLayout(head)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setObjectName("muted")
        layout.addWidget(self.note)
        self.stats = QWidget(self)
        grid = QGridLayout(self.stats)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(2)
        self.values: dict[str, QLabel] = {}
        for row, (key, text) in enumerate(
            (("source", "Source"), ("documents", "Documents"), ("tokens", "Tokens"), ("blocks", "Blocks"))
        ):
            name = QLabel(text, self.stats)
            name.setObjectName("muted")
            value = QLabel("\u2013", self.stats)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            grid.addWidget(name, row, 0, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(value, row, 1)
            self.values[key] = value
        grid.setColumnStretch(1, 1)
        layout.addWidget(self.stats)
        self.examples = QPlainTextEdit(self)
        self.examples.setReadOnly(True)
        self.examples.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.examples.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.examples.setFixedHeight(self.examples.fontMetrics().lineSpacing() * 6 + 12)
        self.examples.setPlaceholderText("first examples appear here")
        layout.addWidget(self.examples)
        self.stats.hide()
        self.examples.hide()

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._fire)
        self._request: PreviewRequest | None = None
        self._stale = False
        self._previewer = DataPreviewer()  # used on the jobs thread only: its tokenizer cache needs no lock
        self._jobs: Jobs | None = None  # made with the first preview: most forms built in tests never ask
        self._closed = False
        self.note.setText("The preview appears when the panel is shown.")

    def _restyle(self) -> None:
        self._styled_theme = theme.current_theme()
        c = theme.colors()
        self.setStyleSheet(
            f"QFrame#dataPreview {{ border: 1px solid {c['border']}; border-radius: 6px; background: {c['base']}; }}"
            " QFrame#dataPreview QLabel { border: none; background: transparent; }"
        )

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override (follow theme switches)
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and theme.current_theme() != self._styled_theme:
            self._restyle()

    # -- requests ---------------------------------------------------------------
    def schedule(self, cfg: RunConfig) -> None:
        """Preview ``cfg``'s data after a short pause (only while the box is on screen)."""
        self._request = PreviewRequest.of(cfg)
        self._stale = True
        if not self._closed:
            self._timer.start()

    @Slot()
    def refresh(self) -> None:
        """Preview now, even when hidden (the Refresh button; tests)."""
        if self._request is not None and not self._closed:
            self._timer.stop()
            self._send()

    @Slot()
    def _fire(self) -> None:
        if self.isVisible():
            self._send()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale and not self._closed:
            self._timer.start()

    def _send(self) -> None:
        self._stale = False
        if self._jobs is None:
            self._jobs = Jobs("preview", self)
        request, previewer = self._request, self._previewer
        self.note.setText("Reading the data\u2026")

        def work(job: Job) -> tuple[PreviewRequest, dict | str]:
            return request, previewer.preview(request)

        self._jobs.submit("preview", work, on_done=self._on_done)

    def _on_done(self, answer: tuple[PreviewRequest, dict | str]) -> None:
        request, result = answer
        self.show_result(result, request.seq_len)

    # -- display ------------------------------------------------------------------
    def show_result(self, result: object, seq_len: int) -> None:
        """Show a preview dict (blocks of ``seq_len`` tokens), or a note (str) that says why there is none."""
        if isinstance(result, str):
            self.note.setText(result)
            self.note.show()
            self.stats.hide()
            self.examples.hide()
        else:
            assert isinstance(result, dict)
            self.note.hide()
            self.values["source"].setText(str(result.get("source", "")))
            self.values["documents"].setText(_count(result.get("documents")))
            self.values["tokens"].setText(_count(result.get("tokens")))
            self.values["blocks"].setText(
                f"{_count(result.get('train_blocks'))} train \u00b7 "
                f"{_count(result.get('val_blocks'))} held out of {seq_len} tokens"
            )
            examples = [str(e).strip().replace("\n", " \u21b5 ") for e in result.get("examples", [])]
            self.examples.setPlainText("\n\n".join(f"{i + 1}. {e[:400]}" for i, e in enumerate(examples)))
            self.stats.show()
            self.examples.setVisible(bool(examples))
        self.updated.emit()

    def shutdown(self) -> None:
        """Stop the timer and the background jobs (waits for a preview in progress)."""
        self._closed = True
        self._timer.stop()
        if self._jobs is not None:
            self._jobs.shutdown()
