"""How long the live charts take to redraw with 100,000 points per training curve.

Fills a ChartsPanel with ``n_points`` Step events (a fifth in the teacher stage, the rest distillation, with
noise and a NaN gap) and an Eval every 100 steps, shows it at a demo size, then repeatedly appends one more
point to the training curves and times what one tick of the 15 Hz timer costs the event loop: push the dirty
buffers to pyqtgraph and repaint the charts that changed. Also reports a full repaint of all six charts (as after
a resize) and the first tick after the panel is shown (one-time caches). Target: redraw p50 under 20 ms.

    python scripts/bench_chart_redraw.py [--points 100000] [--repeats 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def _events(n_points: int, seed: int = 0) -> list:
    from workbench.events import Eval, StageStarted, Step

    rng = np.random.default_rng(seed)
    n_teacher = n_points // 5
    n_distill = n_points - n_teacher
    noise = rng.normal(0.0, 0.08, n_points)
    events: list = [StageStarted("teacher", n_teacher)]
    for step in range(1, n_teacher + 1):
        ce = 2.0 + 3.0 * math.exp(-step / (n_teacher / 6)) + noise[step - 1]
        events.append(Step("teacher", step, n_teacher, ce, math.nan, ce, 1e-3, 1.0, 1e4, 1.0, 1.0))
        if step % 100 == 0:
            events.append(Eval("teacher", step, {"teacher_ce": ce, "kl_true_teacher": ce - 2.0}))
    events.append(StageStarted("distill", n_distill))
    for step in range(1, n_distill + 1):
        kd = 2.0 * math.exp(-step / (n_distill / 6)) + abs(noise[n_teacher + step - 1])
        ce = 2.3 + kd + noise[n_teacher + step - 1]
        if step == n_distill // 2:
            ce = math.nan  # the charts must leave a gap, not fail
        events.append(Step("distill", step, n_distill, 0.5 * kd + 0.5 * ce, kd, ce, 1e-3, 1.0, 1e4, 1.0, 1.0))
        if step % 100 == 0:
            events.append(
                Eval(
                    "distill",
                    step,
                    {
                        "student_ce": 2.3 + kd,
                        "teacher_ce": 2.1,
                        "kl_teacher_student": kd,
                        "top1_agreement": 0.5,
                        "top5_agreement": 0.8,
                        "kl_true_teacher": 0.1,
                        "kl_true_student": kd,
                        "entropy_floor": 2.0,
                    },
                )
            )
    return events


def measure_redraw(n_points: int = 100_000, repeats: int = 20, size: tuple[int, int] = (1400, 850)) -> dict:
    """Median and worst time (ms) of one timer redraw (data push + paint) of a panel holding ``n_points`` steps."""
    from PySide6.QtWidgets import QApplication

    from workbench.events import Step
    from workbench.gui.charts.panel import ChartsPanel

    app = QApplication.instance() or QApplication([])
    panel = ChartsPanel()
    try:
        panel.resize(*size)
        events = _events(n_points)
        started = time.perf_counter()
        panel.load_events(events)
        panel.show()
        app.processEvents()
        panel.grab()  # the first paint builds caches; not what a user waits for on every tick
        load_s = time.perf_counter() - started
        times, full = [], []
        last = n_points - n_points // 5
        for i in range(-1, repeats):  # i = -1: the first tick after showing, reported apart
            step = last + i + 2
            panel.handle_event(Step("distill", step, step, 1.5, 0.3, 2.5, 1e-3, 1.0, 1e4, 1.0, 1.0))
            t0 = time.perf_counter()
            redrawn = panel.redraw_now()  # what one timer tick does ...
            app.processEvents()  # ... and the repaint of the charts whose curves changed
            if i < 0:
                first_ms = (time.perf_counter() - t0) * 1000.0
            else:
                times.append((time.perf_counter() - t0) * 1000.0)
        for _ in range(max(3, repeats // 4)):
            t0 = time.perf_counter()
            panel.grab()  # every chart painted from scratch (resize, theme change, export)
            full.append((time.perf_counter() - t0) * 1000.0)
        return {
            "n_points": n_points,
            "repeats": repeats,
            "curves_redrawn_per_tick": redrawn,
            "redraw_ms_p50": round(float(np.percentile(times, 50)), 2),
            "redraw_ms_max": round(float(np.max(times)), 2),
            "first_tick_ms": round(first_ms, 2),
            "full_repaint_ms_p50": round(float(np.percentile(full, 50)), 2),
            "load_s": round(load_s, 2),
            "target_ms": 20.0,
        }
    finally:
        panel.shutdown()
        panel.close()
        panel.deleteLater()
        app.processEvents()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = measure_redraw(args.points, args.repeats)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['n_points']:,} points per curve: redraw p50 {result['redraw_ms_p50']} ms, "
            f"max {result['redraw_ms_max']} ms (target < {result['target_ms']:.0f} ms); load {result['load_s']} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
