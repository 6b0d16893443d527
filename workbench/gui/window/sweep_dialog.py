"""Run → Sweep…: one or two axes (a sweepable field and its values), hard-label baselines or not, and a live
preview of what will run. Every edit is checked with ``Sweep.from_grid``, the CLI's own rule: a bad value marks
its axis with the ConfigError's sentence and hint, and disables OK."""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from workbench.config.schema import RunConfig
from workbench.errors import ConfigError
from workbench.gui import theme
from workbench.gui.form.fields import field_label
from workbench.sweep import Sweep, parse_axis, sweepable_fields, teacher_fields, value_text

# What a fresh axis on these fields offers; other numbers start from the form's value.
SUGGESTED = {
    "distill.temperature": "1, 2, 4",
    "distill.alpha": "0.5, 0.9",
    "train.lr": "1e-3, 3e-3",
    "train.max_steps": "100, 200",
}


def field_meta(dotted: str) -> tuple[Any, dict[str, Any]]:
    """The type and the schema metadata (help, choices, min, max) of a dotted field of RunConfig."""
    cls: Any = RunConfig
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        hints = get_type_hints(cls)
        f = next(f for f in dataclasses.fields(cls) if f.name == part)
        if i == len(parts) - 1:
            return hints[part], dict(f.metadata)
        cls = hints[part]
    raise KeyError(dotted)


def suggested_values(dotted: str, base: RunConfig) -> str:
    """The values line a new axis on ``dotted`` starts with: every choice of a choice or true/false field."""
    hint, meta = field_meta(dotted)
    if "choices" in meta:
        return ", ".join(str(c) for c in meta["choices"])
    if hint is bool:
        return "true, false"
    return SUGGESTED.get(dotted, value_text(base.get(dotted)))


def error_text(err: ConfigError) -> str:
    """One sentence and its hint, as the axis shows them."""
    text = err.message[:1].upper() + err.message[1:]
    return text + (f". {err.hint[:1].upper() + err.hint[1:]}." if err.hint else ".")


def preview_text(sweep: Sweep) -> str:
    """``2 x 2 = 4 runs + 1 baseline; one teacher, trained by the first``."""
    cells = sweep.cells()
    runs = sum(c.kind == "cell" for c in cells)
    baselines = len(cells) - runs
    shape = " x ".join(str(len(a.values)) for a in sweep.axes)
    text = f"{shape} = {runs} run{'s' if runs != 1 else ''}" if len(sweep.axes) > 1 else f"{runs} runs"
    if baselines:
        text += f" + {baselines} baseline{'s' if baselines != 1 else ''}"
    if sweep.base.teacher.source == "train":
        return text + "; one teacher, trained by the first"
    return text + "; each run loads the same teacher"


class AxisRow:
    """A field picker, its values line and the line under them that says what is wrong."""

    def __init__(self, dialog: SweepDialog, fields: list[str], grid: QGridLayout, row: int, title: str):
        self.dialog = dialog
        self.title = QLabel(title, dialog)
        self.field_box = QComboBox(dialog)
        for name in fields:
            _, meta = field_meta(name)
            self.field_box.addItem(f"{field_label(name)}  ({name})", name)
            self.field_box.setItemData(self.field_box.count() - 1, meta.get("help", ""), Qt.ItemDataRole.ToolTipRole)
        self.values = QLineEdit(dialog)
        self.values.setPlaceholderText("values, e.g. 1, 2, 4")
        self.error = QLabel(dialog)
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {theme.ERROR_COLOR};")
        self.error.hide()
        grid.addWidget(self.title, row, 0)
        grid.addWidget(self.field_box, row, 1)
        grid.addWidget(self.values, row, 2)
        grid.addWidget(self.error, row + 1, 1, 1, 2)
        self.field_box.currentIndexChanged.connect(self._on_field_changed)
        self.values.textChanged.connect(dialog.update_check)

    def field(self) -> str:
        return self.field_box.currentData()

    def set_field(self, dotted: str, values: str | None = None) -> None:
        index = self.field_box.findData(dotted)
        if index >= 0:
            self.field_box.setCurrentIndex(index)
            self._on_field_changed()
        if values is not None:
            self.values.setText(values)

    def grid_text(self) -> str:
        return f"{self.field()}={self.values.text()}"

    def set_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))
        self.values.setStyleSheet(f"border: 1px solid {theme.ERROR_COLOR};" if message else "")

    def set_enabled(self, enabled: bool) -> None:
        for widget in (self.field_box, self.values):
            widget.setEnabled(enabled)
        if not enabled:
            self.set_error("")

    @Slot()
    def _on_field_changed(self) -> None:
        self.field_box.setToolTip(self.field_box.currentData(Qt.ItemDataRole.ToolTipRole) or "")
        self.values.setText(suggested_values(self.field(), self.dialog.base))


