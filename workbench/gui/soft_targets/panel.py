"""Soft targets: the teacher's and the student's next-word distributions, side by side.

For a prompt (from the run's Probe events, or typed and answered by the run's models in a worker thread) the
panel shows, at a chosen position, the top-k next words as grouped horizontal bars on one token axis: teacher,
student and, on the built-in language, the exact true distribution; the known next token of the prompt is
starred. A temperature slider re-softens the cached logits with numpy (no forward pass), which is exactly what
the distillation loss does with T. A heat strip under the prompt's tokens shows the divergence at every position.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QEvent, Qt, QThread, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.events import Probe, ProbePrompt
from workbench.gui import theme
from workbench.gui.soft_targets.bars import ProbabilityBars
from workbench.gui.soft_targets.state import (
    SLIDER_STEPS,
    T_MAX,
    T_MIN,
    PredictorWorker,
    continue_text,
    display_token,
    join_tokens,
    load_predictor,
    slider_to_temperature,
    temperature_to_slider,
    top_tokens,
)
from workbench.gui.soft_targets.token_strip import TokenStrip
from workbench.probabilities import DIVERGENCES, divergence, entropy, soften

NOT_PROBED = "This prompt is not probed by the run; open a finished run (Runs tab) to ask about any prompt."
NO_MODELS = "No models yet: start a run (its probe prompts appear here) or open a finished run (Runs tab)."


# -- the panel --------------------------------------------------------------------------------------------------------
class SoftTargetsPanel(QWidget):
    """Teacher vs student (vs truth) next-word bars for a prompt, with temperature, divergence strip and generation."""

    probe_shown = Signal(str)  # a prompt's distributions are on screen (from a Probe event or the worker)
    generation_shown = Signal(str, str)
    predictor_ready = Signal(str)
    predictor_failed = Signal(str)
    _load_requested = Signal(str)
    _probe_requested = Signal(int, str)
    _generate_requested = Signal(int, str, object)

    def __init__(self, parent: QWidget | None = None, predictor_factory: Callable[[str], Any] | None = None):
        super().__init__(parent)
        self._factory = predictor_factory or load_predictor
        self._thread: QThread | None = None
        self._worker: PredictorWorker | None = None
        self._predictor_ready = False
        self._request = 0
        self._cache: dict[str, ProbePrompt] = {}
        self._source: dict[str, str] = {}
        self._pinned: list[str] = []
        self._probe_prompts: list[str] = []
        self._run_temperature: float | None = None
        self._shown: ProbePrompt | None = None
        self._arrays: dict[str, np.ndarray | None] = {}
        self._position = 0
        self._temperature = 1.0
        self._heat = np.empty(0)
        self._shown_tokens = np.empty(0, int)
        self._hard_index: int | None = None
        self._generation_prompt = ""
        self._chip_tokens: list[str] = []
        self._build()
        self.apply_palette()
        self._show_empty("Start a run (its probe prompts appear here) or open a run folder to ask about any prompt.")

    # -- layout ---------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.prompt_box = QComboBox(self)
        self.prompt_box.setEditable(True)
        self.prompt_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.prompt_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.prompt_box.lineEdit().setPlaceholderText("Type a prompt and press Enter")
        self.prompt_box.setToolTip("A prompt: the bars show each model's next-token distribution after it "
                                   "(Enter asks a finished run's models; the list holds the run's probe prompts)")
        # Long prompts must not set the panel's width (nor the window's, on a small screen).
        self.prompt_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.prompt_box.setMinimumContentsLength(12)
        self.prompt_box.lineEdit().returnPressed.connect(self._prompt_entered)
        self.prompt_box.activated.connect(self._prompt_chosen)
        self.pin_button = QPushButton("☆ Pin", self)
        self.pin_button.setToolTip("Keep this prompt in the list")
        self.pin_button.clicked.connect(self._toggle_pin)
        self.top_k_box = QSpinBox(self)
        self.top_k_box.setRange(5, 30)
        self.top_k_box.setValue(10)
        self.top_k_box.setToolTip("How many next words to show")
        self.top_k_box.valueChanged.connect(self._refresh_bars)
        self.divergence_box = QComboBox(self)
        self.divergence_box.addItems(["KL(teacher‖student)", "Jensen-Shannon", "total variation"])
        self.divergence_box.setToolTip("What the heat strip under the tokens measures at each position")
        self.divergence_box.currentIndexChanged.connect(self._recompute)
        row1 = QHBoxLayout()
        row1.addWidget(QLabel("Prompt", self))
        row1.addWidget(self.prompt_box, 1)
        row1.addWidget(self.pin_button)
        row1.addSpacing(12)
        row1.addWidget(QLabel("Top", self))
        row1.addWidget(self.top_k_box)
        row1.addSpacing(12)
        row1.addWidget(QLabel("Strip", self))
        row1.addWidget(self.divergence_box)

        self.temperature_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.temperature_slider.setRange(0, SLIDER_STEPS)
        self.temperature_slider.setValue(temperature_to_slider(1.0))
        self.temperature_slider.setToolTip("Re-soften the teacher's and student's logits: softmax(logits / T). "
                                           "The true distribution does not change with T.")
        self.temperature_slider.valueChanged.connect(self._slider_moved)
        self.temperature_label = QLabel("T = 1.00", self)
        self.temperature_label.setMinimumWidth(70)
        self.temperature_label.setStyleSheet("font-weight: 600;")
        reset = QPushButton("T = 1", self)
        reset.clicked.connect(self._reset_temperature)
        self.run_t_button = QPushButton("run's T", self)
        self.run_t_button.setToolTip("The temperature this run distils with")
        self.run_t_button.clicked.connect(self._use_run_temperature)
        self.run_t_button.hide()
        self.status = QLabel("", self)
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("Temperature", self))
        row2.addWidget(self.temperature_slider, 1)
        row2.addWidget(self.temperature_label)
        row2.addWidget(reset)
        row2.addWidget(self.run_t_button)
        row2.addSpacing(12)
        row2.addWidget(self.status, 1)

        self.strip = TokenStrip(self, font_size=self._pt)
        self.strip.position_clicked.connect(self.set_position)

        self.title = QLabel("", self)
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # long prompts clip
        self.legend = QLabel("", self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.readout = QLabel("", self)
        self.readout.setObjectName("muted")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.bars = ProbabilityBars(self)
        self.bars.row_hovered.connect(self.show_readout_at)
        self.empty_text = QLabel("", self)
        self.empty_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_text.setWordWrap(True)
        self.empty_text.setObjectName("muted")

        bars_box = QWidget(self)
        bars_layout = QVBoxLayout(bars_box)
        bars_layout.setContentsMargins(0, 0, 0, 0)
        bars_layout.addWidget(self.strip)
        bars_layout.addWidget(self.title)
        bars_layout.addWidget(self.legend)
        bars_layout.addWidget(self.readout)
        bars_layout.addWidget(self.empty_text)
        bars_layout.addWidget(self.bars, 1)

        # Tabs rather than a splitter: the bars are what people look at, so they get the whole
        # height; the generation box is one click away (and the Generate button switches to it).
        self.views = QTabWidget(self)
        self.views.setDocumentMode(True)
        self.views.addTab(bars_box, "Next word")
        self.views.addTab(self._build_generation(), "Generate")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addWidget(self.views, 1)
        self._apply_fonts()

    def _build_generation(self) -> QGroupBox:
        box = QGroupBox("Generate: teacher vs student (same settings and seed)", self)
        self.max_tokens_box = QSpinBox(box)
        self.max_tokens_box.setRange(1, 256)
        self.max_tokens_box.setValue(30)
        self.gen_temperature_box = QDoubleSpinBox(box)
        self.gen_temperature_box.setRange(0.0, 5.0)
        self.gen_temperature_box.setSingleStep(0.1)
        self.gen_temperature_box.setValue(1.0)
        self.gen_temperature_box.setToolTip("Sampling temperature; 0 = greedy")
        self.top_p_box = QDoubleSpinBox(box)
        self.top_p_box.setRange(0.05, 1.0)
        self.top_p_box.setSingleStep(0.05)
        self.top_p_box.setValue(0.95)
        self.seed_box = QSpinBox(box)
        self.seed_box.setRange(0, 2**31 - 1)
        self.generate_button = QPushButton("Generate", box)
        self.generate_button.setObjectName("primary")
        self.generate_button.setToolTip("Open a run folder (Runs panel) to generate with its teacher and student")
        self.generate_button.setEnabled(False)
        self.generate_button.clicked.connect(self.generate)
        # Two rows of two settings: one row of four would set the panel's (and the window's) minimum width.
        settings = QGridLayout()
        settings.setHorizontalSpacing(8)
        for i, (text, widget) in enumerate((("Max tokens", self.max_tokens_box), ("Temperature", self.gen_temperature_box),
                                            ("Top-p", self.top_p_box), ("Seed", self.seed_box))):
            settings.addWidget(QLabel(text, box), i // 2, 2 * (i % 2))
            settings.addWidget(widget, i // 2, 2 * (i % 2) + 1)
        settings.setColumnStretch(4, 1)
        settings.addWidget(self.generate_button, 0, 5, 2, 1)
        self.teacher_text = QPlainTextEdit(box)
        self.student_text = QPlainTextEdit(box)
        texts = QHBoxLayout()
        for name, color, edit in (("Teacher", theme.TEACHER_COLOR, self.teacher_text),
                                  ("Student", theme.STUDENT_COLOR, self.student_text)):
            edit.setReadOnly(True)
            edit.setMinimumHeight(44)  # three lines; they grow with the panel
            edit.setPlaceholderText(f"{name} continuation")
            column = QVBoxLayout()
            label = QLabel(f"<b style='color:{color}'>■ {name}</b>", box)
            column.addWidget(label)
            column.addWidget(edit)
            texts.addLayout(column)
        layout = QVBoxLayout(box)
        layout.addLayout(settings)
        layout.addLayout(texts, 1)
        return box

    # -- public API -------------------------------------------------------------------------------------------------
    @Slot(object)
    def handle_event(self, event) -> None:
        """Take a Probe event: cache every prompt's logits and refresh the shown prompt (others are ignored)."""
        if not isinstance(event, Probe):
            return
        self._run_temperature = float(event.temperature)
        self.run_t_button.setText(f"run's T = {event.temperature:g}")
        self.run_t_button.show()
        source = f"step {event.step:,} ({event.stage})"
        for probe in event.prompts:
            self._cache[probe.prompt] = probe
            self._source[probe.prompt] = source
            if probe.prompt not in self._probe_prompts:
                self._probe_prompts.append(probe.prompt)
        self._sync_prompt_list()
        names = [p.prompt for p in event.prompts]
        current = self._shown.prompt if self._shown is not None else None
        if current in names:
            self._show(self._cache[current], keep_position=True)
        elif names and (current is None or current not in self._cache or current in self._probe_prompts):
            self._show(self._cache[names[0]])

    def set_run_dir(self, path: str | Path | None) -> None:
        """Load ``path``'s teacher and student in the worker thread (None unloads them)."""
        self._predictor_ready = False
        self.generate_button.setEnabled(False)
        if path is None:
            if self._worker is not None:
                self._load_requested.emit("")
            return
        self._ensure_thread()
        self.status.setText(f"Loading the models of {Path(path).name} …")
        self._load_requested.emit(str(path))

    def clear(self) -> None:
        """Forget the run's probes (pinned prompts typed by the user stay in the list)."""
        self._cache.clear()
        self._source.clear()
        self._probe_prompts.clear()
        self._run_temperature = None
        self.run_t_button.hide()
        self._sync_prompt_list()
        self._show_empty("No probes yet.")

    def shutdown(self) -> None:
        """Stop the worker thread and wait for it (call before the window closes)."""
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
            self._thread = None
            self._worker = None

    def set_prompt(self, prompt: str) -> None:
        """Show ``prompt``: from the cache when a probe has it, else ask the run's models (if loaded)."""
        prompt = prompt.strip()
        if not prompt:
            return
        self.prompt_box.setEditText(prompt)
        if self._predictor_ready:
            self._request += 1
            self.status.setText("Asking the teacher and the student …")
            self._probe_requested.emit(self._request, prompt)
            if prompt in self._cache:  # show the cached answer now; the fresh one replaces it
                self._show(self._cache[prompt])
        elif prompt in self._cache:
            self._show(self._cache[prompt])
        elif self._cache:
            self.status.setText(NOT_PROBED)
        else:
            self.status.setText(NO_MODELS)

    def set_temperature(self, temperature: float) -> None:
        """Re-soften the cached logits at ``temperature`` (clamped to 0.25..10); no forward pass."""
        self._temperature = min(max(float(temperature), T_MIN), T_MAX)
        self.temperature_slider.blockSignals(True)
        self.temperature_slider.setValue(temperature_to_slider(self._temperature))
        self.temperature_slider.blockSignals(False)
        self.temperature_label.setText(f"T = {self._temperature:.2f}")
        self._recompute()

    def temperature(self) -> float:
        return self._temperature

    @Slot(int)
    def set_position(self, position: int) -> None:
        """Show the next-word distributions after token ``position`` of the shown prompt."""
        if self._shown is None:
            return
        self._position = max(0, min(position, len(self._shown.tokens) - 1))
        self.strip.select(self._position)
        self._refresh_bars()

    def position(self) -> int:
        return self._position

    def pin_prompt(self, prompt: str) -> None:
        if prompt and prompt not in self._pinned:
            self._pinned.append(prompt)
            self._sync_prompt_list()

    def unpin_prompt(self, prompt: str) -> None:
        if prompt in self._pinned:
            self._pinned.remove(prompt)
            self._sync_prompt_list()

    def pinned_prompts(self) -> list[str]:
        """The prompts in the list: the run's probe prompts, then the ones the user pinned."""
        return self._probe_prompts + [p for p in self._pinned if p not in self._probe_prompts]

    def heat_values(self) -> np.ndarray:
        """The divergence shown under each token of the prompt (one value per position)."""
        return self._heat.copy()

    def shown_tokens(self) -> list[str]:
        """The token strings on the bar axis, top to bottom."""
        vocab = self._shown.vocab_tokens if self._shown is not None else []
        return [vocab[i] for i in self._shown_tokens]

    def hard_label(self) -> str | None:
        """The prompt's actual next token at the shown position (None at the last position)."""
        if self._shown is None or self._position + 1 >= len(self._shown.tokens):
            return None
        return self._shown.tokens[self._position + 1]

    def entropies(self) -> dict[str, float]:
        """Entropy (nats) of each shown distribution at the shown position and temperature."""
        out = {}
        for name in ("teacher", "student", "truth"):
            probs = self._arrays.get(name)
            if probs is not None:
                out[name] = float(entropy(probs[self._position]))
        return out

    # -- reacting to the user ---------------------------------------------------------------------------------------------
    @Slot()
    def _prompt_entered(self) -> None:
        self.set_prompt(self.prompt_box.currentText())

    @Slot(int)
    def _prompt_chosen(self, index: int) -> None:
        self.set_prompt(self.prompt_box.itemText(index))

    @Slot()
    def _toggle_pin(self) -> None:
        prompt = self.prompt_box.currentText().strip()
        if prompt in self._pinned:
            self.unpin_prompt(prompt)
        else:
            self.pin_prompt(prompt)
        self._update_pin_button()

    @Slot(int)
    def _slider_moved(self, value: int) -> None:
        self._temperature = slider_to_temperature(value)
        self.temperature_label.setText(f"T = {self._temperature:.2f}")
        self._recompute()

    @Slot()
    def _reset_temperature(self) -> None:
        self.set_temperature(1.0)

    @Slot()
    def _use_run_temperature(self) -> None:
        if self._run_temperature is not None:
            self.set_temperature(self._run_temperature)

    @Slot()
    def generate(self) -> None:
        """Ask the worker for teacher and student continuations of the prompt in the box."""
        prompt = self.prompt_box.currentText().strip()
        if not self._predictor_ready or not prompt:
            return
        self._request += 1
        settings = {"max_new_tokens": self.max_tokens_box.value(), "temperature": self.gen_temperature_box.value(),
                    "top_p": self.top_p_box.value(), "seed": self.seed_box.value()}
        self._generation_prompt = prompt
        self.generate_button.setEnabled(False)
        self.status.setText("Generating …")
        self._generate_requested.emit(self._request, prompt, settings)

    # -- worker answers (queued into the GUI thread) ----------------------------------------------------------------------
    @Slot(str)
    def _on_loaded(self, run_dir: str) -> None:
        self._predictor_ready = True
        self.generate_button.setEnabled(True)
        self.status.setText(f"Models of {Path(run_dir).name} loaded: type any prompt and press Enter.")
        self.predictor_ready.emit(run_dir)
        prompt = self.prompt_box.currentText().strip()
        if prompt:
            self.set_prompt(prompt)

    @Slot(str, str)
    def _on_failed(self, message: str, hint: str) -> None:
        self.generate_button.setEnabled(self._predictor_ready)
        self.status.setText(f"{message}. {hint}" if hint else message)
        self.predictor_failed.emit(message)

    @Slot(int, object)
    def _on_probed(self, request: int, probe: ProbePrompt) -> None:
        if request != self._request:
            return  # the user asked something newer meanwhile
        self._cache[probe.prompt] = probe
        self._source[probe.prompt] = "run folder models"
        self.status.setText("")
        self._show(probe)

    @Slot(int, str, str)
    def _on_generated(self, request: int, teacher_text: str, student_text: str) -> None:
        self.generate_button.setEnabled(self._predictor_ready)
        if request != self._request:
            return
        muted = theme.colors()["muted"]
        for edit, text in ((self.teacher_text, teacher_text), (self.student_text, student_text)):
            # The prompt in grey, then what the model wrote.
            whole = continue_text(self._generation_prompt, text)
            edit.clear()
            edit.appendHtml(f"<span style='color:{muted}'>{html.escape(self._generation_prompt)}</span>"
                            f"{html.escape(whole[len(self._generation_prompt):])}")
        self.status.setText("")
        self.generation_shown.emit(teacher_text, student_text)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        self._thread = QThread(self)
        self._thread.setObjectName("soft-targets-predictor")
        self._worker = PredictorWorker(self._factory)
        self._worker.moveToThread(self._thread)
        self._thread.finished.connect(self._worker.deleteLater)
        self._load_requested.connect(self._worker.load)
        self._probe_requested.connect(self._worker.probe)
        self._generate_requested.connect(self._worker.generate)
        self._worker.loaded.connect(self._on_loaded)
        self._worker.failed.connect(self._on_failed)
        self._worker.probed.connect(self._on_probed)
        self._worker.generated.connect(self._on_generated)
        self._thread.start()

    # -- drawing --------------------------------------------------------------------------------------------------------
    def _show(self, probe: ProbePrompt, keep_position: bool = False) -> None:
        same_prompt = self._shown is not None and self._shown.prompt == probe.prompt
        self._shown = probe
        self._arrays = {
            "teacher_logits": np.asarray(probe.teacher_logits, np.float64),
            "student_logits": np.asarray(probe.student_logits, np.float64) if probe.student_logits else None,
            "truth": np.asarray(probe.true_probs, np.float64) if probe.true_probs else None,
        }
        self._token_index = {}
        for i, text in enumerate(probe.vocab_tokens):
            self._token_index.setdefault(text, i)
        if not (keep_position and same_prompt):
            self._position = len(probe.tokens) - 1
        self._position = min(self._position, len(probe.tokens) - 1)
        if self.prompt_box.currentText().strip() != probe.prompt:
            self.prompt_box.setEditText(probe.prompt)
        self._update_pin_button()
        self.strip.set_tokens(probe.tokens, self._position)
        self.empty_text.hide()
        self.bars.show()
        if self.status.text() in (NOT_PROBED, NO_MODELS):  # a prompt is on screen now: the note is out of date
            self.status.setText("")
        self._recompute()
        self.probe_shown.emit(probe.prompt)

    def _show_empty(self, message: str) -> None:
        self._shown = None
        self._arrays = {}
        self._heat = np.empty(0)
        self._shown_tokens = np.empty(0, int)
        self.strip.set_tokens([], 0)
        self.title.setText("")
        self.legend.setText("")
        self.empty_text.setText(message)
        self.empty_text.show()
        self.bars.hide()

    @Slot()
    def _recompute(self) -> None:
        """Re-soften every position at the current temperature, then refresh the heat strip and the bars."""
        if self._shown is None:
            return
        arrays = self._arrays
        arrays["teacher"] = soften(arrays["teacher_logits"], self._temperature)
        student = arrays["student_logits"]
        arrays["student"] = soften(student, self._temperature) if student is not None else None
        kind = DIVERGENCES[self.divergence_box.currentIndex()]
        if arrays["student"] is not None:
            self._heat = divergence(arrays["teacher"], arrays["student"], kind)
        else:
            self._heat = np.full(len(self._shown.tokens), np.nan)
        self._paint_heat(kind)
        self._refresh_bars()

    def _paint_heat(self, kind: str) -> None:
        caption = {"KL": "KL(teacher‖student)", "JS": "JS(teacher, student)", "TV": "TV(teacher, student)"}[kind]
        unit = "" if kind == "TV" else " nats"
        name = self.divergence_box.currentText()
        self.strip.paint(self._heat, f"← click a token to see what follows it\n← {caption} at each position",
                         lambda position, value: f"{name} after token {position + 1}: {value:.4f}{unit}")

    @Slot()
    def _refresh_bars(self) -> None:
        if self._shown is None:
            return
        p = self._position
        arrays = self._arrays
        dists = [("teacher", arrays["teacher"]), ("student", arrays["student"]), ("truth", arrays["truth"])]
        dists = [(name, values[p]) for name, values in dists if values is not None and len(values) > p]
        hard = self.hard_label()
        self._hard_index = self._token_index.get(hard) if hard is not None else None
        idx = top_tokens([values for _, values in dists], self.top_k_box.value(), self._hard_index)
        self._shown_tokens = idx
        hard_row = int(np.flatnonzero(idx == self._hard_index)[0]) if self._hard_index is not None else None
        self.bars.draw([(name, values[idx]) for name, values in dists],
                       [display_token(self._shown.vocab_tokens[i]) for i in idx], hard_row)
        self._update_texts(dists, hard)
        self.readout.setText("Hover a bar for exact probabilities.")

    @Slot(int)
    def show_readout_at(self, row: int) -> str:
        """Write the exact probabilities of the word on bar row ``row`` under the legend; returns the text."""
        if not 0 <= row < len(self._shown_tokens):
            return ""
        index = int(self._shown_tokens[row])
        parts = [f"“{display_token(self._shown.vocab_tokens[index])}”"]
        for name in ("teacher", "student", "truth"):
            values = self._arrays.get(name)
            if values is not None and len(values) > self._position:
                parts.append(f"{name} {values[self._position, index]:.3f}")
        text = "   ".join(parts)
        self.readout.setText(text)
        return text

    def _update_texts(self, dists, hard: str | None) -> None:
        tokens = self._shown.tokens
        context = join_tokens(tokens[:self._position + 1])
        context = ("…" + context[-40:]) if len(context) > 40 else context
        source = self._source.get(self._shown.prompt, "")
        self.title.setText(f"Next word after “{context.strip()}”  ·  position {self._position + 1} of {len(tokens)}"
                           + (f"  ·  {source}" if source else ""))
        colors = {"teacher": theme.TEACHER_COLOR, "student": theme.STUDENT_COLOR, "truth": theme.TRUTH_COLOR}
        names = {"teacher": "teacher", "student": "student", "truth": "true distribution"}
        parts = [f"<span style='color:{colors[n]}; font-size:{self._pt(1.4)}'>■</span> {names[n]} "
                 f"<span style='color:{theme.colors()['muted']}'>H = {entropy(v):.2f}</span>" for n, v in dists]
        if "student" not in dict(dists):
            parts.append(f"<i style='color:{theme.colors()['muted']}'>no student yet (teacher stage)</i>")
        if hard is not None:
            parts.append(f"<span style='color:{theme.HARD_LABEL_COLOR}; font-size:{self._pt(1.3)}'>★</span> next token in the "
                         f"prompt: <b>{display_token(hard)}</b>")
        self.legend.setText("&nbsp;&nbsp;&nbsp;".join(parts) + f"&nbsp;&nbsp;&nbsp;<span style='color:"
                            f"{theme.colors()['muted']}'>(entropies in nats)</span>")

    def _sync_prompt_list(self) -> None:
        text = self.prompt_box.currentText()
        self.prompt_box.blockSignals(True)
        self.prompt_box.clear()
        for prompt in self.pinned_prompts():
            self.prompt_box.addItem(prompt)
        self.prompt_box.setEditText(text)
        self.prompt_box.blockSignals(False)
        self._update_pin_button()

    def _update_pin_button(self) -> None:
        pinned = self.prompt_box.currentText().strip() in self._pinned
        self.pin_button.setText("★ Pinned" if pinned else "☆ Pin")

    # -- theme ----------------------------------------------------------------------------------------------------------------
    def apply_palette(self) -> None:
        """Follow the current theme (plot colours, chip style, heat strip)."""
        self.bars.apply_palette()
        self.strip.apply_style()
        if self._shown is not None:
            self._recompute()

    def apply_theme(self, name: str) -> None:
        """Hook the main window calls after switching theme (the palette change also reaches us)."""
        self.apply_palette()

    def _pt(self, scale: float) -> str:
        """A font size relative to the widget's font, so presentation mode (bigger app font) scales everything."""
        base = self.font().pointSizeF()
        return f"{(base if base > 0 else 10.0) * scale:.1f}pt"

    def _apply_fonts(self) -> None:
        # Under the application's style sheet a font set on the panel does not reach its parts by itself:
        # hand it to each (presentation mode enlarges the panel's font; the legend and notes stayed small).
        for child in self.findChildren(QWidget):
            if child is not self.title and not isinstance(child, ProbabilityBars):
                child.setFont(self.font())
        tick_font = QFont(self.font())
        tick_font.setPointSizeF(max(tick_font.pointSizeF(), 10.0) * 1.15)  # the words on the bars must read at a demo
        self.bars.set_tick_font(tick_font)
        title_font = QFont(self.font())
        title_font.setPointSizeF(max(title_font.pointSizeF(), 10.0) * 1.2)
        self.title.setFont(title_font)

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
        elif event.type() in (QEvent.Type.FontChange, QEvent.Type.ApplicationFontChange):
            self._apply_fonts()
            self.strip.apply_style()
            if self._shown is not None:
                self.strip.set_tokens(self._shown.tokens, self._position, force=True)  # chip sizes follow the new font
                self._recompute()
        super().changeEvent(event)
