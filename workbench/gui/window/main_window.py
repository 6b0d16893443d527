"""The workbench window: configuration on the left, live charts and soft targets in the centre,
runs and log at the bottom, run controls on top.

The window owns no training logic: ``RunController`` runs the engine in a
background thread and the window routes each event to the widget that shows it.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from workbench.config.presets import load_config, overrides_between
from workbench.config.schema import RunConfig
from workbench.errors import ConfigError
from workbench.events import Failed, Finished
from workbench.gui import theme
from workbench.gui.background.gc_on_gui_thread import install
from workbench.gui.background.run_thread import (
    PAUSED,
    RUNNING,
    STOPPING,
    PlanService,
    RunController,
)
from workbench.gui.charts.panel import ChartsPanel
from workbench.gui.form.architecture_view import ArchitectureView
from workbench.gui.form.panel import ConfigPanel
from workbench.gui.form.summary_card import SummaryCard
from workbench.gui.runs.runs_panel import RunsPanel
from workbench.gui.soft_targets.panel import SoftTargetsPanel
from workbench.gui.window.run_bar import STAGE_TITLES, MessageBanner, RunProgress
from workbench.run_folder import can_resume, run_events

PRESENTATION_FONT_SCALE = 1.35
REASON_WIDTH = 560  # px of the toolbar's "why Start is disabled" line; the whole reason is its tooltip
BASELINE_TIP = ("Train the form's configuration with alpha = 0 (hard labels only); when the run selected in the "
                "Runs tab ran this configuration, its teacher is reused and the two runs are overlaid")
LOG_LINES = 5000
STOPPING_MESSAGE = "Stopping after this step..."


class MainWindow(QMainWindow):
    """The application window. ``run_fn`` replaces ``engine.train.run`` (tests only)."""

    run_started = Signal()

    def __init__(self, config: RunConfig | None = None, *, base: str = "toy", run_fn: Any = None,
                 restore_settings: bool = True):
        super().__init__()
        self.setWindowTitle("Distillation Workbench")
        self._base = base  # preset name or file the form started from ("copy command" diffs against it)
        self._presentation = False
        self._pre_presentation: dict[str, Any] = {}
        self._close_when_idle = False
        self._event_cache: dict[str, tuple[float, list]] = {}
        self._valid = True
        self._reason = ""
        self._plan_cfg: RunConfig | None = None  # the configuration of the newest plan request
        self.first_point_time: float | None = None  # for scripts/bench_gui.py

        install()  # cycles are collected here, never on the training thread (see the module)
        self.controller = RunController(self, run_fn=run_fn)
        self.controller.event.connect(self._on_run_event)
        self.controller.state_changed.connect(self._on_state_changed)
        self.controller.finished.connect(self._on_run_finished)
        self.planner = PlanService(self)
        self.planner.planned.connect(self._on_planned)
        # Import torch/transformers/the engine on the planning thread while the window builds:
        # about 3 s on a laptop CPU that would otherwise come between Start and the first point.
        self.planner.warm_up()

        self._build_widgets()
        self._build_actions()
        self._build_layout()

        self.config_panel.config_changed.connect(self._on_config_changed)
        self.config_panel.validity_changed.connect(self._on_validity_changed)
        self.runs_panel.overlays_changed.connect(self._on_overlays_changed)
        self.runs_panel.open_config_requested.connect(self._on_open_run_config)
        self.runs_panel.resume_requested.connect(self.resume_run)
        self.runs_panel.baseline_requested.connect(self.start_baseline)
        self.runs_panel.soft_targets_requested.connect(self._on_soft_targets_requested)

        settings = QSettings()
        if restore_settings:
            geometry = settings.value("window/geometry")
            if isinstance(geometry, QByteArray):
                self.restoreGeometry(geometry)
            state = settings.value("window/state")
            if isinstance(state, QByteArray):
                self.restoreState(state)
            split = settings.value("window/live_splitter")
            if isinstance(split, QByteArray):
                self.live_splitter.restoreState(split)
                self.side_by_side_action.setChecked(self.live_splitter.orientation() == Qt.Orientation.Horizontal)
        if config is None:
            config = self._remembered_config(settings) if restore_settings else None
        self.set_config(config if config is not None else default_config())
        self._update_actions()

    # -- construction ----------------------------------------------------------
    def _build_widgets(self) -> None:
        self.config_panel = ConfigPanel(self)
        self.summary_card = SummaryCard(self)
        self.arch_view = ArchitectureView(self)
        self.charts = ChartsPanel(self)
        self.soft_targets = SoftTargetsPanel(self)
        self.runs_panel = RunsPanel(self)
        self.banner = MessageBanner(self)
        self.progress = RunProgress(self)
        self.reason_label = QLabel(self)
        self.reason_label.setStyleSheet(f"color: {theme.ERROR_COLOR};")
        self.reason_label.setWordWrap(False)
        self.log_view = QPlainTextEdit(self)
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(LOG_LINES)
        self.log_view.setPlaceholderText("Messages from the run appear here.")

    def _action(self, text: str, slot: Any, shortcuts: tuple[str, ...] = (), tip: str = "",
                checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        keys = QKeySequence(shortcuts[0]).toString(QKeySequence.SequenceFormat.NativeText) if shortcuts else ""
        tip = tip or text.replace("&", "")
        action.setToolTip(f"{tip} ({keys})" if keys else tip)
        action.setStatusTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work even when menus and toolbars are hidden
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.start_action = a("&Start", self.start_run, ("Ctrl+R",), "Start a run with the configuration in the form")
        self.pause_action = a("&Pause", self.toggle_pause, ("Ctrl+P",), "Pause or resume the run between steps")
        self.stop_action = a("S&top", self.stop_run, ("Ctrl+.",), "Stop after this step and keep a resumable checkpoint")
        self.cancel_action = a("&Cancel", self.cancel_run, ("Ctrl+Shift+.", "Ctrl+>"), "Stop at once without a final checkpoint")
        self.baseline_action = a("&Baseline", self.start_baseline_of_form, ("Ctrl+B",), BASELINE_TIP)
        self.open_action = a("&Open config...", self.open_config_dialog, ("Ctrl+O",), "Load a configuration file (.toml)")
        self.save_action = a("&Save config as...", self.save_config_dialog, ("Ctrl+S",), "Save the form as a .toml file")
        self.copy_command_action = a("Copy &command", self.copy_command, ("Ctrl+Shift+C",),
                                     "Copy the equivalent `workbench run` command line")
        self.quit_action = a("&Quit", self.close, ("Ctrl+Q",), "Close the window (a running run is stopped with a checkpoint)")
        self.presentation_action = a("&Presentation mode", self.toggle_presentation, ("F11", "Ctrl+Shift+P"),
                                     "Large fonts, configuration hidden, charts and soft targets large", checkable=True)
        self.theme_action = a("&Light theme", self.toggle_theme, ("Ctrl+Shift+L",), "Switch between the dark and light themes",
                              checkable=True)
        # Space pauses only in presentation mode, where no text field needs it.
        self.space_pause_action = a("Pause (space)", self.toggle_pause, ("Space",), "Pause or resume")
        self.space_pause_action.setEnabled(False)

        menu = self.menuBar().addMenu("&File")
        for action in (self.open_action, self.save_action, self.copy_command_action):
            menu.addAction(action)
        presets = menu.addMenu("Load &preset")
        from workbench.config.presets import preset_description, preset_names

        for name in preset_names():
            action = QAction(name, self)
            action.setStatusTip(preset_description(name))
            action.setData(name)
            action.triggered.connect(self._on_preset_action)
            presets.addAction(action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        menu = self.menuBar().addMenu("&Run")
        for action in (self.start_action, self.pause_action, self.stop_action, self.cancel_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.baseline_action)
        self.view_menu = self.menuBar().addMenu("&View")
        self.view_menu.addAction(self.presentation_action)
        self.view_menu.addAction(self.theme_action)
        self.side_by_side_action = a("Charts and soft targets &side by side", self.toggle_side_by_side,
                                     ("Ctrl+Shift+S",), "Put the soft targets beside the charts (wide screens) "
                                     "instead of below them", checkable=True)
        self.view_menu.addAction(self.side_by_side_action)
        self.view_menu.addSeparator()

        bar = QToolBar("Run controls", self)
        bar.setObjectName("run_toolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for action in (self.start_action, self.pause_action, self.stop_action, self.cancel_action):
            bar.addAction(action)
        bar.addSeparator()
        bar.addAction(self.baseline_action)
        bar.addSeparator()
        holder = QWidget(bar)
        row = QVBoxLayout(holder)
        row.setContentsMargins(8, 2, 8, 2)
        row.setSpacing(0)
        row.addWidget(self.progress)
        bar.addWidget(holder)
        # a toolbar shows and hides its widgets through their actions (QWidget.setVisible does not hold there)
        self.reason_action = bar.addWidget(self.reason_label)
        start_button = bar.widgetForAction(self.start_action)
        if start_button is not None:
            start_button.setObjectName("primary")
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.run_toolbar = bar

    def _build_layout(self) -> None:
        # Stacked by default: the charts and the soft targets side by side need ~2000 px.
        self.live_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.live_splitter.setObjectName("live_splitter")
        self.live_splitter.addWidget(self.charts)
        self.live_splitter.addWidget(self.soft_targets)
        self.live_splitter.setStretchFactor(0, 5)
        self.live_splitter.setStretchFactor(1, 4)
        self.live_splitter.setChildrenCollapsible(False)
        self.live_splitter.setSizes([500, 500])

        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.live_splitter, "Live")
        self.tabs.addTab(self.runs_panel, "Runs")
        self.tabs.addTab(self.arch_view, "Architecture")
        self.tabs.addTab(self.log_view, "Log")
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.setSpacing(6)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        left = QSplitter(Qt.Orientation.Vertical, self)
        left.addWidget(self.config_panel)
        left.addWidget(self.summary_card)
        left.setStretchFactor(0, 1)
        left.setStretchFactor(1, 0)
        left.setChildrenCollapsible(False)
        left.setSizes([700, 230])
        self.config_dock = self._dock("Configuration", "config_dock", left, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.resize(1600, 1000)
        self.resizeDocks([self.config_dock], [400], Qt.Orientation.Horizontal)
        self.statusBar().showMessage("Ready")

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    # -- configuration ----------------------------------------------------------
    def set_config(self, cfg: RunConfig, base: str | None = None) -> None:
        """Put ``cfg`` into the form; ``base`` names the preset/file "copy command" starts from."""
        if base is not None:
            self._base = base
        self.config_panel.set_config(cfg)
        self.runs_panel.set_runs_dir(cfg.runs_dir)
        self._request_plan(cfg)

    def config(self) -> RunConfig:
        """The configuration in the form."""
        return self.config_panel.config()

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

    @Slot(object)
    def _on_config_changed(self, cfg: RunConfig) -> None:
        self.runs_panel.set_runs_dir(cfg.runs_dir)
        self._request_plan(cfg)

    def _request_plan(self, cfg: RunConfig) -> None:
        if not self.controller.is_running():  # a running run's charts follow that run, not the form
            self.charts.set_truth_expected(cfg.data.source == "toy")
        # The planner answers only its newest request, so the plan that arrives next is this configuration's.
        self._plan_cfg = cfg.copy()
        self.planner.request(cfg)

    @Slot(bool, str)
    def _on_validity_changed(self, valid: bool, reason: str) -> None:
        self._valid, self._reason = valid, reason
        self._update_actions()

    @Slot(object)
    def _on_planned(self, plan: object) -> None:
        cfg = self._plan_cfg
        if isinstance(plan, Exception):
            self.statusBar().showMessage(f"Could not estimate the models: {plan}", 8000)
            if cfg is not None:
                self.config_panel.set_plan_errors(cfg, [])  # nothing known against it: the run itself checks
            return
        self.summary_card.update_plan(plan)
        self.arch_view.update_plan(plan)
        if cfg is not None:
            # Marked at the field its "field: ..." prefix names, and the form turns invalid (validity_changed),
            # which disables Start and the baseline with the reason; the panel drops them once the form moves on.
            self.config_panel.set_plan_errors(cfg, list(getattr(plan, "errors", []) or []))

    def start_reason(self) -> str:
        """Why Start is disabled ("" when it is enabled)."""
        return "" if self.start_action.isEnabled() else self.start_action.toolTip()

    # -- run control ----------------------------------------------------------------
    @Slot()
    def start_run(self, cfg: RunConfig | None = None, resume_dir: str | None = None) -> bool:
        """Start a run of ``cfg`` (default: the form); False if it cannot start now."""
        if self.controller.is_running():
            return False
        if cfg is None or isinstance(cfg, bool):  # triggered(bool) from the action
            if not self._valid:
                self.banner.show_message("The configuration is not valid yet.", self._reason)
                return False
            cfg = self.config_panel.config()
        errors = cfg.errors()
        if errors:
            self.banner.show_message(f"The configuration is not valid: {errors[0].message}.", errors[0].hint)
            return False
        self.banner.dismiss()
        self.runs_panel.uncheck_all()  # the overlays go with the old curves: ticks say what is drawn
        self.charts.clear()
        self.charts.set_truth_expected(cfg.data.source == "toy")
        self.soft_targets.clear()
        self.soft_targets.set_run_dir(None)  # probes of the new run replace the old run's models
        self.first_point_time = None
        if resume_dir:
            # Earlier curves first, so the resumed run continues them.
            self.charts.load_events(self._run_events(resume_dir))
        self.progress.reset("Starting...")
        self.runs_panel.set_runs_dir(cfg.runs_dir)
        self._remember_config(cfg)
        self.controller.start(cfg, resume_dir=resume_dir)
        what = f"Resuming {Path(resume_dir).name}" if resume_dir else f"Started {cfg.name}"
        self._log(what)
        self.run_started.emit()
        return True

    @Slot(str)
    def resume_run(self, path: str) -> bool:
        """Continue a stopped run from its last checkpoint."""
        info = self.runs_panel.run_info(path)

        if info is None or info.config is None or not can_resume(path):
            self.banner.show_message("This run cannot be resumed.", "Only stopped or interrupted runs with a checkpoint can.")
            return False
        return self.start_run(info.config.copy(), resume_dir=path)

    @Slot(str)
    def start_baseline(self, path: str) -> bool:
        """Train run ``path``'s configuration with hard labels only and overlay the two."""
        info = self.runs_panel.run_info(path)
        if info is None or info.config is None:
            return False
        cfg = baseline_config_of_run(path, info.config)
        if not self.start_run(cfg):
            return False
        self.runs_panel.set_checked(path, True)
        self._log(f"Baseline of {Path(path).name}: alpha = 0, curves of the distilled run overlaid")
        return True

    @Slot()
    def start_baseline_of_form(self) -> bool:
        """Baseline of the form's configuration. When the run selected in the Runs tab ran exactly this
        configuration, it is that run's baseline (its teacher reused, its curves overlaid)."""
        if not self._valid:
            self.banner.show_message("The configuration is not valid yet.", self._reason)
            return False
        cfg = self.config_panel.config()
        selected = self.runs_panel.selected_path()
        info = self.runs_panel.run_info(selected) if selected else None
        if info is not None and info.config == cfg:
            return self.start_baseline(selected)
        return self.start_run(baseline_config(cfg))

    @Slot()
    def toggle_pause(self) -> None:
        if self.controller.state() == RUNNING:
            self.controller.pause()
        elif self.controller.state() == PAUSED:
            self.controller.resume()

    @Slot()
    def stop_run(self) -> None:
        self.controller.stop()

    @Slot()
    def cancel_run(self) -> None:
        self.controller.cancel()

    @Slot(str)
    def _on_state_changed(self, state: str) -> None:
        self.progress.set_paused(state == PAUSED)
        if state == STOPPING:
            self.statusBar().showMessage(STOPPING_MESSAGE)
        elif self.statusBar().currentMessage() == STOPPING_MESSAGE:
            self.statusBar().clearMessage()  # it has stopped (or resumed): the note is no longer true
        self._update_actions()

    def _update_actions(self) -> None:
        state = self.controller.state()
        running = self.controller.is_running()
        # The form's own errors and the plan's (a tokenizer that differs, too many positions) both land here:
        # Start and the baseline of the form are disabled with the reason. Resuming a run folder is not: it
        # runs that folder's configuration, not the form's.
        self.start_action.setEnabled(not running and self._valid)
        self.baseline_action.setEnabled(not running and self._valid)
        if not self._valid:
            self.start_action.setToolTip(f"Start is disabled: {self._reason}")
            self.baseline_action.setToolTip(f"Baseline is disabled: {self._reason}")
            # elided: a plan's sentence can be long, and a toolbar hides a widget that does not fit
            self.reason_label.setText(self.reason_label.fontMetrics().elidedText(
                f"\u26a0 {self._reason}", Qt.TextElideMode.ElideRight, REASON_WIDTH))
            self.reason_label.setToolTip(self._reason)
        else:
            self.start_action.setToolTip("Start a run with the configuration in the form (Ctrl+R)")
            self.baseline_action.setToolTip(f"{BASELINE_TIP} (Ctrl+B)")
            self.reason_label.setText("")
        self.reason_action.setVisible(not self._valid)  # for the toolbar's layout, which would undo the next line
        self.reason_label.setVisible(not self._valid)  # at once, not at the next layout pass
        self.pause_action.setEnabled(state in (RUNNING, PAUSED))
        self.pause_action.setText("&Resume" if state == PAUSED else "&Pause")
        self.stop_action.setEnabled(state in (RUNNING, PAUSED))
        self.cancel_action.setEnabled(running)
        self.runs_panel.set_busy(running)

    # -- events from the run ----------------------------------------------------------
    @Slot(object)
    def _on_run_event(self, event: Any) -> None:
        kind = getattr(event, "kind", "")
        if kind in ("stage", "step", "eval"):
            self.charts.handle_event(event)
            if kind != "stage" and self.first_point_time is None:
                self.first_point_time = time.perf_counter()
        if kind == "step":
            self.progress.set_step(event)
        elif kind == "probe":
            self.soft_targets.handle_event(event)
        elif kind == "stage":
            self.progress.set_stage(event)
            total = f" ({event.total_steps:,} steps)" if event.total_steps else ""
            self._log(f"{STAGE_TITLES.get(event.stage, event.stage)}{total}" + (f": {event.message}" if event.message else ""))
        elif kind == "log":
            self._log(event.message, event.level)
        elif kind == "checkpoint":
            self._log(f"Checkpoint at step {event.step:,}: {event.path}")
        elif kind == "failed":
            self.banner.show_message(event.message, event.hint)
            self._log(f"{event.message} {event.hint}".strip(), "error")

    @Slot(object)
    def _on_run_finished(self, result: Any) -> None:
        self.runs_panel.refresh()
        run_dir = getattr(result, "run_dir", "")
        if isinstance(result, Finished):
            name = Path(run_dir).name if run_dir else "the run"
            if result.status == "completed":
                self.progress.reset("Completed", done=True)
                self.statusBar().showMessage(f"{name} completed.", 10000)
                # The finished models now answer any prompt typed in the soft-target panel (off the GUI thread).
                self.soft_targets.set_run_dir(run_dir)
            elif result.status == "stopped":
                self.progress.reset("Stopped")
                self.banner.show_message(f"{name} stopped; its checkpoint is kept.",
                                         "Select it in the Runs tab and press Resume to continue.", level="info")
            else:
                self.progress.reset(result.status.capitalize())
            self._log(f"Run {result.status}: {run_dir}")
        elif isinstance(result, Failed):
            self.progress.reset("Failed")
            if not self.banner.isVisible():
                self.banner.show_message(result.message, result.hint)
        if run_dir:
            self.runs_panel.select_run(run_dir)
        self._update_actions()
        if self._close_when_idle:
            QTimer.singleShot(0, self.close)

    def _log(self, message: str, level: str = "info") -> None:
        stamp = time.strftime("%H:%M:%S")
        prefix = {"warning": "warning: ", "error": "error: "}.get(level, "")
        self.log_view.appendPlainText(f"[{stamp}] {prefix}{message}")

    # -- runs panel -------------------------------------------------------------------
    def _run_events(self, path: str) -> list:
        """A run's events.jsonl, cached until the file changes."""

        events_file = Path(path) / "events.jsonl"
        mtime = events_file.stat().st_mtime if events_file.exists() else 0.0
        cached = self._event_cache.get(path)
        if cached is None or cached[0] != mtime:
            cached = (mtime, run_events(path))
            self._event_cache[path] = cached
        return cached[1]

    @Slot(list)
    def _on_overlays_changed(self, paths: list) -> None:
        self.charts.clear_overlays()
        for path in paths:
            info = self.runs_panel.run_info(path)
            alpha = info.config.distill.alpha if info is not None and info.config is not None else None
            label = overlay_label(path, info.name if info is not None else "", alpha)
            self.charts.add_overlay(label, self._run_events(path))

    @Slot(object)
    def _on_open_run_config(self, cfg: RunConfig) -> None:
        self.set_config(cfg)
        self.statusBar().showMessage(f"Loaded the configuration of {cfg.name}", 6000)

    @Slot(str)
    def show_runs(self) -> None:
        self.tabs.setCurrentWidget(self.runs_panel)

    def _on_soft_targets_requested(self, path: str) -> None:
        if self.controller.is_running():
            self.banner.show_message("The soft-targets panel follows the running run.",
                                     "Inspect another run once this one has finished.", level="info")
            return
        self.soft_targets.set_run_dir(path)
        self.tabs.setCurrentIndex(0)
        self.statusBar().showMessage(f"Loading {Path(path).name} into the soft-targets panel...", 6000)

    # -- files and commands -----------------------------------------------------------
    @Slot()
    def _on_preset_action(self) -> None:
        action = self.sender()
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
        path, _ = QFileDialog.getSaveFileName(self, "Save configuration", f"{self.config().name}.toml",
                                              "Configuration (*.toml)")
        if path:
            if not path.endswith(".toml"):
                path += ".toml"
            self.save_config_to(path)

    def command_line(self) -> str:
        """The `workbench run` command that repeats the form's configuration."""
        try:
            base_cfg = load_config(self._base)
            base = self._base
        except ConfigError:
            base_cfg, base = load_config("toy"), "toy"
        parts = ["workbench", "run", shlex.quote(base)]
        for item in overrides_between(base_cfg, self.config_panel.config()):
            parts += ["--set", shlex.quote(item)]
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

    # -- look ---------------------------------------------------------------------------
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
        for widget in (self.charts, self.soft_targets, self.config_panel, self.summary_card, self.arch_view,
                       self.runs_panel, self.progress, self.log_view):
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
            self._pre_presentation = {"docks": [d.isVisible() for d in docks], "state": self.windowState(),
                                      "tab": self.tabs.currentIndex(), "split": self.live_splitter.sizes()}
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

    def is_presentation(self) -> bool:
        return self._presentation

    # -- settings and closing ------------------------------------------------------------
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

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.controller.is_running() and not self._close_when_idle:
            # Stop cleanly first; the window closes when the checkpoint is written.
            self._close_when_idle = True
            self.controller.stop()
            self.statusBar().showMessage("Stopping the run and writing its checkpoint; the window closes next...")
            event.ignore()
            return
        self.save_settings()
        self.controller.shutdown()  # a second close during a run waits here
        self.planner.shutdown()
        self.runs_panel.shutdown()
        for widget in (self.config_panel, self.summary_card, self.arch_view, self.charts, self.soft_targets):
            stop = getattr(widget, "shutdown", None)  # their timers and threads must end before the window
            if callable(stop):
                stop()
        event.accept()


