"""The "What distillation bought" card: a finished run's teacher, distilled student and hard-label baseline side
by side, with the big figures on top and the differences in one sentence.

It draws a :class:`workbench.bought.Card` and computes nothing itself. "Copy as text" puts
:meth:`Card.text` on the clipboard; "Save PNG..." saves the card (without its buttons) as an image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.bought import Card, build_card, find_baseline, headlines, is_finished
from workbench.gui import theme

COLUMN_COLORS = {"teacher": theme.TEACHER_COLOR, "distilled": theme.STUDENT_COLOR, "baseline": theme.BASELINE_COLOR}
NO_BASELINE_HINT = (
    "No hard-label baseline yet: select the run in the Runs tab and press Baseline (alpha = 0) "
    "to see what the soft targets bought over plain training."
)


def show_card(
    current: BoughtCard | None,
    parent: QWidget | None,
    path: str | Path,
    baseline: str | Path | None = None,
    runs: list[Any] | None = None,
) -> BoughtCard | None:
    """Show the card of finished run ``path`` in ``current`` (or a new card window) beside ``baseline`` (default:
    its newest finished hard-label baseline among ``runs``, else its runs folder). None for an unfinished run."""
    from workbench.run_folder import read_run

    info = read_run(path)  # fresh: a table refreshed a moment ago may not have seen the summary yet
    if not is_finished(info):
        return None
    if baseline is not None:
        partner = read_run(baseline)
        partner = partner if is_finished(partner) else None
    else:
        partner = find_baseline(info, runs or None)
    card = build_card(info, partner)
    if current is None:
        current = BoughtCard(card, parent)
    else:
        current.set_card(card)
    if current.isVisible():
        current.raise_()  # already open behind the window: bring it to the front
    else:
        current.show()  # a window shown anew comes to the front by itself
    return current


def _font(widget: QWidget, scale: float, bold: bool = False) -> QFont:
    font = QFont(widget.font())
    size = font.pointSizeF() if font.pointSizeF() > 0 else 10.0
    font.setPointSizeF(size * scale)
    font.setBold(bold)
    return font


class BoughtCard(QDialog):
    """A non-modal window showing one :class:`Card`; :meth:`set_card` replaces what it shows."""

    def __init__(self, card: Card, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("What distillation bought")
        self.card = card
        self.content = QFrame(self)  # what Save PNG grabs
        self.content.setObjectName("boughtCard")
        self.content.setAutoFillBackground(True)

        self.copy_button = QPushButton("Copy as text", self)
        self.copy_button.setToolTip("Put the table and the sentence on the clipboard as plain text")
        self.save_button = QPushButton("Save PNG…", self)
        self.save_button.setToolTip("Save the card as a picture (for slides and reports)")
        self.close_button = QPushButton("Close", self)
        self.copy_button.clicked.connect(self.copy_text)
        self.save_button.clicked.connect(self._on_save)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.save_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.addWidget(self.content)
        layout.addLayout(buttons)
        self._build(card)

    # -- public ---------------------------------------------------------------
    def set_card(self, card: Card) -> None:
        self.card = card
        old = self.content.layout()
        if old is not None:
            QWidget().setLayout(old)  # re-parents the old layout and its widgets, which go with it
        self._build(card)
        self._fit_height()

    def _fit_height(self) -> None:
        """Grow to the new card's height at the current width, never shrink. ``adjustSize`` shrank a shown card
        below what its table needs (the wrapped sentence's height depends on the width, and the size hint Qt
        computes for such a window is short), and the rows were drawn over each other."""
        layout = self.layout()
        layout.activate()
        width = max(self.width(), self.sizeHint().width())
        height = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else -1
        self.resize(width, max(self.height(), height, self.sizeHint().height()))

    @Slot()
    def copy_text(self) -> str:
        text = self.card.text()
        QGuiApplication.clipboard().setText(text)
        return text

    def save_png(self, path: str | Path) -> bool:
        return self.content.grab().save(str(path), "PNG")

    @Slot()
    def _on_save(self) -> None:
        suggested = str(Path(self.card.run_path) / "what-distillation-bought.png")
        path, _ = QFileDialog.getSaveFileName(self, "Save the card as PNG", suggested, "PNG images (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            if not self.save_png(path):
                self.sentence_label.setText(f"{self.card.sentence}\n\nCould not write {path}.")

    # -- drawing ----------------------------------------------------------------
    def _build(self, card: Card) -> None:
        c = theme.colors()
        self.content.setStyleSheet(
            f"QFrame#boughtCard {{ background: {c['base']}; border: 1px solid {c['border']}; border-radius: 8px; }}"
        )
        outer = QVBoxLayout(self.content)
        outer.setContentsMargins(22, 18, 22, 18)
        outer.setSpacing(12)

        # a run with alpha = 0 distilled nothing: its card is the teacher beside the plain student
        title = QLabel("What distillation bought" if card.distilled else "Teacher and hard-label student", self.content)
        title.setFont(_font(self, 1.6, bold=True))
        outer.addWidget(title)
        subtitle = card.run_name + (f"   vs   {card.baseline_name} (hard labels)" if card.baseline_name else "")
        sub = QLabel(subtitle, self.content)
        sub.setObjectName("muted")
        outer.addWidget(sub)

        self.headline_labels: list[tuple[QLabel, QLabel]] = []
        figures = headlines(card)
        if figures:
            row = QHBoxLayout()
            row.setSpacing(12)
            for figure, meaning in figures:
                row.addWidget(self._tile(figure, meaning, c))
            outer.addLayout(row)

        outer.addWidget(self._table(card, c))

        self.sentence_label = QLabel(card.sentence, self.content)
        self.sentence_label.setWordWrap(True)
        self.sentence_label.setFont(_font(self, 1.1))
        self.sentence_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.sentence_label)
        notes = list(card.notes)
        if card.baseline_path is None and card.distilled:
            notes.append(NO_BASELINE_HINT)
        self.notes_label = QLabel("\n".join(notes), self.content)
        self.notes_label.setObjectName("muted")
        self.notes_label.setWordWrap(True)
        self.notes_label.setVisible(bool(notes))
        outer.addWidget(self.notes_label)
        self.content.setMinimumWidth(640 if card.baseline_path else 520)

    def _tile(self, figure: str, meaning: str, c: dict[str, str]) -> QFrame:
        tile = QFrame(self.content)
        tile.setObjectName("tile")
        tile.setStyleSheet(
            f"QFrame#tile {{ background: {c['alt_base']}; border: none; border-left: 4px solid "
            f"{theme.STUDENT_COLOR}; border-radius: 0px; }}"
        )
        box = QVBoxLayout(tile)
        box.setContentsMargins(14, 10, 14, 10)
        box.setSpacing(2)
        big = QLabel(figure, tile)
        big.setFont(_font(self, 2.2, bold=True))
        big.setStyleSheet(f"color: {theme.STUDENT_COLOR}; background: transparent;")
        small = QLabel(meaning, tile)
        small.setStyleSheet(f"color: {c['muted']}; background: transparent;")
        small.setWordWrap(True)
        box.addWidget(big)
        box.addWidget(small)
        self.headline_labels.append((big, small))
        return tile

    def _table(self, card: Card, c: dict[str, str]) -> QWidget:
        table = QWidget(self.content)
        grid = QGridLayout(table)
        grid.setContentsMargins(0, 4, 0, 4)
        grid.setHorizontalSpacing(28)
        grid.setVerticalSpacing(6)
        self.cells: dict[tuple[str, str], QLabel] = {}
        for col, column in enumerate(card.columns, start=1):
            head = QLabel(card.title(column), table)
            color = COLUMN_COLORS[column] if card.distilled or column != "distilled" else theme.BASELINE_COLOR
            head.setStyleSheet(f"color: {color}; font-weight: 600;")
            head.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            grid.addWidget(head, 0, col)
        rule = QFrame(table)
        rule.setFixedHeight(1)
        rule.setStyleSheet(f"background: {c['border']};")
        grid.addWidget(rule, 1, 0, 1, len(card.columns) + 1)
        for r, (key, label, cells) in enumerate(card.rows(), start=2):
            name = QLabel(label, table)
            name.setStyleSheet(f"color: {c['muted']};")
            grid.addWidget(name, r, 0)
            better = card.better(key)
            for col, (column, text) in enumerate(zip(card.columns, cells), start=1):
                cell = QLabel(text, table)
                cell.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == better:
                    cell.setStyleSheet(f"color: {theme.OK_COLOR}; font-weight: 600;")
                    cell.setToolTip("the better of the two students")
                self.cells[(key, column)] = cell
                grid.addWidget(cell, r, col)
        grid.setColumnStretch(0, 1)
        return table
