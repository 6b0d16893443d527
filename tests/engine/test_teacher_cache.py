"""The top-k teacher cache: what it stores, when it is reused or rebuilt, and its sparse KL."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench.config.schema import ArchConfig, RunConfig
from workbench.engine import teacher_cache as tc
from workbench.engine.losses import distill_loss
from workbench.engine.models.build import build_model
from workbench.errors import ConfigError

VOCAB = 40


def tiny_teacher(seed: int = 0, vocab: int = VOCAB) -> torch.nn.Module:
    arch = ArchConfig(layers=1, hidden=16, heads=2, max_positions=32)
    return build_model(arch, vocab, pad_token_id=0, seed=seed).eval()


def some_blocks(n: int = 6, length: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (n, length), generator=torch.Generator().manual_seed(seed))


class Counting:
    """Counts the teacher's forward calls."""

    def __init__(self, model):
        self.calls = 0
        self.model = model
        original = model.forward

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        model.forward = counted


def build(teacher, blocks, k=8):
    return tc.teacher_topk_cache(teacher, blocks, k, device=torch.device("cpu"))


# -- what is stored ---------------------------------------------------------------


def test_stored_topk_and_tail_match_the_teachers_log_softmax():
    teacher, blocks = tiny_teacher(), some_blocks()
    cache = build(teacher, blocks, k=8)
    with torch.no_grad():
        logp = F.log_softmax(teacher(input_ids=blocks).logits.float(), dim=-1)
    top = logp.topk(8, dim=-1)
    assert cache.ids.dtype == np.uint16 and cache.logp.dtype == np.float16 and cache.tail.dtype == np.float32
    assert torch.equal(torch.from_numpy(cache.ids.astype(np.int64)), top.indices)
    assert torch.allclose(torch.from_numpy(cache.logp.astype(np.float32)), top.values, atol=1e-2, rtol=1e-3)
    tail_mass = 1 - top.values.exp().sum(-1)
    assert torch.allclose(torch.from_numpy(np.exp(cache.tail)), tail_mass, atol=1e-6, rtol=1e-4)
    assert cache.built
    assert cache.disk_bytes() >= blocks.numel() * tc.bytes_per_position(8, VOCAB)


def test_id_width_follows_the_vocabulary():
    assert tc.id_dtype(49152) == np.uint16 and tc.id_dtype(65536) == np.int32
    assert tc.bytes_per_position(64, 49152) == 64 * 4 + 4
    assert tc.bytes_per_position(64, 151936) == 64 * 6 + 4


# -- reuse and invalidation ------------------------------------------------------------


def test_a_second_build_with_the_same_key_does_not_run_the_teacher():
    teacher, blocks = tiny_teacher(), some_blocks()
    counter = Counting(teacher)
    first = build(teacher, blocks)
    assert counter.calls > 0 and first.built
    counter.calls = 0
    again = build(teacher, blocks)
    assert counter.calls == 0 and not again.built and again.folder == first.folder


@pytest.mark.parametrize("change", ["seq_len", "k", "data", "weights"])
def test_the_cache_is_rebuilt_when_its_key_changes(change):
    teacher, blocks = tiny_teacher(), some_blocks()
    first = build(teacher, blocks, k=8)
    k = 8
    if change == "seq_len":
        blocks = blocks[:, :10]
    elif change == "k":
        k = 4
    elif change == "data":
        blocks = blocks.clone()
        blocks[0, 0] = (blocks[0, 0] + 1) % VOCAB
    else:
        with torch.no_grad():
            next(teacher.parameters()).view(-1)[5] += 1e-3
    counter = Counting(teacher)
    second = build(teacher, blocks, k=k)
    assert counter.calls > 0 and second.built and second.folder != first.folder


