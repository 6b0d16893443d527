"""Configurations in and out of the form: presets, open/save dialogs (errors to the banner) and the equivalent
`workbench run` command, a mixin of ``MainWindow``; ``default_config`` is the form's first configuration."""

from __future__ import annotations

import shlex
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QLabel, QPlainTextEdit, QVBoxLayout

from workbench.config.presets import load_config, overrides_between
from workbench.config.schema import RunConfig
from workbench.errors import ConfigError


class ConfigFilesMixin:
    """Loading, saving and copying ``MainWindow``'s configuration (``_base`` is set in its ``__init__``)."""

    _base: str

    @Slot(QAction)
    def _on_preset_action(self, action: QAction) -> None:
        """A preset chosen in File > Load preset (the menu's ``triggered``: with PySide6 6.11 a slot inherited
        from a mixin gets no ``sender()`` once the window has a dynamic slot)."""
        name = action.data() if isinstance(action, QAction) else None
        if name:
            # A preset says what to train, not where this user keeps runs: the folder chosen in the form stays.
            self.load_config_from(name, runs_dir=self.config_panel.config().runs_dir)

    def load_config_from(self, name_or_path: str, runs_dir: str | None = None) -> bool:
        """Load a preset or TOML file into the form (``runs_dir``: keep this runs folder); errors go to the banner."""
        try:
            cfg = load_config(name_or_path, validate=False)  # values the run would refuse are marked at their fields
        except ConfigError as err:
            self.banner.show_message(f"Could not load {Path(name_or_path).name}: {err.what}.", err.hint)
            return False
        unshowable = _beyond_a_spin_box(cfg)
        if unshowable is not None:  # a spin box cannot hold it: refused before the form changes at all
            self.banner.show_message(f"Could not load {Path(name_or_path).name}: {unshowable.what}.", unshowable.hint)
            return False
        if runs_dir:
            cfg.runs_dir = runs_dir
        self.set_config(cfg, base=str(name_or_path))
        self.statusBar().showMessage(f"Loaded {name_or_path}", 6000)
        return True

    def save_config_to(self, path: str) -> None:
        self.config_panel.config().save(path)
        self.statusBar().showMessage(f"Saved {path}", 6000)

    @Slot()
    def open_config_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open configuration", "", "Configuration (*.toml);;All files (*)")
        if path:
            self.load_config_from(path)

    @Slot()
    def save_config_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save configuration", f"{self.config().name}.toml", "Configuration (*.toml)"
        )
        if path:
            if not path.endswith(".toml"):
                path += ".toml"
            self.save_config_to(path)

    def command_line(self) -> str:
        """The `workbench run` command that repeats the form's configuration (under torchrun when it trains
        with several processes)."""
        try:
            base_cfg = load_config(self._base)
            base = self._base
        except ConfigError:
            base_cfg, base = load_config("toy"), "toy"
        cfg = self.config_panel.config()
        parts = ["workbench", "run", shlex.quote(base)]
        for item in overrides_between(base_cfg, cfg):
            parts += ["--set", shlex.quote(item)]
        if cfg.train.processes > 1:
            # what Start launches: torchrun's processes write to one run folder, named up front
            folder = Path(cfg.runs_dir) / f"{cfg.name}-{cfg.train.processes}p"
            launcher = ["torchrun", "--standalone", "--nproc_per_node", str(cfg.train.processes), "-m", "workbench.cli"]
            return " ".join([*launcher, *parts[1:], "--run-dir", shlex.quote(str(folder))])
        return " ".join(parts)

    @Slot()
    def copy_command(self) -> str:
        command = self.command_line()
        QGuiApplication.clipboard().setText(command)
        dialog = QDialog(self)
        dialog.setWindowTitle("Equivalent command")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        text = QPlainTextEdit(command, dialog)
        text.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
        buttons.rejected.connect(dialog.close)
        layout = QVBoxLayout(dialog)
        layout.addWidget(QLabel("Copied to the clipboard:", dialog))
        layout.addWidget(text)
        layout.addWidget(buttons)
        dialog.resize(640, 180)
        dialog.show()  # non-modal: the window stays usable
        self.command_dialog = dialog
        return command


def default_config() -> RunConfig:
    """The ``toy`` preset, or the built-in defaults if the preset is missing."""
    try:
        return load_config("toy")
    except ConfigError:
        return RunConfig()


INT_FIELD_LIMIT = 2**31 - 1
"""The largest magnitude a Qt spin box (a 32-bit int) holds."""


def _beyond_a_spin_box(cfg) -> ConfigError | None:
    """The error of the first integer field whose value no spin box can show (the form would be left half-filled);
    its range check names the field and the allowed range."""
    for error in cfg.errors():
        try:
            value = cfg.get(error.field) if error.field else None
        except (AttributeError, KeyError, ValueError, ConfigError):
            continue
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT_FIELD_LIMIT:
            return error
    return None
