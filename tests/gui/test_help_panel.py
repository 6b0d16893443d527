"""The help panel ("What am I looking at?"): F1 opens it, a "?" opens it at its section, its numbers follow the
soft-targets panel and the form."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QToolButton

from tests.gui.test_soft_targets import VOCAB, make_probe, make_probe_prompt
from workbench.explain import percent
from workbench.probabilities import soften


def _top(probe_prompt, position=-1, temperature=1.0):
    p = soften(np.array(probe_prompt.teacher_logits[position]), temperature)
    i = int(np.argmax(p))
    return f"“{VOCAB[i].strip()}” {percent(p[i])}"


def test_f1_and_the_help_menu_open_the_panel_with_text_even_before_any_prompt(make_window, qtbot):
    window = make_window()
    assert not window.help_dock.isVisible()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)  # shortcuts need it active
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_F1)
    qtbot.waitUntil(window.help_dock.isVisible, timeout=3000)
    texts = [s.text() for s in window.help_panel.sections()]
    assert len(texts) == 4 and all(len(t) > 200 for t in texts)
    assert "train the demo" in texts[0] and "For “" not in texts[0]
    menus = {a.text().replace("&", ""): a.menu() for a in window.menuBar().actions()}
    assert window.help_action in menus["Help"].actions()
    assert "F1" in window.help_action.shortcut().toString()
    # presentation mode enlarges it with the other panels (an audience reads it too)
    before = window.help_panel.browser.document().defaultFont().pointSizeF()
    window.set_presentation(True, fullscreen=False)
    assert window.help_panel.browser.document().defaultFont().pointSizeF() > before * 1.2
    window.set_presentation(False)
    assert window.help_panel.browser.document().defaultFont().pointSizeF() == before


def test_a_question_mark_opens_the_panel_at_its_section(make_window, qtbot):
    window = make_window()
    window.soft_targets.handle_event(make_probe())
    button = window.soft_targets.findChild(QToolButton, "help_kl")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(window.help_dock.isVisible, timeout=3000)
    assert window.help_panel.current_section == "kl"
    scroll = window.help_panel.browser.verticalScrollBar()
    qtbot.waitUntil(lambda: scroll.value() > 0, timeout=3000)  # the last section: scrolled down to it
    assert "▶ Forward vs reverse KL" in window.help_panel.browser.toPlainText()
    # the form's T² switch has its own, which scrolls back up to that section
    form_button = window.config_panel.editor("distill.t_squared").findChild(QToolButton, "help_t_squared")
    low = scroll.value()
    qtbot.mouseClick(form_button, Qt.MouseButton.LeftButton)
    assert window.help_panel.current_section == "t_squared"
    qtbot.waitUntil(lambda: 0 < scroll.value() < low, timeout=3000)
    for name in ("help_soft_targets", "help_temperature"):
        window.soft_targets.findChild(QToolButton, name).click()
        assert window.help_panel.current_section == name.removeprefix("help_")


def test_the_text_follows_the_prompts_distribution_temperature_position_and_the_form(make_window, qtbot):
    window = make_window()
    window.show_help()
    first = make_probe_prompt(seed=0)
    window.soft_targets.handle_event(make_probe(100, [first]))
    panel = window.help_panel
    assert _top(first) in panel.section_text("soft_targets")
    # a new probe with other logits: the numbers change with it
    second = make_probe_prompt(seed=5)
    second.teacher_logits[-1][VOCAB.index(" mat")] -= 6
    window.soft_targets.handle_event(make_probe(200, [second]))
    assert _top(first) != _top(second)
    assert _top(second) in panel.section_text("soft_targets")
    assert _top(first) not in panel.section_text("soft_targets")
    # the temperature slider: the soft targets quote the bars at that T
    before = panel.section_text("temperature")
    window.soft_targets.temperature_slider.setValue(window.soft_targets.temperature_slider.value() + 200)
    t = window.soft_targets.state.temperature
    assert panel.section_text("temperature") != before
    assert _top(second, temperature=t) in panel.section_text("soft_targets")
    # another position: its known next token is the hard label
    window.soft_targets.set_position(2)
    assert "The hard label says only “sitting” (100%)" in panel.section_text("soft_targets")
    # the form's switch
    assert "is  on" in panel.section_text("t_squared")
    window.config_panel.editor("distill.t_squared").input.click()
    qtbot.waitUntil(lambda: "is  off" in panel.section_text("t_squared"), timeout=3000)  # the form's 150 ms
    # nothing shown any more: back to the generic text
    window.soft_targets.clear()
    assert "For “" not in panel.section_text("soft_targets")
