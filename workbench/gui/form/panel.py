"""The configuration form, generated from the ``RunConfig`` dataclasses.

One source of truth: every field of ``workbench.config`` becomes an editor
(see :mod:`workbench.gui.form.fields`), its ``help`` becomes the tooltip, and
validation is ``RunConfig.errors()`` itself, marked at the field it names, plus
what the background plan found (``set_plan_errors``: a student whose tokenizer
differs, a sequence longer than the teacher's positions), marked the same way.
The panel keeps a ``RunConfig`` as its model and writes only what the user edits
into it, so ``set_config(cfg)`` followed by ``config()`` gives back ``cfg``
exactly, whatever the widgets' display precision.

The parts it is made of live beside it: the collapsible groups (:mod:`.sections`), the rules for which
field matters when (:mod:`.visibility`), the data preview (:mod:`.data_preview`) and the SmolLM2 fetch
row (:mod:`.fetch_button`).

Signals: ``config_changed(RunConfig)`` about 150 ms after the last edit, and
``validity_changed(valid, first_reason)`` as soon as validity or the first
reason changes (it drives the Start button).
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

from PySide6.QtCore import QCoreApplication, QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QComboBox, QFormLayout, QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from workbench.config.schema import ArchConfig, RunConfig
from workbench.errors import ConfigError
from workbench.gui import theme
from workbench.gui.form.data_preview import DataPreviewBox
from workbench.gui.form.fetch_button import FetchRow
from workbench.gui.form.fields import (
    FieldEditor,
    TextEditor,
    field_label,
    make_editor,
    warning_label,
)
from workbench.gui.form.sections import NESTED_INDENT, Section
from workbench.gui.form.visibility import PATH_LABELS, field_visible, path_browse, path_label, path_placeholder

# Top-level sections in form order: (title, dataclass attribute or None for the run's own fields).
SECTIONS = (
    ("Run", None),
    ("Teacher", "teacher"),
    ("Student", "student"),
    ("Distillation", "distill"),
    ("Training", "train"),
    ("Data", "data"),
)

# Rarely changed settings, in a collapsed "More" group inside their section.
ADVANCED = {
    "train.min_lr_ratio",
    "train.weight_decay",
    "train.grad_clip",
    "train.log_interval",
    "train.eval_batches",
    "train.checkpoint_interval",
}

LABEL_WIDTH = 128

# Shapes offered by the student preset combo: (layers, hidden, heads).
STUDENT_PRESETS = {"tiny": (2, 64, 2), "small": (4, 128, 4), "medium": (6, 256, 8)}

# The reason Start gives while a field that the last plan objected to has changed and is not checked again yet.
RECHECKING = "checking the changed value against the models\u2026"


def _assign(cfg: RunConfig, dotted: str, value: Any) -> None:
    obj: Any = cfg
    *parents, name = dotted.split(".")
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, name, value)


class ConfigPanel(QWidget):
    """The form for a :class:`RunConfig`, with validation at each field and a data preview."""

    config_changed = Signal(object)
    validity_changed = Signal(bool, str)

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
        self.banner.setStyleSheet(
            f"#configBanner {{ color: {theme.ERROR_COLOR}; border: 1px solid {theme.ERROR_COLOR};"
            " border-radius: 6px; padding: 6px 8px; }"
        )
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
        content.installEventFilter(self)  # its minimum width changed (fonts, fields shown): follow it
        self._fit_width_to_form()
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
        held = [
            e
            for e in self._plan_errors
            if e.field not in self._editors or self._cfg.get(e.field) == plan_cfg.get(e.field)
        ]
        if not held:
            held.append(ConfigError("", RECHECKING, ""))
        return held

    def editor(self, dotted: str) -> FieldEditor:
        """The editor of a dotted field (for tests and for focusing a field named in an error)."""
        return self._editors[dotted]

    @Slot()
    def shutdown(self) -> None:
        """Stop timers and background threads; call before the window goes away."""
        if self._shut_down:
            return
        self._shut_down = True
        self._changed_timer.stop()
        self.preview.shutdown()
        self.fetch_row.shutdown()

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
            self.fetch_row = FetchRow(section.body)
            self.fetch_row.fetched.connect(self._on_fetched)
            section.form.addRow("", self.fetch_row)
        elif dotted == "teacher.trust_remote_code":
            self.trust_warning = warning_label(
                "Runs Python code from the model's repository on this machine. Tick it only for models you trust.",
                section.body,
            )
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

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.LayoutRequest and watched is self.scroll.widget():
            self._fit_width_to_form()
        return super().eventFilter(watched, event)

    def _fit_width_to_form(self) -> None:
        """The panel is never narrower than its form: the form does not scroll sideways, so a narrower dock
        (restored from an earlier session, or dragged) cut the right end off every field."""
        content = self.scroll.widget()
        bar = self.scroll.verticalScrollBar().sizeHint().width()
        self.scroll.setMinimumWidth(content.minimumSizeHint().width() + bar + 2 * self.scroll.frameWidth())

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
            " QFrame#section QToolButton { border: none; background: transparent; padding: 2px 0px; }"
        )

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
        if dotted.startswith(("data.", "teacher.source", "teacher.path", "teacher.revision")) or dotted in (
            "train.seq_len",
            "train.seed",
        ):
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
        match = next(
            (n for n, s in STUDENT_PRESETS.items() if s == shape and not arch.kv_heads and not arch.intermediate), None
        )
        self.student_preset.setCurrentIndex(max(0, self.student_preset.findData(match)) if match else 0)

    # -- visibility ---------------------------------------------------------------
    def _update_visibility(self) -> None:
        cfg = self._cfg
        for dotted, editor in self._editors.items():
            self._forms[dotted].setRowVisible(editor, field_visible(dotted, cfg))
        for group in ("teacher.arch", "student.arch"):
            self._sections[group].setVisible(field_visible(group, cfg))
        for dotted in PATH_LABELS:
            editor = self._editors[dotted]
            assert isinstance(editor, TextEditor)
            label = path_label(dotted, cfg)
            if label is not None:  # else the field is hidden and keeps the last source's words
                self._labels[dotted].setText(label)
                editor.input.setPlaceholderText(path_placeholder(dotted, cfg))
            editor.set_browse(*path_browse(dotted, cfg))
        self._forms["teacher.path"].setRowVisible(self.fetch_row, cfg.teacher.source == "gguf")
        self._forms["teacher.trust_remote_code"].setRowVisible(
            self.trust_warning, field_visible("teacher.trust_remote_code", cfg) and cfg.teacher.trust_remote_code
        )
        # a list of layers overrides the count; grey the count out so that is visible
        self._editors["student.keep_layers"].setEnabled(not cfg.student.layer_ids)
        self._editors["student.keep"].setEnabled(not cfg.student.layer_ids)

    # -- validation ---------------------------------------------------------------
    def error_line(self, err: ConfigError) -> str:
        """An error as the form's user reads it: the field by the name the form shows (its section's title and
        its label), then its key in config files and on the command line, then the message and the hint:
        ``Training › Batch size (train.batch_size): 0 is below the minimum 1 (use 1 or more)``."""
        chain = self._section_of.get(err.field)
        if not chain:
            return str(err)
        where = f"{chain[0].header.text()} \u203a {field_label(err.field)} ({err.field})"
        return f"{where}: {err.message}" + (f" ({err.hint})" if err.hint else "")

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
                    unseen.append(self.error_line(next(e for e in errors if e.field == dotted)))
        # the summary card under the form lists the plan's sentences that name no field
        unseen += [str(e) for e in errors if e.field not in self._editors and not any(e is p for p in plan_errors)]
        self.banner.setText("\n".join(unseen[:4]))
        self.banner.setVisible(bool(unseen))
        validity = (not errors, self.error_line(errors[0]) if errors else "")
        if force or validity != self._last_validity:
            self._last_validity = validity
            self.validity_changed.emit(*validity)

    # -- SmolLM2 fetch ------------------------------------------------------------
    @Slot(str)
    def _on_fetched(self, path: str) -> None:
        self._editors["teacher.path"].set_value(path)
        self._on_edited("teacher.path", path)