@pytest.mark.parametrize("damage", ["no_meta", "truncated", "wrong_meta"])
def test_a_partial_or_corrupt_entry_is_rebuilt(damage):
    teacher, blocks = tiny_teacher(), some_blocks()
    first = build(teacher, blocks)
    expected = first.ids.copy()
    folder = first.folder
    del first
    if damage == "no_meta":
        (folder / "meta.json").unlink()
    elif damage == "truncated":
        data = (folder / "logp.npy").read_bytes()
        (folder / "logp.npy").write_bytes(data[: len(data) // 2])
    else:
        (folder / "meta.json").write_text('{"version": 1}')
    counter = Counting(teacher)
    rebuilt = build(teacher, blocks)
    assert counter.calls > 0 and rebuilt.built and rebuilt.folder == folder
    assert np.array_equal(rebuilt.ids, expected)


def test_a_teacher_that_learnt_keys_differently():
    teacher = tiny_teacher()
    before = tc.weights_fingerprint(teacher)
    assert tc.weights_fingerprint(tiny_teacher()) == before
    assert tc.weights_fingerprint(tiny_teacher(seed=1)) != before


# -- the loss ---------------------------------------------------------------------


def _cached(teacher_logits: torch.Tensor, k: int) -> tc.TopK:
    ids, logp, tail = tc.topk_of_logits(teacher_logits, k)
    return tc.TopK(ids=ids, logp=logp, tail=tail, vocab_size=teacher_logits.shape[-1])


def _logits(seed: int, shape=(2, 7, VOCAB), scale=3.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float() * scale


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_at_k_equal_to_the_vocabulary_the_sparse_kl_is_the_full_kl(temperature):
    student, teacher = _logits(1), _logits(2)
    labels = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(3))
    labels[0, 4] = -100
    full = distill_loss(student, teacher, labels, temperature=temperature, alpha=0.7)
    sparse = tc.topk_distill_loss(student, _cached(teacher, VOCAB), labels, temperature=temperature, alpha=0.7)
    assert sparse.n_tokens == full.n_tokens
    assert sparse.kd.item() == pytest.approx(full.kd.item(), rel=1e-5)
    assert sparse.ce.item() == pytest.approx(full.ce.item(), rel=1e-5)
    assert sparse.loss.item() == pytest.approx(full.loss.item(), rel=1e-5)


def _dense_reference_loss(student, teacher_logits, labels, k, temperature, alpha):
    """Written apart from the module: the two bucketed distributions built explicitly, in fp64, as k + 1
    probabilities per row (the tail's tempered mass under the uniform-tail rule), then KL and CE by hand."""
    student, teacher_logits = student.double(), teacher_logits.double()
    vocab = teacher_logits.shape[-1]
    p1 = torch.softmax(teacher_logits, -1)
    order = p1.argsort(-1, descending=True)
    top_idx, rest_idx = order[..., :k], order[..., k:]
    p_top, r = p1.gather(-1, top_idx), p1.gather(-1, rest_idx).sum(-1, keepdim=True)
    w_top = p_top ** (1 / temperature)
    w_tail = (vocab - k) * (r / (vocab - k)) ** (1 / temperature)
    weights = torch.cat([w_top, w_tail], -1)
    q = weights / weights.sum(-1, keepdim=True)
    s = torch.softmax(student / temperature, -1)
    s_buckets = torch.cat([s.gather(-1, top_idx), s.gather(-1, rest_idx).sum(-1, keepdim=True)], -1)
    kl = (q * (q.log() - s_buckets.log())).sum(-1)[:, :-1]
    targets = labels[:, 1:]
    valid = targets != -100
    ce = -torch.log_softmax(student, -1)[:, :-1].gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    n = valid.sum()
    return alpha * temperature**2 * kl[valid].sum() / n + (1 - alpha) * ce[valid].sum() / n


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_with_k_below_the_vocabulary_loss_and_gradients_match_a_dense_reference(temperature):
    teacher = _logits(5)
    labels = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(6))
    labels[1, 2] = -100
    student = _logits(4).requires_grad_(True)
    sparse = tc.topk_distill_loss(
        student, _cached(teacher, 6), labels, temperature=temperature, alpha=0.6, chunk_positions=5
    )
    (grad,) = torch.autograd.grad(sparse.loss, student)
    reference_student = student.detach().double().requires_grad_(True)
    reference = _dense_reference_loss(reference_student, teacher, labels, 6, temperature, 0.6)
    (reference_grad,) = torch.autograd.grad(reference, reference_student)
    assert sparse.loss.item() == pytest.approx(reference.item(), rel=1e-5)
    assert torch.allclose(grad.double(), reference_grad, atol=1e-6, rtol=1e-4)
    # ...and close to the full loss: the bucketed KL is a lower bound of the full one at T = 1.
    full = distill_loss(student.detach(), teacher, labels, temperature=temperature, alpha=0.6)
    if temperature == 1.0:
        assert sparse.kd.item() <= full.kd.item() + 1e-6
    assert sparse.kd.item() == pytest.approx(full.kd.item(), rel=0.5)


def test_a_peaked_teacher_gives_a_loss_close_to_the_full_one():
    teacher = _logits(7, scale=8.0)
    student = _logits(8, scale=2.0)
    labels = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(9))
    full = distill_loss(student, teacher, labels, temperature=1.0, alpha=1.0)
    sparse = tc.topk_distill_loss(student, _cached(teacher, 16), labels, temperature=1.0, alpha=1.0)
    assert sparse.kd.item() == pytest.approx(full.kd.item(), rel=0.05)


