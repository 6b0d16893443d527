"""The window's side of the Runs tab: overlaid runs on the charts, a run's configuration into the form, a finished
run into the soft-targets panel, and the cache of run folders' events, a mixin of ``MainWindow``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Slot

from workbench.config.schema import RunConfig
from workbench.run_folder import run_events


class RunsTabMixin:
    """Answers to the runs panel's requests (``_event_cache`` is set in ``MainWindow.__init__``)."""

    _event_cache: dict[str, tuple[float, list]]

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
        if self._cell_overlay is not None:  # a sweep cell clicked during a run (SweepsMixin.show_sweep_cell)
            self.charts.add_overlay(Path(self._cell_overlay).name, self._run_events(self._cell_overlay))

    @Slot(object)
    def _on_open_run_config(self, cfg: RunConfig) -> None:
        # what to train comes from the run; where runs go stays the folder the Runs tab shows (as Load preset keeps it)
        cfg.runs_dir = self.config_panel.config().runs_dir
        self.set_config(cfg)
        self.statusBar().showMessage(f"Loaded the configuration of {cfg.name}", 6000)

    @Slot(str)
    def show_runs(self) -> None:
        self.tabs.setCurrentWidget(self.runs_panel)

    def _on_soft_targets_requested(self, path: str) -> None:
        if self.run_active():
            self.banner.show_message(
                "The soft-targets panel follows the running run.",
                "Inspect another run once this one has finished.",
                level="info",
            )
            return
        self.soft_targets.load_run_probes(path)  # first: reading its probes is quicker than loading its models
        self.soft_targets.set_run_dir(path)
        self.tabs.setCurrentIndex(0)
        self.statusBar().showMessage(f"Loading {Path(path).name} into the soft-targets panel...", 6000)


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
