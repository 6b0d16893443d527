"""The soft-targets panel's Generate tab: sampling settings and the teacher's and the student's continuations.

It is a view: the panel asks the run's models (on its background thread) when ``generate_button`` is clicked,
using :meth:`GenerationTab.settings`, and hands the answer to :meth:`GenerationTab.show_continuations`.
"""

from __future__ import annotations

import html

from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.gui import theme
from workbench.gui.soft_targets.state import continue_text


class GenerationTab(QGroupBox):
    """Max tokens, temperature, top-p and seed for both models, a Generate button, and the two texts."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Generate: teacher vs student (same settings and seed)", parent)
        self.max_tokens_box = QSpinBox(self)
        self.max_tokens_box.setRange(1, 256)
        self.max_tokens_box.setValue(30)
        self.temperature_box = QDoubleSpinBox(self)
        self.temperature_box.setRange(0.0, 5.0)
        self.temperature_box.setSingleStep(0.1)
        self.temperature_box.setValue(1.0)
        self.temperature_box.setToolTip("Sampling temperature; 0 = greedy")
        self.top_p_box = QDoubleSpinBox(self)
        self.top_p_box.setRange(0.05, 1.0)
        self.top_p_box.setSingleStep(0.05)
        self.top_p_box.setValue(0.95)
        self.seed_box = QSpinBox(self)
        self.seed_box.setRange(0, 2**31 - 1)
        self.generate_button = QPushButton("Generate", self)
        self.generate_button.setObjectName("primary")
        self.generate_button.setToolTip("Open a run folder (Runs panel) to generate with its teacher and student")
        self.generate_button.setEnabled(False)
        # Generation needs weights, and a run keeps only its final ones: say so while the replay shows a step.
        self.replay_note = QLabel("", self)
        self.replay_note.setObjectName("muted")
        self.replay_note.setWordWrap(True)
        self.replay_note.hide()
        # Two rows of two settings: one row of four would set the panel's (and the window's) minimum width.
        settings = QGridLayout()
        settings.setHorizontalSpacing(8)
        for i, (text, widget) in enumerate(
            (
                ("Max tokens", self.max_tokens_box),
                ("Temperature", self.temperature_box),
                ("Top-p", self.top_p_box),
                ("Seed", self.seed_box),
            )
        ):
            settings.addWidget(QLabel(text, self), i // 2, 2 * (i % 2))
            settings.addWidget(widget, i // 2, 2 * (i % 2) + 1)
        settings.setColumnStretch(4, 1)
        settings.addWidget(self.generate_button, 0, 5, 2, 1)
        self.teacher_text = QPlainTextEdit(self)
        self.student_text = QPlainTextEdit(self)
        texts = QHBoxLayout()
        for name, color, edit in (
            ("Teacher", theme.TEACHER_COLOR, self.teacher_text),
            ("Student", theme.STUDENT_COLOR, self.student_text),
        ):
            edit.setReadOnly(True)
            edit.setMinimumHeight(44)  # three lines; they grow with the panel
            edit.setPlaceholderText(f"{name} continuation")
            column = QVBoxLayout()
            column.addWidget(QLabel(f"<b style='color:{color}'>■ {name}</b>", self))
            column.addWidget(edit)
            texts.addLayout(column)
        layout = QVBoxLayout(self)
        layout.addWidget(self.replay_note)
        layout.addLayout(settings)
        layout.addLayout(texts, 1)

    def set_replayed_step(self, step: str | None) -> None:
        """``step`` (``"step 40 (distill)"``) while the replay shows an earlier step, else None."""
        if step is None:
            self.replay_note.hide()
            return
        self.replay_note.setText(
            f"The bars show {step}; generations come from the run's final models "
            "(a run keeps only its final weights), not from that step."
        )
        self.replay_note.show()

    def settings(self) -> dict:
        """The keyword arguments of ``Predictor.generate`` the boxes hold."""
        return {
            "max_new_tokens": self.max_tokens_box.value(),
            "temperature": self.temperature_box.value(),
            "top_p": self.top_p_box.value(),
            "seed": self.seed_box.value(),
        }

    def show_continuations(self, prompt: str, teacher_text: str, student_text: str) -> None:
        """Each model's text: the prompt in grey, then what the model wrote."""
        muted = theme.colors()["muted"]
        for edit, text in ((self.teacher_text, teacher_text), (self.student_text, student_text)):
            whole = continue_text(prompt, text)
            edit.clear()
            edit.appendHtml(
                f"<span style='color:{muted}'>{html.escape(prompt)}</span>{html.escape(whole[len(prompt) :])}"
            )
