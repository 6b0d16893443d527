"""The help panel's text (workbench.explain): the user's own numbers, computed here independently."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.events import ProbePrompt
from workbench.explain import SECTIONS, Moment, Settings, explain, moment_from_probe

WORDS = [" mat", " sofa", " floor", " bed", " dog", " the"]
TEACHER = np.array([0.41, 0.22, 0.09, 0.05, 0.03, 0.20])
STUDENT = np.array([0.30, 0.05, 0.10, 0.05, 0.30, 0.20])


def _moment(hard=None, temperature=1.0, student=True):
    return Moment(
        "the cat is sitting on the",
        WORDS,
        np.log(TEACHER),
        np.log(STUDENT) if student else None,
        hard,
        temperature,
    )


def _texts(moment, settings=None):
    sections = explain(moment, settings or Settings())
    assert [s.key for s in sections] == list(SECTIONS)
    return {s.key: s.text() for s in sections}


def _soft(p, t):
    z = np.log(p) / t
    e = np.exp(z - z.max())
    return e / e.sum()


def test_soft_targets_quote_the_teachers_top_words_and_the_hard_label():
    text = _texts(_moment(hard=" sofa"))["soft_targets"]
    assert "For “the cat is sitting on the”, the teacher gives “mat” 41%, “sofa” 22%, “the” 20%, “floor” 9.0%" in text
    assert "The hard label says only “sofa” (100%)" in text
    assert "its choice number 2" in text
    assert "also says “mat”, “the” and “floor” are plausible (41%, 20%, 9.0%)" in text
    assert "The student now gives “mat” 30%, “sofa” 5.0%" in text


def test_at_the_prompts_end_the_hard_label_is_the_teachers_first_word_as_an_example():
    text = _texts(_moment(hard=None))["soft_targets"]
    assert "The prompt ends here" in text and "would say only “mat” (100%)" in text
    assert "also says “sofa”, “the” and “floor” are plausible" in text


def test_a_hard_label_outside_the_probed_words_is_still_named():
    text = _texts(_moment(hard=" armchair"))["soft_targets"]
    assert "The hard label says only “armchair” (100%)" in text and "The prompt ends here" not in text
    assert "also says “mat”, “sofa” and “the” are plausible" in text


def test_temperature_compares_t_1_with_the_bars_t_top_probability_and_entropy_in_bits():
    text = _texts(_moment(temperature=4.0))["temperature"]
    p4 = _soft(TEACHER, 4.0)
    h1 = -(TEACHER * np.log2(TEACHER)).sum()
    h4 = -(p4 * np.log2(p4)).sum()
    assert f"“mat” has 41% at T = 1 and {100 * p4[0]:.0f}% at T = 4" in text
    assert f"from {h1:.2f} bits to {h4:.2f} bits" in text
    assert f"{h1:.2f}" != f"{h4:.2f}"


def test_with_the_slider_at_1_the_temperature_section_uses_the_runs_t():
    text = _texts(_moment(temperature=1.0), Settings(temperature=3.0))["temperature"]
    assert "at T = 3; its entropy" in text and f"{100 * _soft(TEACHER, 3.0)[0]:.0f}%" in text


def test_t_squared_says_whether_the_switch_is_on_and_measures_the_gradient():
    on = _texts(_moment(), Settings(temperature=2.0, t_squared=True))["t_squared"]
    off = _texts(_moment(), Settings(temperature=2.0, t_squared=False))["t_squared"]
    assert "is  on : at T = 2 the soft term is multiplied by T² = 4.00" in on
    assert "is  off : at T = 2 the soft term's gradients are about 4.00 times weaker" in off
    g1 = np.linalg.norm(STUDENT - TEACHER)
    g2 = np.linalg.norm(_soft(STUDENT, 2.0) - _soft(TEACHER, 2.0)) / 2.0
    assert f"{g1:.3f} at T = 1 and {g2:.3f} at T = 2" in on
    assert f"1/T² = 0.250. Times T² = 4.00 it is {4 * g2:.3f}" in on


def test_kl_section_gives_both_divergences_and_the_words_each_charges_most_for():
    text = _texts(_moment())["kl"]
    forward = float((TEACHER * np.log(TEACHER / STUDENT)).sum())
    reverse = float((STUDENT * np.log(STUDENT / TEACHER)).sum())
    assert f"forward KL =  {forward:.3f} nats" in text and f"reverse KL =  {reverse:.3f} nats" in text
    assert not math.isclose(forward, reverse, abs_tol=1e-3)
    # forward: the teacher's 22% on "sofa" that the student gives 5%; reverse: the student's 30% on "dog"
    assert "Forward KL charges most for “sofa” (teacher 22%, student 5.0%" in text
    assert "Reverse KL charges most for “dog” (teacher 3.0%, student 30%" in text
    assert "Your run uses forward KL" in _texts(_moment())["kl"]
    assert "Your run uses reverse KL" in _texts(_moment(), Settings(divergence="reverse_kl"))["kl"]


def test_without_a_prompt_every_section_says_what_it_will_show_and_how_to_get_there():
    texts = _texts(None)
    for key, text in texts.items():
        assert len(text) > 200, key
        assert "%" not in text.replace("100%", "").replace("0%", ""), key  # no invented numbers
    assert "train the demo" in texts["soft_targets"] and "Start" in texts["soft_targets"]
    for key in ("temperature", "t_squared", "kl"):
        assert "Train the demo" in texts[key]


def test_teacher_stage_says_the_student_is_missing():
    texts = _texts(_moment(student=False))
    assert "no student on the bars yet" in texts["kl"]
    assert "With a student on the bars" in texts["t_squared"]
    assert "For “the cat is sitting on the”" in texts["soft_targets"]


def test_moment_from_a_probe_takes_the_position_its_next_token_and_escapes_words():
    probe = ProbePrompt(
        "a <b> c",
        [" a", " <b>", " c"],
        [[0.0, 1.0, 2.0]] * 3,
        [[2.0, 1.0, 0.0]] * 3,
        vocab_tokens=[" a", " <b>", " c"],
    )
    m = moment_from_probe(probe, 0, 2.0)
    assert m.context == "a" and m.hard_label == " <b>" and m.temperature == 2.0
    assert moment_from_probe(probe, 9, 1.0).hard_label is None
    html_text = explain(m, Settings())[0].html
    assert "“&lt;b&gt;”" in html_text and "<b>”" not in html_text
    assert explain(m, Settings())[0].text().count("“<b>”") >= 1


@pytest.mark.parametrize("kind", ["jsd", "tv", "skew_forward_kl"])
def test_every_divergence_setting_is_named(kind):
    assert "(distill.divergence)" in _texts(_moment(), Settings(divergence=kind))["kl"]
