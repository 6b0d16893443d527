"""The runs panel: the run folders of the runs directory, their status and final metrics.

Tick runs to overlay their curves on the charts; select one for the actions
(open its config, resume it, start its no-distillation baseline, inspect it in
the soft-targets panel, see what distillation bought beside its baseline); tick two
to see how their configurations differ. Sweeps are listed above the runs, one line
each; opening one shows its grid, and a cell clicked there is shown in the main window (its curves and its soft
targets).
The panel only reads folders and emits signals; the main window acts on them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import QFileSystemWatcher, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QColor, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.config.presets import diff_configs
from workbench.config.schema import RunConfig
from workbench.gui import theme
from workbench.gui.runs.gguf_export import GGUFExportRow
from workbench.gui.runs.sweeps_list import SweepsList

# Final metrics shown as columns: (summary key, column title, format).
METRIC_COLUMNS = (
    ("student_ce", "student CE", "{:.3f}"),
    ("kl_teacher_student", "KL(T||S)", "{:.3f}"),
    ("top1_agreement", "top-1 agree", "{:.1%}"),
    ("kl_true_student", "KL(true||S)", "{:.3f}"),
)
COLUMNS = ("overlay", "name", "status", "step", "created") + tuple(title for _, title, _ in METRIC_COLUMNS)
COL_OVERLAY, COL_NAME, COL_STATUS, COL_STEP, COL_CREATED = range(5)
PATH_ROLE = Qt.ItemDataRole.UserRole
BOUGHT_TEXT = "What distillation bought…"
BOUGHT_TIP = (
    "The finished run's teacher, distilled student and hard-label baseline (when one was trained) side by side: "
    "size, speed, held-out cross-entropy, KL to the teacher and to the truth, agreement"
)

STATUS_COLORS = {
    "completed": theme.OK_COLOR,
    "running": theme.STUDENT_COLOR,
    "stopped": theme.WARNING_COLOR,
    "interrupted": theme.WARNING_COLOR,
    "failed": theme.ERROR_COLOR,
    "cancelled": theme.BASELINE_COLOR,
}


def _metric(summary: dict[str, Any], key: str) -> float | None:
    """A final metric from summary.json, whether stored flat or under ``metrics``."""
    for source in (summary, summary.get("metrics", {}) if isinstance(summary.get("metrics"), dict) else {}):
        value = source.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


class RunsPanel(QWidget):
    """Table of runs with overlay check boxes, a config diff, and per-run actions.

    Signals carry plain values: ``overlays_changed(list)`` the ticked run paths
    (str) in table order; ``open_config_requested(object)`` a RunConfig;
    ``resume_requested(str)``, ``baseline_requested(str)`` and
    ``soft_targets_requested(str)`` a run path; ``sweep_cell_requested(str)`` the run folder of a cell clicked in
    the sweep grid.
    """

    overlays_changed = Signal(list)
    open_config_requested = Signal(object)
    resume_requested = Signal(str)
    baseline_requested = Signal(str)
    soft_targets_requested = Signal(str)
    sweep_cell_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None, refresh_ms: int = 4000):
        super().__init__(parent)
        self._runs_dir: Path | None = None
        self._infos: dict[str, Any] = {}  # path -> RunInfo
        self._checked: list[str] = []
        self._busy = False  # a run is training: Resume and Baseline wait

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(["", *COLUMNS[1:]])
        self.table.horizontalHeaderItem(COL_OVERLAY).setToolTip("Tick to overlay this run's curves on the charts")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(self._on_double_clicked)

        self.dir_label = QLabel(self)
        self.dir_label.setObjectName("muted")
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setToolTip("Read the runs folder again (it is also re-read every few seconds)")
        self.open_button = QPushButton("Open config", self)
        self.open_button.setToolTip("Put the selected run's configuration into the form")
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setToolTip("Continue the selected stopped run from its last checkpoint")
        self.baseline_button = QPushButton("Baseline (alpha = 0)", self)
        self.baseline_button.setToolTip(
            "Train the selected run's configuration on hard labels only (no teacher) and overlay the two, "
            "so the gain from distillation shows on the same chart"
        )
        self.soft_button = QPushButton("Show in soft targets", self)
        self.soft_button.setToolTip(
            "Load this run's teacher and student, and its probes for the replay, into the soft-targets panel"
        )
        self.bought_button = QPushButton(BOUGHT_TEXT, self)
        self.bought_button.setToolTip(BOUGHT_TIP)
        self.bought_action = QAction(BOUGHT_TEXT, self)
        self.bought_action.setToolTip(BOUGHT_TIP)
        self.bought_action.triggered.connect(self._on_bought)
        self.bought_button.clicked.connect(self.bought_action.trigger)
        self.bought_card: Any = None  # the card window, made on first use and reused
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._on_context_menu)
        self.gguf_row = GGUFExportRow(self)
        self.sweeps = SweepsList(self)
        self.sweeps.open_requested.connect(self.show_sweep)
        self.sweep_window: Any = None  # the grid window, made on first use and reused
        self.refresh_button.clicked.connect(self.refresh)
        self.open_button.clicked.connect(self._on_open)
        self.resume_button.clicked.connect(self._on_resume)
        self.baseline_button.clicked.connect(self._on_baseline)
        self.soft_button.clicked.connect(self._on_soft)

        buttons = QHBoxLayout()
        for button in (
            self.open_button,
            self.resume_button,
            self.baseline_button,
            self.soft_button,
            self.bought_button,
            self.gguf_row,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.dir_label)
        buttons.addWidget(self.refresh_button)

        self.diff_view = QPlainTextEdit(self)
        self.diff_view.setReadOnly(True)
        self.diff_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))  # its columns line up
        self.diff_view.setPlaceholderText("Tick two runs to see how their configurations differ.")
        diff_box = QWidget(self)
        diff_layout = QVBoxLayout(diff_box)
        diff_layout.setContentsMargins(0, 0, 0, 0)
        diff_title = QLabel("Config diff", diff_box)
        diff_title.setObjectName("muted")
        diff_layout.addWidget(diff_title)
        diff_layout.addWidget(self.diff_view)

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.table)
        splitter.addWidget(diff_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(buttons)
        layout.addWidget(self.sweeps)
        layout.addWidget(splitter, 1)

        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(self._schedule_refresh)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(300)
        self._debounce.timeout.connect(self.refresh)
        # Runs change inside their folders (status, summary) without touching the
        # runs folder itself, so a slow timer catches what the watcher cannot.
        self._timer = QTimer(self)
        self._timer.setInterval(refresh_ms)
        self._timer.timeout.connect(self.refresh)
        self._update_buttons()

    # -- public -------------------------------------------------------------
    def set_runs_dir(self, path: str | Path) -> None:
        """Show the runs in ``path`` (it need not exist yet)."""
        new = Path(path).expanduser().resolve()
        if new == self._runs_dir:
            return
        if self._watcher.directories():
            self._watcher.removePaths(self._watcher.directories())
        self._runs_dir = new
        self.dir_label.setText(str(new))
        self.dir_label.setToolTip(str(new))
        self.refresh()
        if not self._timer.isActive():
            self._timer.start()

    def runs_dir(self) -> Path | None:
        return self._runs_dir

    def set_busy(self, busy: bool) -> None:
        """While a run trains, Resume and Baseline are disabled (one run at a time)."""
        self._busy = busy
        self.sweeps.set_busy(busy)
        self._update_buttons()

    def checked_paths(self) -> list[str]:
        return list(self._checked)

    def set_checked(self, path: str | Path, checked: bool = True) -> None:
        """Tick or untick a run's overlay box (refreshes the table first if the run is new)."""
        key = str(Path(path).resolve())
        if key not in self._infos:
            self.refresh()
        for row in range(self.table.rowCount()):
            item = self.table.item(row, COL_OVERLAY)
            if item is not None and item.data(PATH_ROLE) == key:
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
                return

    def uncheck_all(self) -> None:
        """Untick every overlay box (one ``overlays_changed([])`` when any was ticked)."""
        if not self._checked:
            return
        self.table.blockSignals(True)
        for row in range(self.table.rowCount()):
            item = self.table.item(row, COL_OVERLAY)
            if item is not None:
                item.setCheckState(Qt.CheckState.Unchecked)
        self.table.blockSignals(False)
        self._checked = []
        self._update_diff()
        self.overlays_changed.emit([])

    def select_run(self, path: str | Path) -> None:
        key = str(Path(path).resolve())
        for row in range(self.table.rowCount()):
            if self.table.item(row, COL_OVERLAY).data(PATH_ROLE) == key:
                self.table.selectRow(row)
                return

    def selected_path(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.table.item(rows[0].row(), COL_OVERLAY).data(PATH_ROLE)

    def run_info(self, path: str | Path) -> Any:
        """The RunInfo last read for ``path`` (None if unknown)."""
        return self._infos.get(str(Path(path).resolve()))

    def row_count(self) -> int:
        return self.table.rowCount()

    def show_bought(self, path: str | Path, baseline: str | Path | None = None) -> Any:
        """Open the "What distillation bought" card of finished run ``path`` beside ``baseline`` (default: its
        newest finished hard-label baseline in this runs folder); None for a run that has not finished."""
        from workbench.gui.runs.bought_card import show_card

        card = show_card(self.bought_card, self.window(), path, baseline, list(self._infos.values()))
        self.bought_card = card or self.bought_card
        return card

    def baseline_of(self, path: str | Path) -> Any:
        """The newest finished hard-label baseline of run ``path`` in this runs folder (None when it has none)."""
        from workbench.bought import find_baseline
        from workbench.run_folder import read_run

        return find_baseline(read_run(path), list(self._infos.values()) or None)

    def show_sweep(self, path: str | Path) -> Any:
        """Open the grid window of sweep folder ``path``; a cell clicked there is asked for with
        ``sweep_cell_requested``."""
        from workbench.gui.runs.sweep_window import show_grid

        if self.sweep_window is None:
            self.sweep_window = show_grid(None, self.window(), path, font=self.font())
            self.sweep_window.grid.run_requested.connect(self.sweep_cell_requested)
        else:
            show_grid(self.sweep_window, self.window(), path)
        return self.sweep_window

    def windows(self) -> list[Any]:
        """The windows this panel has opened (the sweep grid, the card): presentation mode sizes their fonts."""
        return [w for w in (self.sweep_window, self.bought_card) if w is not None]

    def shutdown(self) -> None:
        if self.sweep_window is not None:
            self.sweep_window.grid.stop_following()
        self._timer.stop()
        self._debounce.stop()
        self.gguf_row.shutdown()

    # -- reading ------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        """Re-read the runs folder and rebuild the table, keeping ticks and selection."""
        if self._runs_dir is None:
            return
        from workbench.run_folder import list_runs
        from workbench.sweep_folder import list_sweeps

        if self._runs_dir.is_dir() and str(self._runs_dir) not in self._watcher.directories():
            self._watcher.addPath(str(self._runs_dir))
        infos = list_runs(self._runs_dir)
        self.sweeps.set_sweeps(list_sweeps(self._runs_dir))
        selected = self.selected_path()
        self._infos = {str(Path(info.path).resolve()): info for info in infos}
        before = list(self._checked)
        self._checked = [p for p in self._checked if p in self._infos]

        self.table.blockSignals(True)
        self.table.setRowCount(len(infos))
        for row, info in enumerate(infos):
            self._fill_row(row, info)
        self.table.blockSignals(False)
        if selected in self._infos:
            self.select_run(selected)
        self._update_buttons()
        self._update_diff()
        if before != self._checked:
            self.overlays_changed.emit(list(self._checked))

    def _fill_row(self, row: int, info: Any) -> None:
        key = str(Path(info.path).resolve())
        check = QTableWidgetItem()
        check.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        check.setCheckState(Qt.CheckState.Checked if key in self._checked else Qt.CheckState.Unchecked)
        check.setData(PATH_ROLE, key)
        self.table.setItem(row, COL_OVERLAY, check)

        name = QTableWidgetItem(info.name)
        name.setToolTip(key)
        self.table.setItem(row, COL_NAME, name)
        status = QTableWidgetItem(info.status)
        if info.status in STATUS_COLORS:
            status.setForeground(QColor(STATUS_COLORS[info.status]))
        self.table.setItem(row, COL_STATUS, status)
        step = QTableWidgetItem(f"{info.last_step:,}" if info.last_step else "")
        step.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.table.setItem(row, COL_STEP, step)
        self.table.setItem(row, COL_CREATED, QTableWidgetItem(info.created))
        for offset, (key_name, _, fmt) in enumerate(METRIC_COLUMNS):
            value = _metric(info.summary or {}, key_name)
            item = QTableWidgetItem(fmt.format(value) if value is not None else "")
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, COL_CREATED + 1 + offset, item)

    # -- reactions ----------------------------------------------------------
    @Slot(str)
    def _schedule_refresh(self, _path: str = "") -> None:
        self._debounce.start()

    @Slot(QTableWidgetItem)
    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != COL_OVERLAY:
            return
        key = item.data(PATH_ROLE)
        checked = item.checkState() == Qt.CheckState.Checked
        if checked and key not in self._checked:
            self._checked.append(key)
        elif not checked and key in self._checked:
            self._checked.remove(key)
        else:
            return
        self._update_diff()
        self.overlays_changed.emit(list(self._checked))

    @Slot(QTableWidgetItem)
    def _on_double_clicked(self, item: QTableWidgetItem) -> None:
        path = self.table.item(item.row(), COL_OVERLAY).data(PATH_ROLE)
        self.soft_targets_requested.emit(path)

    @Slot()
    def _update_buttons(self) -> None:
        path = self.selected_path()
        info = self._infos.get(path) if path else None
        has_config = info is not None and info.config is not None
        resumable = info is not None and info.status in ("stopped", "interrupted", "failed")
        self.open_button.setEnabled(has_config)
        self.resume_button.setEnabled(resumable and has_config and not self._busy)
        self.resume_button.setToolTip(
            "Continue the selected stopped run from its last checkpoint"
            if resumable or info is None
            else f"This run is {info.status}; only stopped or interrupted runs can be resumed"
        )
        self.baseline_button.setEnabled(has_config and not self._busy)
        self.soft_button.setEnabled(
            info is not None and info.status in ("completed", "stopped", "interrupted", "cancelled")
        )
        finished = info is not None and info.status == "completed" and bool(info.summary)
        self.bought_action.setEnabled(finished)
        self.bought_button.setEnabled(finished)
        self.gguf_row.set_run(info)

    def _update_diff(self) -> None:
        if len(self._checked) != 2:
            self.diff_view.setPlainText("")
            return
        a, b = (self._infos[p] for p in self._checked)
        if a.config is None or b.config is None:
            self.diff_view.setPlainText("One of the two runs has no readable config.toml.")
            return
        diffs = diff_configs(a.config, b.config)
        if not diffs:
            self.diff_view.setPlainText(f"{a.name} and {b.name} have the same configuration.")
            return
        width = max(len(name) for name, _, _ in diffs)
        lines = [f"{'field'.ljust(width)}   {Path(a.path).name}  ->  {Path(b.path).name}"]
        lines += [f"{name.ljust(width)}   {va!r}  ->  {vb!r}" for name, va, vb in diffs]
        self.diff_view.setPlainText("\n".join(lines))

    def diff_text(self) -> str:
        return self.diff_view.toPlainText()

    def _selected_info(self) -> Any:
        path = self.selected_path()
        return self._infos.get(path) if path else None

    @Slot()
    def _on_open(self) -> None:
        info = self._selected_info()
        if info is not None and info.config is not None:
            config: RunConfig = info.config.copy()
            self.open_config_requested.emit(config)

    @Slot()
    def _on_resume(self) -> None:
        path = self.selected_path()
        if path:
            self.resume_requested.emit(path)

    @Slot()
    def _on_baseline(self) -> None:
        path = self.selected_path()
        if path:
            self.baseline_requested.emit(path)

    @Slot()
    def _on_bought(self) -> None:
        path = self.selected_path()
        if path:
            self.show_bought(path)

    @Slot(object)
    def _on_context_menu(self, pos: Any) -> None:
        item = self.table.itemAt(pos)
        if item is None:
            return
        self.table.selectRow(item.row())
        menu = QMenu(self)
        menu.addAction(self.bought_action)
        menu.exec(self.table.viewport().mapToGlobal(pos))

    @Slot()
    def _on_soft(self) -> None:
        path = self.selected_path()
        if path:
            self.soft_targets_requested.emit(path)
