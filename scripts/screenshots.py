"""Screenshots of the real window for the README and demos.

    python scripts/screenshots.py OUTDIR [--preset toy-quick] [--size 1600x1000]

Opens the window offscreen, trains a ``toy-quick`` run in the background thread
and writes:

- ``main-midrun.png``     the window during distillation: curves and soft-target bars
- ``runs-overlay.png``    the no-distillation baseline with the distilled run overlaid
- ``runs-table.png``      the runs tab: both runs ticked, their config diff
- ``presentation.png``    presentation mode (large fonts, configuration hidden)
- ``light.png``           the light theme
- ``architecture.png``    the architecture tab (teacher and student block by block)
- ``replay.png``          the distilled run reopened from the Runs tab, replayed at an early distillation step
- ``bought-card.png``     "What distillation bought": the teacher, the distilled student and its baseline
- ``help-panel.png``      the "What am I looking at?" panel (F1) beside the replayed run's bars
- ``student-text.png``    that run's Student's text tab at its last probe: the student's sampled tokens coloured
                          by the teacher's surprise, forbidden words struck out, the grammatical rate over the run
- ``sweep-grid.png``      a 2x2 sweep (temperature x alpha) distilling that run's teacher, its grid opened from
                          the Runs tab (four more runs of the preset's distillation steps; no teacher trained)

Exits non-zero if a run fails or a step times out. Settings go to a temporary
folder, so the user's remembered layout is neither used nor changed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _wait(app, predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def _settle(app, seconds: float = 0.4) -> None:
    """Let timers (chart redraws at 15 Hz) and layouts catch up before a grab."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def sweep_grid_shot(app, window, cfg, kd_run: str | Path, out: Path, timeout: float) -> Path:
    """Run a 2x2 sweep of ``cfg`` (temperature x alpha) distilling the teacher of ``kd_run``, open its grid from
    the Runs tab and save the grid as ``out/sweep-grid.png``."""
    from workbench.engine.sweep_runner import run_sweep, with_shared_teacher
    from workbench.sweep import Sweep

    base = with_shared_teacher(cfg, Path(kd_run) / "teacher")
    sweep = Sweep.from_grid(base, ["distill.temperature=1,4", "distill.alpha=0.5,0.9"])
    sweep_dir = sweep.create_dir(cfg.runs_dir)
    started = time.monotonic()
    finished = run_sweep(sweep_dir)  # on this thread: the window waits, as it would for any long step here
    if finished.status != "completed":
        raise RuntimeError(f"the sweep ended {finished.status} (see {sweep_dir})")
    if time.monotonic() - started > 4 * timeout:
        raise TimeoutError("the sweep took longer than four runs are allowed")
    window.runs_panel.refresh()
    window.show_runs()
    window.runs_panel.sweeps.select(sweep_dir)
    window.runs_panel.sweeps.open_button.click()
    grid_window = window.runs_panel.sweep_window
    grid_window.resize(900, 560)
    _settle(app)
    path = out / "sweep-grid.png"
    if not grid_window.save_png(path):
        raise RuntimeError(f"could not write {path}")
    print(f"wrote {path}")
    grid_window.close()
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--preset", default="toy-quick")
    parser.add_argument("--size", default="1600x1000", help="window size WIDTHxHEIGHT")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for each run")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    out: Path = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WORKBENCH_SETTINGS_DIR", tempfile.mkdtemp(prefix="workbench-settings-"))

    from PySide6.QtWidgets import QApplication

    from workbench.config.presets import load_config
    from workbench.events import Failed, Probe, Step
    from workbench.gui import app as gui_app
    from workbench.gui import theme

    app = QApplication.instance() or QApplication([sys.argv[0]])
    gui_app.configure_settings()
    theme.apply_theme(app, "dark")
    from workbench.gui.window.main_window import MainWindow

    cfg = load_config(args.preset)
    cfg.runs_dir = str((out / "runs").resolve())
    window = MainWindow(cfg, base=args.preset, restore_settings=False)
    window.resize(width, height)
    window.show()
    _settle(app, 1.0)

    seen: dict[str, object] = {"step": None, "probe": None, "failed": None}

    def follow(event) -> None:  # a direct observer on the GUI thread (the signal is queued to it)
        if isinstance(event, Step) and event.stage == "distill":
            seen["step"] = event
        elif isinstance(event, Probe) and event.stage == "distill":
            seen["probe"] = event
        elif isinstance(event, Failed):
            seen["failed"] = event

    window.controller.event.connect(follow)

    def shot(name: str) -> None:
        _settle(app)
        path = out / name
        if not window.grab().save(str(path)):
            raise RuntimeError(f"could not write {path}")
        print(f"wrote {path}")

    def finished_ok() -> None:
        _wait(app, lambda: not window.controller.is_running(), args.timeout, "the run to finish")
        result = window.controller.last_result()
        if isinstance(result, Failed):
            raise RuntimeError(f"the run failed: {result.message} {result.hint}")

    try:
        # 1. Mid-run: distillation well under way, with a probe from the distillation stage.
        window.start_run()
        total = cfg.train.max_steps

        def midway() -> bool:
            step = seen["step"]
            return (
                seen["failed"] is not None
                or not window.controller.is_running()
                or (step is not None and step.step >= total * 0.6 and seen["probe"] is not None)
            )

        _wait(app, midway, args.timeout, "the middle of distillation")
        if seen["failed"] is not None or not window.controller.is_running():
            finished_ok()
            raise RuntimeError("the run ended before a mid-run screenshot could be taken")
        window.pause_action.trigger()  # hold still for the picture
        _wait(app, lambda: window.controller.state() == "paused", 30, "the pause")
        shot("main-midrun.png")
        window.pause_action.trigger()
        finished_ok()
        kd_run = window.controller.run_dir()

        # 2. Baseline (alpha = 0) of the finished run, with the distilled run overlaid.
        window.runs_panel.refresh()
        window.runs_panel.select_run(kd_run)
        if not window.start_baseline(kd_run):
            raise RuntimeError("the baseline run did not start")
        finished_ok()
        window.charts.auto_range()
        shot("runs-overlay.png")
        # The runs table with both runs ticked: their config diff shows alpha and the name.
        window.runs_panel.set_checked(window.controller.run_dir(), True)
        window.runs_panel.select_run(window.controller.run_dir())
        window.show_runs()
        shot("runs-table.png")
        window.runs_panel.set_checked(window.controller.run_dir(), False)
        window.tabs.setCurrentIndex(0)
        # The card: what the distilled student bought over the same student trained on hard labels.
        card = window.runs_panel.show_bought(kd_run, baseline=window.controller.run_dir())
        if card is None:
            raise RuntimeError("the 'What distillation bought' card did not open")
        _settle(app)
        card_path = out / "bought-card.png"
        if not card.save_png(card_path):
            raise RuntimeError(f"could not write {card_path}")
        print(f"wrote {card_path}")
        card.close()

        # 3. Presentation mode (not full screen: the offscreen screen is small).
        window.set_presentation(True, fullscreen=False)
        window.resize(width, height)
        shot("presentation.png")
        window.set_presentation(False)

        # 4. Light theme.
        window.set_theme("light")
        window.resize(width, height)
        shot("light.png")

        # 5. Architecture view.
        window.tabs.setCurrentWidget(window.arch_view)
        shot("architecture.png")
        window.tabs.setCurrentIndex(0)
        window.set_theme("dark")

        # 6. Replay: the distilled run opened from the Runs tab, its probes read back from events.jsonl,
        # shown at an early distillation step (the student has not learned yet).
        panel = window.soft_targets
        panel.clear()
        window.runs_panel.refresh()
        window.runs_panel.select_run(kd_run)
        window.runs_panel.soft_button.click()
        _wait(app, lambda: panel.state.history(), 120, "the run's probes")
        early = [i for i, e in enumerate(panel.state.history()) if e.stage == "distill"]
        if len(early) < 2:
            raise RuntimeError("the run has fewer than two distillation probes to replay")
        panel.select_step(early[1])
        shot("replay.png")
        # The help panel (F1) explains those bars with their own numbers.
        window.show_help()
        shot("help-panel.png")
        window.help_dock.hide()
        # The student's own text at the last probe, the grammatical rate over the run's probes beside it.
        panel.follow_live()
        panel.views.setCurrentWidget(panel.student_text)
        shot("student-text.png")
        panel.views.setCurrentWidget(panel.next_word)

        # 7. A sweep over temperature and alpha, its grid opened from the Runs tab.
        sweep_grid_shot(app, window, cfg, kd_run, out, args.timeout)

    finally:
        if window.controller.is_running():
            window.controller.shutdown()  # never leave the training thread running at exit
        window.close()
        _settle(app, 0.2)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as err:  # noqa: BLE001 - one line and a non-zero exit for scripts and CI
        print(f"screenshots: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)
