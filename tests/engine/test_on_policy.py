"""On-policy distillation (distill.on_policy): the student's own samples, the prompt masked, the loss on the
generated tokens only, lambda 0 unchanged, the warm start (distill.on_policy_start), resume exact (across the
warm start's switch too), and the config's refusals."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F

from tests.engine.test_train import _stop_at, tiny_config
from tests.helpers_models import tiny_model, tiny_tokenizer
from workbench.config.schema import DistillConfig, RunConfig
from workbench.control import Control
from workbench.engine.train import on_policy as on_policy_module
from workbench.engine.train import stages as stages_module
from workbench.engine.train.objective import Objective
from workbench.engine.train.on_policy import (
    generate,
    is_on_policy_step,
    on_policy_batch,
    sample_generator,
    sample_next,
)
from workbench.engine.train.run import run
from workbench.errors import ConfigError

ON = {"distill.on_policy": "0.5", "distill.on_policy_prompt_tokens": "4", "distill.on_policy_new_tokens": "12"}


@pytest.fixture(scope="module")
def models():
    tokenizer = tiny_tokenizer()
    return tiny_model(tokenizer, seed=1), tiny_model(tokenizer, seed=2, layers=1), len(tokenizer)


def _blocks(vocab: int, batch: int = 3, length: int = 16) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(5))


def test_on_policy_batch_masks_the_prompt_and_targets_the_generated_tokens(models):
    student, _, vocab = models
    blocks = _blocks(vocab)
    settings = DistillConfig(on_policy=1.0, on_policy_prompt_tokens=5, on_policy_new_tokens=7)
    student.train()
    batch = on_policy_batch(student, blocks, settings, seed=0, step=3, autocast=contextlib.nullcontext)
    assert student.training, "generation puts the model back in train mode"
    assert batch.ids.shape == (3, 12)
    assert torch.equal(batch.ids[:, :5], blocks[:, :5]), "the prompt is the block's first tokens"
    assert (batch.labels[:, :5] == -100).all()
    assert torch.equal(batch.labels[:, 5:], batch.ids[:, 5:]), "every generated token is a target"
    assert batch.valid_tokens() == 3 * 7
    assert not torch.equal(batch.ids[:, 5:], blocks[:, 5:12]), "the continuation is the student's, not the block's"
    again = on_policy_batch(student, blocks, settings, seed=0, step=3, autocast=contextlib.nullcontext)
    other = on_policy_batch(student, blocks, settings, seed=0, step=4, autocast=contextlib.nullcontext)
    assert torch.equal(again.ids, batch.ids), "the samples follow from (seed, step)"
    assert not torch.equal(other.ids, batch.ids)


def test_kv_cache_generation_samples_what_full_forward_passes_give(models):
    """The cached loop draws each token from the same distribution as a full pass over the prefix."""
    student, _, vocab = models
    prompts = _blocks(vocab)[:, :4]
    ids = generate(
        student,
        prompts,
        new_tokens=6,
        temperature=0.7,
        top_p=0.9,
        generator=sample_generator(torch.device("cpu"), 1, 2),
        autocast=contextlib.nullcontext,
    )
    generator = sample_generator(torch.device("cpu"), 1, 2)
    expected = prompts
    student.eval()
    with torch.no_grad():
        for _ in range(6):
            logits = student(input_ids=expected, use_cache=False).logits[:, -1]
            expected = torch.cat([expected, sample_next(logits, 0.7, 0.9, generator)[:, None]], dim=1)
    student.train()
    assert torch.equal(ids, expected)


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    generator = torch.Generator().manual_seed(0)
    draws = {int(sample_next(logits, 1.0, 0.7, generator)) for _ in range(300)}
    assert draws == {0, 1}
    draws = {int(sample_next(logits, 1.0, 1.0, generator)) for _ in range(600)}
    assert draws == {0, 1, 2, 3}


def test_the_loss_on_a_generated_batch_is_the_reverse_kl_on_generated_positions_only(models):
    student, teacher, vocab = models
    settings = DistillConfig(
        divergence="reverse_kl", temperature=2.0, on_policy=1.0, on_policy_prompt_tokens=4, on_policy_new_tokens=8
    )
    batch = on_policy_batch(student, _blocks(vocab), settings, seed=0, step=0, autocast=contextlib.nullcontext)
    objective = Objective(settings, alpha=1.0, teacher=teacher, autocast=contextlib.nullcontext, chunk_positions=7)
    parts = objective(student, batch, batch.valid_tokens())

    with torch.no_grad():
        t_logits = teacher(input_ids=batch.ids).logits[:, :-1] / 2.0
        s_logits = student(input_ids=batch.ids).logits[:, :-1] / 2.0
    # the logits at positions 3 .. 10 predict the generated tokens 4 .. 11
    t_logp = F.log_softmax(t_logits[:, 3:], dim=-1)
    s_logp = F.log_softmax(s_logits[:, 3:], dim=-1)
    reverse_kl = (s_logp.exp() * (s_logp - t_logp)).sum(-1)
    assert reverse_kl.shape == (3, 8)
    expected = 4.0 * reverse_kl.sum() / reverse_kl.numel()  # T^2 * sum / count of generated tokens
    assert parts.n_tokens == 24
    assert float(parts.loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    # ... and not the one over every position
    t_all, s_all = F.log_softmax(t_logits, -1), F.log_softmax(s_logits, -1)
    everywhere = 4.0 * (s_all.exp() * (s_all - t_all)).sum(-1).mean()
    assert float(parts.loss.detach()) != pytest.approx(float(everywhere), rel=1e-3)


def test_the_choice_of_on_policy_steps_follows_the_seed_and_the_step():
    choices = [is_on_policy_step(0.3, 7, step) for step in range(400)]
    assert choices == [is_on_policy_step(0.3, 7, step) for step in range(400)]
    assert 0.2 < sum(choices) / 400 < 0.4
    assert choices != [is_on_policy_step(0.3, 8, step) for step in range(400)]
    assert not any(is_on_policy_step(0.0, 7, step) for step in range(50))
    assert all(is_on_policy_step(1.0, 7, step) for step in range(50))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    return run(tiny_config(tmp_path_factory.mktemp("default")), lambda event: None)


def test_lambda_zero_never_generates_and_ends_like_the_default_run(tmp_path, default_run, monkeypatch):
    calls = []
    monkeypatch.setattr(on_policy_module, "generate", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(stages_module, "is_on_policy_step", lambda *a, **k: calls.append(2))
    monkeypatch.setattr(stages_module, "on_policy_batch", lambda *a, **k: calls.append(3))
    received = []
    # the probes' own samples of the student's text (train.probe_samples) are not training: off here, so that
    # any generate call is the training's; the default run keeps them, and the summaries must still agree
    cfg = tiny_config(tmp_path, **{"distill.on_policy": "0", "train.probe_samples": "0"})
    result = run(cfg, received.append)
    assert result.status == "completed", result
    assert not calls
    assert all(e.generate_s == 0 for e in received if e.kind == "step")
    for key in ("student_ce", "kl_teacher_student", "kl_true_student", "teacher_ce"):
        assert result.summary[key] == default_run.summary[key], key


@pytest.fixture(scope="module")
def on_policy_run(tmp_path_factory):
    received = []
    result = run(tiny_config(tmp_path_factory.mktemp("on"), **ON), received.append)
    return result, received


def test_an_on_policy_run_generates_reports_the_time_and_differs_from_the_default(on_policy_run, default_run):
    result, received = on_policy_run
    assert result.status == "completed", result
    steps = [e for e in received if e.kind == "step" and e.stage == "distill"]
    assert any(e.generate_s > 0 for e in steps)
    assert all(e.generate_s == 0 for e in received if e.kind == "step" and e.stage == "teacher")
    assert result.summary["kl_teacher_student"] != default_run.summary["kl_teacher_student"]
    assert result.summary["teacher_ce"] == default_run.summary["teacher_ce"], "the teacher stage is untouched"


def test_a_stopped_and_resumed_on_policy_run_ends_like_an_uninterrupted_one(tmp_path, on_policy_run):
    expected = on_policy_run[0].summary
    control = Control()
    first = run(tiny_config(tmp_path, **ON), _stop_at(control, "distill", 4), control)
    assert first.status == "stopped"
    resumed = run(RunConfig(), resume=first.run_dir)
    assert resumed.status == "completed", resumed
    for key in ("student_ce", "kl_teacher_student", "kl_true_student"):
        assert resumed.summary[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key


WARM = {**ON, "distill.on_policy_start": "0.3"}  # 10 steps: steps 0-2 off-policy, from step 3 on lambda's draws


def _spy_on_policy_steps(monkeypatch) -> list[int]:
    """The steps (0-based) at which the training made an on-policy batch."""
    steps: list[int] = []
    make = stages_module.on_policy_batch
    monkeypatch.setattr(stages_module, "on_policy_batch", lambda *a, **k: steps.append(k["step"]) or make(*a, **k))
    return steps


def test_a_warm_start_keeps_the_first_steps_off_policy_and_then_follows_lambda():
    from workbench.config.checks import first_on_policy_step

    assert first_on_policy_step(0.0, 600) == 0
    assert first_on_policy_step(0.5, 600) == 300
    assert first_on_policy_step(0.3, 10) == 3, "0.3 x 10 is 3, not 3.0000000000000004 rounded up"
    assert first_on_policy_step(0.25, 10) == 3
    for fraction in (0.3, 0.5, 1.0):
        plain = [is_on_policy_step(fraction, 7, step) for step in range(200)]
        warm = [is_on_policy_step(fraction, 7, step, first=60) for step in range(200)]
        assert not any(warm[:60]), "no step before the start is on-policy"
        assert warm[60:] == plain[60:], "after it, the same draws as without a warm start"


def test_on_policy_start_zero_is_todays_run_and_a_warm_start_shifts_only_the_early_steps(
    tmp_path, on_policy_run, monkeypatch
):
    steps = _spy_on_policy_steps(monkeypatch)
    zero = run(tiny_config(tmp_path / "zero", **{**ON, "distill.on_policy_start": "0"}), lambda event: None)
    assert zero.status == "completed", zero
    draws = [step for step in range(10) if is_on_policy_step(0.5, 0, step)]
    assert steps == draws and draws[0] < 3, "start 0: every step follows lambda's draw, from the first"
    for key in ("student_ce", "kl_teacher_student", "kl_true_student", "teacher_ce"):
        assert zero.summary[key] == on_policy_run[0].summary[key], key

    steps.clear()
    received = []
    warm = run(tiny_config(tmp_path / "warm", **WARM), received.append)
    assert warm.status == "completed", warm
    assert steps == [step for step in draws if step >= 3] and steps, "off-policy before step 3, lambda after"
    generating = [e.step for e in received if e.kind == "step" and e.stage == "distill" and e.generate_s > 0]
    assert generating and min(generating) > 3, "no generation time is reported before the switch"
    assert any("on-policy steps begin at step 4 of 10" in getattr(e, "message", "") for e in received)
    assert warm.summary["kl_teacher_student"] != on_policy_run[0].summary["kl_teacher_student"]


@pytest.fixture(scope="module")
def warm_run(tmp_path_factory):
    return run(tiny_config(tmp_path_factory.mktemp("warm"), **WARM), lambda event: None)


@pytest.mark.parametrize("stop_at", [2, 6], ids=["before-the-switch", "after-it"])
def test_a_warm_started_run_resumed_across_the_switch_ends_like_an_uninterrupted_one(tmp_path, warm_run, stop_at):
    expected = warm_run.summary
    control = Control()
    first = run(tiny_config(tmp_path, **WARM), _stop_at(control, "distill", stop_at), control)
    assert first.status == "stopped"
    resumed = run(RunConfig(), resume=first.run_dir)
    assert resumed.status == "completed", resumed
    for key in ("student_ce", "kl_teacher_student", "kl_true_student"):
        assert resumed.summary[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key


def test_on_policy_divergence_applies_to_the_on_policy_steps_only(tmp_path):
    """lambda 1: every step is on-policy, so a run whose on-policy steps use reverse KL (divergence forward_kl,
    on_policy_divergence reverse_kl) trains the same student as one with reverse KL throughout; with
    on_policy_divergence = "same" it is forward KL's student."""
    every = {**ON, "distill.on_policy": "1", "train.max_steps": "4", "train.probe_samples": "0"}

    def summary(name, **overrides):
        result = run(tiny_config(tmp_path / name, **every, **overrides), lambda event: None)
        assert result.status == "completed", result
        return {k: result.summary[k] for k in ("student_ce", "kl_teacher_student", "kl_true_student")}

    reverse = summary("reverse", **{"distill.divergence": "reverse_kl"})
    split = summary("split", **{"distill.divergence": "forward_kl", "distill.on_policy_divergence": "reverse_kl"})
    same = summary("same", **{"distill.divergence": "forward_kl", "distill.on_policy_divergence": "same"})
    assert split == reverse
    assert same != reverse


