"""Fixtures for the window tests: private QSettings, a tiny real run config, the real main window."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from workbench.config.presets import load_config
from workbench.config.schema import RunConfig

# toy-quick made tiny: a few steps with every event kind, so one run takes a few seconds on one core.
TINY_OVERRIDES = [
    "train.teacher_steps=6",
    "train.max_steps=8",
    "train.warmup_steps=2",
    "train.batch_size=8",
    "train.log_interval=1",
    "train.eval_interval=4",
    "train.eval_batches=1",
    "train.probe_interval=4",
    "train.checkpoint_interval=4",
    "data.toy_sentences=400",
]


def _tiny_config(runs_dir, **steps) -> RunConfig:
    """toy-quick with TINY_OVERRIDES, writing into ``runs_dir``; ``steps`` sets train fields (max_steps=40)."""
    cfg = load_config("toy-quick")
    cfg.apply_overrides(TINY_OVERRIDES + [f"train.{k}={v}" for k, v in steps.items()])
    cfg.runs_dir = str(runs_dir)
    return cfg


# The offscreen platform says this each time a top-level window is shown; it is not a problem of ours.
OFFSCREEN_NOISE = "This plugin does not support propagateSizeHints"


def pytest_collection_modifyitems(config, items):
    gui_dir = str(Path(__file__).parent)
    for item in items:
        if str(item.path).startswith(gui_dir):
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_NOISE))


@pytest.fixture(scope="session", autouse=True)
def collect_garbage_on_the_gui_thread(qapp):
    """As the application does (workbench.gui.gc_on_gui_thread): panels tested alone start threads too."""
    from workbench.gui.background.gc_on_gui_thread import install

    collector = install(qapp)
    yield collector
    collector.stop()


@pytest.fixture(autouse=True)
def private_settings(tmp_path_factory, monkeypatch, qapp):
    """QSettings in a temporary folder, so tests never read or write the user's settings."""
    from workbench.gui import app

    folder = tmp_path_factory.mktemp("qsettings")
    monkeypatch.setenv(app.SETTINGS_ENV, str(folder))
    app.configure_settings()
    yield folder
    QSettings().clear()


@pytest.fixture
def runs_dir(tmp_path):
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def tiny_config():
    """Factory: ``tiny_config(runs_dir, max_steps=30)`` is toy-quick made tiny, writing into ``runs_dir``."""
    return _tiny_config


@pytest.fixture
def make_window(qtbot):
    """Build real main windows; at teardown any run is stopped and its thread joined."""
    from workbench.gui.window.main_window import MainWindow

    windows = []

    def make(cfg: RunConfig | None = None, **kwargs):
        kwargs.setdefault("restore_settings", False)
        window = MainWindow(cfg, base="toy-quick", **kwargs)
        window.resize(1400, 900)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.controller.is_running():
            window.controller.shutdown()
        window.launcher.shutdown()
        window.close()
        window.deleteLater()


@pytest.fixture
def make_soft_targets_panel(qtbot):
    """Factory: ``make(predictor_factory)`` is a SoftTargetsPanel, 1000 x 800, shut down at teardown."""
    from workbench.gui.soft_targets.panel import SoftTargetsPanel

    created = []

    def make(factory=None):
        widget = SoftTargetsPanel(predictor_factory=factory)
        qtbot.addWidget(widget)
        widget.resize(1000, 800)
        created.append(widget)
        return widget

    yield make
    for widget in created:
        widget.shutdown()
