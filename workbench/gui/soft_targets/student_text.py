"""The soft-targets panel's Student's text tab: what the student writes by itself, under the teacher's eye.

Each probe prompt's sampled continuation (from the shown Probe event, so the replay moves it) is a row of token
chips coloured by the teacher's surprise at each token (-log p under the teacher) or by KL(teacher || student)
at that position, on fixed scales so that steps compare; a tooltip gives each token's numbers. On the built-in
language a token the language can never write there is struck out in a red outline, and the share of the
student's sampled sentences the language can produce is shown large, with its count and a sparkline over the
run's probes. "Sample" asks the run folder's models (on the panel's background thread) for a fresh continuation
of the typed prompt. It is a view: the panel hands it the state's samples and the models' answers.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
    QWidgetItem,
)

from workbench.events import StudentText
from workbench.gui import theme
from workbench.gui.soft_targets.state import display_token

COLOUR_BY = {"teacher": "Teacher's surprise (−log p)", "kl": "KL(teacher ‖ student)"}
SCALES = {"teacher": 6.0, "kl": 2.0}
"""Nats at which a chip is fully coloured; fixed, so the same colour means the same number at every step."""
NOTHING_YET = (
    "No student text yet: the student writes its own text at every probe of the distillation stage "
    "(train.probe_samples). Open a finished run and press Sample to ask its student now."
)
NO_SAMPLES_RECORDED = (
    "This probe holds no student text (a run recorded before probes sampled, one with train.probe_samples = 0, "
    "or the teacher stage). Open the run folder and press Sample to ask its student now."
)


def chip_fraction(sample: StudentText, i: int, colour_by: str) -> float:
    """How strongly token ``i`` is coloured, 0..1: its teacher surprise or its KL over the mode's scale."""
    value = -sample.teacher_logprob[i] if colour_by == "teacher" else sample.kl[i]
    if value != value:  # NaN: no number
        return 0.0
    return min(max(value / SCALES[colour_by], 0.0), 1.0)


def rate_text(good: int, total: int) -> tuple[str, str]:
    """The big number and its count: ``("72%", "23 of 32 sentences grammatical")``."""
    if not total:
        return "–", "no complete sentence sampled"
    return f"{100 * good / total:.0f}%", f"{good} of {total} sentence{'s' if total != 1 else ''} grammatical"


def scale_color(colour_by: str) -> str:
    """The colour of a fully coloured chip: the teacher's for its surprise, the student's for KL (the red of a
    forbidden word's outline stays apart from both)."""
    return theme.TEACHER_COLOR if colour_by == "teacher" else theme.STUDENT_COLOR


def _blend(f: float, colour_by: str) -> QColor:
    low, high = QColor(theme.colors()["alt_base"]), QColor(scale_color(colour_by))
    return QColor.fromRgbF(*(low.getRgbF()[k] * (1 - f) + high.getRgbF()[k] * f for k in range(3)))


class FlowLayout(QLayout):
    """Widgets left to right, wrapping to the next line at the right edge. A widget added ``glued`` sits right
    against the one before it and wraps with it (the pieces of one word stay on one line, unless the word alone
    is wider than the line)."""

    GLUE = 1  # pixels between the glued pieces of a word

    def __init__(self, parent: QWidget | None = None, spacing: int = 4):
        super().__init__(parent)
        self._items: list = []
        self._glued: list[bool] = []
        self._spacing = spacing
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item) -> None:  # noqa: N802 (Qt name)
        self._items.append(item)
        self._glued.append(False)

    def addWidget(self, widget: QWidget, glued: bool = False) -> None:  # noqa: N802
        self.addChildWidget(widget)
        self.addItem(QWidgetItem(widget))
        self._glued[-1] = glued and len(self._items) > 1

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):  # noqa: N802
        if not 0 <= index < len(self._items):
            return None
        self._glued.pop(index)
        return self._items.pop(index)

    def expandingDirections(self):  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.minimumSize()

    def minimumSize(self) -> QSize:  # noqa: N802
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        return size

    def words(self) -> list[list[int]]:
        """The items' indices grouped into words: each group is an item and the glued ones after it."""
        groups: list[list[int]] = []
        for i, glued in enumerate(self._glued):
            if glued and groups:
                groups[-1].append(i)
            else:
                groups.append([i])
        return groups

    def _arrange(self, rect: QRect, move: bool) -> int:
        x, y, line = rect.x(), rect.y(), 0
        for group in self.words():
            hints = [self._items[i].sizeHint() for i in group]
            width = sum(h.width() for h in hints) + self.GLUE * (len(group) - 1)
            if x + width > rect.right() and line > 0:
                x, y, line = rect.x(), y + line + self._spacing, 0
            for n, (i, hint) in enumerate(zip(group, hints, strict=True)):
                if n and x + hint.width() > rect.right():  # a word wider than the line: break inside it
                    x, y, line = rect.x(), y + line + self._spacing, 0
                if move:
                    self._items[i].setGeometry(QRect(x, y, hint.width(), hint.height()))
                x += hint.width() + self.GLUE
                line = max(line, hint.height())
            x += self._spacing - self.GLUE
        return y + line - rect.y()