def _errors(tmp_path, **overrides) -> list[ConfigError]:
    cfg = tiny_config(tmp_path)
    for key, value in overrides.items():
        cfg.set(key, value)
    return [e for e in cfg.errors() if e.field.startswith("distill.on_policy")]


def test_config_refuses_on_policy_with_the_topk_cache_alpha_zero_or_too_long_samples(tmp_path):
    ok = dict(ON)
    assert _errors(tmp_path, **ok) == []
    (err,) = _errors(tmp_path, **ok, **{"distill.teacher_cache": "topk"})
    assert "cannot score text that did not exist yet" in err.message and "full" in err.hint
    (err,) = _errors(tmp_path, **ok, **{"distill.alpha": "0"})
    assert "alpha" in err.message and err.hint
    (err,) = _errors(tmp_path, **{**ok, "distill.on_policy_new_tokens": "13"})
    assert err.field == "distill.on_policy_new_tokens" and "17" in err.message and "16" in err.message
    # a warm start must leave some step on-policy: 10 steps, 0.9 leaves step 9, 0.95 none
    assert _errors(tmp_path, **ok, **{"distill.on_policy_start": "0.9"}) == []
    for start in ("0.95", "1"):
        (err,) = _errors(tmp_path, **ok, **{"distill.on_policy_start": start})
        assert err.field == "distill.on_policy_start" and "no step on-policy" in err.message
        assert "0.9" in err.hint
    # off: none of these matter
    assert (
        _errors(
            tmp_path,
            **{
                "distill.teacher_cache": "topk",
                "distill.alpha": "0",
                "distill.on_policy_new_tokens": "99",
                "distill.on_policy_start": "1",
            },
        )
        == []
    )
    with pytest.raises(ConfigError):
        tiny_config(tmp_path, **{"distill.on_policy": "1.5"})
    with pytest.raises(ConfigError):
        tiny_config(tmp_path, **{"distill.on_policy_temperature": "0"})