def test_an_all_ignored_batch_gives_zero_and_no_nan():
    student = _logits(1).requires_grad_(True)
    labels = torch.full((2, 7), -100)
    parts = tc.topk_distill_loss(student, _cached(_logits(2), VOCAB), labels, temperature=2.0)
    parts.loss.backward()
    assert parts.loss.item() == 0 and torch.isfinite(student.grad).all()


# -- configuration ------------------------------------------------------------------


def test_the_config_offers_the_cache_and_refuses_what_conflicts():
    cfg = RunConfig()
    assert cfg.distill.teacher_cache == "full" and cfg.distill.cache_k == 64
    cfg.apply_overrides(["distill.teacher_cache=topk", "distill.cache_k=16", "distill.alpha=0"])
    with pytest.raises(ConfigError) as err:
        cfg.apply_overrides(["distill.divergence=jsd"])
    assert err.value.field == "distill.divergence" and 'teacher_cache = "full"' in err.value.hint
    cfg.apply_overrides(["distill.divergence=forward_kl"])
    with pytest.raises(ConfigError) as err:
        cfg.apply_overrides(["distill.fused_loss=true"])
    assert err.value.field == "distill.fused_loss"
    with pytest.raises(ConfigError):
        RunConfig().apply_overrides(["distill.cache_k=0"])
    with pytest.raises(ConfigError):
        RunConfig().apply_overrides(["distill.teacher_cache=sparse"])


# -- in a run -----------------------------------------------------------------------


def cached_config(tmp_path):
    from tests.engine.test_train import tiny_config

    return tiny_config(tmp_path, **{"distill.teacher_cache": "topk", "distill.cache_k": "8"})


@pytest.fixture(scope="module")
def cached_run(tmp_path_factory):
    """One uninterrupted tiny run with the top-k cache (its own WORKBENCH_HOME, so its cache is its own)."""
    from workbench.engine.train.run import run

    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(home))
        received = []
        result = run(cached_config(tmp_path_factory.mktemp("cached")), received.append)
    return result, received, home


def test_a_run_with_the_cache_distills_without_running_the_teacher_on_batches(cached_run):
    result, received, _ = cached_run
    assert result.status == "completed", result
    logs = [e.message for e in received if e.kind == "log"]
    assert any("teacher cache (training, top 8): built" in m for m in logs), logs
    assert any("teacher cache (held-out, top 8): built" in m for m in logs)
    assert any(m.startswith("building the teacher cache (training blocks)") for m in logs)
    evals = [e for e in received if e.kind == "eval" and e.stage == "distill"]
    for key in ("kl_teacher_student", "top1_agreement", "teacher_ce", "student_ce", "kl_true_teacher"):
        assert key in evals[-1].metrics, key
    assert all(0 <= e.metrics["kl_teacher_student"] < math.inf for e in evals)
    assert result.summary["student_ppl"] < result.summary["student_ppl_before"]


