"""The help panel of ``MainWindow`` ("What am I looking at?", F1 and the Help menu) and the "?" buttons that
open it at a section: beside the soft-targets bars, the temperature slider and the strip's divergence (the
panel's own), and beside the form's temperature, divergence and T² switch (added here). A mixin of ``MainWindow``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer

from workbench.errors import ConfigError
from workbench.explain import Settings
from workbench.gui.help_button import help_button
from workbench.gui.help_panel import HelpPanel, moment_of, settings_of

HELP_WIDTH = 460  # px of the dock when it first opens
FORM_HELP = (("distill.temperature", "temperature"), ("distill.divergence", "kl"), ("distill.t_squared", "t_squared"))


class HelpMixin:
    """Builds the help dock and its action; the soft-targets panel and the form tell it when to refresh."""

    def _build_help(self) -> None:
        state = self.soft_targets.state
        self.help_panel = HelpPanel(lambda: moment_of(state), self._help_settings, state.title, self)
        self.help_dock = self._dock(
            "What am I looking at?", "help_dock", self.help_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.help_dock.hide()
        self.help_action = self._action(
            "&What am I looking at?",
            self.show_help,
            ("F1",),
            "Explain the soft targets, T, T² and forward vs reverse KL with the numbers on screen",
        )
        self.menuBar().addMenu("&Help").addAction(self.help_action)
        self.soft_targets.help_requested.connect(self.show_help_section)
        self.soft_targets.view_changed.connect(self.help_panel.refresh)
        self.soft_targets.probe_shown.connect(self._refresh_help)
        self.config_panel.config_changed.connect(self._refresh_help)
        for dotted, section in FORM_HELP:
            editor = self.config_panel.editor(dotted)
            editor.row.addWidget(help_button(editor, section, self.show_help_section))

    def show_help(self, *_: object) -> None:
        """Open the help panel (the F1 action; triggered(bool)'s flag is ignored)."""
        first = not self.help_dock.isVisible()
        self.help_dock.show()
        self.help_dock.raise_()
        if first and not self.help_dock.isFloating():
            self.resizeDocks([self.help_dock], [HELP_WIDTH], Qt.Orientation.Horizontal)
            QTimer.singleShot(0, self._widen_help)  # a dock shown for the first time takes its width only then
        self.help_panel.refresh()

    def _widen_help(self) -> None:
        if self.help_dock.isVisible() and not self.help_dock.isFloating() and self.help_dock.width() < HELP_WIDTH:
            self.resizeDocks([self.help_dock], [HELP_WIDTH], Qt.Orientation.Horizontal)

    def show_help_section(self, section: str) -> None:
        """Open the help panel at ``section`` (one of ``workbench.explain.SECTIONS``): what a "?" does."""
        self.show_help()
        self.help_panel.show_section(section)

    def _refresh_help(self, *_: object) -> None:
        self.help_panel.refresh()

    def _help_settings(self) -> Settings:
        try:
            return settings_of(self.config_panel.config())
        except ConfigError:  # a form mid-edit: the explanations fall back to the defaults
            return Settings()
