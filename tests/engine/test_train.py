"""End to end: the real ``run`` on the built-in language with tiny models, on the CPU."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from workbench.config.schema import RunConfig, TrainConfig
from workbench.control import Control
from workbench.engine.losses import distill_loss
from workbench.engine.train import objective as objective_module
from workbench.engine.train.run import run
from workbench.events import read_events
from workbench.run_folder import can_resume, latest_checkpoint, read_run


def tiny_config(tmp_path: Path, **overrides: str) -> RunConfig:
    cfg = RunConfig(name="tiny", runs_dir=str(tmp_path / "runs"))
    cfg.teacher.arch.layers, cfg.teacher.arch.hidden, cfg.teacher.arch.heads = 2, 32, 2
    cfg.teacher.arch.max_positions = 32
    cfg.student.source = "derived"
    cfg.student.keep_layers = 1
    t = cfg.train
    t.teacher_steps, t.max_steps, t.batch_size, t.seq_len = 12, 10, 8, 16
    t.warmup_steps, t.log_interval, t.eval_interval, t.eval_batches = 2, 2, 5, 2
    t.probe_interval, t.checkpoint_interval = 5, 4
    t.probe_prompts = ["the cat is sitting on the"]
    cfg.data.toy_sentences = 600
    cfg.apply_overrides([f"{k}={v}" for k, v in overrides.items()])
    return cfg


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One uninterrupted tiny run, shared by the tests that read its results."""
    tmp = tmp_path_factory.mktemp("full")
    received = []
    result = run(tiny_config(tmp), received.append)
    return result, received


def test_full_run_reports_stages_metrics_and_writes_the_run_folder(finished_run):
    result, received = finished_run
    assert result.kind == "finished" and result.status == "completed", result
    kinds = [e.kind for e in received]
    stages = [e.stage for e in received if e.kind == "stage"]
    assert stages == ["setup", "teacher", "distill", "evaluate", "export"]
    assert kinds[-1] == "finished"
    teacher_steps = [e.step for e in received if e.kind == "step" and e.stage == "teacher"]
    distill_steps = [e.step for e in received if e.kind == "step" and e.stage == "distill"]
    assert teacher_steps[-1] == 12 and distill_steps[-1] == 10
    step = next(e for e in received if e.kind == "step" and e.stage == "distill")
    assert all(math.isfinite(v) for v in (step.loss, step.kd, step.ce, step.lr, step.grad_norm, step.tokens_per_s))
    evals = [e for e in received if e.kind == "eval" and e.stage == "distill"]
    assert evals[0].step == 0, "the student is measured before distillation"
    for key in (
        "student_ce",
        "student_ppl",
        "teacher_ce",
        "kl_teacher_student",
        "top1_agreement",
        "kl_true_teacher",
        "kl_true_student",
        "entropy_floor",
    ):
        assert key in evals[-1].metrics
    probe = next(e for e in received if e.kind == "probe" and e.stage == "distill")
    prompt = probe.prompts[0]
    assert prompt.tokens == "the cat is sitting on the".split()
    assert len(prompt.teacher_logits) == len(prompt.tokens) == len(prompt.student_logits)
    assert len(prompt.true_probs[-1]) == len(prompt.vocab_tokens)
    assert abs(sum(prompt.true_probs[-1]) - 1) < 1e-4

    run_dir = Path(result.run_dir)
    for name in (
        "config.toml",
        "events.jsonl",
        "summary.json",
        "teacher/config.json",
        "student/config.json",
        "student/README.md",
    ):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["compression"] > 1 and summary["student_params"] < summary["teacher_params"]
    assert summary["student_ppl"] < summary["student_ppl_before"]
    assert read_run(run_dir).status == "completed"
    # events.jsonl is the record: replaying it gives what was seen live.
    assert [e.kind for e in read_events(str(run_dir / "events.jsonl"))] == kinds