def test_the_objective_reads_the_cache_and_never_calls_the_teacher():
    import contextlib

    from workbench.config.schema import DistillConfig
    from workbench.engine.train.objective import Batch, Objective

    teacher, blocks = tiny_teacher(), some_blocks()
    cache = build(teacher, blocks, k=VOCAB)
    counter = Counting(teacher)
    student = tiny_teacher(seed=3)
    settings = DistillConfig(teacher_cache="topk", cache_k=VOCAB, temperature=2.0, alpha=0.5)
    objective = Objective(
        settings, alpha=0.5, teacher=teacher, autocast=contextlib.nullcontext, chunk_positions=64, teacher_topk=cache
    )
    index = torch.tensor([4, 1])
    batch = Batch.of_blocks(blocks[index], index)
    parts = objective(student, batch, batch.valid_tokens())
    assert counter.calls == 0
    with torch.no_grad():
        teacher_logits = teacher(input_ids=blocks[index]).logits
    full = distill_loss(
        student(input_ids=blocks[index]).logits, teacher_logits, blocks[index], temperature=2.0, alpha=0.5
    )
    assert parts.loss.item() == pytest.approx(full.loss.item(), rel=2e-3)  # k = V: fp16 log-probs only


def test_a_second_run_reuses_the_cache(cached_run, tmp_path, monkeypatch):
    from workbench.engine.train.run import run

    _, _, home = cached_run
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    cfg = cached_config(tmp_path)
    cfg.train.max_steps = 2
    received = []
    result = run(cfg, received.append)
    assert result.status == "completed", result
    logs = [e.message for e in received if e.kind == "log"]
    assert any("teacher cache (training, top 8): found" in m for m in logs), logs
    assert not any(m.startswith("building the teacher cache") for m in logs)


def test_a_resumed_run_with_the_cache_ends_like_an_uninterrupted_one(cached_run, tmp_path):
    from workbench.config.schema import RunConfig
    from workbench.control import Control
    from workbench.engine.train.run import run

    expected = cached_run[0].summary
    control = Control()

    def stop_at_six(event):
        if event.kind == "step" and event.stage == "distill" and event.step >= 6:
            control.request_stop()

    first = run(cached_config(tmp_path), stop_at_six, control)
    assert first.status == "stopped", first
    received = []
    resumed = run(RunConfig(), received.append, resume=first.run_dir)
    assert resumed.status == "completed", resumed
    assert any("teacher cache (training, top 8): found" in e.message for e in received if e.kind == "log")
    for key in ("student_ce", "kl_teacher_student", "kl_true_student", "teacher_ce"):
        assert resumed.summary[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-5), key


def test_held_out_metrics_from_the_cache_at_k_equal_to_the_vocabulary_are_the_full_ones():
    from workbench.engine.evaluate import evaluate

    teacher, student, blocks = tiny_teacher(), tiny_teacher(seed=2), some_blocks()
    cache = build(teacher, blocks, k=VOCAB)
    common = dict(blocks=blocks, batch_size=4, device=torch.device("cpu"))
    full = evaluate(student=student, teacher=teacher, **common)
    cached = evaluate(student=student, teacher=None, teacher_topk=cache, **common)
    assert cached["kl_teacher_student"] == pytest.approx(full["kl_teacher_student"], rel=1e-2, abs=1e-4)
    assert cached["top1_agreement"] == pytest.approx(full["top1_agreement"])
    assert cached["student_ce"] == pytest.approx(full["student_ce"])
    smaller = evaluate(student=student, teacher=None, teacher_topk=build(teacher, blocks, k=4), **common)
    assert smaller["kl_teacher_student"] <= full["kl_teacher_student"] + 1e-4


def test_the_plan_gives_the_caches_bytes_per_token():
    from workbench.engine.plan import plan_run

    cfg = RunConfig()
    assert plan_run(cfg).teacher_cache_bytes_per_token == 0
    cfg.distill.teacher_cache = "topk"
    plan = plan_run(cfg)
    assert plan.vocab_size == 178
    assert plan.teacher_cache_bytes_per_token == 64 * (2 + 2) + 4
    cfg.distill.cache_k = 1024  # above the vocabulary: the whole vocabulary is kept
    assert plan_run(cfg).teacher_cache_bytes_per_token == 178 * 4 + 4
