"""Sweeps started from the window, a mixin of ``MainWindow``: Run → Sweep… makes the sweep folder from the form's
configuration (as ``workbench sweep`` does) and the run thread runs ``run_sweep`` on it; the live view follows
the running cell (reset at each CellStarted), the progress strip names the cell, the grid window opens at once and
fills in as it polls the folder. Stop ends the running cell with a checkpoint and starts no other; the Runs tab's
"Resume sweep" continues it through the same path. A cell clicked in the grid is shown in the main window
(``show_sweep_cell``): a finished one as the shown run (its curves, its probes and models in the soft-targets panel),
a running one live (the window's own sweep, or a sweep in a terminal followed as a run folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Slot

from workbench.errors import ConfigError, WriteFailed
from workbench.events import Failed
from workbench.run_folder import load_run_config, read_run
from workbench.sweep import Sweep, SweepFinished, load_sweep, value_text

SWEEP_TIP = "Run the form's configuration over a grid of one or two fields, one teacher shared by every run"


def cell_text(event: Any) -> str:
    """``sweep cell 2/4: temperature = 2, alpha = 0.5`` for a CellStarted."""
    values = ", ".join(f"{k.rsplit('.', 1)[-1]} = {value_text(v)}" for k, v in event.values.items())
    kind = " (baseline)" if Path(event.run_dir).name.startswith("b") else ""
    verb = "resuming sweep cell" if event.resumed else "sweep cell"
    return f"{verb} {event.index + 1}/{event.total}{kind}: {values}"


def _cell_label(run_dir: Path) -> str:
    """``sweep kd, cell 01-temperature-1-alpha-0.5: temperature = 1, alpha = 0.5`` from the sweep folder's record
    (``sweep cell`` and the folder's name if it cannot be read)."""
    from workbench.sweep_folder import read_sweep

    try:
        info = read_sweep(run_dir.parent)
    except Exception:  # noqa: BLE001 - being rewritten: the folder's name says enough
        return f"sweep cell {run_dir.name}"
    cell = next((c for c in info.cells if Path(c.run_dir).resolve() == run_dir), None)
    if cell is None:
        return f"sweep cell {run_dir.name}"
    values = ", ".join(f"{k.rsplit('.', 1)[-1]} = {value_text(v)}" for k, v in cell.values.items())
    kind = " (baseline)" if cell.kind == "baseline" else ""
    return f"sweep {info.name}, cell {cell.id}{kind}: {values}"


class SweepsMixin:
    """Starting, following and resuming sweeps (the dialog is :mod:`.sweep_dialog`)."""

    sweep_dialog: Any = None

    @Slot()
    def open_sweep_dialog(self) -> Any:
        """Show Run → Sweep… for the form's configuration; OK starts the sweep. Returns the dialog (non-modal)."""
        from workbench.gui.window.sweep_dialog import SweepDialog

        if self.controller.is_running():
            return None
        if not self._valid:
            self.banner.show_message("The configuration is not valid yet.", self._reason)
            return None
        previous = self.sweep_dialog
        dialog = SweepDialog(self.config_panel.config(), self)
        if previous is not None:  # the axes of the last sweep, checked again against this configuration
            dialog.set_state(previous.state())
            previous.deleteLater()
        dialog.setWindowModality(Qt.WindowModality.WindowModal)  # the form is what it sweeps: not edited meanwhile
        dialog.accepted.connect(lambda: self.start_sweep(dialog.sweep()))
        self.sweep_dialog = dialog
        dialog.show()
        return dialog

    def start_sweep(self, sweep: Sweep | None) -> bool:
        """Make ``sweep``'s folder in its runs folder and run it in the background; False if it cannot start."""
        if sweep is None:
            return False
        if self.controller.is_running():
            self.banner.show_message("A run is training.", "Start the sweep once it has ended.", level="info")
            return False
        try:
            path = sweep.create_dir()
        except (WriteFailed, ConfigError) as err:
            self.banner.show_message(f"The sweep folder cannot be made: {err.message}.", err.hint)
            return False
        self.log_view.add(f"Sweep folder: {path}")
        return self._run_sweep_dir(path, sweep)

    @Slot(str)
    def resume_sweep(self, path: str) -> bool:
        """Continue a stopped or interrupted sweep: completed cells are skipped, the interrupted one resumes."""
        if self.controller.is_running():
            return False
        try:
            sweep = load_sweep(path)
        except ConfigError as err:
            self.banner.show_message(f"This sweep cannot be resumed: {err.message}.", err.hint)
            return False
        return self._run_sweep_dir(Path(path), sweep, resumed=True)

    def _run_sweep_dir(self, path: Path, sweep: Sweep, resumed: bool = False) -> bool:
        self.banner.dismiss()
        self.stop_following()  # the sweep's cells take the charts
        self._clear_live_view(truth_expected=sweep.base.data.source == "toy")
        self.progress.reset("Starting the sweep...")
        self.runs_panel.set_runs_dir(sweep.base.runs_dir)
        self.controller.start_sweep(path, sweep.base)
        self.log_view.add(f"{'Resuming' if resumed else 'Started'} sweep {path.name}")
        self.runs_panel.refresh()
        self.runs_panel.sweeps.select(path)
        self.runs_panel.show_sweep(path)  # the grid opens at once and fills in as it polls the folder
        self.run_started.emit()
        return True

    def _on_sweep_event(self, event: Any) -> None:
        """CellStarted / CellFinished / SweepFinished from the run thread (the cells' own events go on as a run's)."""
        kind = event.kind
        if kind == "cell_started":
            self._sweep_cell_dir = event.run_dir
            self._clear_live_view(truth_expected=self.controller.config().data.source == "toy")
            if event.resumed:  # the cell's earlier curves and probes first, as a resumed run shows them
                earlier = self._run_events(event.run_dir)
                self.charts.load_events(earlier)
                for old in earlier:
                    if getattr(old, "kind", "") == "probe":
                        self.soft_targets.handle_event(old)
            text = cell_text(event)
            self.progress.reset("Starting...")
            self.progress.set_cell(text)
            self.log_view.add(text[:1].upper() + text[1:])
        elif kind == "cell_finished":
            detail = f" ({event.message})" if event.message else ""
            self.log_view.add(
                f"Sweep cell {event.index + 1}/{event.total} {event.cell}: {event.status}{detail}",
                "error" if event.status == "failed" else "info",
            )
            self.runs_panel.refresh()
        elif kind == "sweep_finished":
            self.log_view.add(f"Sweep {event.status}: {event.sweep_dir}")

    @Slot(str)
    def show_sweep_cell(self, path: str) -> str:
        """Show the run of a sweep cell clicked in the grid; returns what was done: "live" (it is the run the window
        shows live), "followed" (a cell running in another process, now followed), "shown" (a finished cell: its
        curves, probes and models), "overlaid" (a run of this window is training: its curves beside the live ones)
        or "" (nothing to show)."""
        run_dir = Path(path).resolve()
        live = self._sweep_cell_dir if self.controller.is_running() else None
        if self.is_following():
            live = str(self._follow_dir)
        if live is not None and Path(live).resolve() == run_dir:
            self.tabs.setCurrentIndex(0)
            self.statusBar().showMessage(f"{run_dir.name} is the run shown live.", 6000)
            return "live"
        if not (run_dir / "config.toml").is_file():
            return ""
        if self.run_active():  # the live view is the running run's: the cell's curves go beside it
            self._cell_overlay = str(run_dir)
            self._on_overlays_changed(self.runs_panel.checked_paths())
            self.tabs.setCurrentIndex(0)
            self.banner.show_message(
                f"{run_dir.name}'s curves are drawn beside the running run's.",
                "The soft-targets panel follows the running run; click the cell again once it has finished.",
                level="info",
            )
            return "overlaid"
        status = read_run(run_dir).status  # a dead writer's "running" reads as interrupted
        cell = _cell_label(run_dir)
        if status == "running":  # a sweep running in a terminal (or another machine): follow this cell
            if not self.follow_run_folder(run_dir):
                return ""
            self.progress.set_cell(cell)
            self.tabs.setCurrentIndex(0)
            return "followed"
        self.stop_following()
        try:
            toy = load_run_config(run_dir).data.source == "toy"
        except ConfigError:
            toy = False
        self.banner.dismiss()
        self._clear_live_view(truth_expected=toy)
        self.charts.load_events(self._run_events(str(run_dir)))
        self.progress.reset(status.capitalize(), done=status == "completed")
        self.progress.set_cell(cell)
        self.soft_targets.load_run_probes(str(run_dir))  # first: its probes come quicker than its models
        self.soft_targets.set_run_dir(str(run_dir))
        self.tabs.setCurrentIndex(0)
        self.statusBar().showMessage(f"Showing {run_dir.name} ({status}); loading its models...", 6000)
        return "shown"

    def _on_sweep_finished(self, result: Any) -> None:
        path = self.controller.sweep_dir()
        name = Path(path).name if path else "the sweep"
        self.progress.set_cell("")
        self.runs_panel.refresh()
        if path:
            self.runs_panel.sweeps.select(path)
        if isinstance(result, SweepFinished):
            if result.status == "completed":
                self.progress.reset("Sweep completed", done=True)
                self.statusBar().showMessage(f"{name} completed.", 10000)
            elif result.status == "stopped":
                self.progress.reset("Sweep stopped")
                self.banner.show_message(
                    f"{name} stopped; the running cell kept its checkpoint.",
                    "Select it in the Runs tab's Sweeps list and press Resume sweep to continue.",
                    level="info",
                )
            else:
                self.progress.reset("Sweep failed")
                self.banner.show_message(
                    f"{name} ended with a failed cell.", "The Log tab says which and why; the grid shows the rest."
                )
        elif isinstance(result, Failed):
            self.progress.reset("Failed")
            self.banner.show_message(result.message, result.hint)
        self._update_actions()
