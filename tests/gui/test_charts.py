"""The live charts: events land in the right curves, NaN leaves gaps, big runs draw, options and exports work."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from workbench.events import Eval, Log, Probe, StageStarted, Step
from workbench.gui.charts.panel import ChartsPanel
from workbench.gui.charts.series import GrowableSeries, ema


def step(stage, n, loss, kd=math.nan, ce=None, lr=1e-3, total=100):
    return Step(stage, n, total, loss, kd, loss if ce is None else ce, lr, 1.0, 1000.0, 1.0, 1.0)


@pytest.fixture
def panel(qtbot):
    widget = ChartsPanel()
    widget._timer.stop()  # the tests redraw by calling redraw_now() / _tick() themselves, never by waiting for it
    qtbot.addWidget(widget)
    widget.resize(1200, 700)
    yield widget
    widget.shutdown()


def curve(panel, chart, key):
    """(x, y) that the chart's main curve was given for ``key``."""
    x, y = panel.charts[chart].series[key].main.getOriginalDataset()
    return np.asarray(x), np.asarray(y)


def two_stage_events():
    return [
        StageStarted("setup"),
        StageStarted("teacher", 10),
        step("teacher", 1, 4.0, lr=1e-3, total=10),
        step("teacher", 2, 3.5, lr=2e-3, total=10),
        Eval("teacher", 2, {"teacher_ce": 3.6, "teacher_ppl": math.exp(3.6), "kl_true_teacher": 1.2}),
        StageStarted("distill", 20),
        step("distill", 1, 2.5, kd=1.0, ce=4.0, lr=5e-4, total=20),
        step("distill", 2, 2.0, kd=0.8, ce=3.2, lr=4e-4, total=20),
        Eval(
            "distill",
            2,
            {
                "student_ce": 3.3,
                "student_ppl": 27.1,
                "teacher_ce": 2.9,
                "kl_teacher_student": 0.4,
                "top1_agreement": 0.6,
                "top5_agreement": 0.9,
                "kl_true_teacher": 0.2,
                "kl_true_student": 0.5,
                "entropy_floor": 2.1,
            },
        ),
        Log("ignored"),
    ]


def test_step_and_eval_events_land_in_their_curves_on_one_step_axis(panel):
    for event in two_stage_events():
        panel.handle_event(event)
    panel.redraw_now()

    # Teacher stage first; distill steps come after the teacher's 10 steps.
    np.testing.assert_array_equal(curve(panel, "loss", "teacher_loss")[0], [1, 2])
    np.testing.assert_array_equal(curve(panel, "loss", "teacher_loss")[1], [4.0, 3.5])
    np.testing.assert_array_equal(curve(panel, "loss", "loss")[0], [11, 12])
    np.testing.assert_array_equal(curve(panel, "loss", "loss")[1], [2.5, 2.0])
    np.testing.assert_array_equal(curve(panel, "loss", "kd")[1], [1.0, 0.8])  # the teacher's NaN kd is not a point
    np.testing.assert_array_equal(curve(panel, "loss", "ce")[1], [4.0, 3.2])
    np.testing.assert_array_equal(curve(panel, "lr", "lr")[1], [1e-3, 2e-3, 5e-4, 4e-4])
    np.testing.assert_array_equal(curve(panel, "heldout", "teacher_ce")[0], [2, 12])
    np.testing.assert_array_equal(curve(panel, "heldout", "student_ce")[1], [3.3])
    np.testing.assert_array_equal(curve(panel, "heldout", "entropy_floor")[1], [2.1])
    np.testing.assert_array_equal(curve(panel, "kl", "kl_teacher_student")[1], [0.4])
    np.testing.assert_array_equal(curve(panel, "agreement", "top5_agreement")[1], [0.9])
    np.testing.assert_array_equal(curve(panel, "truth", "kl_true_teacher")[0], [2, 12])
    np.testing.assert_array_equal(curve(panel, "truth", "kl_true_student")[1], [0.5])
    assert all(chart.boundary is not None and chart.boundary.value() == 10 for chart in panel.charts.values())
    # Legends list only the curves that have data.
    assert panel.charts["loss"].legend_entries() == ["teacher stage", "total", "KD term", "CE term"]
    assert panel.charts["truth"].legend_entries() == ["KL(true‖teacher)", "KL(true‖student)"]