def test_exported_student_loads_with_transformers_and_generates(finished_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, _ = finished_run
    folder = Path(result.run_dir) / "student"
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer("the cat is", return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == ids.shape[1] + 5
    assert model.config.num_hidden_layers == 1
    from transformers import pipeline

    generator = pipeline("text-generation", model=str(folder), tokenizer=str(folder))
    text = generator("the cat is", max_new_tokens=4, do_sample=False)[0]["generated_text"]
    assert text.startswith("the cat is") and len(text.split()) > 3
    card = (folder / "README.md").read_text()
    assert "kl_teacher_student" in card and "AutoModelForCausalLM" in card
    assert "student_disk_mb" in card and "## Generations" in card and "- prompt: `" in card


def _stop_at(control: Control, stage: str, step: int):
    def on_event(event):
        if event.kind == "step" and event.stage == stage and event.step >= step:
            control.request_stop()

    return on_event


@pytest.mark.parametrize("stage, step", [("distill", 6), ("teacher", 6)])
def test_stopped_then_resumed_run_ends_like_an_uninterrupted_one(tmp_path, finished_run, stage, step):
    expected = finished_run[0].summary
    control = Control()
    first = run(tiny_config(tmp_path), _stop_at(control, stage, step), control)
    assert first.status == "stopped"
    assert can_resume(first.run_dir)
    resumed = run(RunConfig(), resume=first.run_dir)
    assert resumed.status == "completed", resumed
    for key in ("student_ce", "kl_teacher_student", "kl_true_student", "teacher_ce"):
        assert resumed.summary[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-5), key


def _cli_run(cfg: RunConfig, tmp_path: Path, run_dir: Path, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """``workbench run CONFIG --run-dir RUN_DIR`` in a process of its own (one torch thread)."""
    config_path = tmp_path / "tiny.toml"
    cfg.save(config_path)
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "run", str(config_path), "--run-dir", str(run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _wait_for(proc: subprocess.Popen, run_dir: Path, wanted, what: str, seconds: float = 120) -> None:
    """Until an event of ``run_dir``'s events.jsonl is ``wanted``; fails if the run ends first or it takes too long."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        events = read_events(str(run_dir / "events.jsonl")) if (run_dir / "events.jsonl").exists() else []
        if any(wanted(e) for e in events):
            return
        assert proc.poll() is None, f"the run ended before {what}"
        time.sleep(0.05)
    pytest.fail(f"no {what} within {seconds:.0f} s")


def test_killed_process_resumes_from_its_last_checkpoint(tmp_path, finished_run):
    run_dir = tmp_path / "killed"
    proc = _cli_run(tiny_config(tmp_path), tmp_path, run_dir)
    try:
        _wait_for(proc, run_dir, lambda e: e.kind == "checkpoint" and e.stage == "distill", "a distillation checkpoint")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert read_run(run_dir).status == "interrupted"
    resumed = run(RunConfig(), resume=run_dir)
    assert resumed.status == "completed", resumed
    expected = finished_run[0].summary
    for key in ("student_ce", "kl_teacher_student", "kl_true_student"):
        assert resumed.summary[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-5), key


def test_pause_holds_the_loop_until_resumed(tmp_path):
    control = Control()
    control.pause.set()
    seen = []
    thread = threading.Thread(
        target=lambda: seen.append(
            run(tiny_config(tmp_path, **{"train.teacher_steps": "4", "train.max_steps": "2"}), None, control)
        )
    )
    thread.start()
    time.sleep(1.5)
    assert not seen, "the run went on while paused"
    control.pause.clear()
    thread.join(timeout=120)
    assert seen and seen[0].status == "completed"


def test_time_spent_paused_counts_in_neither_tokens_per_s_nor_the_eta(tmp_path):
    # Compared with the wall clock rather than a fixed step time, so that a loaded machine's slow steps do not
    # decide it: with the 2 s pause counted, the step after it would take the whole 2 s and more.
    control = Control()
    steps, seen_at, before_steps = {}, {}, []

    def on_event(event):
        now = time.perf_counter()
        if event.kind == "step" and event.stage == "teacher":
            steps[event.step], seen_at[event.step] = event, now
            if event.step == 2:  # pause for 2 s between steps 2 and 3
                control.pause.set()
                threading.Timer(2.0, control.pause.clear).start()
        elif not steps:
            before_steps.append(now)  # the last one is the step-0 probe, just before the stage's clock starts

    cfg = tiny_config(tmp_path, **{"train.log_interval": "1", "train.max_steps": "2"})
    assert run(cfg, on_event, control).status == "completed"
    after = steps[3]
    t = cfg.train
    window_s = t.batch_size * t.grad_accum * t.seq_len / after.tokens_per_s
    wall_s = seen_at[3] - seen_at[2]
    assert window_s < wall_s - 1.5, f"tokens/s after a 2 s pause implies a {window_s:.2f} s step of {wall_s:.2f} s"
    eta_steps_s = after.eta_s / (after.total_steps - after.step) * 3
    wall_3_s = seen_at[3] - before_steps[-1]
    assert eta_steps_s < wall_3_s - 1.5, f"the ETA counts {eta_steps_s:.2f} s for 3 steps that took {wall_3_s:.2f} s"


def test_cancel_keeps_no_new_checkpoint(tmp_path):
    control = Control()

    def on_event(event):
        if event.kind == "step" and event.stage == "teacher" and event.step == 2:
            control.request_cancel()

    result = run(tiny_config(tmp_path), on_event, control)
    assert result.status == "cancelled"
    assert latest_checkpoint(result.run_dir) is None


def test_non_finite_loss_fails_clearly_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = distill_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        parts = real(*args, **kwargs)
        calls["n"] += 1
        if kwargs.get("alpha", 0) > 0 and calls["n"] > 12 + 5:
            parts.loss = parts.loss * float("nan")
        return parts

    monkeypatch.setattr(objective_module, "distill_loss", poisoned)
    received = []
    result = run(tiny_config(tmp_path), received.append)
    assert result.kind == "failed"
    assert "loss became" in result.message and "checkpoint" in result.hint
    checkpoint = latest_checkpoint(result.run_dir)
    assert checkpoint is not None
    from safetensors.torch import load_file

    assert all(torch.isfinite(t).all() for t in load_file(str(checkpoint / "model.safetensors")).values())
    assert read_run(result.run_dir).status == "failed"


def test_user_errors_become_a_failed_event_not_an_exception(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg.teacher.source = "local"
    cfg.teacher.path = str(tmp_path / "missing")
    result = run(cfg)
    assert result.kind == "failed"
    assert "teacher.path" in result.message and "does not exist" in result.message


def test_engine_does_not_import_qt():
    code = (
        "import importlib, pkgutil, sys, workbench.engine, workbench.cli\n"
        "for m in pkgutil.walk_packages(workbench.engine.__path__, 'workbench.engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'PyQt', 'pyqtgraph'))]\n"
        "assert not bad, bad\n"
        "assert len([m for m in sys.modules if m.startswith('workbench.engine.')]) >= 15"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_wall_time_counts_the_time_before_an_interruption(tmp_path):
    control = Control()
    first = run(tiny_config(tmp_path), _stop_at(control, "distill", 6), control)
    spent_before = json.loads((Path(first.run_dir) / "checkpoints" / "distill-step-000006" / "state.json").read_text())[
        "history"
    ]["elapsed_s"]
    resumed = run(RunConfig(), resume=first.run_dir)
    assert resumed.summary["wall_time_s"] > spent_before > 0
    again = run(RunConfig(), resume=first.run_dir)
    assert again.kind == "failed" and "already completed" in again.message and again.user_error


def test_a_stage_that_is_all_warm_up_says_so(tmp_path, finished_run):
    received = []
    result = run(tiny_config(tmp_path, **{"train.warmup_steps": "10", "train.teacher_steps": "12"}), received.append)
    assert result.status == "completed"
    warnings = [e.message for e in received if e.kind == "log" and e.level == "warning"]
    assert any("distill stage's 10 steps" in w for w in warnings) and not any("teacher stage" in w for w in warnings)
    assert not any(e.kind == "log" and "warmup" in e.message for e in finished_run[1])


def test_fused_loss_run_ends_like_the_usual_one(tmp_path, finished_run, monkeypatch):
    """distill.fused_loss=true takes the fused path in both stages and gives the same run."""
    calls = []
    fused = objective_module.fused_distill_loss
    monkeypatch.setattr(objective_module, "fused_distill_loss", lambda *a, **k: calls.append(1) or fused(*a, **k))
    result = run(tiny_config(tmp_path, **{"distill.fused_loss": "true"}), lambda event: None)
    assert result.status == "completed", result
    assert calls
    expected = finished_run[0].summary
    for key in ("student_ce", "kl_teacher_student", "kl_true_student", "teacher_ce"):
        assert result.summary[key] == pytest.approx(expected[key], rel=1e-3, abs=1e-4), key


def test_a_bf16_run_keeps_the_frozen_teacher_in_bf16_and_saves_it_in_fp32(tmp_path, finished_run, monkeypatch):
    """train.precision = bf16 halves the frozen teacher's memory during distillation; the teacher trained
    in stage 1 is saved before that, in full precision."""
    seen = []
    teacher_logits = objective_module.Objective.teacher_logits

    def spy(self, *args, **kwargs):
        if self.teacher is not None:  # None in the teacher's own stage
            seen.append(next(self.teacher.parameters()).dtype)
        return teacher_logits(self, *args, **kwargs)

    monkeypatch.setattr(objective_module.Objective, "teacher_logits", spy)
    result = run(tiny_config(tmp_path, **{"train.precision": "bf16"}), lambda event: None)
    assert result.status == "completed", result
    assert seen and set(seen) == {torch.bfloat16}
    saved = json.loads((Path(result.run_dir) / "teacher" / "config.json").read_text())
    assert saved.get("torch_dtype", saved.get("dtype")) == "float32"
    expected = finished_run[0].summary
    assert result.summary["kl_true_student"] == pytest.approx(expected["kl_true_student"], rel=0.1)


def test_a_probe_prompt_longer_than_the_models_is_left_out_with_one_warning(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg.train.probe_prompts = ["the cat is sitting on the", " ".join(["the cat"] * 20)]  # 40 tokens, 32 positions
    received = []
    result = run(cfg, received.append)
    assert result.status == "completed", result
    warnings = [e.message for e in received if e.kind == "log" and e.level == "warning" and "probe prompt" in e.message]
    assert len(warnings) == 1 and "more than the models' 32 positions" in warnings[0], warnings
    probes = [e for e in received if e.kind == "probe"]
    assert probes and all([p.prompt for p in e.prompts] == ["the cat is sitting on the"] for e in probes)
    assert [g["prompt"] for g in result.summary["generations"]] == ["the cat is sitting on the"]


@pytest.mark.parametrize(
    "saved, device, expected",
    [
        ("one", 1, "one"),  # this version: the process's own device's state
        (["zero", "one", "two"], 1, "one"),  # written before: one state per device, this device's taken
        (["zero"], 1, None),  # a device the old checkpoint did not have: the generator is left as it is
    ],
)
def test_a_checkpoint_restores_the_cuda_generator_of_this_process_device(monkeypatch, saved, device, expected):
    from workbench.engine import checkpoints

    restored = []
    monkeypatch.setattr(torch.cuda, "current_device", lambda: device)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state: restored.append(state))
    checkpoints._restore_cuda_rng(saved)
    assert restored == ([expected] if expected is not None else [])


def _text_file(path: Path, extra: str = "") -> Path:
    words = "the quick brown fox jumps over the lazy dog while a cat sleeps on the warm mat".split()
    lines = [" ".join(words[(i + j) % len(words)] for j in range(12)) for i in range(300)]
    path.write_text("\n".join(lines) + extra, encoding="utf-8")
    return path


def test_a_resume_refuses_data_that_changed_since_the_run_started_and_keeps_the_run_as_it_was(tmp_path, monkeypatch):
    """A teacher trained here on a text file gets a tokenizer trained on that file, kept only with the teacher:
    resumed on an edited file, the ids would be scrambled against the weights (or the checkpoint would not fit)."""
    monkeypatch.chdir(tmp_path)
    text = _text_file(tmp_path / "my text.txt")
    cfg = tiny_config(tmp_path, **{"data.source": "file", "data.path": "my text.txt", "train.teacher_steps": "12"})
    cfg.train.probe_prompts = list(TrainConfig().probe_prompts)  # the built-in language's, as a preset leaves them
    control = Control()
    first = run(cfg, _stop_at(control, "teacher", 5), control)
    assert first.status == "stopped", first
    run_dir = Path(first.run_dir)
    assert json.loads((run_dir / "data.json").read_text())["size"] == text.stat().st_size
    _text_file(text, extra="\nand a new line the run never saw")
    refused = run(RunConfig(), resume=run_dir)
    assert refused.kind == "failed" and refused.user_error
    assert "has changed since it started" in refused.message and "bytes then" in refused.message
    assert "put back the data" in refused.hint
    assert read_run(run_dir).status == "stopped"  # not "failed": nothing was lost, it can still be resumed
    text.unlink()  # gone: the hint is to put it back, not to edit the run
    refused = run(RunConfig(), resume=run_dir)
    assert refused.kind == "failed" and refused.user_error
    assert refused.message.endswith(f"run {run_dir.name} reads {str(text)!r}, which does not exist"), refused.message
    assert refused.hint.startswith("put it back where the run found it")
    assert read_run(run_dir).status == "stopped"
    _text_file(text)  # the text put back: the resume goes on
    monkeypatch.chdir(run_dir)  # from another folder: the relative path was pinned when the run started
    assert RunConfig.from_toml((run_dir / "config.toml").read_text()).data.path == str(text)
    resumed = run(RunConfig(), resume=run_dir)
    assert resumed.status == "completed", resumed
    vocab = len(json.loads((run_dir / "teacher" / "tokenizer.json").read_text())["model"]["vocab"])
    assert resumed.summary["tokenizer"] == f"byte-level BPE trained on the data ({vocab:,} tokens)"
    # the probe prompts were left at the built-in language's: the run probes its own text's opening instead
    assert [g["prompt"] for g in resumed.summary["generations"]] == ["the quick brown fox jumps over"]
    text.rename(tmp_path / "moved.txt")  # a finished run's models are in its folder: predict needs no data
    from workbench.engine.predictor import Predictor

    probe = Predictor.from_run(run_dir).probe("the quick brown")
    assert probe.tokens and len(probe.teacher_logits) == len(probe.student_logits) == len(probe.tokens)


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_a_closed_terminal_or_a_kill_stops_with_a_checkpoint(tmp_path, signum):
    """SIGHUP (the terminal closed, ssh dropped) and SIGTERM stop like Ctrl-C: a checkpoint, status stopped,
    exit 130, resumable; they used to end the process where it stood (SIGHUP) with its steps lost."""
    cfg = tiny_config(tmp_path, **{"train.max_steps": "400", "train.checkpoint_interval": "1000"})
    run_dir = tmp_path / "hung-up"
    proc = _cli_run(cfg, tmp_path, run_dir, stderr=subprocess.PIPE)
    try:
        _wait_for(proc, run_dir, lambda e: e.kind == "step" and e.stage == "distill", "a distillation step")
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()[-500:]
    assert read_run(run_dir).status == "stopped"
    assert latest_checkpoint(run_dir) is not None and "distill" in latest_checkpoint(run_dir).name
    assert can_resume(run_dir)


def test_the_printed_summary_keeps_each_generation_on_its_lines():
    from workbench.commands.run import summary_text

    text = summary_text({"generations": [{"prompt": "a\tb", "teacher": "\n" * 20 + "end", "student": "x\x00y 知识"}]})
    assert text.splitlines()[1:] == ['  "a\\tb"', "    teacher: " + "\\n" * 20 + "end", "    student: x\\x00y 知识"]


def test_the_exported_weights_are_as_readable_as_the_files_beside_them(finished_run):
    """safetensors writes model.safetensors as 0600 whatever the umask; a shared machine's other users could
    read an exported student's config.json but not its weights."""
    run_dir = Path(finished_run[0].run_dir)
    for folder in ("student", "teacher"):
        weights, config = run_dir / folder / "model.safetensors", run_dir / folder / "config.json"
        assert weights.stat().st_mode & 0o777 == config.stat().st_mode & 0o777, folder
    mask = os.umask(0o022)
    os.umask(mask)
    if not mask & 0o044:  # a umask that lets others read new files: so may they read the weights
        assert (run_dir / "student" / "model.safetensors").stat().st_mode & 0o044 == 0o044


def test_a_probe_prompt_from_the_data_is_the_opening_of_its_first_line():
    from workbench.engine.train.run import opening_words

    assert opening_words("\n  GNU GENERAL PUBLIC LICENSE\n Version 3, 29 June 2007\n") == "GNU GENERAL PUBLIC LICENSE"
    assert opening_words("one two three four five six seven eight") == "one two three four five six"
    assert opening_words("知识蒸馏是一种模型压缩方法，它让小模型学习大模型") == "知识蒸馏是一种模型压缩方法"
    assert opening_words("   \n\n") == ""
