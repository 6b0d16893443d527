"""The soft-targets panel's Next word tab: a view that draws a :class:`~.state.SoftTargetsState`.

Top to bottom: the prompt's tokens as chips with the divergence under each (click one to move the position),
a title (the context and where the numbers came from), the legend with each distribution's entropy and the
known next token, a readout of the hovered row, and the bars. It computes nothing itself: the state's
numbers are drawn as they are.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from workbench.gui import theme
from workbench.gui.soft_targets.bars import ProbabilityBars
from workbench.gui.soft_targets.state import Bars, SoftTargetsState, display_token
from workbench.gui.soft_targets.token_strip import TokenStrip

DIVERGENCE_NAMES = {"KL": "KL(teacher‖student)", "JS": "Jensen-Shannon", "TV": "total variation"}
_CAPTIONS = {"KL": "KL(teacher‖student)", "JS": "JS(teacher, student)", "TV": "TV(teacher, student)"}
_SERIES_NAMES = {"teacher": "teacher", "student": "student", "truth": "true distribution"}
_SERIES_COLORS = {"teacher": theme.TEACHER_COLOR, "student": theme.STUDENT_COLOR, "truth": theme.TRUTH_COLOR}
# Prompts of the built-in language (each checked by a test with its is_possible) whose next word shows number
# agreement: "is" / "chases" after a singular subject, "are" / "chase" after a plural one, also across a clause.
EXAMPLE_PROMPTS = ("the cat", "the cats", "the cat that chases the dogs", "the cats that chase the dog")


class NextWordView(QWidget):
    """Token strip, title, legend, readout and bars of the state's shown prompt and position.

    ``example_chosen(prompt)``: one of the example prompts under the legend was clicked.
    """

    example_chosen = Signal(str)

    def __init__(self, state: SoftTargetsState, parent: QWidget | None = None):
        super().__init__(parent)
        self._state = state
        self._bars: Bars | None = None
        self.strip = TokenStrip(self, font_size=self.font_size)
        self.title = QLabel("", self)
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # long prompts clip
        self.legend = QLabel("", self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        # On the built-in language: the example prompts, and why there are no truth bars when the context is one
        # the language never produces.
        self.truth_note = QLabel("", self)
        self.truth_note.setTextFormat(Qt.TextFormat.RichText)
        self.truth_note.setWordWrap(True)
        self.truth_note.linkActivated.connect(self.example_chosen)
        self.truth_note.hide()
        self.readout = QLabel("", self)
        self.readout.setObjectName("muted")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.bars = ProbabilityBars(self)
        self.bars.row_hovered.connect(self.show_readout_at)
        self.empty_text = QLabel("", self)
        self.empty_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_text.setWordWrap(True)
        self.empty_text.setObjectName("muted")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.legend_row = QHBoxLayout()  # the legend, then what the panel puts beside it (its "?")
        self.legend_row.setContentsMargins(0, 0, 0, 0)
        self.legend_row.addWidget(self.legend, 1)
        layout.addWidget(self.strip)
        layout.addWidget(self.title)
        layout.addLayout(self.legend_row)
        for widget in (self.truth_note, self.readout, self.empty_text):
            layout.addWidget(widget)
        layout.addWidget(self.bars, 1)

    def shown_token_ids(self) -> list[int]:
        """The vocab index of each bar row, top to bottom (empty while nothing is shown)."""
        return [int(i) for i in self._bars.token_ids] if self._bars is not None else []

    def shown_tokens(self) -> list[str]:
        """The token strings on the bar axis, top to bottom."""
        return [self._state.shown.vocab_tokens[i] for i in self.shown_token_ids()]

    def show_prompt(self, force_chips: bool = False) -> None:
        """Draw the shown prompt from scratch: its chips (kept when they are the same tokens), strip and bars."""
        probe = self._state.shown
        self.strip.set_tokens(probe.tokens, self._state.position, force=force_chips)
        self.empty_text.hide()
        self.bars.show()
        self._show_beside_legend(True)
        self.redraw()

    def show_empty(self, message: str) -> None:
        self._bars = None
        self.strip.set_tokens([], 0)
        self.title.setText("")
        self.legend.setText("")
        self.truth_note.hide()
        self.empty_text.setText(message)
        self.empty_text.show()
        self.bars.hide()
        self._show_beside_legend(False)

    def _show_beside_legend(self, visible: bool) -> None:
        """What the panel put beside the legend (its "?") goes with the bars: alone on an empty tab it floats."""
        for i in range(self.legend_row.count()):
            widget = self.legend_row.itemAt(i).widget()
            if widget is not None and widget is not self.legend:
                widget.setVisible(visible)

    def redraw(self) -> None:
        """The heat strip and the bars from the state's numbers (after a new temperature, divergence or theme)."""
        if self._state.shown is None:
            return
        kind = self._state.divergence
        unit = "" if kind == "TV" else " nats"
        name = DIVERGENCE_NAMES[kind]
        self.strip.paint(
            self._state.heat(),
            f"← click a token to see what follows it\n← {_CAPTIONS[kind]} at each position",
            lambda position, value: f"{name} after token {position + 1}: {value:.4f}{unit}",
        )
        self.refresh_bars()

    def select_position(self) -> None:
        """Follow the state's position: the chip and the bars (the strip stays as it is)."""
        self.strip.select(self._state.position)
        self.refresh_bars()

    def refresh_bars(self) -> None:
        self._bars = self._state.bars()
        if self._bars is None:
            return
        self.bars.draw(self._bars.series, self._bars.labels, self._bars.hard_row)
        self.title.setText(self._state.title())
        self._update_legend()
        self._update_truth_note()
        self.readout.setText("Hover a bar for exact probabilities.")

    @Slot(int)
    def show_readout_at(self, row: int) -> str:
        """Write the exact probabilities of the word on bar row ``row`` under the legend; returns the text."""
        token_ids = self.shown_token_ids()
        if not 0 <= row < len(token_ids):
            return ""
        text = self._state.readout(token_ids[row])
        self.readout.setText(text)
        return text

    def example_prompts(self) -> list[str]:
        """The prompts the note under the legend offers (on the built-in language)."""
        return list(EXAMPLE_PROMPTS)

    def _update_truth_note(self) -> None:
        if not self._state.has_truth():
            self.truth_note.hide()
            return
        muted = theme.colors()["muted"]
        links = " · ".join(f"<a href='{html.escape(p)}'>{html.escape(p)}</a>" for p in EXAMPLE_PROMPTS)
        examples = f"<span style='color:{muted}'>Number agreement, try:</span> {links}"
        if self._state.truth_unreachable():
            context = html.escape(self._state.context())
            self.truth_note.setText(
                f"<span style='color:{theme.TRUTH_COLOR}'>The built-in language never produces “{context}”, so it "
                f"has no true next-word distribution.</span><br>{examples}"
            )
        else:
            self.truth_note.setText(examples)
        self.truth_note.show()

    def _update_legend(self) -> None:
        muted = theme.colors()["muted"]
        entropies = self._state.entropies()
        parts = [
            f"<span style='color:{_SERIES_COLORS[n]}; font-size:{self.font_size(1.4)}'>■</span> "
            f"{_SERIES_NAMES[n]} <span style='color:{muted}'>H = {h:.2f}</span>"
            for n, h in entropies.items()
        ]
        if "student" not in entropies:
            parts.append(f"<i style='color:{muted}'>no student yet (teacher stage)</i>")
        hard = self._state.hard_label()
        if hard is not None:
            parts.append(
                f"<span style='color:{theme.HARD_LABEL_COLOR}; font-size:{self.font_size(1.3)}'>★</span> "
                f"next token in the prompt: <b>{display_token(hard)}</b>"
            )
        self.legend.setText(
            "&nbsp;&nbsp;&nbsp;".join(parts) + f"&nbsp;&nbsp;&nbsp;<span style='color:{muted}'>"
            "(entropies in nats)</span>"
        )

    # -- theme and fonts ---------------------------------------------------------------------------------------------
    def font_size(self, scale: float) -> str:
        """A font size relative to the view's font, so presentation mode (bigger app font) scales everything."""
        base = self.font().pointSizeF()
        return f"{(base if base > 0 else 10.0) * scale:.1f}pt"

    def apply_palette(self) -> None:
        self.bars.apply_palette()
        self.strip.apply_style()
        self.redraw()

    def apply_fonts(self, font: QFont) -> None:
        """Hand ``font`` to every part: under the application's style sheet it does not reach them by itself."""
        self.setFont(font)
        for child in self.findChildren(QWidget):
            if child is not self.title and not isinstance(child, ProbabilityBars):
                child.setFont(font)
        tick_font = QFont(font)
        tick_font.setPointSizeF(max(tick_font.pointSizeF(), 10.0) * 1.15)  # the words on the bars must read at a demo
        self.bars.set_tick_font(tick_font)
        title_font = QFont(font)
        title_font.setPointSizeF(max(title_font.pointSizeF(), 10.0) * 1.2)
        self.title.setFont(title_font)
