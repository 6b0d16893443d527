"""The form's collapsible groups: a titled frame whose body of label/editor rows folds away under its header."""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QFormLayout, QFrame, QToolButton, QVBoxLayout, QWidget

# How far a nested group's rows sit to the right of its parent's.
NESTED_INDENT = 12


class Section(QFrame):
    """A titled group whose body folds away under its header.

    Rows go into ``form`` (a QFormLayout on ``body``). A top-level section is a framed card (object name
    ``section``); a nested one (``subsection``) is a plain, indented group inside its parent's body.
    """

    def __init__(self, title: str, parent: QWidget | None = None, *, expanded: bool = True, nested: bool = False):
        super().__init__(parent)
        self.setObjectName("subsection" if nested else "section")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0 if nested else 10, 4 if nested else 6, 0 if nested else 10, 4 if nested else 10)
        layout.setSpacing(4)
        self.header = QToolButton(self)
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setChecked(expanded)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.header.setAutoRaise(True)
        font = self.header.font()
        font.setBold(True)
        if not nested:
            font.setPointSizeF(font.pointSizeF() * 1.08)
        self.header.setFont(font)
        self.header.toggled.connect(self.set_expanded)
        layout.addWidget(self.header)
        self.body = QWidget(self)
        self.form = QFormLayout(self.body)
        self.form.setContentsMargins(NESTED_INDENT if nested else 4, 0, 0, 0)
        self.form.setHorizontalSpacing(10)
        self.form.setVerticalSpacing(6)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        layout.addWidget(self.body)
        self.body.setVisible(expanded)

    @Slot(bool)
    def set_expanded(self, expanded: bool) -> None:
        """Unfold or fold the body (the header's arrow follows)."""
        if self.header.isChecked() != expanded:
            self.header.setChecked(expanded)  # re-enters through toggled
            return
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(expanded)
