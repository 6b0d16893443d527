"""The "What distillation bought" card: opened from the Runs tab for a finished run, its numbers the summaries',
Copy as text on the clipboard, Save PNG a picture."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QGuiApplication, QImage

from tests.test_bought import BASELINE, RUN, make_run


def _panel(qtbot, runs_dir):
    from workbench.gui.runs.runs_panel import RunsPanel

    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_runs_dir(runs_dir)
    return panel


def test_the_runs_tab_opens_the_card_of_a_finished_run_beside_its_baseline(qtbot, runs_dir):
    run = make_run(runs_dir, "20260101-100000-kd", RUN)
    base = make_run(runs_dir, "20260101-110000-kd-baseline", BASELINE, alpha=0.0)
    running = make_run(runs_dir, "20260101-120000-kd-live", None)
    panel = _panel(qtbot, runs_dir)
    panel.select_run(running)
    assert not panel.bought_button.isEnabled() and not panel.bought_action.isEnabled()
    panel.select_run(run)
    assert panel.bought_button.isEnabled() and panel.bought_action.isEnabled()
    assert panel.bought_card is None
    panel.bought_button.click()
    card = panel.bought_card
    assert card is not None and card.isVisible()
    qtbot.addWidget(card)
    assert card.card.baseline_path == str(base.resolve()) or card.card.baseline_path == str(base)
    assert card.cells[("kl_true", "distilled")].text() == "0.260"
    assert card.cells[("kl_true", "baseline")].text() == "0.500"
    assert card.cells[("top1", "baseline")].text() == "80.1%"
    assert card.cells[("latency_ms", "teacher")].text() == "6.00 ms"
    assert card.cells[("kl_teacher", "teacher")].text() == "–"
    assert [big.text() for big, _ in card.headline_labels] == ["13.5x", "6.0x", "48%"]
    assert "48% closer to the true distribution" in card.sentence_label.text()
    assert not card.notes_label.isVisible()


def test_the_context_menu_item_is_the_same_action(qtbot, runs_dir):
    run = make_run(runs_dir, "20260101-100000-kd", RUN)
    panel = _panel(qtbot, runs_dir)
    panel.select_run(run)
    panel.bought_action.trigger()
    assert panel.bought_card is not None and panel.bought_card.isVisible()
    qtbot.addWidget(panel.bought_card)
    assert panel.bought_card.card.baseline_path is None
    assert "Baseline (alpha = 0)" in panel.bought_card.notes_label.text()  # says how to get the comparison
    assert ("kl_true", "baseline") not in panel.bought_card.cells


def test_copy_as_text_puts_the_card_on_the_clipboard_and_save_png_writes_a_picture(qtbot, runs_dir, tmp_path):
    run = make_run(runs_dir, "20260101-100000-kd", RUN)
    make_run(runs_dir, "20260101-110000-kd-baseline", BASELINE, alpha=0.0)
    panel = _panel(qtbot, runs_dir)
    card = panel.show_bought(run)
    qtbot.addWidget(card)
    QGuiApplication.clipboard().setText("")
    card.copy_button.click()
    text = QGuiApplication.clipboard().text()
    assert text == card.card.text()
    assert "Hard-label student" in text and "0.500" in text and "48% closer" in text
    out = tmp_path / "card.png"
    assert card.save_png(out)
    image = QImage(str(out))
    assert not image.isNull() and image.width() >= 600 and image.height() > 200


def test_save_png_button_asks_for_a_file_and_writes_it(qtbot, runs_dir, tmp_path, monkeypatch):
    from workbench.gui.runs import bought_card

    run = make_run(runs_dir, "20260101-100000-kd", RUN)
    panel = _panel(qtbot, runs_dir)
    card = panel.show_bought(run)
    qtbot.addWidget(card)
    target = tmp_path / "slide"
    monkeypatch.setattr(bought_card.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "PNG images (*.png)"))
    card.save_button.click()
    assert not QImage(str(target) + ".png").isNull()


def test_a_run_that_has_not_finished_gets_no_card(qtbot, runs_dir):
    running = make_run(runs_dir, "20260101-120000-kd-live", None)
    panel = _panel(qtbot, runs_dir)
    assert panel.show_bought(running) is None and panel.bought_card is None


def test_a_hard_label_run_alone_is_not_called_distilled(qtbot, runs_dir):
    base = make_run(runs_dir, "20260101-110000-kd-baseline", BASELINE, alpha=0.0)
    panel = _panel(qtbot, runs_dir)
    card = panel.show_bought(base)
    qtbot.addWidget(card)
    assert card.card.columns == ("teacher", "distilled") and not card.card.distilled
    assert "distilled" not in card.sentence_label.text().lower()
    assert "Student (hard labels)" in card.copy_text() and not card.notes_label.isVisible()


def test_the_card_opens_after_a_run_only_with_a_baseline_or_when_chosen_and_the_choice_is_remembered(
    qtbot, runs_dir, make_window, tiny_config
):
    from workbench.events import Finished

    window = make_window(tiny_config(runs_dir))
    alone = make_run(runs_dir, "20261128-010000-kd", RUN)
    assert not window.bought_after_run_action.isChecked()  # the default
    window._on_run_finished(Finished("completed", str(alone), RUN))
    assert window.runs_panel.bought_card is None  # nothing to compare with: the charts stay in view

    paired = make_run(runs_dir, "20261128-020000-kd", RUN)
    make_run(runs_dir, "20261128-030000-kd-baseline", BASELINE, alpha=0.0)
    window.runs_panel.refresh()
    window._on_run_finished(Finished("completed", str(paired), RUN))  # its baseline trained earlier
    card = window.runs_panel.bought_card
    assert card is not None and card.isVisible() and card.card.run_path == str(paired)
    qtbot.addWidget(card)
    card.close()

    window.bought_after_run_action.trigger()  # Run > Show "What distillation bought" after every run
    window._on_run_finished(Finished("completed", str(alone), RUN))
    assert card.isVisible() and card.card.run_path == str(alone)
    again = make_window(tiny_config(runs_dir), restore_settings=True)
    assert again.bought_after_run_action.isChecked()  # remembered


@pytest.mark.qt_log_ignore("This plugin does not support raise")  # the offscreen platform, bringing it to the front
def test_a_card_shown_again_keeps_room_for_every_row(qtbot, runs_dir):
    # Shown again for a second run (the card opened after a baseline, then from the Runs tab), the window
    # used to shrink below what its table needs and the rows were drawn over each other.
    from workbench.gui.runs.bought_card import show_card

    run = make_run(runs_dir, "20260101-100000-kd", RUN)
    base = make_run(runs_dir, "20260101-110000-kd-baseline", BASELINE, alpha=0.0)
    card = show_card(None, None, run, base)
    qtbot.addWidget(card)
    qtbot.waitExposed(card)
    first = card.content.height()
    label = card.cells[("kl_true", "distilled")]
    assert label.height() >= label.fontMetrics().height()
    card = show_card(card, None, run, base)
    qtbot.wait(50)
    assert card.content.height() >= first
    assert label is not card.cells[("kl_true", "distilled")]
    label = card.cells[("kl_true", "distilled")]
    assert label.height() >= label.fontMetrics().height(), "a table row is cut"
