"""Following a run folder that another process writes (the CLI, ``torchrun``, another machine on a shared
disk), a mixin of ``MainWindow``.

A timer on the GUI thread reads what was appended to the folder's ``events.jsonl`` since its last tick
(``workbench.follow.EventFollower``: a few thousand lines at most per tick, so the event loop never waits on a
long backlog) and hands each event to the window's event slot, the path live events take: the followed run
looks like one of ours, except that Pause and Stop, which act on our own run, stay disabled.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QFileDialog, QLabel

from workbench.follow import FINAL_STATUSES, MAX_LINES, EventFollower, is_run_folder, written_status
from workbench.run_folder import load_run_config

POLL_MS = 500
CATCH_UP_MS = 15  # between chunks of a backlog: long enough for the window to paint and answer
READ_SECONDS = 0.004  # reading and parsing per tick at most
SHOW_SECONDS = 0.004  # showing what was read: the next tick reads as many lines as this tick showed in that time
MIN_LINES = 20
PROBES_EVERY_S = 0.5  # while a backlog is read, the soft targets are drawn at most this often (the newest probe)
QUIET_TICKS = 3  # a final status.json with no final event after this many empty ticks: the writer is gone
NOT_OURS = "{what} acts on runs started in this window; {name} is run by another process."
LAUNCHED = (
    "{what} acts on a run in this window's process; {name} is {launched}: Stop ends it after the current step "
    "with a checkpoint."
)


class FollowMixin:
    """File > Open run folder...: the charts, soft targets and progress follow another process's run."""

    def _build_following(self) -> None:
        self._follower: EventFollower | None = None
        self._follow_dir: Path | None = None
        self._follow_last_kind = ""
        self._follow_quiet = 0
        self._follow_toy = False
        self._follow_launched = False
        self._follow_final = None
        self._follow_probes: list = []  # probes read but not yet handed to the soft-targets panel
        self._follow_probes_at = 0.0
        # built after the actions: their own tooltips come back when following stops
        self._own_tips = {a: a.toolTip() for a in (self.pause_action, self.stop_action, self.cancel_action)}
        self._follow_timer = QTimer(self)
        self._follow_timer.timeout.connect(self._follow_tick)
        self.follow_label = QLabel(self)
        self.statusBar().addPermanentWidget(self.follow_label)
        self.follow_label.hide()

    def is_following(self) -> bool:
        return self._follow_dir is not None

    @Slot()
    def open_run_folder_dialog(self) -> None:
        start = str(Path(self.config_panel.config().runs_dir).expanduser())
        path = QFileDialog.getExistingDirectory(self, "Open run folder", start)
        if path:
            self.follow_run_folder(path)

    def follow_run_folder(self, path: str | Path) -> bool:
        """Show the run in ``path`` and follow it as its events arrive; False (with a banner) if it cannot."""
        path = Path(path)
        if self.run_active():
            self.banner.show_message(
                "A run of this window is running, so its charts cannot follow another one.",
                "Open the folder once it has finished, or stop it first.",
                level="info",
            )
            return False
        if not is_run_folder(path):
            self.banner.show_message(
                f"{path.name or path} is not a run folder: it has neither a config.toml nor an events.jsonl.",
                "Pick a folder made by `workbench run` (or the folder given to it with --run-dir).",
            )
            return False
        self.stop_following()
        try:
            toy = load_run_config(path).data.source == "toy"
        except Exception:  # noqa: BLE001 - no or unreadable config.toml: its events still show
            toy = False
        self.banner.dismiss()
        self._clear_live_view(truth_expected=toy)
        self.progress.reset("Following...")
        self._begin_following(path, toy)
        return True

    def _begin_following(self, path: Path, toy: bool, launched_by: str = "") -> None:
        """Follow ``path`` (the live view already cleared); ``launched_by``: the launched run's description
        (``LaunchMixin``), whose end is the launcher's exit rather than the folder's status."""
        self._follow_toy = toy
        self._follower = EventFollower(path / "events.jsonl")
        self._follow_dir = path
        self._follow_launched = bool(launched_by)
        self._follow_final = None
        self._follow_last_kind = ""
        self._follow_quiet = 0
        self._follow_probes, self._follow_probes_at = [], 0.0
        self.follow_label.setText(f"{launched_by}: {path.name}" if launched_by else f"Following {path.name}")
        self.follow_label.setToolTip(str(path))
        self.follow_label.show()
        self._mark_not_ours(path.name, launched_by)
        self.log_view.add(f"Following {path}")
        self.statusBar().showMessage(f"Following {path.name}", 6000)
        self._follow_timer.start(0)  # the first tick at once; then every POLL_MS
        self._update_actions()

    @Slot()
    def stop_following(self) -> None:
        """Stop reading the followed folder (what was shown stays)."""
        if self._follow_dir is None:
            return
        self._follow_timer.stop()
        self.charts.set_catching_up(False)
        self.log_view.add(f"Stopped following {self._follow_dir.name}")
        self._follower, self._follow_dir = None, None
        self._follow_launched = False
        self.follow_label.hide()
        self._mark_not_ours(None)
        self._update_actions()

    def _mark_not_ours(self, name: str | None, launched_by: str = "") -> None:
        """Pause and Stop are disabled while following (no run of ours); their tooltips say why. A launched run
        is ours to stop (SIGTERM, a checkpoint), not to pause or cancel: those act on a run in this process."""
        for action, what in ((self.pause_action, "Pause"), (self.stop_action, "Stop"), (self.cancel_action, "Cancel")):
            if not name or (launched_by and action is self.stop_action):
                action.setToolTip(self._own_tips[action])
            elif launched_by:
                action.setToolTip(LAUNCHED.format(what=what, name=name, launched=launched_by.lower()))
            else:
                action.setToolTip(NOT_OURS.format(what=what, name=name))

    @Slot()
    def _follow_tick(self) -> None:
        follower, folder = self._follower, self._follow_dir
        if follower is None or folder is None:
            return
        batch = follower.read_new(READ_SECONDS)
        if batch.started_over:
            self._clear_live_view(truth_expected=self._follow_toy)
            self._follow_probes = []  # the replaced file's
            self.log_view.add(f"{folder.name}/events.jsonl was replaced; reading it from its start", "warning")
        shown_from = time.perf_counter()
        probes, last_step = [], None
        for event in batch.events:
            self._follow_last_kind = getattr(event, "kind", "")
            if self._follow_last_kind == "probe":
                probes.append(event)  # drawn once, the newest, after the tick's other events
            elif self._follow_last_kind == "step":  # the charts take every step; the progress strip the last
                self.charts.handle_event(event)
                self.progress.generating.take(event)  # but every window counts in the share of time generating
                last_step = event
            else:
                if last_step is not None:
                    self.progress.set_step(last_step, counted=True)  # before a stage or the end changes the strip
                    last_step = None
                self._on_run_event(event)
                if self._follow_last_kind in ("finished", "failed"):
                    self._follow_final = event
        if last_step is not None:
            self.progress.set_step(last_step, counted=True)
        if batch.events and self.first_point_time is None and any(e.kind in ("step", "eval") for e in batch.events):
            self.first_point_time = time.perf_counter()
        # A backlog's probes join the history as they are read, but the bars are drawn (one draw, the newest
        # probe) at most every PROBES_EVERY_S until it is caught up: drawing them on every tick cost more than
        # reading the tick's lines.
        self._follow_probes += probes
        now = time.perf_counter()
        if self._follow_probes and (not batch.more or now - self._follow_probes_at >= PROBES_EVERY_S):
            self.soft_targets.handle_probes(self._follow_probes)
            self._follow_probes, self._follow_probes_at = [], now
        if batch.events:  # the next tick reads what can be shown in SHOW_SECONDS at this tick's pace
            per_event = (time.perf_counter() - shown_from) / len(batch.events)
            follower.max_lines = max(MIN_LINES, min(MAX_LINES, int(SHOW_SECONDS / max(per_event, 1e-7))))
        self.charts.set_catching_up(batch.more)
        if batch.more:
            self._follow_timer.setInterval(CATCH_UP_MS)
            return
        self._follow_timer.setInterval(POLL_MS)
        if self._follow_launched:
            if not self.launcher.is_running():  # it has exited, and every line it wrote has been read
                self._launched_run_ended(folder, self._follow_final)
            return
        status = written_status(folder)
        if status not in FINAL_STATUSES:
            self._follow_quiet = 0
            return
        # status.json is written just before the final event: wait for that event (or for a quiet file)
        self._follow_quiet = 0 if batch.events else self._follow_quiet + 1
        if self._follow_last_kind in ("finished", "failed") or self._follow_quiet >= QUIET_TICKS:
            self._followed_run_ended(folder, status)

    def _followed_run_ended(self, folder: Path, status: str) -> None:
        skipped = self._follower.skipped if self._follower is not None else 0
        self.stop_following()
        self.charts.redraw_now()
        self.runs_panel.refresh()
        if status == "completed":
            self.progress.reset("Completed", done=True)
            if (folder / "student").is_dir():  # its final models answer typed prompts (loaded off this thread)
                self.soft_targets.set_run_dir(str(folder))
        else:
            self.progress.reset(status.capitalize())
        note = f"; {skipped} line(s) of its events.jsonl were not events and were skipped" if skipped else ""
        self.statusBar().showMessage(f"{folder.name} {status} (followed){note}.", 10000)
        self.log_view.add(f"Followed run {status}: {folder}{note}")
