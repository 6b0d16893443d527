"""TensorBoard files read back with TensorBoard's own reader equal events.jsonl."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from workbench.events import Eval, Finished, Probe, ProbePrompt, Step, read_events, to_json

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _events():
    out = []
    for step in range(0, 30, 5):
        out.append(
            Step(
                stage="distill",
                step=step,
                total_steps=30,
                loss=2.0 / (step + 1),
                kd=math.nan if step == 10 else 0.5,
                ce=1.0 + step / 100,
                lr=1e-3 * step,
                grad_norm=0.3,
                tokens_per_s=1000.0 + step,
                elapsed_s=step,
                eta_s=30 - step,
            )
        )
    out.append(Eval(stage="distill", step=25, metrics={"kl_teacher_student": 0.25, "top1_agreement": 0.75}))
    prompt = ProbePrompt(
        prompt="the cat is",
        tokens=["the", "cat", "is"],
        teacher_logits=[[0.0, 2.0, -math.inf]],
        student_logits=[[1.0, 0.5, 0.0]],
        vocab_tokens=["dog", "happy", "sad"],
    )
    out.append(Probe(stage="distill", step=25, temperature=2.0, prompts=[prompt]))
    out.append(Finished(status="completed", run_dir="x", summary={"student_ce": 1.25, "kl_true_student": math.nan}))
    return out


def _read(folder):
    acc = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.TENSORS: 0, event_accumulator.SCALARS: 0}
    )
    acc.Reload()
    return acc


def test_an_exported_run_reads_back_equal_to_its_events_jsonl(tmp_path):
    (tmp_path / "events.jsonl").write_text("".join(to_json(e) + "\n" for e in _events()))
    done = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "runs", "export", "--tensorboard", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    acc = _read(tmp_path / "tensorboard")
    steps = [e for e in read_events(str(tmp_path / "events.jsonl")) if isinstance(e, Step)]
    for name in ("loss", "ce", "lr", "tokens_per_s"):
        written = [(s.step, s.value) for s in acc.Scalars(f"train/distill/{name}")]
        assert written == [(e.step, pytest.approx(getattr(e, name), rel=1e-6)) for e in steps]
    assert [s.step for s in acc.Scalars("train/distill/kd")] == [0, 5, 15, 20, 25]  # the NaN is a gap
    assert [(s.step, s.value) for s in acc.Scalars("eval/distill/top1_agreement")] == [(25, 0.75)]
    tags = acc.Tags()["tensors"]
    assert "probe/the cat is/text_summary" in tags and "summary/text_summary" in tags
    text = acc.Tensors("probe/the cat is/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "`happy` 0.881" in text  # the teacher's top token at T = 1


def test_export_refuses_a_folder_that_is_not_a_run_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "runs", "export", "--tensorboard", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "events.jsonl" in done.stderr


def test_a_run_writes_tensorboard_files_as_it_goes_equal_to_its_events(tmp_path):
    from tests.engine.test_train import tiny_config
    from workbench.engine.train.run import run

    cfg = tiny_config(tmp_path)
    cfg.train.teacher_steps, cfg.train.max_steps = 4, 4
    result = run(cfg)
    assert result.kind == "finished", result
    acc = _read(f"{result.run_dir}/tensorboard")
    events = read_events(f"{result.run_dir}/events.jsonl")
    for stage in ("teacher", "distill"):
        steps = [e for e in events if isinstance(e, Step) and e.stage == stage]
        written = [(s.step, s.value) for s in acc.Scalars(f"train/{stage}/loss")]
        assert steps and written == [(e.step, pytest.approx(e.loss, rel=1e-6)) for e in steps]
    evals = [e for e in events if isinstance(e, Eval) and e.stage == "distill"]
    assert [(s.step, s.value) for s in acc.Scalars("eval/distill/kl_teacher_student")] == [
        (e.step, pytest.approx(e.metrics["kl_teacher_student"], rel=1e-6)) for e in evals
    ]
    assert "probe/the cat is sitting on the/text_summary" in acc.Tags()["tensors"]
    assert "summary/text_summary" in acc.Tags()["tensors"]
