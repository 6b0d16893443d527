"""distill.on_policy_sequence_weight: the long-term part of the samples' reverse KL (engine/losses.py's
``sequence_term``), checked against the exact gradient of the sequence-level reverse KL, enumerated over
every sequence a tiny student can write."""

from __future__ import annotations

import itertools

import pytest
import torch

from tests.engine.test_train import _stop_at, tiny_config
from workbench.config.schema import RunConfig
from workbench.control import Control
from workbench.engine.losses import distill_loss, sequence_term
from workbench.engine.train.on_policy import prompt_masked_batch
from workbench.engine.train.run import run

V, NEW = 3, 3  # vocabulary, sampled tokens after a one-token prompt: 27 sequences
PROMPT = 1


def _tables(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(V, V, generator=generator, dtype=torch.float64),
        torch.randn(PROMPT + NEW, V, generator=generator, dtype=torch.float64),
    )


def _logits(tables, ids: torch.Tensor) -> torch.Tensor:
    """``[B, L, V]``: a first-order model whose next-token logits depend on the last token and the position."""
    by_token, by_position = tables
    return by_token[ids] + by_position[: ids.shape[1]]


def _sequences() -> list[torch.Tensor]:
    return [torch.tensor([0, *tail]) for tail in itertools.product(range(V), repeat=NEW)]


