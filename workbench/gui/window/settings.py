"""What the window remembers in QSettings (geometry, docks, the live split, theme, the last configuration,
whether the "What distillation bought" card opens after every run), a mixin of ``MainWindow``."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, Qt, Slot

from workbench.config.schema import RunConfig
from workbench.errors import ConfigError
from workbench.gui import theme

BOUGHT_AFTER_RUN_KEY = "runs/bought_after_every_run"


class SettingsMixin:
    """Saving and restoring ``MainWindow``'s layout and configuration."""

    def _restore_layout(self, settings: QSettings) -> None:
        """Geometry, dock state and the charts/soft-targets split as the last session left them."""
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        self.bought_after_run_action.setChecked(settings.value(BOUGHT_AFTER_RUN_KEY, False, type=bool))
        split = settings.value("window/live_splitter")
        if isinstance(split, QByteArray):
            self.live_splitter.restoreState(split)
            self.side_by_side_action.setChecked(self.live_splitter.orientation() == Qt.Orientation.Horizontal)

    @Slot(bool)
    def set_bought_after_run(self, on: bool) -> None:
        """Open the card after every completed run (on), or only when it has a baseline (off, the default);
        remembered at once."""
        self.bought_after_run_action.setChecked(bool(on))
        QSettings().setValue(BOUGHT_AFTER_RUN_KEY, bool(on))

    def _remembered_config(self, settings: QSettings) -> RunConfig | None:
        text = settings.value("config/last")
        base = settings.value("config/base")
        if isinstance(base, str) and base:
            self._base = base
        if not isinstance(text, str) or not text:
            return None
        try:
            return RunConfig.from_toml(text, source="the remembered configuration", validate=False)
        except ConfigError:
            return None  # an older or broken config: fall back to the default

    def _remember_config(self, cfg: RunConfig) -> None:
        settings = QSettings()
        settings.setValue("config/last", cfg.to_toml())
        settings.setValue("config/base", self._base)

    def save_settings(self) -> None:
        settings = QSettings()
        if self._presentation:
            self.set_presentation(False)
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("window/live_splitter", self.live_splitter.saveState())
        settings.setValue("theme", theme.current_theme())
        try:
            settings.setValue("config/last", self.config_panel.config().to_toml())
            settings.setValue("config/base", self._base)
        except ConfigError:
            pass
        settings.sync()
