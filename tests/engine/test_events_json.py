"""events.jsonl and summary.json are strict JSON: what jq, browsers and other languages read."""

from __future__ import annotations

import json
import math

from workbench.events import Eval, Finished, Probe, ProbePrompt, Step, event_from_dict, read_events, to_json
from workbench.run_folder import read_run, write_json


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_are_written_as_null_and_read_back_as_gaps():
    step = Step(
        stage="distill",
        step=5,
        total_steps=10,
        loss=math.nan,
        kd=math.inf,
        ce=1.5,
        lr=1e-3,
        grad_norm=-math.inf,
        tokens_per_s=100.0,
        elapsed_s=1.0,
        eta_s=2.0,
    )
    line = to_json(step)
    assert _strict(line)["loss"] is None and _strict(line)["kd"] is None
    back = event_from_dict(_strict(line))
    assert math.isnan(back.loss) and math.isnan(back.kd) and back.ce == 1.5
    ev = Eval(stage="distill", step=5, metrics={"kl_true_student": math.nan, "student_ce": 2.0})
    back = event_from_dict(_strict(to_json(ev)))
    assert math.isnan(back.metrics["kl_true_student"]) and back.metrics["student_ce"] == 2.0


def test_probe_logits_keep_minus_infinity_for_tokens_a_model_cannot_produce():
    prompt = ProbePrompt(
        prompt="the cat",
        tokens=["the", "cat"],
        teacher_logits=[[0.5, -math.inf]],
        student_logits=[[-math.inf, 1.0]],
        true_probs=[[1.0, 0.0]],
    )
    probe = Probe(stage="distill", step=3, temperature=2.0, prompts=[prompt])
    back = event_from_dict(_strict(to_json(probe)))
    assert back.prompts[0].teacher_logits == [[0.5, -math.inf]] and back.prompts[0].student_logits == [[-math.inf, 1.0]]


def test_old_files_with_nan_literals_still_read(tmp_path):
    old = tmp_path / "events.jsonl"
    old.write_text('{"kind":"finished","status":"completed","run_dir":"x","summary":{"kl_true_student":NaN}}\n')
    (event,) = read_events(str(old))
    assert isinstance(event, Finished) and math.isnan(event.summary["kl_true_student"])


def test_summary_json_is_strict_and_reads_back_as_numbers(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text('name = "x"\n')
    write_json(run / "summary.json", {"kl_true_student": math.nan, "student_ce": 2.5, "steps": 3})
    assert _strict((run / "summary.json").read_text())["kl_true_student"] is None
    summary = read_run(run).summary
    assert math.isnan(summary["kl_true_student"]) and summary["student_ce"] == 2.5