class SweepDialog(QDialog):
    """The sweep of the form's configuration ``base``; after OK, :meth:`sweep` is the checked Sweep."""

    def __init__(self, base: RunConfig, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Sweep")
        self.base = base.copy()
        self._sweep: Sweep | None = None
        fields = [n for n in sweepable_fields() if n not in teacher_fields(self.base)]
        intro = QLabel(
            f"Run <b>{self.base.name}</b> once per combination of the values below. Every run shares one teacher; "
            "the first axis varies slowest.",
            self,
        )
        intro.setWordWrap(True)
        grid = QGridLayout()
        grid.setColumnStretch(2, 1)
        self.axes = [AxisRow(self, fields, grid, 0, "Axis 1"), AxisRow(self, fields, grid, 2, "Axis 2")]
        self.second = QCheckBox("Second axis", self)
        self.second.setChecked(True)
        self.second.toggled.connect(self._on_second_toggled)
        self.axes[1].title.hide()
        grid.addWidget(self.second, 2, 0)
        self.baseline = QCheckBox("With hard-label baselines (alpha = 0)", self)
        self.baseline.setToolTip(
            "Also train the same runs on hard labels only: one in all when the axes are distillation-only fields, "
            "else one per value of the other axis"
        )
        self.baseline.toggled.connect(self.update_check)
        self.general_error = QLabel(self)
        self.general_error.setWordWrap(True)
        self.general_error.setStyleSheet(f"color: {theme.ERROR_COLOR};")
        self.general_error.hide()
        self.preview = QLabel(self)
        font = self.preview.font()
        font.setBold(True)
        self.preview.setFont(font)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Start sweep")
        self.buttons.accepted.connect(self._on_ok)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(grid)
        layout.addWidget(self.baseline)
        layout.addWidget(self.general_error)
        layout.addWidget(self.preview)
        layout.addWidget(self.buttons)
        self.axes[0].set_field("distill.temperature" if "distill.temperature" in fields else fields[0])
        self.axes[1].set_field("distill.alpha" if "distill.alpha" in fields else fields[-1])
        self.resize(640, self.sizeHint().height())
        self.update_check()

    # -- queries ------------------------------------------------------------------------------
    def grids(self) -> list[str]:
        return [a.grid_text() for a in self.active_axes()]

    def active_axes(self) -> list[AxisRow]:
        return self.axes if self.second.isChecked() else self.axes[:1]

    def state(self) -> dict[str, Any]:
        """What the form holds (the window offers it again the next time)."""
        return {
            "axes": [(a.field(), a.values.text()) for a in self.axes],
            "second": self.second.isChecked(),
            "baseline": self.baseline.isChecked(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        for axis, (name, values) in zip(self.axes, state.get("axes", [])):
            if axis.field_box.findData(name) >= 0:  # a field this configuration cannot sweep keeps the default
                axis.set_field(name, values)
        self.second.setChecked(bool(state.get("second", True)))
        self.baseline.setChecked(bool(state.get("baseline", False)))
        self.update_check()

    def sweep(self) -> Sweep | None:
        """The sweep the form describes, or None while it is not allowed."""
        return self._sweep

    # -- checking -------------------------------------------------------------------------
    @Slot()
    def update_check(self) -> None:
        self._sweep = None
        for axis in self.axes:
            axis.set_error("")
        self.general_error.hide()
        axes = self.active_axes()
        failed = False
        for axis in axes:  # each axis on its own first, so the error lands at the axis that has it
            try:
                parse_axis(axis.grid_text(), self.base)
            except ConfigError as err:
                axis.set_error(error_text(err))
                failed = True
        if not failed:
            try:
                self._sweep = Sweep.from_grid(self.base.copy(), self.grids(), baseline=self.baseline.isChecked())
            except ConfigError as err:  # the CLI's rule decides: two axes on one field, a cell not allowed, ...
                marked = [a for a in axes if a.field() == err.field]
                (marked[-1].set_error if marked else self._set_general_error)(error_text(err))
        self.ok_button.setEnabled(self._sweep is not None)
        self.preview.setText(preview_text(self._sweep) if self._sweep is not None else "Nothing to run yet.")

    def _set_general_error(self, text: str) -> None:
        self.general_error.setText(text)
        self.general_error.show()

    @Slot(bool)
    def _on_second_toggled(self, on: bool) -> None:
        self.axes[1].set_enabled(on)
        self.update_check()

    @Slot()
    def _on_ok(self) -> None:
        self.update_check()
        if self._sweep is not None:
            self.accept()
