"""The Train loss chart's hidden-state curve (distill.hidden_weight): drawn when Step events carry the term,
absent when they do not, and old events.jsonl lines without the field still read."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from workbench.events import StageStarted, Step, event_from_dict, to_json
from workbench.gui.charts.panel import ChartsPanel
from workbench.gui.palette import HIDDEN_COLOR, KD_COLOR


def step(n, hidden=math.nan):
    return Step("distill", n, 10, 2.0 - 0.1 * n, 0.5, 3.0, 1e-3, 1.0, 1e4, 1.0, 1.0, hidden=hidden)


@pytest.fixture
def panel(qtbot):
    widget = ChartsPanel()
    widget._timer.stop()
    qtbot.addWidget(widget)
    widget.resize(1200, 700)
    yield widget
    widget.shutdown()


def test_step_events_with_the_term_draw_the_hidden_state_curve(panel):
    panel.handle_event(StageStarted("distill", 10))
    for n in range(1, 5):
        panel.handle_event(step(n, hidden=0.1 / n))
    panel.redraw_now()
    chart = panel.charts["loss"]
    x, y = chart.series["hidden"].main.getOriginalDataset()
    np.testing.assert_array_equal(np.asarray(x), [1, 2, 3, 4])
    np.testing.assert_allclose(np.asarray(y), [0.1, 0.05, 0.1 / 3, 0.025])
    assert chart.legend_entries() == ["total", "KD term", "CE term", "hidden-state"]
    pen = chart.series["hidden"].main.opts["pen"]
    assert pen.color().name() == HIDDEN_COLOR and HIDDEN_COLOR != KD_COLOR
    assert "hidden-state" in chart.legend.text()


def test_without_the_term_there_is_no_hidden_state_curve(panel):
    for n in range(1, 5):
        panel.handle_event(step(n))
    panel.redraw_now()
    chart = panel.charts["loss"]
    assert "hidden-state" not in chart.legend_entries() and "hidden-state" not in chart.legend.text()
    assert len(chart.series["hidden"].data) == 0


def test_old_events_without_the_field_read_as_nan_and_the_term_round_trips():
    line = json.loads(to_json(step(3, hidden=0.25)))
    assert event_from_dict(line).hidden == 0.25
    del line["hidden"]  # written before the field existed
    assert math.isnan(event_from_dict(line).hidden)
    assert math.isnan(event_from_dict(json.loads(to_json(step(3)))).hidden)  # NaN is written as null


# -- the configuration form ---------------------------------------------------------


@pytest.fixture
def form(qtbot):
    from workbench.gui.form.panel import ConfigPanel

    widget = ConfigPanel()
    qtbot.addWidget(widget)
    widget.resize(460, 900)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


def test_the_form_takes_a_small_weight_shows_the_distance_only_when_on_and_marks_a_refusal(form, qtbot):
    from workbench.config.schema import RunConfig

    assert not form.editor("distill.hidden_loss").isVisibleTo(form)  # off: which distance does not matter
    line = form.editor("distill.hidden_weight").input
    line.setFocus()
    line.selectAll()
    qtbot.keyClicks(line, "0.001")  # a weight for MSE on a wide stream: not rounded away to 0
    qtbot.waitUntil(lambda: form.config().distill.hidden_weight == 0.001, timeout=2000)
    assert form.editor("distill.hidden_loss").isVisibleTo(form)
    combo = form.editor("distill.hidden_loss").input
    assert [combo.itemData(i) for i in range(combo.count())] == ["cosine", "mse"]
    cfg = RunConfig()
    cfg.distill.hidden_weight, cfg.student.source = 0.5, "custom"
    form.set_config(cfg)
    assert [e.field for e in form.errors()] == ["distill.hidden_weight"]
    assert "derived student" in form.editor("distill.hidden_weight").error()
