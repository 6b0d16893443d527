"""The soft-targets panel's state without Qt: re-softening at T, the heat strip, positions and the known next
token, pins, and prompts without a true distribution or without a student.

These tests use no widget; the first one runs the state in a process where PySide6 cannot be imported at all.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import numpy as np
import pytest

from workbench.events import Probe, ProbePrompt
from workbench.gui.soft_targets.state import SLIDER_STEPS, T_MAX, T_MIN, SoftTargetsState, read_probes
from workbench.probabilities import divergence, entropy, soften

VOCAB = [" the", " cat", " sat", " on", " mat", " dog", " ran", " ."]
TOKENS = [" the", " cat", " sat", " on", " the"]


def make_prompt(prompt="the cat sat on the", tokens=TOKENS, seed=0, student=True, truth=True) -> ProbePrompt:
    rng = np.random.default_rng(seed)
    n, v = len(tokens), len(VOCAB)
    teacher = rng.normal(0, 2, (n, v))
    student_logits = teacher * 0.5 + rng.normal(0, 1, (n, v))
    return ProbePrompt(
        prompt=prompt,
        tokens=list(tokens),
        teacher_logits=teacher.tolist(),
        student_logits=student_logits.tolist() if student else [],
        vocab_tokens=list(VOCAB),
        true_probs=soften(teacher + rng.normal(0, 0.5, (n, v)), 1.0).tolist() if truth else [],
    )


def probe_event(*prompts: ProbePrompt, step=100, stage="distill", temperature=2.0) -> Probe:
    return Probe(stage, step, temperature, list(prompts) or [make_prompt(), make_prompt("the dog", [" the", " dog"])])


@pytest.fixture
def state() -> SoftTargetsState:
    state = SoftTargetsState()
    state.take_probe(probe_event())
    return state


def test_the_state_runs_where_qt_cannot_be_imported():
    code = (
        "import sys\n"
        "for blocked in ('PySide6', 'pyqtgraph', 'torch'):\n"
        "    sys.modules[blocked] = None  # importing it raises ImportError\n"
        "from workbench.events import Probe, ProbePrompt\n"
        "from workbench.gui.soft_targets.state import SoftTargetsState\n"
        "state = SoftTargetsState()\n"
        "prompt = ProbePrompt('a b', [' a', ' b'], [[0.0, 1.0], [1.0, 0.0]], [[0.5, 0.5], [0.0, 0.0]],"
        " vocab_tokens=[' a', ' b'])\n"
        "state.take_probe(Probe('distill', 1, 2.0, [prompt]))\n"
        "state.set_position(0)\n"
        "print([(name, values.tolist()) for name, values in state.bars().series])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    series = ast.literal_eval(out.strip())
    assert [name for name, _ in series] == ["teacher", "student"]
    teacher_row = dict(series)["teacher"]
    assert teacher_row == pytest.approx(sorted(soften(np.array([0.0, 1.0]), 1.0).tolist(), reverse=True))


@pytest.mark.parametrize("temperature", [0.25, 0.5, 2.0, 10.0])
def test_resoftening_at_t_is_softmax_of_the_cached_logits_over_t_and_the_truth_does_not_move(state, temperature):
    probe = make_prompt()
    state.set_temperature(temperature)
    shown = state.distributions()
    teacher = soften(np.array(probe.teacher_logits), temperature)
    student = soften(np.array(probe.student_logits), temperature)
    np.testing.assert_allclose(shown["teacher"], teacher)
    np.testing.assert_allclose(shown["student"], student)
    np.testing.assert_allclose(shown["truth"], np.array(probe.true_probs))
    bars = state.bars()
    p = state.position
    np.testing.assert_allclose(dict(bars.series)["teacher"], teacher[p][bars.token_ids])
    assert state.entropies()["student"] == pytest.approx(entropy(student[p]))
    np.testing.assert_allclose(state.heat(), divergence(teacher, student, "KL"))


def test_temperature_is_clamped_and_the_slider_is_logarithmic(state):
    state.set_temperature(100.0)
    assert state.temperature == T_MAX and state.slider_value() == SLIDER_STEPS
    state.set_temperature(0.01)
    assert state.temperature == T_MIN and state.slider_value() == 0
    state.set_slider_value(SLIDER_STEPS // 2)
    assert state.temperature == pytest.approx(np.sqrt(T_MIN * T_MAX))  # the geometric middle
    np.testing.assert_allclose(
        state.distributions()["teacher"], soften(np.array(make_prompt().teacher_logits), np.sqrt(T_MIN * T_MAX))
    )
    state.set_temperature(1.0)
    assert state.slider_value() == round(SLIDER_STEPS * np.log(4) / np.log(40))


def test_the_heat_strip_follows_the_chosen_divergence(state):
    probe = make_prompt()
    t, s = soften(np.array(probe.teacher_logits), 1.0), soften(np.array(probe.student_logits), 1.0)
    for kind in ("JS", "TV", "KL"):
        state.set_divergence(kind)
        np.testing.assert_allclose(state.heat(), divergence(t, s, kind))
    assert (state.heat() > 0).all()
    with pytest.raises(ValueError, match="unknown divergence"):
        state.set_divergence("L2")


def test_positions_move_the_bars_and_mark_the_known_next_token(state):
    assert state.position == len(TOKENS) - 1  # a new prompt opens at its last token
    assert state.hard_label() is None and state.bars().hard_row is None
    state.set_position(1)  # after "the cat" the prompt goes on with "sat"
    assert state.hard_label() == " sat"
    bars = state.bars()
    assert VOCAB[bars.token_ids[bars.hard_row]] == " sat" and bars.labels[bars.hard_row] == "sat"
    teacher = soften(np.array(make_prompt().teacher_logits[1]), 1.0)
    np.testing.assert_allclose(dict(bars.series)["teacher"], teacher[bars.token_ids])
    assert state.title() == "Next word after “the cat”  ·  position 2 of 5  ·  step 100 (distill)"
    state.set_position(99)
    assert state.position == len(TOKENS) - 1
    state.set_position(-3)
    assert state.position == 0


def test_the_known_next_token_is_shown_even_when_it_is_not_among_the_top_k():
    unlikely = VOCAB.index(" on")  # what follows "the cat sat" in the prompt, and the least likely word there
    logits = np.zeros((len(TOKENS), len(VOCAB)))
    logits[2] = [0.0, 1.0, 0.5, -5.0, 3.0, 2.0, 0.2, 0.1]  # teacher: mat, dog, cat, ...
    student = logits.copy()
    student[2, VOCAB.index(" ran")] = 4.0  # the student's favourite is shown too, below the teacher's best
    state = SoftTargetsState()
    state.take_probe(
        probe_event(ProbePrompt("the cat sat on the", TOKENS, logits.tolist(), student.tolist(), vocab_tokens=VOCAB))
    )
    state.top_k = 2
    state.set_position(2)
    bars = state.bars()
    assert [VOCAB[i] for i in bars.token_ids] == [" mat", " ran", " on"]
    assert bars.hard_row == 2 and bars.token_ids[2] == unlikely and bars.labels[2] == "on"
    state.top_k = 8
    assert len(state.bars().token_ids) == 8 and VOCAB[state.bars().token_ids[-1]] == " on"  # among them: not twice


def test_a_newer_probe_keeps_the_position_of_the_shown_prompt_and_another_prompt_opens_at_its_end(state):
    state.set_position(2)
    newer = make_prompt(seed=5)
    assert state.take_probe(probe_event(newer, step=200))
    assert state.position == 2
    np.testing.assert_allclose(state.distributions()["teacher"], soften(np.array(newer.teacher_logits), 1.0))
    assert "step 200" in state.title()
    state.show("the dog")
    assert state.position == 1
    state.show("the cat sat on the")
    assert state.position == len(TOKENS) - 1


def test_a_prompt_answered_by_the_run_models_stays_shown_when_probes_arrive(state):
    typed = make_prompt("a dog ran", [" a", " dog", " ran"], seed=3)
    state.take_answer(typed)
    assert state.shown_prompt() == "a dog ran" and state.title().endswith("run folder models")
    assert not state.take_probe(probe_event(make_prompt(seed=9), step=300))  # the run's probes do not take over
    assert state.shown_prompt() == "a dog ran"
    assert "a dog ran" not in state.listed_prompts()  # answered, not pinned
    assert state.run_temperature == 2.0


def test_pin_and_unpin(state):
    assert state.listed_prompts() == ["the cat sat on the", "the dog"]
    assert state.pin("my prompt") and not state.pin("my prompt") and not state.pin("")
    assert state.pin("the dog")  # pinned as well as probed: listed once
    assert state.listed_prompts() == ["the cat sat on the", "the dog", "my prompt"]
    assert state.is_pinned("my prompt")
    assert state.unpin("my prompt") and not state.unpin("my prompt")
    assert state.listed_prompts() == ["the cat sat on the", "the dog"]
    state.forget_probes()  # a new run: its probes go, the user's pins stay
    assert state.listed_prompts() == ["the dog"] and not state.has_probes()
    assert state.shown is None and state.bars() is None and state.title() == "" and state.heat().size == 0


def test_a_prompt_without_a_true_distribution_shows_teacher_and_student_only():
    # Runs on other data than the built-in language have no exact next-word distribution to show.
    state = SoftTargetsState()
    probe = make_prompt(truth=False)
    state.take_probe(probe_event(probe))
    assert set(state.distributions()) == {"teacher", "student"}
    bars = state.bars()
    assert [name for name, _ in bars.series] == ["teacher", "student"]
    assert set(state.entropies()) == {"teacher", "student"}
    teacher = soften(np.array(probe.teacher_logits[-1]), 1.0)
    student = soften(np.array(probe.student_logits[-1]), 1.0)
    best = np.argsort(-np.maximum(teacher, student))[: state.top_k]
    assert set(bars.token_ids.tolist()) == set(best.tolist())
    first = int(bars.token_ids[0])
    assert (
        state.readout(first)
        == f"“{VOCAB[first].strip()}”   teacher {teacher[first]:.3f}   student {student[first]:.3f}"
    )


def test_the_teacher_stage_has_no_student_and_no_divergence():
    state = SoftTargetsState()
    state.take_probe(probe_event(make_prompt(student=False), stage="teacher"))
    assert [name for name, _ in state.bars().series] == ["teacher", "truth"]
    assert np.isnan(state.heat()).all() and len(state.heat()) == len(TOKENS)
    state.set_temperature(3.0)  # nothing to re-soften for the student; the truth stays as it is
    np.testing.assert_allclose(state.distributions()["truth"], np.array(make_prompt().true_probs))


# -- replay: the run's probes by step ----------------------------------------------------------------------------------
def history(steps=(0, 50, 100), stage="distill"):
    """Probe events at ``steps``, each with different logits (seed = step) for the same two prompts."""
    return [
        probe_event(
            make_prompt(seed=step), make_prompt("the dog", [" the", " dog"], seed=step + 1), step=step, stage=stage
        )
        for step in steps
    ]


def test_replay_shows_the_selected_steps_probe_at_the_current_temperature():
    state = SoftTargetsState()
    probes = history()
    for probe in probes:
        state.take_probe(probe)
    assert [p.step for p in state.history()] == [0, 50, 100] and state.is_following()
    assert state.replay_label() == "step 100 of 100 (distill)"
    state.set_position(2)
    state.set_temperature(3.0)
    assert state.select_step(0)
    assert state.replay_index == 0 and not state.is_following()
    assert state.position == 2 and state.temperature == 3.0  # the replay keeps what the user chose
    step0 = np.array(probes[0].prompts[0].teacher_logits)
    np.testing.assert_allclose(state.distributions()["teacher"], soften(step0, 3.0))
    np.testing.assert_allclose(
        state.distributions()["student"], soften(np.array(probes[0].prompts[0].student_logits), 3.0)
    )
    assert state.replay_label() == "step 0 of 100 (distill)" and "step 0 (distill)" in state.title()
    bars0 = dict(state.bars().series)["student"]
    state.select_step(1)
    assert not np.allclose(dict(state.bars().series)["student"], bars0)  # the bars move with the replay
    state.set_temperature(1.0)  # the temperature works on the replayed step
    np.testing.assert_allclose(
        state.distributions()["teacher"], soften(np.array(probes[1].prompts[0].teacher_logits), 1.0)
    )
    assert state.select_step(99) and state.is_following()  # the end means: follow the newest again
    np.testing.assert_allclose(
        state.distributions()["teacher"], soften(np.array(probes[2].prompts[0].teacher_logits), 1.0)
    )


def test_a_live_run_is_followed_unless_the_replay_was_moved_back():
    state = SoftTargetsState()
    early, middle, late, latest = history((0, 50, 100, 150))
    state.take_probe(early)
    assert state.take_probe(middle)  # following: the newest is shown
    assert "step 50" in state.title()
    state.select_step(0)
    assert not state.take_probe(late)  # moved back: the new probe joins the history, the shown step stays
    assert state.replay_index == 0 and "step 0 (distill)" in state.title()
    np.testing.assert_allclose(state.distributions()["teacher"], soften(np.array(early.prompts[0].teacher_logits), 1.0))
    assert state.replay_label() == "step 0 of 100 (distill)" and len(state.history()) == 3
    assert state.follow_latest() and state.is_following() and "step 100" in state.title()
    assert state.take_probe(latest) and "step 150" in state.title()


def test_the_history_is_ordered_by_stage_and_step_and_a_probed_again_step_replaces_the_old_one():
    state = SoftTargetsState()
    teacher = history((0, 100), stage="teacher")
    distill = history((0, 20), stage="distill")
    for probe in [teacher[0], distill[0], teacher[1], distill[1]]:  # out of order, as no run writes them
        state.take_probe(probe)
    assert [(p.stage, p.step) for p in state.history()] == [
        ("teacher", 0),
        ("teacher", 100),
        ("distill", 0),
        ("distill", 20),
    ]
    state.select_step(1)
    assert state.replay_label() == "step 100 of 100 (teacher)"
    again = history((20,))[0]  # a resumed run probes step 20 again
    state.take_probe(again)
    assert len(state.history()) == 4 and state.history()[-1] is again and state.replay_index == 1
    state.take_probe(history((10,))[0])  # an older step arriving later keeps the shown probe in its place
    assert state.replay_index == 1 and state.history()[1].step == 100


def test_replaying_from_a_typed_prompt_shows_the_runs_probe_prompt():
    state = SoftTargetsState()
    for probe in history():
        state.take_probe(probe)
    state.take_answer(make_prompt("a dog ran", [" a", " dog", " ran"], seed=3))
    assert state.is_replayed("the cat sat on the") and not state.is_replayed("a dog ran")
    assert state.select_step(0)
    assert state.shown_prompt() == "the cat sat on the" and "step 0 (distill)" in state.title()


def test_a_finished_runs_probes_are_read_from_its_events_file(tmp_path):
    from workbench.events import Step, to_json

    probes = history((0, 10))
    step = Step("distill", 5, 10, 1.0, 1.0, 1.0, 1e-3, 0.1, 100.0, 1.0, 1.0)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(to_json(e) for e in [probes[0], step, probes[1]]) + '\n{"kind": "probe", "st')  # torn
    read = read_probes(path)
    assert [p.step for p in read] == [0, 10]
    assert read[1].prompts[0].teacher_logits == probes[1].prompts[0].teacher_logits
    state = SoftTargetsState()
    state.take_probe(history((500,))[0])  # the previous run's probes go
    assert state.load_history(read)
    assert [p.step for p in state.history()] == [0, 10] and state.is_following() and "step 10" in state.title()
    assert not SoftTargetsState().load_history([])


def test_subword_pieces_that_would_look_like_a_word_are_told_apart():
    from workbench.gui.soft_targets.state import distinct_labels

    assert distinct_labels([" the", "the", " cat", "ing", "\n", " "]) == ["the", "…the", "cat", "ing", "↵", "␣"]
    assert distinct_labels([" the", " cat"]) == ["the", "cat"]  # nothing alike: nothing marked