def test_a_lone_point_is_drawn_with_a_marker_until_a_second_one_arrives(panel):
    panel.handle_event(StageStarted("teacher", 10))
    panel.handle_event(step("teacher", 1, 4.0, lr=1e-3, total=10))
    panel.redraw_now()
    main = panel.charts["loss"].series["teacher_loss"].main
    assert main.opts["symbol"] == "o", "a line through one point draws nothing"
    panel.handle_event(step("teacher", 2, 3.5, lr=2e-3, total=10))
    panel.redraw_now()
    assert main.opts["symbol"] is None


def test_the_first_learning_rate_sits_in_a_range_around_it_not_in_minus_400_to_400(panel):
    panel.handle_event(StageStarted("teacher", 10))
    panel.handle_event(step("teacher", 1, 4.0, lr=1e-3, total=10))
    panel.redraw_now()
    view = panel.charts["lr"].plot.getViewBox()
    low, high = view.viewRange()[1]
    assert 0 < low < 1e-3 < high < 2e-3
    panel.handle_event(step("teacher", 2, 3.5, lr=2e-3, total=10))
    panel.redraw_now()
    assert view.autoRangeEnabled()[1], "once the values spread, the axis follows the data again"


def test_events_other_than_steps_and_evals_change_nothing(panel):
    panel.handle_event(Probe("distill", 1, 2.0, []))
    panel.handle_event(Log("hello"))
    assert panel.redraw_now() == 0


def test_nan_in_a_step_leaves_a_gap_and_draws(panel, qtbot):
    panel.handle_event(StageStarted("distill", 5))
    for n, loss in enumerate([3.0, math.nan, 2.0, math.inf, 1.5], start=1):
        panel.handle_event(step("distill", n, loss, kd=0.5, ce=loss))
    panel.show()
    qtbot.waitExposed(panel)
    panel.redraw_now()
    x, y = curve(panel, "loss", "loss")
    assert np.isnan(y[1]) and np.isinf(y[3]) and y[4] == 1.5
    item = panel.charts["loss"].series["loss"].main
    assert item.opts["connect"] == "finite"  # non-finite points break the line instead of connecting across
    assert not panel.grab().isNull()
    assert "–" in panel.charts["loss"].show_readout_at(2)  # hovering the gap shows a dash, not "nan"


def test_hundred_thousand_points_load_and_are_downsampled_for_drawing(panel, qtbot):
    n = 100_000
    rng = np.random.default_rng(0)
    losses = 2.0 + rng.random(n)
    panel.handle_event(StageStarted("distill", n))
    for i in range(n):
        panel.handle_event(Step("distill", i + 1, n, losses[i], 0.5, losses[i], 1e-3, 1.0, 1.0, 1.0, 1.0))
    panel.show()
    qtbot.waitExposed(panel)
    panel.redraw_now()
    x, y = curve(panel, "loss", "loss")
    assert len(x) == n and x[-1] == n
    np.testing.assert_array_equal(y, losses)
    assert not panel.grab().isNull()  # painting sets the view range that downsampling works from
    shown_x, _ = panel.charts["loss"].series["loss"].main.getData()
    assert 0 < len(shown_x) < n / 10  # peak downsampling: what is drawn is a few points per pixel


