"""Hidden-state matching (distill.hidden_weight): the term against a plain-torch reference, its gradients,
the config's refusals and a tiny end-to-end run."""

from __future__ import annotations

import contextlib
import copy
import math

import pytest
import torch
from torch import nn

from workbench.config.schema import ArchConfig, RunConfig
from workbench.engine.hidden_match import hidden_match_loss, layer_outputs
from workbench.engine.losses import distill_loss
from workbench.engine.models.build import build_model, decoder_layers, derive_student
from workbench.engine.train import objective as objective_module
from workbench.engine.train.objective import Batch, Objective
from workbench.errors import ConfigError

VOCAB, LAYERS = 40, 4


def _teacher(family: str = "llama", seed: int = 0):
    arch = ArchConfig(family=family, layers=LAYERS, hidden=32, heads=4, max_positions=32)
    return build_model(arch, VOCAB, pad_token_id=0, seed=seed).eval()


def _perturbed(model, seed: int = 1):
    """The student after some training: every weight moved a little, so no layer matches exactly."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model


def _batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (3, 12), generator=gen)
    labels = ids.clone()
    labels[1, 8:] = -100  # a padded row
    labels[2, 5] = -100  # a position left out in the middle
    return ids, labels


def _without_final_norm(model):
    """A copy whose ``output_hidden_states`` are every layer's raw output (HF norms the last entry)."""
    model = copy.deepcopy(model)
    base = model.get_decoder()
    for name in ("norm", "ln_f"):
        if hasattr(base, name):
            setattr(base, name, nn.Identity())
    return model


def reference_term(student, teacher, kept, ids, labels, kind, denominator):
    """The term written out with plain torch from ``output_hidden_states``, one position at a time."""
    with torch.no_grad():
        s_h = _without_final_norm(student)(input_ids=ids, output_hidden_states=True).hidden_states
        t_h = _without_final_norm(teacher)(input_ids=ids, output_hidden_states=True).hidden_states
    total = 0.0
    for i, k in enumerate(kept):
        for b in range(ids.shape[0]):
            for t in range(ids.shape[1] - 1):
                if labels[b, t + 1] == -100:
                    continue
                a, c = s_h[i + 1][b, t].double(), t_h[k + 1][b, t].double()
                if kind == "cosine":
                    total += 1.0 - float(a @ c / (a.norm() * c.norm()))
                else:
                    total += float(((a - c) ** 2).mean())
    return total / (len(kept) * denominator)


def _term(student, teacher, kept, ids, labels, kind, num_valid_tokens=None):
    with layer_outputs(teacher) as t_out, torch.no_grad():
        teacher(input_ids=ids, use_cache=False)
    with layer_outputs(student) as s_out:
        student(input_ids=ids, use_cache=False)
    return hidden_match_loss(s_out, t_out, kept, labels, kind=kind, num_valid_tokens=num_valid_tokens)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("kind", ["cosine", "mse"])
def test_the_term_equals_a_plain_torch_reference(family, kind):
    teacher = _teacher(family)
    kept = [0, 2, 3]
    student = _perturbed(derive_student(teacher, kept)).eval()
    ids, labels = _batch()
    valid = int((labels[:, 1:] != -100).sum())
    # as one micro-batch of a larger step: the denominator is the step's valid tokens
    term = _term(student, teacher, kept, ids, labels, kind, num_valid_tokens=valid + 7)
    expected = reference_term(student, teacher, kept, ids, labels, kind, valid + 7)
    assert expected > 1e-4
    assert term.item() == pytest.approx(expected, rel=1e-5, abs=1e-7)
    alone = _term(student, teacher, kept, ids, labels, kind)  # no step given: this call's valid tokens
    assert alone.item() == pytest.approx(expected * (valid + 7) / valid, rel=1e-5)


def test_the_teacher_holds_only_the_layers_the_student_is_matched_with():
    """A 4-layer teacher matched by 2 layers keeps 2 outputs alive, and the term is the same as with all 4."""
    teacher = _teacher()
    kept = [1, 3]
    student = _perturbed(derive_student(teacher, kept)).eval()
    ids, labels = _batch()
    with layer_outputs(teacher, keep=kept) as t_out, torch.no_grad():
        teacher(input_ids=ids, use_cache=False)
    assert [j for j, out in enumerate(t_out) if out is not None] == kept
    assert len(t_out) == len(decoder_layers(teacher))
    with layer_outputs(student) as s_out:
        student(input_ids=ids, use_cache=False)
    term = hidden_match_loss(s_out, t_out, kept, labels, kind="mse")
    assert term.item() == pytest.approx(_term(student, teacher, kept, ids, labels, "mse").item(), rel=1e-6)
    assert term.item() > 1e-6


def test_the_last_layer_is_compared_before_the_final_norm():
    """A student whose last layer is not the teacher's last: both sides raw, not the student's normed stream."""
    teacher = _teacher()
    kept = [0, 1]
    student = derive_student(teacher, kept).eval()
    ids, labels = _batch()
    # the first two layers of the teacher, unchanged: their outputs are the teacher's, so the term is 0;
    # HF's hidden_states[-1] of the student is normed and would not be.
    assert _term(student, teacher, kept, ids, labels, "mse").item() < 1e-10
    assert _term(student, teacher, kept, ids, labels, "cosine").item() < 1e-6


