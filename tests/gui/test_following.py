"""File > Open run folder...: the real window follows a run folder that another process writes."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

from workbench import events as ev
from workbench.gui.window.following import POLL_MS

from .conftest import TINY_OVERRIDES

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 180_000  # ms; the CLI imports torch, then runs a few seconds (more on a loaded machine)

# Appends the lines of a prepared events file the way a run does (one flushed line at a time), stops half-way
# in the middle of a line until the test creates "go", and writes status.json just before the final event, as
# engine/train/run.py does.
WRITER = r"""
import json, pathlib, sys, time
folder, source, half = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
lines = source.read_text().splitlines(keepends=True)
(folder / "status.json").write_text(json.dumps({"status": "running", "pid": 1}))
with open(folder / "events.jsonl", "a") as out:
    for line in lines[:half]:
        out.write(line); out.flush(); time.sleep(0.01)
    out.write(lines[half][:12]); out.flush()
    (folder / "half-written").write_text("")
    while not (folder / "go").exists():
        time.sleep(0.02)
    out.write(lines[half][12:]); out.flush()
    for line in lines[half + 1:-1]:
        out.write(line); out.flush(); time.sleep(0.01)
    (folder / "status.json").write_text(json.dumps({"status": "completed", "pid": 1}))
    time.sleep(2 * POLL_MS / 1000)
    out.write(lines[-1]); out.flush()
""".replace("POLL_MS", str(POLL_MS))


def _events(total: int) -> list:
    out: list = [ev.StageStarted("setup"), ev.StageStarted("distill", total)]
    for n in range(1, total + 1):
        loss = 3.0 / n
        out.append(ev.Step("distill", n, total, loss, loss / 2, loss / 2, 1e-3, 1.0, 500.0, n, total - n))
        if n % 5 == 0:
            out.append(ev.Eval("distill", n, {"student_ce": loss, "kl_teacher_student": loss / 3}))
    out.append(ev.Finished("completed", "", {"steps": total}))
    return out


def _points(window, chart, key) -> int:
    series = window.charts.charts[chart].series.get(key)
    return 0 if series is None else len(series.data)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def test_a_followed_run_fills_the_charts_as_another_process_writes_it(make_window, tmp_path, qtbot, runs_dir):
    folder = tmp_path / "20260101-000000-elsewhere"
    folder.mkdir()
    prepared = _events(20)
    source = tmp_path / "prepared.jsonl"
    source.write_text("".join(ev.to_json(e) + "\n" for e in prepared))
    half = next(i for i, e in enumerate(prepared) if getattr(e, "step", 0) == 11 and e.kind == "step")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(source), str(half)])
    try:
        window = make_window()
        qtbot.waitUntil(lambda: (folder / "events.jsonl").exists(), timeout=30_000)
        assert window.follow_run_folder(folder)
        assert window.follow_label.text() == f"Following {folder.name}"

        # half-way: what was written so far is shown; step 11's line is torn and not shown yet
        qtbot.waitUntil(
            lambda: window.progress.bar.value() == 10 and (folder / "half-written").exists(), timeout=30_000
        )
        qtbot.waitUntil(lambda: window._follower.offset == (folder / "events.jsonl").stat().st_size, timeout=10_000)
        assert window.is_following()
        assert _points(window, "loss", "loss") == 10
        assert window.progress.bar.format() == "10 / 20"
        # Pause and Stop act on our own runs: disabled, and they say why
        for action in (window.pause_action, window.stop_action, window.cancel_action):
            assert not action.isEnabled() and "another process" in action.toolTip()
        assert window.stop_following_action.isEnabled()

        (folder / "go").write_text("")
        qtbot.waitUntil(lambda: not window.is_following(), timeout=30_000)
        assert writer.wait(timeout=30) == 0
    finally:
        writer.kill()
        writer.wait()
    window.charts.redraw_now()
    assert _points(window, "loss", "loss") == 20  # every step once: nothing was read twice
    assert _points(window, "kl", "kl_teacher_student") == 4
    assert "Completed" in window.progress.summary_text()
    assert not window.follow_label.isVisible()
    assert not window.stop_following_action.isEnabled()
    assert "another process" not in window.stop_action.toolTip()  # its own tooltip is back


def test_a_cli_run_in_another_process_is_followed_to_its_end(make_window, tmp_path, qtbot, runs_dir):
    folder = tmp_path / "cli-run"
    command = [sys.executable, "-m", "workbench.cli", "run", "toy-quick", "--run-dir", str(folder)]
    for override in TINY_OVERRIDES:
        command += ["--set", override]
    cli = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        window = make_window()
        qtbot.waitUntil(lambda: (folder / "config.toml").exists() or cli.poll() is not None, timeout=RUN_TIMEOUT)
        assert window.follow_run_folder(folder)
        qtbot.waitUntil(lambda: not window.is_following(), timeout=RUN_TIMEOUT)
        assert cli.wait(timeout=60) == 0, cli.stderr.read()[-2000:]
    finally:
        cli.kill()
        cli.wait()
        cli.stderr.close()
    window.charts.redraw_now()
    assert _points(window, "loss", "loss") >= 8 and _points(window, "loss", "teacher_loss") >= 6
    assert _points(window, "kl", "kl_teacher_student") >= 2
    assert "Completed" in window.progress.summary_text()
    bars = window.soft_targets.bars
    teacher = [float(v) for v in bars.teacher_bars.opts["width"]]
    assert teacher and all(math.isfinite(v) for v in teacher)  # the run's probes reached the soft targets


def test_a_folder_that_is_not_a_run_gets_a_sentence_and_a_hint(make_window, tmp_path):
    window = make_window()
    assert not window.follow_run_folder(tmp_path)
    assert "is not a run folder" in window.banner.message() and "workbench run" in window.banner.hint.text()
    assert not window.is_following()


def test_starting_a_run_of_our_own_stops_following(make_window, tmp_path, qtbot, runs_dir, tiny_config):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "events.jsonl").write_text(ev.to_json(ev.StageStarted("distill", 50)) + "\n")

    def run_fn(config, on_event=None, control=None, *, resume=None):
        return ev.Finished("completed", "", {})

    window = make_window(tiny_config(runs_dir), run_fn=run_fn)
    assert window.follow_run_folder(folder)
    qtbot.waitUntil(lambda: window.progress.bar.maximum() == 50, timeout=10_000)
    with qtbot.waitSignal(window.controller.finished, timeout=30_000):
        assert window.start_run()
        assert not window.is_following()
    assert not window.follow_label.isVisible()
