"""The non-modal window the Runs tab opens for a sweep: its :class:`~workbench.gui.runs.sweep_grid.SweepGrid`,
Save PNG... (the grid, without the buttons) and Save CSV... (every cell's values, status and metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QDialog, QFileDialog, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from workbench.gui.runs.sweep_grid import SweepGrid


def show_grid(
    current: SweepGridWindow | None, parent: QWidget | None, path: str | Path, font: QFont | None = None
) -> SweepGridWindow:
    """Show the sweep folder ``path`` in ``current`` (or a new grid window, in ``font``: the window's size in
    presentation mode) and bring it to the front."""
    if current is None:
        current = SweepGridWindow(parent)
        if font is not None:
            current.setFont(font)
    current.set_sweep(path)
    if current.isVisible():
        current.raise_()
    else:
        current.show()
    return current


class SweepGridWindow(QDialog):
    """The non-modal window around a :class:`SweepGrid`, with Save PNG... and Save CSV...."""

    def __init__(self, parent: QWidget | None = None, refresh_ms: int = 1000):
        super().__init__(parent)
        self.setWindowTitle("Sweep")
        self.grid = SweepGrid(self, refresh_ms=refresh_ms)
        self.grid.setAutoFillBackground(True)
        self.png_button = QPushButton("Save PNG…", self)
        self.png_button.setToolTip("Save the grid as a picture (for slides and reports)")
        self.csv_button = QPushButton("Save CSV…", self)
        self.csv_button.setToolTip("Save every cell's axis values, status and final metrics as a table")
        self.close_button = QPushButton("Close", self)
        self.png_button.clicked.connect(self._on_save_png)
        self.csv_button.clicked.connect(self._on_save_csv)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.png_button)
        buttons.addWidget(self.csv_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.grid, 1)
        layout.addLayout(buttons)
        self.resize(820, 560)

    def set_sweep(self, path: str | Path) -> None:
        self.grid.set_sweep(path)
        if self.grid.info is not None:
            self.setWindowTitle(f"Sweep {self.grid.info.name}")

    def save_png(self, path: str | Path) -> bool:
        return self.grid.grab().save(str(path), "PNG")

    def changeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.FontChange:  # presentation mode: the style sheet stops the propagation
            self.grid.setFont(self.font())
            for button in (self.png_button, self.csv_button, self.close_button):
                button.setFont(self.font())
        super().changeEvent(event)

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self.grid.start_following()

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.grid.stop_following()
        super().hideEvent(event)

    def _suggested(self, name: str) -> str:
        info = self.grid.info
        return str(info.path / name) if info is not None else name

    @Slot()
    def _on_save_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the grid as PNG", self._suggested("grid.png"), "PNG (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            if not self.save_png(path):
                self.grid.detail.setText(f"Could not write {path}.")

    @Slot()
    def _on_save_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the grid as CSV", self._suggested("grid.csv"), "CSV (*.csv)")
        if path:
            if not path.lower().endswith(".csv"):
                path += ".csv"
            try:
                self.grid.save_csv(path)
            except OSError as err:
                self.grid.detail.setText(f"Could not write {path}: {err.strerror or err}.")