@pytest.mark.parametrize("kind", ["cosine", "mse"])
def test_a_student_equal_to_its_teachers_layers_matches_them(kind):
    teacher = _teacher()
    ids, labels = _batch()
    everything = derive_student(teacher, list(range(LAYERS))).eval()
    term = _term(everything, teacher, list(range(LAYERS)), ids, labels, kind).item()
    assert term == 0.0 if kind == "mse" else term < 1e-6
    skipping = derive_student(teacher, [0, 2]).eval()  # layer 2 now reads layer 0's output, not layer 1's
    assert _term(skipping, teacher, [0, 2], ids, labels, kind).item() > 1e-6  # (float noise is < 1e-10)


def test_gradients_reach_the_student_and_not_the_teacher():
    teacher = _teacher()
    teacher.requires_grad_(True)  # even a teacher that could take gradients gets none
    kept = [1, 3]
    student = _perturbed(derive_student(teacher, kept))
    ids, labels = _batch()
    _term(student, teacher, kept, ids, labels, "cosine").backward()
    assert all(p.grad is None for p in teacher.parameters())
    layer_grads = [p.grad for p in student.get_decoder().layers.parameters()]
    assert all(g is not None for g in layer_grads) and sum(float(g.abs().sum()) for g in layer_grads) > 0
    assert float(student.get_input_embeddings().weight.grad.abs().sum()) > 0


@pytest.mark.parametrize("alpha", [0.5, 0.0])
def test_the_objective_adds_the_weighted_term_to_the_usual_loss(alpha):
    teacher = _teacher()
    kept = [0, 3]
    student = _perturbed(derive_student(teacher, kept))
    ids, labels = _batch()
    settings = RunConfig().distill
    settings.hidden_weight, settings.hidden_loss = 2.5, "mse"
    objective = Objective(
        settings, alpha=alpha, teacher=teacher, autocast=contextlib.nullcontext, chunk_positions=64, hidden_layers=kept
    )
    n = int((labels[:, 1:] != -100).sum())
    parts = objective(student, Batch(ids=ids, labels=labels), n)
    with torch.no_grad():
        t_logits = teacher(input_ids=ids).logits if alpha > 0 else None
        student_logits = student(input_ids=ids).logits
        usual = distill_loss(
            student_logits, t_logits, labels, alpha=alpha, temperature=settings.temperature, num_valid_tokens=n
        )
    expected = reference_term(student, teacher, kept, ids, labels, "mse", n)
    assert parts.hidden.item() == pytest.approx(expected, rel=1e-5)
    assert parts.loss.item() == pytest.approx(usual.loss.item() + 2.5 * expected, rel=1e-5)
    assert parts.kd.item() == pytest.approx(usual.kd.item(), rel=1e-5, abs=1e-7)
    # weight 0: the usual objective, no hidden term at all
    settings.hidden_weight = 0.0
    off = Objective(
        settings, alpha=alpha, teacher=teacher, autocast=contextlib.nullcontext, chunk_positions=64, hidden_layers=kept
    )
    parts = off(student, Batch(ids=ids, labels=labels), n)
    assert parts.hidden is None and parts.loss.item() == pytest.approx(usual.loss.item(), rel=1e-5)


# -- configuration ------------------------------------------------------------------


def test_the_config_offers_hidden_matching_for_derived_students_only():
    cfg = RunConfig()
    assert cfg.distill.hidden_weight == 0 and cfg.distill.hidden_loss == "cosine"
    cfg.apply_overrides(["distill.hidden_weight=0.5", "distill.hidden_loss=mse"])  # derived is the default
    for overrides, hint in (
        (["student.source=custom"], 'student.source = "derived"'),
        (["distill.fused_loss=true"], "fused_loss off"),
        (["distill.teacher_cache=topk"], 'teacher_cache = "full"'),
    ):
        with pytest.raises(ConfigError) as err:
            RunConfig().apply_overrides(["distill.hidden_weight=1", *overrides])
        assert err.value.field == "distill.hidden_weight" and hint in err.value.hint, overrides
        RunConfig().apply_overrides(["distill.hidden_weight=0", *overrides])  # off: nothing to refuse
    with pytest.raises(ConfigError) as err:
        RunConfig().apply_overrides(["distill.hidden_weight=-1"])
    assert err.value.field == "distill.hidden_weight"
    with pytest.raises(ConfigError) as err:
        RunConfig().apply_overrides(["distill.hidden_loss=l1"])
    assert err.value.field == "distill.hidden_loss"


# -- in a run -----------------------------------------------------------------------


def _config(tmp_path, **overrides):
    from tests.engine.test_train import tiny_config

    return tiny_config(tmp_path, **{"teacher.arch.layers": "3", "student.keep_layers": "2", **overrides})