def word_starts(tokens: list[str]) -> list[bool]:
    """Whether each sampled token begins a word (True) or continues the one before it. A tokenizer whose tokens
    carry their leading space (GPT-2's byte-level BPE: " the", "ing") says so by that space; then a token begins
    a word when it starts with whitespace or follows one that ends with it (the word after a newline). One whose
    tokens never start with a space (the built-in language's words; SentencePiece pieces decoded one at a time,
    which lose theirs, though a newline piece still decodes as "\\n") gives no sign, and then every token is its
    own word."""
    if not any(token.startswith(" ") for token in tokens):
        return [True] * len(tokens)
    return [
        i == 0 or not token or token[:1].isspace() or tokens[i - 1][-1:].isspace() for i, token in enumerate(tokens)
    ]


class Sparkline(QWidget):
    """The grammatical rate at each probe of the run, 0..100 %, the shown probe as a dot."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.values: list[float] = []
        self.current: int | None = None
        self.setMinimumSize(160, 44)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_values(self, values: list[float], current: int | None) -> None:
        self.values, self.current = list(values), current
        self.setToolTip(
            "Grammatical rate at each probe: " + ", ".join(f"{100 * v:.0f}%" for v in self.values)
            if self.values
            else ""
        )
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        c = theme.colors()
        r = self.rect().adjusted(4, 4, -4, -4)
        painter.setPen(QPen(QColor(c["grid"]), 1))
        painter.drawRect(r)
        if not self.values:
            return
        n = len(self.values)

        def point(i: int) -> QPointF:
            x = r.left() + (r.width() * i / (n - 1) if n > 1 else r.width() / 2)
            return QPointF(x, r.bottom() - r.height() * self.values[i])

        painter.setPen(QPen(QColor(theme.OK_COLOR), 2))
        for i in range(1, n):
            painter.drawLine(point(i - 1), point(i))
        if self.current is not None and 0 <= self.current < n:
            painter.setBrush(QColor(theme.OK_COLOR))
            painter.drawEllipse(point(self.current), 4, 4)


class TokenChip(QLabel):
    """One sampled token: coloured by the chosen number, struck out in red where the language forbids it."""

    def __init__(self, sample: StudentText, i: int, parent: QWidget | None = None):
        super().__init__(display_token(sample.tokens[i]), parent)
        self.token = sample.tokens[i]
        self.forbidden = bool(sample.forbidden[i]) if sample.forbidden else False
        self.teacher_logprob = sample.teacher_logprob[i]
        self.kl = sample.kl[i]
        self.true_prob = sample.true_prob[i] if sample.true_prob else None
        lines = [
            f"“{display_token(self.token)}”",
            f"teacher log p = {self.teacher_logprob:.2f}  (p = {_exp(self.teacher_logprob):.3f})",
            f"KL(teacher ‖ student) here = {self.kl:.3f} nats",
        ]
        if self.true_prob is not None:
            lines.append(
                "true p = 0: the language never writes this word here"
                if self.forbidden
                else f"true p = {self.true_prob:.3f}"
            )
        self.setToolTip("\n".join(lines))


def _exp(value: float) -> float:
    import math

    return math.exp(value) if value > -700 else 0.0


class StudentTextView(QWidget):
    """The rate, the legend and each prompt's sampled text as chips (see the module docstring)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.colour_box = QComboBox(self)
        for key, text in COLOUR_BY.items():
            self.colour_box.addItem(text, key)
        self.colour_box.setToolTip("What the colour of each token says")
        self.colour_box.currentIndexChanged.connect(lambda _: self._render())
        self.sample_button = QPushButton("Sample", self)
        self.sample_button.setToolTip(
            "Ask the run folder's student for a fresh continuation of the typed prompt (a new seed each time)"
        )
        self.sample_button.setEnabled(False)
        self.legend = QLabel("", self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        top = QHBoxLayout()
        top.addWidget(QLabel("Colour by", self))
        top.addWidget(self.colour_box)
        top.addSpacing(10)
        top.addWidget(self.legend, 1)
        top.addWidget(self.sample_button)

        self.rate_value = QLabel("–", self)
        self.rate_count = QLabel("", self)
        self.rate_count.setObjectName("muted")
        self.rate_count.setWordWrap(True)
        self.sparkline = Sparkline(self)
        rate_text_column = QVBoxLayout()
        rate_text_column.setSpacing(0)
        rate_text_column.addWidget(self.rate_count)
        rate_text_column.addWidget(self.sparkline)
        self.rate_box = QWidget(self)
        rate_row = QHBoxLayout(self.rate_box)
        rate_row.setContentsMargins(0, 0, 0, 0)
        rate_row.addWidget(self.rate_value)
        rate_row.addLayout(rate_text_column, 1)

        self.note = QLabel("", self)
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        self.host = QWidget(self)
        self.rows = QVBoxLayout(self.host)
        self.rows.setContentsMargins(0, 0, 0, 0)
        self.rows.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidget(self.host)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(top)
        layout.addWidget(self.rate_box)
        layout.addWidget(self.note)
        layout.addWidget(scroll, 1)

        self.chips: list[TokenChip] = []
        self._samples: list[StudentText] = []
        self._answer: StudentText | None = None
        self._source = ""
        self._history: list[float] = []
        self._current: int | None = None
        self._rate: tuple[int, int] = (0, 0)
        self._empty = NOTHING_YET
        self._render()

    # -- what the panel hands over -------------------------------------------------------------------------------------
    @property
    def colour_by(self) -> str:
        return self.colour_box.currentData()

    def set_colour_by(self, key: str) -> None:
        self.colour_box.setCurrentIndex(list(COLOUR_BY).index(key))

    def show_probe(
        self, samples: list[StudentText], source: str, history: list[tuple[int, int, int]], shown: int | None
    ) -> None:
        """The shown probe's samples (``source``: "step 40 (distill)"), and the run's grammatical rate per probe
        (``history`` rows of (probe index, grammatical, sentences); ``shown``: the shown probe's index)."""
        self._samples, self._source = list(samples), source
        self._history = [good / total for _, good, total in history]
        indices = [index for index, _, _ in history]
        self._current = indices.index(shown) if shown in indices else None
        self._rate = next(((good, total) for index, good, total in history if index == shown), (0, 0))
        self._empty = NO_SAMPLES_RECORDED if source else NOTHING_YET
        self._render()

    def show_answer(self, sample: StudentText) -> None:
        """A continuation the run's models sampled for a typed prompt: shown above the probe's."""
        self._answer = sample
        self._render()

    def forget_answer(self) -> None:
        """Drop the typed prompt's sample (another run's models are loaded, or none)."""
        self._answer = None
        self._render()

    # -- drawing -----------------------------------------------------------------------------------------------------------
    def font_size(self, scale: float) -> str:
        base = self.font().pointSizeF()
        return f"{(base if base > 0 else 10.0) * scale:.1f}pt"

    def _render(self) -> None:
        c = theme.colors()
        self.rate_value.setStyleSheet(f"font-size: {self.font_size(2.6)}; font-weight: 700; color: {c['text']};")
        has_truth = any(s.true_prob for s in self._samples) or bool(self._history)
        self.rate_box.setVisible(has_truth)
        value, count = rate_text(*self._rate)
        self.rate_value.setText(value)
        self.rate_count.setText(
            f"<b>{count}</b> at {self._source} (the student's own sentences the language can produce)"
            if self._source and self._rate[1]
            else count
        )
        self.sparkline.set_values(self._history, self._current)
        key, scale = self.colour_by, SCALES[self.colour_by]
        swatches = "".join(
            f"<span style='background:{_blend(f, key).name()}; color:{'#ffffff' if _blend(f, key).lightnessF() < 0.6 else '#1f2328'};'>"
            f"&nbsp;{'≥' if f == 1.0 else ''}{f * scale:g}&nbsp;</span>"
            for f in (0.0, 0.25, 0.5, 0.75, 1.0)
        )
        what = "teacher −log p" if key == "teacher" else "KL"
        forbidden = (  # only the built-in language knows which words are impossible
            f"&nbsp;&nbsp;<span style='border:1px solid {theme.ERROR_COLOR}; color:{theme.ERROR_COLOR};"
            f" text-decoration: line-through;'>&nbsp;word&nbsp;</span>"
            f"&nbsp;<span style='color:{c['muted']}'>forbidden by the language</span>"
            if has_truth
            else ""
        )
        self.legend.setText(f"{swatches}&nbsp;<span style='color:{c['muted']}'>{what}, nats</span>{forbidden}")
        self._fill_rows()

    def _fill_rows(self) -> None:
        while self.rows.count() > 1:  # the stretch stays last
            item = self.rows.takeAt(0)
            widget = item.widget()
            if widget is not None:
                widget.hide()
                widget.deleteLater()
        self.chips = []
        shown = ([(self._answer, "sampled now by the run's final student")] if self._answer else []) + [
            (sample, self._source) for sample in self._samples
        ]
        self.note.setVisible(not shown)
        self.note.setText(self._empty)
        for sample, source in shown:
            self.rows.insertWidget(self.rows.count() - 1, self._sample_row(sample, source))

    def _sample_row(self, sample: StudentText, source: str) -> QWidget:
        c = theme.colors()
        row = QWidget(self.host)
        column = QVBoxLayout(row)
        column.setContentsMargins(0, 4, 0, 8)
        head = f"“{sample.prompt}”  ·  {source}"
        if sample.sentences:
            head += f"  ·  {sample.grammatical} of {sample.sentences} sentences grammatical"
        caption = QLabel(head, row)
        caption.setObjectName("muted")
        caption.setFont(self.font())  # presentation mode's font: under the style sheet it is not inherited
        column.addWidget(caption)
        flow_host = QWidget(row)
        flow = FlowLayout(flow_host)
        prompt = QLabel(sample.prompt, flow_host)
        prompt.setStyleSheet(f"color: {c['muted']}; font-size: {self.font_size(1.15)}; padding: 3px 2px;")
        flow.addWidget(prompt)
        starts = word_starts(sample.tokens)
        for i in range(len(sample.tokens)):
            chip = TokenChip(sample, i, flow_host)
            color = _blend(chip_fraction(sample, i, self.colour_by), self.colour_by)
            text = "#ffffff" if color.lightnessF() < 0.6 else "#1f2328"
            border = f"2px solid {theme.ERROR_COLOR}" if chip.forbidden else f"1px solid {c['border']}"
            strike = " text-decoration: line-through;" if chip.forbidden else ""
            # the pieces of one word touch: square corners where they meet, less padding on those sides
            glued_left = i > 0 and not starts[i]
            glued_right = i + 1 < len(starts) and not starts[i + 1]
            left, right = ("0px" if glued_left else "6px"), ("0px" if glued_right else "6px")
            chip.setStyleSheet(
                f"background: {color.name()}; color: {text}; border: {border};"
                f" border-top-left-radius: {left}; border-bottom-left-radius: {left};"
                f" border-top-right-radius: {right}; border-bottom-right-radius: {right};"
                f" padding: 2px {'2px' if glued_right else '6px'} 2px {'2px' if glued_left else '6px'};"
                f" font-size: {self.font_size(1.15)};{strike}"
            )
            flow.addWidget(chip, glued=glued_left)
            self.chips.append(chip)
        column.addWidget(flow_host)
        return row

    def apply_palette(self) -> None:
        self._render()

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        from PySide6.QtCore import QEvent

        if event.type() in (QEvent.Type.FontChange, QEvent.Type.ApplicationFontChange):
            self._render()
        super().changeEvent(event)