def overlay_label(path: str, name: str, alpha: float | None = None) -> str:
    """``kd (α 0.7, 03:43)`` for run folder ``20261128-034301-kd``: short enough for a legend, and it says
    whether the overlaid run distilled (alpha > 0) or learned from hard labels only."""
    folder = Path(path).name
    parts = folder.split("-", 2)
    detail = [f"α {alpha:g}"] if alpha is not None else []
    if len(parts) == 3 and len(parts[1]) == 6 and parts[1].isdigit():
        detail.append(f"{parts[1][:2]}:{parts[1][2:4]}")
        name = name or parts[2]
    name = name or folder
    return f"{name} ({', '.join(detail)})" if detail else name


def default_config() -> RunConfig:
    """The ``toy`` preset, or the built-in defaults if the preset is missing."""
    try:
        return load_config("toy")
    except ConfigError:
        return RunConfig()


def baseline_config(cfg: RunConfig) -> RunConfig:
    """The same run on hard labels only: alpha = 0, name suffixed ``-baseline``."""
    out = cfg.copy()
    out.distill.alpha = 0.0
    if not out.name.endswith("-baseline"):
        out.name = f"{out.name}-baseline"
    return out


def baseline_config_of_run(run_dir: str | Path, cfg: RunConfig) -> RunConfig:
    """The baseline of a run folder: hard labels only, and the very teacher that run trained (when it trained one),
    so the two students differ only in alpha and the baseline skips stage 1."""
    out = baseline_config(cfg)
    teacher_dir = Path(run_dir) / "teacher"
    if cfg.teacher.source == "train" and (teacher_dir / "config.json").is_file():
        out.teacher.source = "local"
        out.teacher.path = str(teacher_dir.resolve())
    return out