def test_log_toggle_shows_log10_of_the_values(panel):
    for event in two_stage_events():
        panel.handle_event(event)
    panel.redraw_now()
    item = panel.charts["loss"].series["loss"].main
    np.testing.assert_allclose(item.getData()[1], [2.5, 2.0])
    panel.log_check.setChecked(True)
    np.testing.assert_allclose(item.getData()[1], np.log10([2.5, 2.0]))
    assert not panel.charts["agreement"].log_y  # fractions stay linear
    panel.set_log_scale(False)
    np.testing.assert_allclose(item.getData()[1], [2.5, 2.0])


def test_smoothing_draws_the_ema_over_a_faint_raw_curve(panel):
    values = [3.0, 1.0, 2.0, math.nan, 4.0, 0.5]
    panel.handle_event(StageStarted("distill", 6))
    for n, value in enumerate(values, start=1):
        panel.handle_event(step("distill", n, value, kd=0.1, ce=value))
    panel.redraw_now()
    series = panel.charts["loss"].series["loss"]
    assert not series.raw.isVisible()
    panel.smoothing_slider.setValue(80)
    weight, state, count, expected = 0.8, 0.0, 0, []
    for value in values:  # TensorBoard's debiased EMA, skipping NaN
        if math.isnan(value):
            expected.append(math.nan)
            continue
        state, count = weight * state + (1 - weight) * value, count + 1
        expected.append(state / (1 - weight**count))
    np.testing.assert_allclose(series.main.getOriginalDataset()[1], expected)
    np.testing.assert_array_equal(series.raw.getOriginalDataset()[1], values)
    assert series.raw.isVisible()
    # Held-out metrics are averages already: the slider leaves them alone.
    panel.handle_event(Eval("distill", 6, {"student_ce": 3.0}))
    panel.handle_event(Eval("distill", 7, {"student_ce": 1.0}))
    panel.redraw_now()
    np.testing.assert_array_equal(curve(panel, "heldout", "student_ce")[1], [3.0, 1.0])
    panel.set_smoothing(0)
    np.testing.assert_array_equal(series.main.getOriginalDataset()[1], values)
    assert not series.raw.isVisible()


def test_ema_is_incremental_and_matches_one_pass():
    rng = np.random.default_rng(1)
    values = rng.random(1000)
    values[[5, 500, 999]] = np.nan
    whole, _, _ = ema(values, 0.95)
    head, state, count = ema(values[:333], 0.95)
    tail, _, _ = ema(values[333:], 0.95, state, count)
    np.testing.assert_allclose(np.concatenate([head, tail]), whole)
    assert np.isnan(whole[[5, 500, 999]]).all()


def test_growable_series_keeps_every_point_through_doubling():
    series = GrowableSeries(capacity=2)
    for i in range(100):
        series.append(i, i * i)
    series.extend([100, 101], [1.0, 2.0])
    assert len(series) == 102
    np.testing.assert_array_equal(series.x[:100], np.arange(100))
    np.testing.assert_array_equal(series.y[-2:], [1.0, 2.0])


def test_perplexity_toggle_shows_exp_of_ce(panel):
    for event in two_stage_events():
        panel.handle_event(event)
    panel.redraw_now()
    chart = panel.charts["heldout"]
    chart.ppl_button.setChecked(True)
    np.testing.assert_allclose(chart.series["student_ce"].main.getData()[1], [math.exp(3.3)])
    assert chart.title.text() == "Held-out perplexity"


def test_hover_readout_names_the_nearest_values(panel):
    for event in two_stage_events():
        panel.handle_event(event)
    panel.redraw_now()
    text = panel.charts["loss"].show_readout_at(11.8)
    assert "step 12" in text and "total</span> 2" in text and "KD term</span> 0.8" in text
    assert "teacher stage" not in text  # no teacher-stage point near step 12
    assert panel.charts["loss"].crosshair.value() == 12


