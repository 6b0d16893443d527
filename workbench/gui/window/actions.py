"""The window's actions: menus, the run toolbar, shortcuts, and which actions are enabled when,
a mixin of ``MainWindow``."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QToolBar, QVBoxLayout, QWidget

from workbench.gui.background.run_thread import PAUSED, RUNNING
from workbench.gui.window.baselines import BASELINE_TIP
from workbench.gui.window.sweeps import SWEEP_TIP

REASON_WIDTH = 560  # px of the toolbar's "why Start is disabled" line; the whole reason is its tooltip


class ActionsMixin:
    """Menus, toolbar and shortcuts of ``MainWindow``; the slots they trigger live in the other mixins."""

    def _action(
        self, text: str, slot: Any, shortcuts: tuple[str, ...] = (), tip: str = "", checkable: bool = False
    ) -> QAction:
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
        self.stop_action = a(
            "S&top", self.stop_run, ("Ctrl+.",), "Stop after this step and keep a resumable checkpoint"
        )
        self.cancel_action = a(
            "&Cancel", self.cancel_run, ("Ctrl+Shift+.", "Ctrl+>"), "Stop at once without a final checkpoint"
        )
        self.baseline_action = a("&Baseline", self.start_baseline_of_form, ("Ctrl+B",), BASELINE_TIP)
        self.sweep_action = a("S&weep...", self.open_sweep_dialog, ("Ctrl+Shift+W",), SWEEP_TIP)
        self.open_action = a(
            "&Open config...", self.open_config_dialog, ("Ctrl+O",), "Load a configuration file (.toml)"
        )
        self.follow_action = a(
            "Open &run folder...",
            self.open_run_folder_dialog,
            ("Ctrl+Shift+O",),
            "Follow a run another process writes (the CLI, torchrun, a shared disk): its charts update as it runs",
        )
        self.stop_following_action = a(
            "Stop &following", self.stop_following, (), "Stop reading the followed run folder (what it showed stays)"
        )
        self.save_action = a(
            "&Save config as...", self.save_config_dialog, ("Ctrl+S",), "Save the form as a .toml file"
        )
        self.copy_command_action = a(
            "Copy &command", self.copy_command, ("Ctrl+Shift+C",), "Copy the equivalent `workbench run` command line"
        )
        self.quit_action = a(
            "&Quit", self.close, ("Ctrl+Q",), "Close the window (a running run is stopped with a checkpoint)"
        )
        self.presentation_action = a(
            "&Presentation mode",
            self.toggle_presentation,
            ("F11", "Ctrl+Shift+P"),
            "Large fonts, configuration hidden, charts and soft targets large",
            checkable=True,
        )
        self.theme_action = a(
            "&Light theme",
            self.toggle_theme,
            ("Ctrl+Shift+L",),
            "Switch between the dark and light themes",
            checkable=True,
        )
        # Space pauses only in presentation mode, where no text field needs it.
        self.space_pause_action = a("Pause (space)", self.toggle_pause, ("Space",), "Pause or resume")
        self.space_pause_action.setEnabled(False)

        menu = self.menuBar().addMenu("&File")
        for action in (self.open_action, self.save_action, self.copy_command_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.follow_action)
        menu.addAction(self.stop_following_action)
        presets = menu.addMenu("Load &preset")
        from workbench.config.presets import preset_description, preset_names

        for name in preset_names():
            action = QAction(name, self)
            action.setStatusTip(preset_description(name))
            action.setData(name)
            presets.addAction(action)
        # The menu names the action: a mixin's slot cannot count on sender() (see ConfigFilesMixin._on_preset_action).
        presets.triggered.connect(self._on_preset_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        menu = self.menuBar().addMenu("&Run")
        for action in (self.start_action, self.pause_action, self.stop_action, self.cancel_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.baseline_action)
        menu.addAction(self.sweep_action)
        self.bought_after_run_action = a(
            "Show \u201cWhat distillation bought\u201d after every run",
            self.set_bought_after_run,
            (),
            "Open the card when any run completes. Off: it opens by itself only when the run has a hard-label "
            "baseline to compare with (the Runs tab opens it for any finished run)",
            checkable=True,
        )
        menu.addSeparator()
        menu.addAction(self.bought_after_run_action)
        self.view_menu = self.menuBar().addMenu("&View")
        self.view_menu.addAction(self.presentation_action)
        self.view_menu.addAction(self.theme_action)
        self.side_by_side_action = a(
            "Charts and soft targets &side by side",
            self.toggle_side_by_side,
            ("Ctrl+Shift+S",),
            "Put the soft targets beside the charts (wide screens) instead of below them",
            checkable=True,
        )
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
        bar.addAction(self.sweep_action)
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

    def _update_actions(self) -> None:
        launched = self.launcher.is_running()
        state = self.controller.state()
        running = self.controller.is_running() or launched
        # The form's own errors and the plan's (a tokenizer that differs, too many positions) both land here:
        # Start and the baseline of the form are disabled with the reason. Resuming a run folder is not: it
        # runs that folder's configuration, not the form's.
        self.start_action.setEnabled(not running and self._valid)
        self.baseline_action.setEnabled(not running and self._valid)
        self.sweep_action.setEnabled(not running and self._valid)
        if not self._valid:
            self.start_action.setToolTip(f"Start is disabled: {self._reason}")
            self.baseline_action.setToolTip(f"Baseline is disabled: {self._reason}")
            self.sweep_action.setToolTip(f"Sweep is disabled: {self._reason}")
            # elided: a plan's sentence can be long, and a toolbar hides a widget that does not fit
            self.reason_label.setText(
                self.reason_label.fontMetrics().elidedText(
                    f"\u26a0 {self._reason}", Qt.TextElideMode.ElideRight, REASON_WIDTH
                )
            )
            self.reason_label.setToolTip(self._reason)
        else:
            self.start_action.setToolTip("Start a run with the configuration in the form (Ctrl+R)")
            self.baseline_action.setToolTip(f"{BASELINE_TIP} (Ctrl+B)")
            self.sweep_action.setToolTip(f"{SWEEP_TIP} (Ctrl+Shift+W)")
            self.reason_label.setText("")
        self.reason_action.setVisible(not self._valid)  # for the toolbar's layout, which would undo the next line
        self.reason_label.setVisible(not self._valid)  # at once, not at the next layout pass
        self.pause_action.setEnabled(state in (RUNNING, PAUSED))
        self.pause_action.setText("&Resume" if state == PAUSED else "&Pause")
        # a launched run stops (SIGTERM: a checkpoint); pausing and cancelling act on a run in this process
        self.stop_action.setEnabled(state in (RUNNING, PAUSED) or (launched and self.launcher.state() == RUNNING))
        self.cancel_action.setEnabled(self.controller.is_running())
        # getattr: the first call comes before the following part is built; a launched run's folder is ours
        self.stop_following_action.setEnabled(getattr(self, "_follow_dir", None) is not None and not launched)
        self.follow_action.setEnabled(not running)  # our own run has the charts until it ends
        self.runs_panel.set_busy(running)
