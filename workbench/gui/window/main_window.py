"""The workbench window: configuration on the left, live charts and soft targets in the centre
(runs, architecture and log in tabs beside them), run controls on top.

The window owns no training logic: ``RunController`` runs the engine in a
background thread and the window routes each event to the widget that shows it.
This file assembles the panels and wires the form, the plan and the run; the mixins
beside it hold the actions, baselines, configuration files, look, runs tab and settings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QSplitter, QTabWidget, QVBoxLayout, QWidget

from workbench.config.schema import RunConfig
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
from workbench.gui.window.actions import ActionsMixin
from workbench.gui.window.baselines import BaselinesMixin
from workbench.gui.window.config_files import ConfigFilesMixin, default_config
from workbench.gui.window.following import FollowMixin
from workbench.gui.window.help import HelpMixin
from workbench.gui.window.launching import LaunchMixin
from workbench.gui.window.presentation import PresentationMixin
from workbench.gui.window.run_bar import STAGE_TITLES, MessageBanner, RunProgress
from workbench.gui.window.run_log import RunLog
from workbench.gui.window.runs_tab import RunsTabMixin
from workbench.gui.window.settings import SettingsMixin
from workbench.gui.window.sweeps import SweepsMixin
from workbench.run_folder import RESUME_MISSING_FILE_HINT, can_resume, missing_for_resume, missing_sentence

STOPPING_MESSAGE = "Stopping after this step..."
PENDING_AFTER_MS = 250  # a plan slower than this shows "Checking the models..." on the summary card


class MainWindow(
    ActionsMixin,
    BaselinesMixin,
    ConfigFilesMixin,
    FollowMixin,
    HelpMixin,
    LaunchMixin,
    PresentationMixin,
    RunsTabMixin,
    SettingsMixin,
    SweepsMixin,
    QMainWindow,
):
    """The application window. ``run_fn`` replaces ``engine.train.run`` (tests only)."""

    run_started = Signal()

    def __init__(
        self, config: RunConfig | None = None, *, base: str = "toy", run_fn: Any = None, restore_settings: bool = True
    ):
        super().__init__()
        self.setWindowTitle("Distillation Workbench")
        self._base = base  # preset name or file the form started from ("copy command" diffs against it)
        self._presentation = False
        self._baseline_of: str | None = None  # the run whose baseline is training (BaselinesMixin)
        self._pre_presentation: dict[str, Any] = {}
        self._close_when_idle = False
        self._event_cache: dict[str, tuple[float, list]] = {}
        self._cell_overlay: str | None = None  # a sweep cell's run overlaid beside the live run (SweepsMixin)
        self._sweep_cell_dir: str | None = None  # the cell the window's own sweep is running
        self._valid = True
        self._reason = ""
        self._plan_cfg: RunConfig | None = None  # the configuration of the newest plan request
        self._plan_pending = False  # a plan was asked for and has not come back yet
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
        self._build_launching()

        self._build_widgets()
        self._build_actions()
        self._build_layout()
        self._build_help()
        self._build_following()

        self.config_panel.config_changed.connect(self._on_config_changed)
        self.config_panel.validity_changed.connect(self._on_validity_changed)
        self.runs_panel.overlays_changed.connect(self._on_overlays_changed)
        self.runs_panel.open_config_requested.connect(self._on_open_run_config)
        self.runs_panel.resume_requested.connect(self.resume_run)
        self.runs_panel.baseline_requested.connect(self.start_baseline)
        self.runs_panel.soft_targets_requested.connect(self._on_soft_targets_requested)
        self.runs_panel.sweeps.resume_requested.connect(self.resume_sweep)
        self.runs_panel.sweep_cell_requested.connect(self.show_sweep_cell)

        settings = QSettings()
        if restore_settings:
            self._restore_layout(settings)
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
        self.log_view = RunLog(self)

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
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
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

    @Slot(object)
    def _on_config_changed(self, cfg: RunConfig) -> None:
        self.runs_panel.set_runs_dir(cfg.runs_dir)
        self._request_plan(cfg)

    def _request_plan(self, cfg: RunConfig) -> None:
        if not self.run_active() and not self.is_following():  # charts of a run follow it, not the form
            self.charts.set_truth_expected(cfg.data.source == "toy")
        # The planner answers only its newest request, so the plan that arrives next is this configuration's.
        self._plan_cfg = cfg.copy()
        self._plan_pending = True
        self.planner.request(cfg)
        # The first plan waits for the engine's import (seconds): say it is being checked, not "-".
        QTimer.singleShot(PENDING_AFTER_MS, self._show_plan_pending)

    def _show_plan_pending(self) -> None:
        if self._plan_pending:
            self.summary_card.show_pending()

    @Slot(bool, str)
    def _on_validity_changed(self, valid: bool, reason: str) -> None:
        self._valid, self._reason = valid, reason
        self._update_actions()

    @Slot(object)
    def _on_planned(self, plan: object) -> None:
        cfg = self._plan_cfg
        self._plan_pending = False
        if isinstance(plan, Exception):
            self.summary_card.clear_pending()
            self.statusBar().showMessage(f"Could not estimate the models: {plan}", 8000)
            if cfg is not None:
                self.config_panel.set_plan_errors(cfg, [])  # nothing known against it: the run itself checks
            return
        self.summary_card.update_plan(plan)
        self.arch_view.update_plan(plan, cfg)
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
        """Start a run of ``cfg`` (default: the form); False if it cannot start now. With ``train.processes`` above
        1 the run is launched as processes of its own (``LaunchMixin``) and followed."""
        if self.run_active():
            return False
        if cfg is None or isinstance(cfg, bool):  # triggered(bool) from the action
            if not self._valid:
                self.banner.show_message("The configuration is not valid yet.", self._reason)
                return False
            cfg = self.config_panel.config()
        errors = cfg.errors()
        if errors:
            if resume_dir and missing_for_resume(errors[0]):  # the run's own file is gone: editing cannot help
                self.banner.show_message(missing_sentence("This run", errors[0]) + ".", RESUME_MISSING_FILE_HINT)
            else:
                self.banner.show_message(f"The configuration is not valid: {errors[0].what}.", errors[0].hint)
            return False
        self.banner.dismiss()
        self.stop_following()  # our own run takes the charts
        self._clear_live_view(truth_expected=cfg.data.source == "toy")
        launched = cfg.train.processes > 1
        if resume_dir and not launched:  # a launched run's folder is followed from its first event
            # Earlier curves first, so the resumed run continues them; its earlier probes join the replay.
            earlier = self._run_events(resume_dir)
            self.charts.load_events(earlier)
            for event in earlier:
                if getattr(event, "kind", "") == "probe":
                    self.soft_targets.handle_event(event)
        self.progress.reset("Starting...")
        self.runs_panel.set_runs_dir(cfg.runs_dir)
        self._remember_config(cfg)
        if launched:
            if not self._launch_run(cfg, resume_dir):
                return False
        else:
            self.controller.start(cfg, resume_dir=resume_dir)
        what = f"Resuming {Path(resume_dir).name}" if resume_dir else f"Started {cfg.name}"
        self.log_view.add(what)
        self.run_started.emit()
        return True

    def _clear_live_view(self, truth_expected: bool) -> None:
        """Empty charts and soft targets for a run about to be shown (started here or followed)."""
        self.runs_panel.uncheck_all()  # the overlays go with the old curves: ticks say what is drawn
        self.charts.clear()
        self.charts.set_truth_expected(truth_expected)
        self.soft_targets.clear()
        self.soft_targets.set_run_dir(None)  # probes of the new run replace the old run's models
        self.progress.set_cell("")  # a sweep cell shown before (SweepsMixin) is not what comes next
        self._cell_overlay = None
        self.first_point_time = None

    @Slot(str)
    def resume_run(self, path: str) -> bool:
        """Continue a stopped run from its last checkpoint."""
        info = self.runs_panel.run_info(path)

        if info is None or info.config is None or not can_resume(path):
            self.banner.show_message(
                "This run cannot be resumed.", "Only stopped or interrupted runs with a checkpoint can."
            )
            return False
        return self.start_run(info.config.copy(), resume_dir=path)

    @Slot()
    def toggle_pause(self) -> None:
        if self.controller.state() == RUNNING:
            self.controller.pause()
        elif self.controller.state() == PAUSED:
            self.controller.resume()

    @Slot()
    def stop_run(self) -> None:
        if self.launcher.is_running():
            self.launcher.stop()
        else:
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

    # -- events from the run ----------------------------------------------------------
    @Slot(object)
    def _on_run_event(self, event: Any) -> None:
        kind = getattr(event, "kind", "")
        if kind in ("cell_started", "cell_finished", "sweep_finished"):
            self._on_sweep_event(event)  # SweepsMixin; the cells' own events are handled below as a run's
            return
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
            self.log_view.add(
                f"{STAGE_TITLES.get(event.stage, event.stage)}{total}" + (f": {event.message}" if event.message else "")
            )
        elif kind == "log":
            self.log_view.add(event.message, event.level)
        elif kind == "checkpoint":
            self.log_view.add(f"Checkpoint at step {event.step:,}: {event.path}")
        elif kind == "failed":
            self.banner.show_message(event.message, event.hint)
            self.log_view.add(event.message + (f" (hint: {event.hint})" if event.hint else ""), "error")

    @Slot(object)
    def _on_run_finished(self, result: Any) -> None:
        if self.controller.sweep_dir():
            self._on_sweep_finished(result)  # SweepsMixin
            if self._close_when_idle:
                QTimer.singleShot(0, self.close)
            return
        self.runs_panel.refresh()
        run_dir = getattr(result, "run_dir", "")
        if isinstance(result, Finished):
            name = Path(run_dir).name if run_dir else "the run"
            if result.status == "completed":
                self.progress.reset("Completed", done=True)
                self.statusBar().showMessage(f"{name} completed.", 10000)
                # The finished models now answer any prompt typed in the soft-target panel (off the GUI thread).
                self.soft_targets.set_run_dir(run_dir)
                source = self._baseline_of
                if source:
                    self._show_what_distillation_bought(result.summary)
                # The card: (a baseline just finished) its source beside it, or this run beside its baseline. A run
                # with nothing to compare opens it only when asked (Run menu): at the end of a demo the curves and
                # soft targets are what is being shown, and a window over them is one more thing to close.
                if run_dir:
                    if source:
                        self.runs_panel.show_bought(source, baseline=run_dir)
                    elif self.bought_after_run_action.isChecked() or self.runs_panel.baseline_of(run_dir):
                        self.runs_panel.show_bought(run_dir)
            elif result.status == "stopped":
                self.progress.reset("Stopped")
                self.banner.show_message(
                    f"{name} stopped; its checkpoint is kept.",
                    "Select it in the Runs tab and press Resume to continue.",
                    level="info",
                )
            else:
                self.progress.reset(result.status.capitalize())
            self.log_view.add(f"Run {result.status}: {run_dir}")
        elif isinstance(result, Failed):
            self.progress.reset("Failed")
            if not self.banner.isVisible():
                self.banner.show_message(result.message, result.hint)
        self._baseline_of = None  # a baseline that did not complete compares nothing
        if run_dir:
            self.runs_panel.select_run(run_dir)
        # The run may have made what the plan assumed (a tokenizer trained on the text: its real size now)
        self._request_plan(self.config())
        self._update_actions()
        if self._close_when_idle:
            QTimer.singleShot(0, self.close)

    # -- closing ------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.run_active() and not self._close_when_idle:
            # Stop cleanly first; the window closes when the checkpoint is written (a launched run: when its
            # processes have written it and exited).
            self._close_when_idle = True
            self.stop_run()
            self.statusBar().showMessage("Stopping the run and writing its checkpoint; the window closes next...")
            event.ignore()
            return
        self.launcher.shutdown()  # a second close during a launched run waits here (then kills it)
        self.stop_following()
        self.save_settings()
        self.controller.shutdown()  # a second close during a run waits here
        self.planner.shutdown()
        self.runs_panel.shutdown()
        for widget in (self.config_panel, self.summary_card, self.arch_view, self.charts, self.soft_targets):
            stop = getattr(widget, "shutdown", None)  # their timers and threads must end before the window
            if callable(stop):
                stop()
        event.accept()