def test_csv_export_writes_every_point(panel, tmp_path):
    for event in two_stage_events():
        panel.handle_event(event)
    path = panel.export_csv("loss", tmp_path / "loss.csv")
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["series", "step", "value"]
    assert ["teacher_loss", "1", "4.0"] in rows and ["kd", "12", "0.8"] in rows
    assert len(rows) == 1 + 2 + 2 + 2 + 2


def test_png_export_writes_an_image(panel, tmp_path):
    for event in two_stage_events():
        panel.handle_event(event)
    path = panel.export_png("heldout", tmp_path / "heldout.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_overlay_adds_dashed_curves_with_a_legend_entry_and_clears(panel):
    for event in two_stage_events():
        panel.handle_event(event)
    panel.add_overlay("baseline (alpha=0)", two_stage_events())
    chart = panel.charts["heldout"]
    assert chart.legend_entries()[-1] == "baseline (alpha=0)"
    assert "baseline (alpha=0)" in chart.legend.text().replace("&nbsp;", " ")
    assert "this run: student" in chart.legend.text().replace("&nbsp;", " "), (
        "next to an overlay the live curves say whose they are"
    )
    overlay = chart.overlays[0]
    np.testing.assert_array_equal(overlay.main.getOriginalDataset()[1], [3.3])
    assert overlay.main.opts["pen"].style() == pg_dash()
    assert overlay.spec.color != chart.series["student_ce"].spec.color
    second_color = None
    panel.add_overlay("other run", two_stage_events())
    second_color = chart.overlays[1].spec.color
    assert second_color != overlay.spec.color
    panel.clear_overlays()
    assert chart.overlays == []
    assert "baseline (alpha=0)" not in chart.legend_entries()
    assert "baseline (alpha=0)" not in chart.legend.text().replace("&nbsp;", " ")
    assert "this run:" not in chart.legend.text().replace("&nbsp;", " ")


def pg_dash():
    from PySide6.QtCore import Qt

    return Qt.PenStyle.DashLine


def test_load_events_replays_a_run_and_clear_forgets_it(panel):
    panel.load_events(two_stage_events())
    assert len(curve(panel, "loss", "loss")[0]) == 2
    panel.clear()
    panel.redraw_now()
    assert len(panel.charts["loss"].series["loss"].data) == 0
    assert panel.charts["loss"].boundary is None
    assert panel.charts["loss"].legend_entries() == []


def test_clicking_a_legend_entry_hides_its_curve(panel):
    for event in two_stage_events():
        panel.handle_event(event)
    panel.redraw_now()
    chart = panel.charts["loss"]
    kd = chart.series["kd"].main
    chart.legend.linkActivated.emit("2")  # "KD term", as a click on the legend does
    assert not kd.isVisible() and "<s>KD term</s>" in chart.legend.text().replace("&nbsp;", " ")
    assert "KD term" not in chart.show_readout_at(12)
    chart.toggle_series(2)
    assert kd.isVisible()


def test_shutdown_stops_the_redraw_timer(qtbot):
    widget = ChartsPanel()
    qtbot.addWidget(widget)
    assert widget._timer.isActive()
    widget.shutdown()
    assert not widget._timer.isActive()


def test_a_timer_tick_draws_what_changed_while_shown_and_waits_while_hidden(panel):
    panel.handle_event(StageStarted("distill", 5))
    panel.handle_event(step("distill", 1, 2.0, kd=0.5))
    panel._tick()  # hidden (e.g. another tab): the buffers keep the point, nothing is drawn yet
    assert panel.charts["loss"].series["loss"].dirty
    assert panel.charts["loss"].series["loss"].main.getOriginalDataset() == (None, None)
    panel.show()  # showEvent draws what waited
    assert curve(panel, "loss", "loss")[1].tolist() == [2.0]
    panel.handle_event(step("distill", 2, 1.5, kd=0.5))
    panel._tick()
    assert curve(panel, "loss", "loss")[1].tolist() == [2.0, 1.5]


def test_signals_and_repaints_keep_none_and_true_alive(panel):
    """PySide6 6.12.0 on Python 3.11 drops a reference to True per Python-side emit and to None per
    pyqtgraph paint, until CPython aborts (bool_dealloc) mid-run; pyproject.toml excludes that release.
    This fails fast if a broken binding is installed anyway."""
    import sys

    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        ping = Signal()

    emitter = Emitter()
    true_before = sys.getrefcount(True)
    for _ in range(1000):
        emitter.ping.emit()
    assert sys.getrefcount(True) - true_before > -100, "this PySide6 leaks references to True: install another release"
    panel.handle_event(StageStarted("distill", 5))
    panel.handle_event(step("distill", 1, 1.0, kd=0.5))
    panel.redraw_now()
    none_before = sys.getrefcount(None)
    for _ in range(20):
        panel.grab()
    assert sys.getrefcount(None) - none_before > -100, "this PySide6 leaks references to None: install another release"


def test_overlay_distillation_steps_line_up_with_a_run_that_skipped_stage_one(panel):
    """A baseline reuses its source run's teacher (no stage 1): the source's distillation curve, overlaid, starts
    where the baseline's does, and its teacher stage is left out rather than drawn over the distillation."""
    panel.add_overlay("distilled run", two_stage_events())  # added first, as the window does at a baseline's start
    panel.handle_event(StageStarted("setup"))
    panel.handle_event(StageStarted("distill", 20))
    panel.handle_event(step("distill", 1, 2.7, kd=1.1, ce=4.1, total=20))
    panel.redraw_now()
    overlay = panel.charts["loss"].overlays[0]
    x, _ = overlay.main.getOriginalDataset()
    np.testing.assert_array_equal(x, [1, 2])
    assert curve(panel, "loss", "loss")[0].tolist() == [1]
    # With a teacher stage of its own, the run places distillation after it, and the overlay follows.
    panel.clear()
    panel.add_overlay("distilled run", two_stage_events())
    for event in two_stage_events():
        panel.handle_event(event)
    panel.redraw_now()
    x, _ = panel.charts["loss"].overlays[0].main.getOriginalDataset()
    np.testing.assert_array_equal(x, [11, 12])


def test_the_truth_chart_leaves_the_grid_when_no_run_can_have_a_truth(panel, qtbot):
    panel.show()
    truth = panel.charts["truth"]
    assert truth.isVisible()
    panel.set_truth_expected(False)  # e.g. SmolLM2 on real text: nobody knows the true distribution
    assert not truth.isVisible()
    lr = panel.charts["lr"]
    assert panel._grid.getItemPosition(panel._grid.indexOf(lr))[:2] == (1, 1), "the next chart moves up into its place"
    panel.handle_event(Eval("distill", 5, {"student_ce": 2.0, "kl_true_student": 0.4}))  # a run that does have one
    assert truth.isVisible()
    panel.clear()
    assert not truth.isVisible()
    panel.set_truth_expected(True)
    assert truth.isVisible() and panel._grid.getItemPosition(panel._grid.indexOf(lr))[:2] == (1, 2)


def test_a_curve_with_no_finite_value_has_no_legend_entry(panel):
    # a baseline (alpha = 0) reports its KD term as NaN at every step: nothing to draw, nothing to list
    for n in range(1, 6):
        panel.handle_event(Step("distill", n, 5, 3.0 - 0.1 * n, math.nan, 3.0 - 0.1 * n, 1e-3, 1.0, 1e4, 1.0, 1.0))
    panel.redraw_now()
    entries = panel.charts["loss"].legend_entries()
    assert "total" in entries and "KD term" not in entries


def test_charts_follow_the_distillation_stage_and_fit_all_shows_both(panel):
    panel.show()
    panel.handle_event(StageStarted("teacher", 800))
    for n in range(50, 801, 50):
        panel.handle_event(step("teacher", n, 5.0 - n / 400, total=800))
    panel.handle_event(StageStarted("distill", 300))
    for n in range(10, 101, 10):
        panel.handle_event(step("distill", n, 3.0 - n / 200, kd=1.0, total=300))
    panel.redraw_now()
    low, high = panel.charts["kl"].plot.vb.viewRange()[0]
    assert 780 <= low <= 800 and 1100 <= high <= 1110, (low, high)  # the distillation steps, 800..1100
    panel.auto_range()
    # Auto-ranging settles as the views update (a curve clipped to the old view widens it step by step); a paint
    # would run these updates, here they are run directly, so nothing waits on the event loop or a clock.
    view = panel.charts["loss"].plot.vb
    for _ in range(5):
        for chart in panel.charts.values():
            chart.plot.vb.updateAutoRange()
    low, high = view.viewRange()[0]
    assert low <= 50 and high >= 890, (low, high)


def _shown(panel, qtbot):
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.wait(30)  # pyqtgraph works the auto range out before it paints


def test_step_zero_is_inside_every_chart_when_the_steps_start_at_one(panel, qtbot):
    # The evaluation before the first step sits at step 0; the train curves start at step 1. The charts share
    # one x range, which must not be the train loss chart's alone.
    panel.handle_event(StageStarted("distill", 300))
    panel.handle_event(Eval("distill", 0, {"student_ce": 3.6, "kl_teacher_student": 1.0, "top1_agreement": 0.3}))
    for n in range(1, 6):
        panel.handle_event(step("distill", n, 4.0 - 0.1 * n, kd=1.0, lr=1e-4 * n, total=300))
    panel.redraw_now()
    _shown(panel, qtbot)
    for name, chart in panel.charts.items():
        low, high = chart.plot.vb.viewRange()[0]
        assert low < -0.05 and high > 5, (name, low, high)  # step 0's marker is not cut at the left edge


def test_a_single_value_in_log_scale_sits_inside_its_range(panel, qtbot):
    panel.set_log_scale(True)
    panel.handle_event(StageStarted("teacher", 10))
    panel.handle_event(step("teacher", 1, 4.0, lr=1e-4, total=10))
    panel.redraw_now()
    _shown(panel, qtbot)
    for name, value in (("lr", 1e-4), ("loss", 4.0)):
        low, high = panel.charts[name].plot.vb.viewRange()[1]  # log10 of the values
        assert low < math.log10(value) < high and high - low < 3, (name, low, high)


def test_the_hover_readout_clears_when_the_mouse_leaves_the_plot(panel, qtbot):
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    for event in two_stage_events():
        panel.handle_event(event)
    panel.redraw_now()
    chart = panel.charts["loss"]
    chart.show_readout_at(11.8)
    assert chart.crosshair.isVisible() and chart.readout.text()
    QApplication.sendEvent(chart.plot_widget, QEvent(QEvent.Type.Leave))
    assert not chart.crosshair.isVisible() and chart.readout.text() == ""
    assert "2.0" not in chart.legend.text()  # the values next to the legend's names go too


def test_png_export_leaves_the_readout_out_and_is_sharper_than_the_screen(panel, qtbot, tmp_path):
    from PySide6.QtGui import QImage

    for event in two_stage_events():
        panel.handle_event(event)
    panel.redraw_now()
    _shown(panel, qtbot)
    chart = panel.charts["loss"]
    plain = QImage(str(chart.export_png(tmp_path / "plain.png")))
    chart.show_readout_at(11.8)
    hovered = QImage(str(chart.export_png(tmp_path / "hovered.png")))
    assert hovered == plain, "the crosshair and readout are not baked into the image"
    assert chart.crosshair.isVisible() and chart.readout.text()  # and they are back on screen afterwards
    assert plain.width() >= max(1600, 2 * chart.width())


@pytest.mark.parametrize("points", [9, 16])  # presentation mode enlarges the font
@pytest.mark.parametrize("low, high, height", [(-1.0, 3.0, 160), (-0.3, 2.4, 300), (0.2, 0.9, 120), (-4.5, -1.0, 120)])
def test_log_axis_labels_do_not_overlap(qtbot, low, high, height, points):
    from PySide6.QtGui import QImage, QPainter

    from workbench.gui.charts.chart import Chart
    from workbench.gui.charts.series import CHART_SPECS

    chart = Chart(CHART_SPECS[0])
    qtbot.addWidget(chart)
    font = chart.font()
    font.setPointSize(points)
    chart.setFont(font)
    chart.set_log(True)
    chart.plot_widget.setFixedHeight(height + 40)  # the axis is about ``height`` tall, whatever the font
    chart.resize(420, height + 200)
    chart.show()
    qtbot.waitExposed(chart)
    chart.plot.setYRange(low, high, padding=0)  # log10 of the values: e.g. 0.1 to 1000
    qtbot.wait(30)
    axis = chart.plot.getAxis("left")
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    rects = [rect for rect, _, _ in texts]
    labels = [text for _, _, text in texts]
    assert len(labels) >= 2, (labels, axis.height())
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not a.intersects(b), labels
    # each label is a 1, 2 or 5 times a power of ten
    values = [10**v for level in axis.tickValues(low, high, axis.height()) for v in level[1]]
    for value in values:
        mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
        assert min(abs(mantissa - m) for m in (1, 2, 5)) < 1e-6, values


def test_linked_charts_show_the_same_steps_whatever_their_tick_labels(panel, qtbot):
    # pyqtgraph lines linked views up on screen: a wider left axis ("0.995") used to start its x range later
    # and cut off the stage boundary there.
    panel.handle_event(StageStarted("teacher", 30))
    for n in range(1, 31):
        panel.handle_event(step("teacher", n, 5 - 0.03 * n, total=30))
    panel.handle_event(StageStarted("distill", 40))
    for n in range(1, 41):
        panel.handle_event(step("distill", n, 2 - 0.01 * n, kd=0.5, total=40))
        if n % 4 == 0:
            panel.handle_event(Eval("distill", n, {"student_ce": 5.0 - 0.02 * n, "top1_agreement": 0.99 + n / 4000}))
    panel.redraw_now()
    _shown(panel, qtbot)
    ranges = {name: chart.plot.vb.viewRange()[0] for name, chart in panel.charts.items()}
    for name, (low, high) in ranges.items():
        assert low == pytest.approx(ranges["loss"][0], abs=0.05) and low < 30, (name, low, high)


def _dirty_everywhere(panel, first_step: int) -> None:
    """A Step for the train charts and an Eval for the held-out ones: every chart has a new point."""
    panel.handle_event(step("distill", first_step, 2.0, kd=1.0, ce=3.0))
    panel.handle_event(
        Eval(
            "distill",
            first_step,
            {"student_ce": 3.0, "kl_teacher_student": 0.5, "top1_agreement": 0.5, "kl_true_student": 0.4},
        )
    )


def test_a_tick_redraws_the_charts_that_waited_longest_within_its_paint_budget_and_none_is_starved(panel, monkeypatch):
    """Six charts of 100,000 points each repainted in one tick stalled the window for 60 ms: a tick redraws as
    many charts as their measured paint cost fits in the budget; the rest follow on the next ticks."""
    for chart in panel.charts.values():
        monkeypatch.setattr(chart, "redraw_cost_ms", lambda: 8.0)  # two of them would not fit in 10 ms
    panel.handle_event(StageStarted("distill", 100))
    _dirty_everywhere(panel, 1)
    dirty = [name for name, chart in panel.charts.items() if chart.is_dirty()]
    assert len(dirty) >= 4
    drawn_per_tick = []
    for _ in range(len(dirty)):
        before = {name for name, chart in panel.charts.items() if chart.is_dirty()}
        panel.redraw_some(budget_ms=10.0)
        drawn_per_tick.append(before - {name for name, chart in panel.charts.items() if chart.is_dirty()})
    assert all(len(drawn) == 1 for drawn in drawn_per_tick), drawn_per_tick
    assert not any(chart.is_dirty() for chart in panel.charts.values()), "every dirty chart is drawn in turn"
    assert curve(panel, "kl", "kl_teacher_student")[1].tolist() == [0.5]

    # New points for every chart again: the charts drawn last time wait, the first one drawn goes first now.
    _dirty_everywhere(panel, 2)
    first = drawn_per_tick[0]
    panel.redraw_some(budget_ms=10.0)
    assert first.isdisjoint({name for name, chart in panel.charts.items() if chart.is_dirty()})


def test_while_a_backlog_is_read_the_charts_redraw_on_their_own_ranges_then_share_one_again(panel):
    panel.handle_event(StageStarted("distill", 1000))
    panel.auto_range()
    for name, chart in panel.charts.items():  # as after following the loss chart's range while linked (the
        if name != "loss":  # state a followed run's window was in): their own x auto range is off
            chart.plot.enableAutoRange(axis="x", enable=False)
    panel.handle_event(step("distill", 1, 2.0, kd=1.0, ce=3.0, total=1000))
    panel.set_catching_up(True)
    assert panel._timer.interval() > 1000 / 15, "a slower redraw while the backlog is read"
    for n in range(2, 200):
        panel.handle_event(step("distill", n, 2.0, kd=1.0, ce=3.0, total=1000))
        if n % 50 == 0:
            panel.handle_event(Eval("distill", n, {"student_ce": 3.0, "kl_teacher_student": 0.5}))
    for _ in range(8):
        panel.redraw_some()
    own = panel.charts["kl"].plot.viewRange()[0]
    assert own[0] <= 50 and own[1] >= 150, f"each chart follows its own data meanwhile: {own}"
    panel.set_catching_up(False)
    panel.redraw_now()
    ranges = {name: tuple(round(v) for v in chart.plot.viewRange()[0]) for name, chart in panel.charts.items()}
    assert len(set(ranges.values())) == 1, f"linked again, one x range for all: {ranges}"
    low, high = ranges["loss"]
    assert low <= 1 and high >= 199, "the range spans every step drawn"
    # linked: zooming one zooms them all
    panel.charts["kl"].plot.setXRange(10, 20, padding=0)
    assert [round(v) for v in panel.charts["loss"].plot.viewRange()[0]] == [10, 20]


@pytest.mark.parametrize(
    ("low", "high", "expected"), [(0, 7, 7), (0, 37, 38), (0, 123, 130), (0, 4537, 5000), (1, 385_000, 400_000)]
)
def test_the_shared_x_range_grows_in_steps_of_about_a_twentieth_of_the_span(low, high, expected):
    from workbench.gui.charts.panel import with_headroom

    assert with_headroom(low, high) == expected


def test_the_teachers_per_evaluation_markers_give_way_to_a_line_in_a_long_run(panel):
    from workbench.gui.charts.curves import MAX_MARKERS

    teacher = panel.charts["heldout"].series["teacher_ce"]
    for n in range(1, 6):
        panel.handle_event(Eval("distill", n * 50, {"student_ce": 3.0, "teacher_ce": 2.0}))
    panel.redraw_now()
    assert teacher.main.opts["symbol"] == "o", "a few evaluations: each one marked"
    for n in range(6, MAX_MARKERS + 10):
        panel.handle_event(Eval("distill", n * 50, {"student_ce": 3.0, "teacher_ce": 2.0}))
    panel.redraw_now()
    assert teacher.main.opts["symbol"] is None, "thousands of markers drew a solid band"
    assert len(curve(panel, "heldout", "teacher_ce")[1]) == MAX_MARKERS + 9
