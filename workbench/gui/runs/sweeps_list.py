"""The sweeps of the runs folder in the Runs tab: one line each ("sweep: name  (2×2, 3/4 done)"); a double-click or
"Open grid…" emits ``open_requested(sweep folder)``; "Resume sweep" (a stopped, interrupted or failed sweep, while
nothing trains) emits ``resume_requested(sweep folder)``. Hidden while the runs folder has no sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from workbench.gui import theme
from workbench.sweep_folder import SweepInfo

PATH_ROLE = Qt.ItemDataRole.UserRole
STATUS_ROLE = Qt.ItemDataRole.UserRole + 1
RESUMABLE = ("stopped", "interrupted", "failed")
MAX_ROWS = 4
STATUS_COLORS = {
    "running": theme.STUDENT_COLOR,
    "failed": theme.ERROR_COLOR,
    "stopped": theme.WARNING_COLOR,
    "interrupted": theme.WARNING_COLOR,
}


def sweep_line(info: SweepInfo) -> str:
    """``sweep: kd  (distill.temperature × distill.alpha, 2×2 + 1 baseline, 3/5 done, running)``."""
    shape = "×".join(str(len(a.values)) for a in info.axes)
    if len(info.axes) == 1:
        shape += " values"
    baselines = sum(c.kind == "baseline" for c in info.cells)
    if baselines:
        shape += f" + {baselines} baseline{'s' if baselines > 1 else ''}"
    done = sum(c.status == "completed" for c in info.cells)
    fields = " × ".join(a.field for a in info.axes)
    state = "" if info.status == "completed" else f", {info.status}"
    return f"sweep: {info.name}  ({fields}, {shape}, {done}/{len(info.cells)} done{state})"


class SweepsList(QWidget):
    open_requested = Signal(str)
    resume_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.list = QListWidget(self)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.list.itemDoubleClicked.connect(self._on_double_clicked)
        self.list.itemSelectionChanged.connect(self._update_button)
        self.open_button = QPushButton("Open grid…", self)
        self.open_button.setToolTip("Show the selected sweep's cells as a heatmap (two axes) or lines (one axis)")
        self.open_button.clicked.connect(self._on_open)
        self.resume_button = QPushButton("Resume sweep", self)
        self.resume_button.setToolTip(
            "Continue the selected stopped sweep: finished cells are kept, the interrupted one continues from its "
            "checkpoint, the rest follow"
        )
        self.resume_button.clicked.connect(self._on_resume)
        self._busy = False
        title = QLabel("Sweeps", self)
        title.setObjectName("muted")
        head = QHBoxLayout()
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.resume_button)
        head.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.addLayout(head)
        layout.addWidget(self.list)
        self.setVisible(False)
        self._update_button()

    def set_sweeps(self, sweeps: list[SweepInfo]) -> None:
        """Show ``sweeps`` (newest first), keeping the selection."""
        selected = self.selected_path()
        self.list.blockSignals(True)
        self.list.clear()
        for info in sweeps:
            item = QListWidgetItem(sweep_line(info))
            item.setData(PATH_ROLE, str(Path(info.path).resolve()))
            item.setToolTip(str(info.path))
            item.setData(STATUS_ROLE, info.status)
            if info.status in STATUS_COLORS:
                item.setForeground(QColor(STATUS_COLORS[info.status]))
            self.list.addItem(item)
            if item.data(PATH_ROLE) == selected:
                item.setSelected(True)
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        rows = max(1, min(len(sweeps), MAX_ROWS))  # a few lines tall; more scroll
        row_height = self.list.sizeHintForRow(0) if sweeps else self.list.fontMetrics().height() + 4
        self.list.setFixedHeight(rows * row_height + 2 * self.list.frameWidth() + 4)
        self.setVisible(bool(sweeps))
        self._update_button()

    def count(self) -> int:
        return self.list.count()

    def item_text(self, row: int) -> str:
        return self.list.item(row).text()

    def selected_path(self) -> str | None:
        items = self.list.selectedItems()
        return items[0].data(PATH_ROLE) if items else None

    def select(self, path: str | Path) -> None:
        key = str(Path(path).resolve())
        for row in range(self.list.count()):
            if self.list.item(row).data(PATH_ROLE) == key:
                self.list.setCurrentRow(row)
                return

    def set_busy(self, busy: bool) -> None:
        """While a run or sweep trains, Resume sweep is disabled (one at a time)."""
        self._busy = busy
        self._update_button()

    def selected_status(self) -> str | None:
        items = self.list.selectedItems()
        return items[0].data(STATUS_ROLE) if items else None

    @Slot()
    def _update_button(self) -> None:
        self.open_button.setEnabled(self.selected_path() is not None)
        self.resume_button.setEnabled(not self._busy and self.selected_status() in RESUMABLE)

    @Slot(QListWidgetItem)
    def _on_double_clicked(self, item: Any) -> None:
        self.open_requested.emit(item.data(PATH_ROLE))

    @Slot()
    def _on_resume(self) -> None:
        path = self.selected_path()
        if path and not self._busy and self.selected_status() in RESUMABLE:
            self.resume_requested.emit(path)

    @Slot()
    def _on_open(self) -> None:
        path = self.selected_path()
        if path:
            self.open_requested.emit(path)
