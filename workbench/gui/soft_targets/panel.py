"""Soft targets: the teacher's and the student's next-word distributions, side by side.

For a prompt (from the run's Probe events, or typed and answered by the run's models in the background) the
panel shows, at a chosen position, the top-k next words as grouped horizontal bars on one token axis: teacher,
student and, on the built-in language, the exact true distribution; the known next token of the prompt is
starred. A temperature slider re-softens the cached logits with numpy (no forward pass), which is exactly what
the distillation loss does with T. A heat strip under the prompt's tokens shows the divergence at every position.

A replay row steps through the run's Probe events (live, or a finished run's read from its events.jsonl): a
slider over the probed steps, a play button and "Live" to follow the newest probe again after moving back
(:class:`~.replay.ReplayBar`). The bars and the strip show the selected step; generation needs model weights,
which exist only at the end of a run, so while an earlier step is shown the Generate tab says that its texts
come from the final models. The Student's text tab (:class:`~.student_text.StudentTextView`) shows the shown
probe's sampled student text, token by token under the teacher's eye, and the grammatical rate over the run;
its Sample button asks the run folder's student for a fresh continuation ("sample" channel).

The panel is the view of a :class:`~.state.SoftTargetsState`, which holds and computes everything shown. A
run folder's models (:class:`~.run_models.RunModels`) answer typed prompts and generate on one background
thread (:class:`~workbench.gui.background.jobs.Jobs`, channels "load", "probe" and "generate"; the latest
request on each wins).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.errors import ConfigError, one_line
from workbench.events import Probe
from workbench.gui.background.jobs import Jobs
from workbench.gui.help_button import help_button
from workbench.gui.soft_targets.generation import GenerationTab
from workbench.gui.soft_targets.next_word import DIVERGENCE_NAMES, NextWordView
from workbench.gui.soft_targets.replay import ReplayBar
from workbench.gui.soft_targets.run_models import RunModels
from workbench.gui.soft_targets.state import SLIDER_STEPS, SoftTargetsState, read_probes, temperature_to_slider
from workbench.gui.soft_targets.student_text import StudentTextView
from workbench.probabilities import DIVERGENCES

NOT_PROBED = "This prompt is not probed by the run; open a finished run (Runs tab) to ask about any prompt."
NO_MODELS = "No models yet: start a run (its probe prompts appear here) or open a finished run (Runs tab)."
LOAD_HINT = "Check that the run folder holds a finished or checkpointed run."
UNKNOWN_TOKENS = frozenset({"<unk>", "[UNK]", "<|unk|>"})
"""How tokenizers spell their unknown token (the built-in language's is ``<unk>``)."""
HISTORY_HINT = "Check that its events.jsonl is a readable file; its models still answer typed prompts."


def toy_language_produces(tokens: list[str]) -> bool:
    """Whether the built-in language can produce these prompt tokens from a sentence start (padding, start and
    end tokens are left out; an unknown word never is). Asked only of prompts that came with a truth."""
    from workbench.engine.toy.language import SPECIAL_TOKENS, get_language  # numpy only; built once

    skipped = set(SPECIAL_TOKENS) - {"<unk>"}
    words = [t.strip() for t in tokens if t.strip() and t.strip() not in skipped]
    return get_language().is_possible(words)


class SoftTargetsPanel(QWidget):
    """Teacher vs student (vs truth) next-word bars for a prompt, with temperature, divergence strip and generation."""

    probe_shown = Signal(str)  # a prompt's distributions are on screen (from a Probe event or the run's models)
    generation_shown = Signal(str, str)
    predictor_ready = Signal(str)
    predictor_failed = Signal(str)
    help_requested = Signal(str)  # a "?" asks for a help section (workbench.explain.SECTIONS)
    view_changed = Signal()  # the shown numbers changed: another position or temperature, or none shown

    def __init__(self, parent: QWidget | None = None, predictor_factory: Callable[[str], Any] | None = None):
        super().__init__(parent)
        self.state = SoftTargetsState(possible=toy_language_produces)
        self._models = RunModels(predictor_factory)
        self._jobs: Jobs | None = None  # started when a run folder is first opened
        self._predictor_ready = False
        self._live = False  # the probes come from the running run (not from a finished run's events.jsonl)
        self._build()
        self.apply_palette()
        self.next_word.show_empty(
            "Start a run (its probe prompts appear here) or open a run folder to ask about any prompt."
        )

    # -- layout ---------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.prompt_box = QComboBox(self)
        self.prompt_box.setEditable(True)
        self.prompt_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.prompt_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.prompt_box.lineEdit().setPlaceholderText("Type a prompt and press Enter")
        self.prompt_box.setToolTip(
            "A prompt: the bars show each model's next-token distribution after it "
            "(Enter asks a finished run's models; the list holds the run's probe prompts)"
        )
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
        self.top_k_box.valueChanged.connect(self._top_k_chosen)
        self.divergence_box = QComboBox(self)
        self.divergence_box.addItems([DIVERGENCE_NAMES[kind] for kind in DIVERGENCES])
        self.divergence_box.setToolTip("What the heat strip under the tokens measures at each position")
        self.divergence_box.currentIndexChanged.connect(self._divergence_chosen)
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
        row1.addWidget(help_button(self, "kl", self.help_requested.emit))

        self.temperature_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.temperature_slider.setRange(0, SLIDER_STEPS)
        self.temperature_slider.setValue(temperature_to_slider(1.0))
        self.temperature_slider.setToolTip(
            "Re-soften the teacher's and student's logits: softmax(logits / T). "
            "The true distribution does not change with T."
        )
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
        row2.addWidget(help_button(self, "temperature", self.help_requested.emit))
        row2.addWidget(reset)
        row2.addWidget(self.run_t_button)
        row2.addSpacing(12)
        row2.addWidget(self.status, 1)

        self.replay = ReplayBar(self)
        self.replay.step_chosen.connect(self.select_step)
        self.replay.live_requested.connect(self.follow_live)

        self.next_word = NextWordView(self.state, self)
        self.next_word.strip.position_clicked.connect(self.set_position)
        self.next_word.example_chosen.connect(self._example_chosen)
        self.next_word.legend_row.addWidget(help_button(self, "soft_targets", self.help_requested.emit))
        # The parts that the window and the tests look at.
        self.strip, self.bars, self.legend = self.next_word.strip, self.next_word.bars, self.next_word.legend
        self.title, self.readout = self.next_word.title, self.next_word.readout

        # Tabs rather than a splitter: the bars are what people look at, so they get the whole
        # height; the generation box is one click away.
        self.views = QTabWidget(self)
        self.views.setDocumentMode(True)
        self.views.addTab(self.next_word, "Next word")
        self.generation = GenerationTab(self)
        self.generation.generate_button.clicked.connect(self.generate)
        self.views.addTab(self.generation, "Generate")
        self.student_text = StudentTextView(self)
        self.student_text.sample_button.clicked.connect(self.sample_student_text)
        self.views.addTab(self.student_text, "Student's text")
        self._sample_seed = 0
        # Beside the tabs, so that the replay takes no height from the bars (the window's splitter keeps them short).
        self.views.setCornerWidget(self.replay, Qt.Corner.TopRightCorner)
        # The slider re-softens the Next word bars only; Generate samples at its own temperature.
        self._temperature_controls = (self.temperature_slider, self.temperature_label, reset, self.run_t_button)
        self.views.currentChanged.connect(self._temperature_for_view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addWidget(self.views, 1)
        self._apply_fonts()

    # -- public API -------------------------------------------------------------------------------------------------
    @Slot(object)
    def handle_event(self, event) -> None:
        """Take a Probe event: cache every prompt's logits and refresh the shown prompt (others are ignored)."""
        if not isinstance(event, Probe):
            return
        self.run_t_button.setText(f"run's T = {event.temperature:g}")
        self.run_t_button.show()
        self._live = True
        changed = self.state.take_probe(event)
        self._sync_prompt_list()
        if changed:
            self._show_state()
        self._update_replay()

    def handle_probes(self, probes: list) -> None:
        """Take several Probe events at once (a followed run's backlog): each joins the history, the newest is
        drawn once."""
        if not probes:
            return
        self.run_t_button.setText(f"run's T = {probes[-1].temperature:g}")
        self.run_t_button.show()
        self._live = True
        changed = False
        for probe in probes:
            changed = self.state.take_probe(probe) or changed
        self._sync_prompt_list()
        if changed:
            self._show_state()
        self._update_replay()

    def load_run_probes(self, path: str | Path) -> None:
        """Read the Probe events of the finished run at ``path`` (its events.jsonl, on the background thread)
        for the replay; they replace the probes shown now."""
        name = Path(path).name
        events_file = Path(path) / "events.jsonl"  # the work sees only the path, never the widget
        self._ensure_jobs()
        self._jobs.submit(
            "history",
            lambda job: read_probes(events_file) if events_file.is_file() else None,
            on_done=lambda probes: self._on_history(name, probes),
            on_error=lambda err: self.status.setText(
                f"Could not read the probes of {name}: {one_line(err)}. {HISTORY_HINT}"
            ),
        )

    def set_run_dir(self, path: str | Path | None) -> None:
        """Load ``path``'s teacher and student in the background (None unloads them)."""
        self._set_ready(False)
        self.student_text.forget_answer()
        if self._jobs is not None:
            for channel in ("probe", "generate", "sample"):  # answers of the models being replaced are not wanted now
                self._jobs.cancel(channel)
        if path is None:
            if self._jobs is not None:
                models = self._models
                self._jobs.submit("load", lambda job: models.unload())
            self.status.setText("")  # "Models of ... loaded" would be about the models just let go
            return
        self._ensure_jobs()
        run_dir, models = str(path), self._models  # the work touches only the models, never the widget
        self.status.setText(f"Loading the models of {Path(run_dir).name} …")
        self._jobs.submit(
            "load",
            lambda job: models.load(run_dir),
            on_done=self._on_loaded,
            on_error=lambda err: self._on_failed(f"Could not load the models of {Path(run_dir).name}", err),
        )

    def clear(self) -> None:
        """Forget the run's probes (pinned prompts typed by the user stay in the list)."""
        if self._jobs is not None:
            self._jobs.cancel("history")  # a finished run's probes still being read are not wanted now
        self.replay.stop()
        self.state.forget_probes()
        self._live = False
        self.run_t_button.hide()
        self._sync_prompt_list()
        self.next_word.show_empty("No probes yet.")
        self._update_replay()
        self.view_changed.emit()

    def shutdown(self) -> None:
        """Stop the replay and the background thread, and wait for it (call before the window closes)."""
        self.replay.stop()
        if self._jobs is not None:
            self._jobs.shutdown()  # the closed Jobs stays: nothing is started again after this

    def set_prompt(self, prompt: str) -> None:
        """Show ``prompt``: from the cache when a probe has it, else ask the run's models (if loaded)."""
        prompt = prompt.strip()
        if not prompt:
            return
        self.prompt_box.setEditText(prompt)
        if self.state.is_replayed(prompt) and self.state.is_cached(prompt):  # the replayed step's, not the final's
            self._show(prompt)
        elif self._predictor_ready:
            self.status.setText("Asking the teacher and the student …")
            models = self._models
            self._jobs.submit(
                "probe",
                lambda job: models.probe(prompt),
                on_done=self._on_probed,
                on_error=lambda err: self._on_failed("Could not compute the next-word distributions", err),
            )
            if self.state.is_cached(prompt):  # show the cached answer now; the fresh one replaces it
                self._show(prompt)
        elif self.state.is_cached(prompt):
            self._show(prompt)
        elif self.state.has_probes():
            self.status.setText(NOT_PROBED)
        else:
            self.status.setText(NO_MODELS)

    def set_temperature(self, temperature: float) -> None:
        """Re-soften the cached logits at ``temperature`` (clamped to 0.25..10); no forward pass."""
        self.state.set_temperature(temperature)
        self.temperature_slider.blockSignals(True)
        self.temperature_slider.setValue(self.state.slider_value())
        self.temperature_slider.blockSignals(False)
        self._temperature_changed()

    @Slot(int)
    def set_position(self, position: int) -> None:
        """Show the next-word distributions after token ``position`` of the shown prompt."""
        if self.state.shown is None:
            return
        self.state.set_position(position)
        self.next_word.select_position()
        self.view_changed.emit()

    # -- replay ---------------------------------------------------------------------------------------------------------
    def select_step(self, index: int) -> None:
        """Show the probe at ``index`` of the run's history (the last one follows the newest)."""
        if self.state.select_step(index):
            self._show_state()
        self._update_replay()

    @Slot()
    def follow_live(self) -> None:
        """Show the newest probe and follow new ones again."""
        self.replay.stop()
        self.select_step(len(self.state.history()) - 1)

    def _update_replay(self) -> None:
        """The replay row after the history or the shown step changed."""
        count, index = len(self.state.history()), self.state.shown_index()
        replaying = count > 0 and not self.state.is_following()
        self.replay.show_history(count, index, self.state.replay_label(), offer_live=self._live and replaying)
        step = self.state.history()[index] if index is not None else None
        self.generation.set_replayed_step(f"step {step.step:,} ({step.stage})" if replaying and step else None)
        self.student_text.show_probe(
            self.state.shown_samples(),
            f"step {step.step:,} ({step.stage})" if step else "",
            self.state.grammar_history(),
            index,
        )

    def pin_prompt(self, prompt: str) -> None:
        if self.state.pin(prompt):
            self._sync_prompt_list()

    def unpin_prompt(self, prompt: str) -> None:
        if self.state.unpin(prompt):
            self._sync_prompt_list()

    # -- reacting to the user ---------------------------------------------------------------------------------------------
    @Slot(str)
    def _example_chosen(self, prompt: str) -> None:
        self.set_prompt(prompt)

    @Slot()
    def _prompt_entered(self) -> None:
        self.set_prompt(self.prompt_box.currentText())

    @Slot(int)
    def _prompt_chosen(self, index: int) -> None:
        self.set_prompt(self.prompt_box.itemText(index))

    @Slot()
    def _toggle_pin(self) -> None:
        prompt = self.prompt_box.currentText().strip()
        if self.state.is_pinned(prompt):
            self.unpin_prompt(prompt)
        else:
            self.pin_prompt(prompt)
        self._update_pin_button()

    @Slot(int)
    def _slider_moved(self, value: int) -> None:
        self.state.set_slider_value(value)
        self._temperature_changed()

    @Slot()
    def _reset_temperature(self) -> None:
        self.set_temperature(1.0)

    @Slot()
    def _use_run_temperature(self) -> None:
        if self.state.run_temperature is not None:
            self.set_temperature(self.state.run_temperature)

    @Slot(int)
    def _top_k_chosen(self, k: int) -> None:
        self.state.top_k = k
        self.next_word.refresh_bars()

    @Slot(int)
    def _divergence_chosen(self, index: int) -> None:
        self.state.set_divergence(DIVERGENCES[index])
        self.next_word.redraw()

    @Slot()
    def generate(self) -> None:
        """Ask the run's models for teacher and student continuations of the prompt in the box."""
        prompt = self.prompt_box.currentText().strip()
        if not self._predictor_ready:
            return
        if not prompt:
            self.status.setText("Type a prompt first: the teacher and the student continue it.")
            return
        settings, models = self.generation.settings(), self._models
        self.generation.generate_button.setEnabled(False)
        self.status.setText("Generating …")
        self._jobs.submit(
            "generate",
            lambda job: models.generate(prompt, settings),
            on_done=lambda texts: self._on_generated(prompt, texts),
            on_error=lambda err: self._on_failed("Could not generate", err),
        )

    @Slot()
    def sample_student_text(self) -> None:
        """Ask the run's student for a fresh sampled continuation of the prompt in the box (a new seed each time),
        scored by the teacher; the Student's text tab shows it."""
        prompt = self.prompt_box.currentText().strip()
        if not self._predictor_ready:
            return
        if not prompt:
            self.status.setText("Type a prompt first: the student continues it.")
            return
        self._sample_seed += 1
        seed, models = self._sample_seed, self._models
        self.student_text.sample_button.setEnabled(False)
        self.status.setText("Sampling the student's text …")
        self._jobs.submit(
            "sample",
            lambda job: models.sample_text(prompt, seed),
            on_done=self._on_sampled,
            on_error=lambda err: self._on_failed("Could not sample the student's text", err),
        )

    # -- answers from the background thread (on the GUI thread; only the latest request's) -------------------------------
    def _on_loaded(self, run_dir: str) -> None:
        self._set_ready(True)
        self.status.setText(f"Models of {Path(run_dir).name} loaded: type any prompt and press Enter.")
        self.predictor_ready.emit(run_dir)
        prompt = self.prompt_box.currentText().strip()
        if prompt:
            self.set_prompt(prompt)

    def _on_failed(self, what: str, err: BaseException) -> None:
        if isinstance(err, ConfigError):
            message, hint = f"{what}: {err.what}", err.hint or LOAD_HINT
        else:
            message, hint = f"{what}: {one_line(err)}", LOAD_HINT
        hint = hint[:1].upper() + hint[1:]  # a sentence of its own after the message
        self.generation.generate_button.setEnabled(self._predictor_ready)
        self.student_text.sample_button.setEnabled(self._predictor_ready)
        self.status.setText(f"{message}. {hint}")
        self.predictor_failed.emit(message)

    def _on_history(self, name: str, probes) -> None:
        self.replay.stop()
        self._live = False
        if probes is None:
            self.status.setText(f"{name} has no events.jsonl, so there is nothing to replay; its models still answer.")
        elif not probes:
            self.status.setText(
                f"{name} recorded no probes, so there is nothing to replay. Set train.probe_interval to record them."
            )
        if self.state.load_history(probes or []):
            self.run_t_button.setText(f"run's T = {self.state.run_temperature:g}")
            self.run_t_button.show()
            self._sync_prompt_list()
            self._show_state()
        else:
            self.run_t_button.hide()
            self._sync_prompt_list()
            self.next_word.show_empty("No probes to replay in this run: type a prompt once its models are loaded.")
        self._update_replay()

    def _on_probed(self, probe) -> None:
        if probe is None:
            return  # the models were unloaded before the request ran
        if self.state.is_replayed(probe.prompt):
            return  # the run's probes of this prompt arrived meanwhile: the replay shows those
        self.state.take_answer(probe)
        unknown = sorted({t.strip() for t in probe.tokens if t.strip() in UNKNOWN_TOKENS})
        self.status.setText(
            f"Words the models do not know are read as their unknown token ({unknown[0]}): the bars show what the "
            "models predict after it, and no true distribution is shown."
            if unknown
            else ""
        )
        self._show_state()

    def _on_generated(self, prompt: str, texts: tuple[str, str] | None) -> None:
        self.generation.generate_button.setEnabled(self._predictor_ready)
        if texts is None:
            return
        self.generation.show_continuations(prompt, *texts)
        self.status.setText("")
        self.generation_shown.emit(*texts)

    def _on_sampled(self, sample) -> None:
        self.student_text.sample_button.setEnabled(self._predictor_ready)
        if sample is None:
            return
        self.student_text.show_answer(sample)
        self.status.setText("")

    def _ensure_jobs(self) -> None:
        if self._jobs is None:
            self._jobs = Jobs("soft-targets", self)

    def _temperature_for_view(self, index: int) -> None:
        on_bars = self.views.widget(index) is self.next_word
        for widget in self._temperature_controls:
            widget.setEnabled(on_bars)
        self.temperature_slider.setToolTip(
            "Re-soften the teacher's and student's logits: softmax(logits / T). "
            "The true distribution does not change with T."
            if on_bars
            else "This slider re-softens the Next word bars; Generate samples at its own temperature, below."
        )

    def _set_ready(self, ready: bool) -> None:
        self._predictor_ready = ready
        self.generation.generate_button.setEnabled(ready)
        self.student_text.sample_button.setEnabled(ready)

    # -- drawing --------------------------------------------------------------------------------------------------------
    def _show(self, prompt: str) -> None:
        self.state.show(prompt)
        self._show_state()

    def _show_state(self) -> None:
        """Draw the state's shown prompt from scratch: the prompt box, then the Next word tab."""
        prompt = self.state.shown_prompt()
        if self.prompt_box.currentText().strip() != prompt:
            self.prompt_box.setEditText(prompt)
        self._update_pin_button()
        if self.status.text() in (NOT_PROBED, NO_MODELS):  # a prompt is on screen now: the note is out of date
            self.status.setText("")
        self.next_word.show_prompt()
        self.probe_shown.emit(prompt)

    def _temperature_changed(self) -> None:
        self.temperature_label.setText(f"T = {self.state.temperature:.2f}")
        self.next_word.redraw()
        self.view_changed.emit()

    def _sync_prompt_list(self) -> None:
        text = self.prompt_box.currentText()
        self.prompt_box.blockSignals(True)
        self.prompt_box.clear()
        for prompt in self.state.listed_prompts():
            self.prompt_box.addItem(prompt)
        self.prompt_box.setEditText(text)
        self.prompt_box.blockSignals(False)
        self._update_pin_button()

    def _update_pin_button(self) -> None:
        pinned = self.state.is_pinned(self.prompt_box.currentText().strip())
        self.pin_button.setText("★ Pinned" if pinned else "☆ Pin")

    # -- theme ----------------------------------------------------------------------------------------------------------------
    def apply_palette(self) -> None:
        """Follow the current theme (plot colours, chip style, heat strip, the student's text)."""
        self.next_word.apply_palette()
        if hasattr(self, "student_text"):
            self.student_text.apply_palette()

    def apply_theme(self, name: str) -> None:
        """Hook the main window calls after switching theme (the palette change also reaches us)."""
        self.apply_palette()

    def _apply_fonts(self) -> None:
        # Under the application's style sheet a font set on the panel does not reach its parts by itself:
        # hand it to each (presentation mode enlarges the panel's font; the legend and notes stayed small).
        for child in self.findChildren(QWidget):
            if child is not self.next_word and not self.next_word.isAncestorOf(child):
                child.setFont(self.font())
        self.next_word.apply_fonts(self.font())

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
        elif event.type() in (QEvent.Type.FontChange, QEvent.Type.ApplicationFontChange):
            self._apply_fonts()
            self.strip.apply_style()
            if self.state.shown is not None:
                self.next_word.show_prompt(force_chips=True)  # chip sizes follow the new font
        super().changeEvent(event)