def test_step_events_carry_generate_s_and_old_lines_still_read():
    import io
    import json

    from workbench import events as ev
    from workbench.commands.run import Progress

    step = ev.Step("distill", 10, 10, 1.0, 0.5, 0.5, 1e-3, 1.0, 100.0, 5.0, 0.0, generate_s=2.5)
    assert ev.event_from_dict(json.loads(ev.to_json(step))) == step
    old = json.loads(ev.to_json(step))
    del old["generate_s"]  # an events.jsonl written before on-policy distillation
    assert ev.event_from_dict(old).generate_s == 0.0
    out = io.StringIO()
    Progress(out)(step)
    assert "(gen 2.5s)" in out.getvalue()
    out = io.StringIO()
    Progress(out)(ev.event_from_dict(old))
    assert "tok/s ETA" in out.getvalue() and "gen" not in out.getvalue()


def test_every_step_on_policy_with_accumulation_and_the_fused_loss_runs(tmp_path, monkeypatch):
    """on_policy = 1: every distillation step generates, once per micro-batch, each with its own draws."""
    seeds = []
    make = on_policy_module.sample_generator
    monkeypatch.setattr(on_policy_module, "sample_generator", lambda *a, **k: seeds.append(a[1:]) or make(*a, **k))
    overrides = {
        **ON,
        "distill.on_policy": "1",
        "distill.divergence": "jsd",
        "distill.fused_loss": "true",
        "train.grad_accum": "2",
        "train.max_steps": "4",
    }
    received = []
    result = run(tiny_config(tmp_path, **overrides), received.append)
    assert result.status == "completed", result
    assert seeds == [(0, step, micro, 0) for step in range(4) for micro in range(2)]
    steps = [e for e in received if e.kind == "step" and e.stage == "distill"]
    assert all(e.generate_s > 0 for e in steps)
    assert all(math.isfinite(e.loss) and math.isfinite(e.kd) for e in steps)


def test_sample_continuations_batches_prompts_by_length_and_repeats_with_the_seed():
    from workbench.engine.train.on_policy import sample_continuations

    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer, seed=1)
    prompts = [[5, 6, 7], [8, 9], [10, 11, 12], [13, 14]]
    got = list(sample_continuations(model, prompts, 4, seed=3))
    assert [length for length, _ in got] == [2, 3]  # shortest first, one batch per length
    assert [row[:2] for row in got[0][1]] == [[8, 9], [13, 14]]
    assert [row[:3] for row in got[1][1]] == [[5, 6, 7], [10, 11, 12]]
    assert all(len(row) == length + 4 for length, rows in got for row in rows)
    assert got == list(sample_continuations(model, prompts, 4, seed=3))
    assert got != list(sample_continuations(model, prompts, 4, seed=4))
