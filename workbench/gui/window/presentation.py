"""The window's look: theme switching, font scale, presentation mode and the charts/soft-targets split,
a mixin of ``MainWindow``."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QApplication

from workbench.gui import theme

PRESENTATION_FONT_SCALE = 1.35


class PresentationMixin:
    """Theme, fonts and presentation mode of ``MainWindow`` (``_presentation`` is set in its ``__init__``)."""

    _presentation: bool
    _pre_presentation: dict[str, Any]

    @Slot()
    def toggle_theme(self) -> None:
        self.set_theme("dark" if theme.current_theme() == "light" else "light")

    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        scale = PRESENTATION_FONT_SCALE if self._presentation else 1.0
        theme.apply_theme(app, name, scale)
        self._scale_fonts(scale)
        self.theme_action.setChecked(name == "light")
        for widget in (self.charts, self.soft_targets, self.summary_card, self.arch_view):
            restyle = getattr(widget, "apply_theme", None)  # optional hook of G1/G2 widgets
            if callable(restyle):
                restyle(name)

    def _scale_fonts(self, scale: float) -> None:
        """The panels' fonts at ``scale`` times the application's base size.

        Existing widgets keep their font when only the application's changes (the style sheet stops that
        propagation), so presentation mode hands the font to each panel; the panels pass it on to their parts.
        """
        base = QApplication.instance().property("_wb_base_point_size") or 10.0
        for widget in (
            self.charts,
            self.soft_targets,
            self.config_panel,
            self.summary_card,
            self.arch_view,
            self.runs_panel,
            self.progress,
            self.log_view,
            self.help_panel,
            *self.runs_panel.windows(),  # the sweep grid and the card, when open: what a demo shows next
        ):
            font = widget.font()
            if abs(font.pointSizeF() - base * scale) > 1e-3:
                font.setPointSizeF(base * scale)
                widget.setFont(font)

    @Slot()
    def toggle_side_by_side(self) -> None:
        self.set_side_by_side(self.live_splitter.orientation() == Qt.Orientation.Vertical)

    def set_side_by_side(self, on: bool) -> None:
        """Soft targets beside the charts (on) or below them (off)."""
        self.live_splitter.setOrientation(Qt.Orientation.Horizontal if on else Qt.Orientation.Vertical)
        self.side_by_side_action.setChecked(on)

    @Slot()
    def toggle_presentation(self) -> None:
        self.set_presentation(not self._presentation)

    def set_presentation(self, on: bool, fullscreen: bool = True) -> None:
        """Presentation mode: large fonts, configuration and bottom panels hidden, charts large."""
        if on == self._presentation:
            return
        self._presentation = on
        self.presentation_action.setChecked(on)
        self.space_pause_action.setEnabled(on)
        docks = (self.config_dock,)
        if on:
            self._pre_presentation = {
                "docks": [d.isVisible() for d in docks],
                "state": self.windowState(),
                "tab": self.tabs.currentIndex(),
                "split": self.live_splitter.sizes(),
            }
            for dock in docks:
                dock.hide()
            self.tabs.setCurrentIndex(0)
            self.tabs.tabBar().hide()
            if fullscreen:
                self.showFullScreen()
            # The bars are what an audience reads, and the larger font needs taller rows: give them more height.
            total = sum(self.live_splitter.sizes())
            self.live_splitter.setSizes([int(total * 0.45), total - int(total * 0.45)])
        else:
            for dock, visible in zip(docks, self._pre_presentation.get("docks", [True])):
                dock.setVisible(visible)
            if self._pre_presentation.get("split"):
                self.live_splitter.setSizes(self._pre_presentation["split"])
            self.tabs.tabBar().show()
            self.tabs.setCurrentIndex(self._pre_presentation.get("tab", 0))
            if self.isFullScreen():
                self.setWindowState(self._pre_presentation.get("state", Qt.WindowState.WindowNoState))
        self.set_theme(theme.current_theme())