def _log_prob(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Sum over the sampled tokens of log p(x_t | x<t), for one ``[L, V]`` row."""
    logp = torch.log_softmax(logits[:-1], dim=-1)
    return logp[torch.arange(PROMPT - 1, ids.shape[0] - 1), ids[PROMPT:]].sum()


@pytest.fixture
def models():
    student = tuple(t.requires_grad_() for t in _tables(0))
    return student, _tables(1)


def _exact_gradient(student, teacher) -> list[torch.Tensor]:
    """grad of J = sum_x s(x) log(s(x) / t(x)), the reverse KL between the two models' whole samples."""
    total = 0
    for ids in _sequences():
        log_s = _log_prob(_logits(student, ids[None])[0], ids)
        log_t = _log_prob(_logits(teacher, ids[None])[0], ids)
        total = total + log_s.exp() * (log_s - log_t)
    return torch.autograd.grad(total, student)


def _surrogate(student, teacher, rows: list[torch.Tensor], weight: float) -> torch.Tensor:
    """What an on-policy step minimises on a batch of these samples: the per-position reverse KL plus
    ``weight`` x the sequence term, both summed over the batch's sampled tokens (per row, then averaged)."""
    ids = torch.stack(rows)
    batch = prompt_masked_batch(ids, PROMPT)
    student_logits, teacher_logits = _logits(student, ids), _logits(teacher, ids).detach()
    per_row = NEW * len(rows)  # a mean over the batch's tokens, times the tokens of one row: a sum per row
    parts = distill_loss(
        student_logits, teacher_logits, batch.labels, temperature=1.0, alpha=1.0, divergence="reverse_kl"
    )
    return (parts.loss + weight * sequence_term(student_logits, teacher_logits, batch.labels, per_row)) * NEW


def _expected_gradient(student, teacher, batch_rows: int, weight: float) -> list[torch.Tensor]:
    """The exact expectation, over every batch of ``batch_rows`` samples drawn from the student, of the
    gradient of the on-policy step's loss."""
    sequences = _sequences()
    with torch.no_grad():
        prob = {i: _log_prob(_logits(student, ids[None])[0], ids).exp().item() for i, ids in enumerate(sequences)}
    total = 0
    for batch in itertools.product(range(len(sequences)), repeat=batch_rows):
        weight_of_batch = 1.0
        for i in batch:
            weight_of_batch *= prob[i]
        total = total + weight_of_batch * _surrogate(student, teacher, [sequences[i] for i in batch], weight)
    return torch.autograd.grad(total, student)


def test_with_weight_one_a_samples_step_is_unbiased_for_the_gradient_of_the_whole_samples_reverse_kl(models):
    student, teacher = models
    exact = _exact_gradient(student, teacher)
    with_term = _expected_gradient(student, teacher, 1, weight=1.0)
    for got, want in zip(with_term, exact, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    alone = _expected_gradient(student, teacher, 1, weight=0.0)
    missing = max((a - b).abs().max().item() for a, b in zip(alone, exact, strict=True))
    assert missing > 1e-2, "the per-position divergence alone misses the later tokens' part of the gradient"


def test_the_leave_one_out_baseline_keeps_the_expectation(models):
    """With two rows each row's baseline is the other's later cost: the expectation over every pair of
    samples is still the exact gradient."""
    student, teacher = models
    exact = _exact_gradient(student, teacher)
    paired = _expected_gradient(student, teacher, 2, weight=1.0)
    for got, want in zip(paired, exact, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_the_prompt_is_not_pushed_and_a_row_like_its_batch_gets_no_push():
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 5, (3, 8), generator=generator)
    labels = prompt_masked_batch(ids, 4).labels
    student = torch.randn(3, 8, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(3, 8, 5, generator=generator, dtype=torch.float64)
    sequence_term(student, teacher, labels, 12).backward()
    assert student.grad[:, :3].abs().max() == 0, "positions predicting a prompt token get no gradient"
    assert student.grad[:, -1].abs().max() == 0, "the last position predicts nothing"
    assert student.grad[:, 3:7].abs().max() > 0
    same = torch.stack([student[0].detach()] * 3).requires_grad_()
    sequence_term(same, torch.stack([teacher[0]] * 3), torch.stack([labels[0]] * 3), 12).backward()
    assert same.grad.abs().max() < 1e-12, "identical rows: each one's later cost equals the others' mean"


def test_a_run_with_the_sequence_term_trains_another_student_and_resumes_exactly(tmp_path):
    every = {
        "distill.on_policy": "1",
        "distill.on_policy_prompt_tokens": "4",
        "distill.on_policy_new_tokens": "12",
        "distill.on_policy_divergence": "reverse_kl",
        "train.max_steps": "6",
        "train.probe_samples": "0",
    }
    keys = ("student_ce", "kl_teacher_student", "kl_true_student")

    def summary(name, events=None, **overrides):
        result = run(tiny_config(tmp_path / name, **every, **overrides), (events if events is not None else []).append)
        assert result.status == "completed", result
        return {k: result.summary[k] for k in keys}

    plain = summary("plain")
    received = []
    weighted = summary("weighted", received, **{"distill.on_policy_sequence_weight": "1"})
    assert weighted != plain
    said = [e.message for e in received if e.kind == "log" and "sequence-level term" in e.message]
    assert said == [
        "on-policy steps add the sequence-level term (distill.on_policy_sequence_weight = 1) to reverse_kl on the samples"
    ]
    assert summary("zero", **{"distill.on_policy_sequence_weight": "0"}) == plain, "weight 0 is today's run"

    control = Control()
    cfg = tiny_config(tmp_path / "stopped", **every, **{"distill.on_policy_sequence_weight": "1"})
    first = run(cfg, _stop_at(control, "distill", 3), control)
    assert first.status == "stopped"
    resumed = run(RunConfig(), resume=first.run_dir)
    assert resumed.status == "completed", resumed
    for key in keys:
        assert resumed.summary[key] == pytest.approx(weighted[key], rel=1e-5, abs=1e-6), key


def test_the_term_is_the_same_taken_a_few_positions_at_a_time():
    generator = torch.Generator().manual_seed(5)
    ids = torch.randint(0, 7, (4, 12), generator=generator)
    labels = prompt_masked_batch(ids, 3).labels
    teacher = torch.randn(4, 12, 7, generator=generator)
    values, grads = [], []
    for chunk in (1024, 5, 1):
        student = torch.randn(4, 12, 7, generator=torch.Generator().manual_seed(6), requires_grad=True)
        value = sequence_term(student, teacher, labels, torch.tensor(36), chunk_positions=chunk)
        value.backward()
        values.append(value.item())
        grads.append(student.grad)
    assert values[1] == pytest.approx(values[0], rel=1e-6) and values[2] == pytest.approx(values[0], rel=1e-6)
    torch.testing.assert_close(grads[1], grads[0])
    torch.testing.assert_close(grads[2], grads[0])


def test_the_logged_loss_of_an_on_policy_step_leaves_the_terms_meaningless_value_out(tmp_path):
    """On-policy steps use the soft term alone, so their logged loss is the divergence term; the sequence-level
    term only adds a gradient."""
    overrides = {
        "distill.on_policy": "1",
        "distill.on_policy_prompt_tokens": "4",
        "distill.on_policy_new_tokens": "12",
        "distill.on_policy_divergence": "reverse_kl",
        "distill.on_policy_sequence_weight": "5",
        "train.max_steps": "4",
        "train.log_interval": "1",
        "train.probe_samples": "0",
    }
    received = []
    result = run(tiny_config(tmp_path, **overrides), received.append)
    assert result.status == "completed", result
    steps = [e for e in received if e.kind == "step" and e.stage == "distill"]
    assert len(steps) == 4
    for event in steps:
        assert event.loss == pytest.approx(event.kd, rel=1e-5, abs=1e-6)