def test_a_run_with_hidden_matching_reports_the_term(tmp_path):
    from workbench.engine.train.run import run

    received = []
    # two micro-batches a step: each term is divided by the step's valid tokens and summed over them
    overrides = {"distill.hidden_weight": "1.5", "train.grad_accum": "2", "train.teacher_steps": "4"}
    result = run(_config(tmp_path / "on", **overrides), received.append)
    assert result.status == "completed", result
    steps = [e for e in received if e.kind == "step" and e.stage == "distill"]
    assert steps and all(math.isfinite(e.hidden) and e.hidden > 0 for e in steps)
    assert all(math.isnan(e.hidden) for e in received if e.kind == "step" and e.stage == "teacher")
    for e in steps:  # loss = alpha * kd + (1 - alpha) * ce + weight * hidden
        assert e.loss == pytest.approx(0.5 * e.kd + 0.5 * e.ce + 1.5 * e.hidden, rel=1e-4)
    assert any(e.kind == "log" and "teacher layers [0, 2]" in e.message for e in received)


def test_weight_zero_never_computes_the_term_and_runs_as_before(tmp_path, monkeypatch):
    from workbench.engine.train.run import run

    before = run(_config(tmp_path / "before"), lambda event: None)
    calls = []
    real = objective_module.hidden_match_loss
    monkeypatch.setattr(objective_module, "hidden_match_loss", lambda *a, **k: calls.append(1) or real(*a, **k))
    received = []
    off = run(_config(tmp_path / "off", **{"distill.hidden_weight": "0"}), received.append)
    assert off.status == "completed" and not calls
    assert all(math.isnan(e.hidden) for e in received if e.kind == "step")
    for key in ("student_ce", "kl_teacher_student", "kl_true_student", "teacher_ce"):
        assert off.summary[key] == before.summary[key], key
    on = run(_config(tmp_path / "on", **{"distill.hidden_weight": "1"}), lambda event: None)
    assert calls and on.summary["student_ce"] != before.summary["student_ce"]


def test_the_progress_line_shows_the_term_only_when_on():
    import io

    from workbench.commands.run import Progress
    from workbench.events import Step

    def line(hidden):
        out = io.StringIO()
        Progress(out)(Step("distill", 10, 10, 2.0, 0.5, 3.0, 1e-3, 1.0, 1e4, 1.0, 0.0, hidden=hidden))
        return out.getvalue()

    assert "hidden 0.0123" in line(0.0123) and "kd 0.500" in line(0.0123)
    assert "hidden" not in line(math.nan)


def test_layers_kept_by_importance_are_the_ones_matched(tmp_path):
    from workbench.engine.train.run import run

    received = []
    overrides = {"distill.hidden_weight": "1", "student.keep": "importance", "train.teacher_steps": "4"}
    result = run(_config(tmp_path, **overrides), received.append)
    assert result.status == "completed", result
    kept = result.summary["kept_layers"]
    assert any(e.kind == "log" and f"against teacher layers {kept}" in e.message for e in received)
    assert all(math.isfinite(e.hidden) for e in received if e.kind == "step" and e.stage == "distill")


def test_on_policy_steps_add_the_term_over_the_positions_that_predict_a_sample(tmp_path):
    """distill.on_policy with hidden matching: the student's own samples are compared layer by layer too, on the
    positions whose target is a generated token (the prompt's are -100, as for the KD term)."""
    from workbench.engine.train.run import run

    received = []
    overrides = {
        "distill.hidden_weight": "1.5",
        "distill.on_policy": "1.0",
        "distill.on_policy_prompt_tokens": "4",
        "distill.on_policy_new_tokens": "6",
        "train.teacher_steps": "4",
    }
    result = run(_config(tmp_path / "on", **overrides), received.append)
    assert result.status == "completed", result
    steps = [e for e in received if e.kind == "step" and e.stage == "distill"]
    assert steps and all(e.generate_s > 0 for e in steps)  # every step on-policy
    assert all(math.isfinite(e.hidden) and e.hidden > 0 for e in steps)
    for e in steps:  # on-policy steps use the soft term alone (alpha = 1) plus the weighted hidden term
        assert e.loss == pytest.approx(e.kd + 1.5 * e.hidden, rel=1e-4)


def test_the_on_policy_objective_matches_the_reference_term_on_generated_positions():
    from workbench.engine.train.on_policy import prompt_masked_batch

    teacher = _teacher()
    kept = [0, 3]
    student = _perturbed(derive_student(teacher, kept))
    ids, _ = _batch()
    batch = prompt_masked_batch(ids, 5)  # positions 4.. predict generated tokens
    settings = RunConfig().distill
    settings.hidden_weight, settings.hidden_loss = 1.0, "cosine"
    objective = Objective(
        settings, alpha=1.0, teacher=teacher, autocast=contextlib.nullcontext, chunk_positions=64, hidden_layers=kept
    )
    n = int((batch.labels[:, 1:] != -100).sum())
    parts = objective(student, batch, n)
    expected = reference_term(student, teacher, kept, ids, batch.labels, "cosine", n)
    assert parts.hidden.item() == pytest.approx(expected, rel=1e-5)
