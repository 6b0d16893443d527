"""The run bar's progress strip: the share of time an on-policy run spends generating its own samples."""

from __future__ import annotations

from workbench import events as ev
from workbench.gui.window.run_bar import GeneratingShare


def _step(step: int, elapsed: float, generate: float, stage: str = "distill") -> ev.Step:
    return ev.Step(stage, step, 100, 2.0, 1.0, 1.0, 1e-3, 1.0, 500.0, elapsed, 10.0, 0, generate)


def test_the_share_is_generation_time_over_the_time_between_updates_and_unknown_off_policy():
    share = GeneratingShare(windows=3)
    assert share.take(_step(5, 10.0, 0.5)) is None  # the first window's length is not known
    assert share.take(_step(10, 12.0, 0.5)) == 0.25
    assert share.take(_step(15, 14.0, 1.5)) == 0.5  # (0.5 + 1.5) / (2 + 2)
    for n in range(3):
        share.take(_step(20 + 5 * n, 16.0 + 2 * n, 2.0))
    assert share.share() == 1.0  # only the last 3 windows count
    assert share.take(_step(5, 30.0, 0.0, stage="teacher")) is None  # a new stage starts again
    off = GeneratingShare()
    for n in range(5):
        assert off.take(_step(5 * n, 2.0 * n, 0.0)) is None  # on-policy off: nothing to say


def test_the_strip_says_how_much_of_the_time_goes_to_generating_only_when_on_policy(
    make_window, runs_dir, qtbot, tiny_config
):
    window = make_window(tiny_config(runs_dir))
    window._on_run_event(ev.StageStarted("distill", 100, ""))
    for n in range(1, 4):
        window._on_run_event(_step(5 * n, 2.0 * n, 0.0))
    assert "generating" not in window.progress.summary_text()
    assert "generating" not in window.progress.detail_label.toolTip()
    window.progress.reset("Starting...")
    window._on_run_event(ev.StageStarted("distill", 100, ""))
    for n in range(1, 5):
        window._on_run_event(_step(5 * n, 2.0 * n, 0.64))
    assert "generating 32%" in window.progress.summary_text()
    assert "on-policy" in window.progress.detail_label.toolTip()
