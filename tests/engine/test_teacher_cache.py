"""The top-k teacher cache: what it stores, when it is reused or rebuilt, and its sparse KL (both tail models)."""

from __future__ import annotations

import json
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
    # k ids and float16 log-probabilities, the float32 tail, 36 int8 low-rank coefficients and their float16 scale
    assert tc.bytes_per_position(64, 49152) == 64 * 4 + 4 + 36 + 2 <= 300
    assert tc.bytes_per_position(64, 151936) == 64 * 6 + 4 + 36 + 2


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


def _dense_tail_sums(logp: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Each token's probability summed over the positions where it is outside that position's top-k, densely."""
    outside = torch.ones_like(logp, dtype=torch.bool).scatter(-1, ids, False)
    return (logp.double().exp() * outside).reshape(-1, logp.shape[-1]).sum(0)


def _cached(teacher_logits: torch.Tensor, k: int, prior: torch.Tensor | None = None) -> tc.TopK:
    """The cache's view of ``teacher_logits``; the prior as the build makes it, unless one is given."""
    ids, logp, tail = tc.topk_of_logits(teacher_logits, k)
    if prior is None:
        prior = tc.tail_prior(_dense_tail_sums(F.log_softmax(teacher_logits.float(), -1), ids))
    vocab = teacher_logits.shape[-1]
    center, basis = tc.logit_basis(teacher_logits.reshape(-1, vocab))
    coef = tc.dequantize_coefficients(*tc.quantize_coefficients(tc.tail_coefficients(teacher_logits, center, basis)))
    return tc.TopK(ids=ids, logp=logp, tail=tail, vocab_size=vocab, prior=prior, coef=coef, basis=basis, center=center)


def _logits(seed: int, shape=(2, 7, VOCAB), scale=3.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float() * scale


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_at_k_equal_to_the_vocabulary_the_sparse_kl_is_the_full_kl(temperature):
    student, teacher = _logits(1), _logits(2)
    labels = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(3))
    labels[0, 4] = -100
    full = distill_loss(student, teacher, labels, temperature=temperature, alpha=0.7)
    for tail in ("lowrank", "prior", "bucket"):
        sparse = tc.topk_distill_loss(
            student, _cached(teacher, VOCAB), labels, temperature=temperature, alpha=0.7, tail=tail
        )
        assert sparse.n_tokens == full.n_tokens
        assert sparse.kd.item() == pytest.approx(full.kd.item(), rel=1e-5), tail
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
def test_with_k_below_the_vocabulary_the_bucket_loss_and_gradients_match_a_dense_reference(temperature):
    teacher = _logits(5)
    labels = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(6))
    labels[1, 2] = -100
    student = _logits(4).requires_grad_(True)
    sparse = tc.topk_distill_loss(
        student, _cached(teacher, 6), labels, temperature=temperature, alpha=0.6, chunk_positions=5, tail="bucket"
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
    for tail in ("lowrank", "prior", "bucket"):
        sparse = tc.topk_distill_loss(student, _cached(teacher, 16), labels, temperature=1.0, alpha=1.0, tail=tail)
        assert sparse.kd.item() == pytest.approx(full.kd.item(), rel=0.05), tail


@pytest.mark.parametrize("tail", ["lowrank", "prior", "bucket"])
@pytest.mark.parametrize("k", [6, VOCAB])
def test_an_all_ignored_batch_gives_zero_and_no_nan(tail, k):
    student = _logits(1).requires_grad_(True)
    labels = torch.full((2, 7), -100)
    parts = tc.topk_distill_loss(student, _cached(_logits(2), k), labels, temperature=2.0, tail=tail)
    parts.loss.backward()
    assert parts.loss.item() == 0 and torch.isfinite(student.grad).all()


# -- the prior's tail ------------------------------------------------------------------


def _dense_prior_teacher(teacher_logits, k, prior, temperature):
    """Written apart from the module: the teacher's tempered distribution over all V tokens, built explicitly
    in fp64: its exact top-k at T = 1, the tail mass spread over the other tokens in proportion to ``prior``
    (renormalised per row over them), every probability raised to 1 / T, normalised."""
    p1 = torch.softmax(teacher_logits.double(), -1)
    top_idx = p1.argsort(-1, descending=True)[..., :k]
    in_top = torch.zeros_like(p1, dtype=torch.bool).scatter(-1, top_idx, True)
    r = torch.where(in_top, 0.0, p1).sum(-1, keepdim=True)
    prior = prior.double().expand_as(p1)
    z = torch.where(in_top, 0.0, prior).sum(-1, keepdim=True)
    full = torch.where(in_top, p1, r * prior / z)
    return torch.softmax(full.log() / temperature, -1)


def _dense_prior_reference_loss(student, teacher_logits, labels, k, prior, temperature, alpha):
    q = _dense_prior_teacher(teacher_logits, k, prior, temperature)
    log_s = F.log_softmax(student.double() / temperature, -1)
    kl = (q * (q.log() - log_s)).sum(-1)[:, :-1]
    targets = labels[:, 1:]
    valid = targets != -100
    ce = F.cross_entropy(
        student.double()[:, :-1].reshape(-1, student.shape[-1]), targets.reshape(-1), reduction="none"
    ).view(targets.shape)
    n = valid.sum()
    return alpha * temperature**2 * kl[valid].sum() / n + (1 - alpha) * ce[valid].sum() / n


def _some_prior(seed: int) -> torch.Tensor:
    prior = torch.rand(VOCAB, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) ** 3 + 1e-4
    return (prior / prior.sum()).float()


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("k", [1, 6, VOCAB - 1])
def test_the_prior_loss_and_gradients_match_a_dense_reference_over_the_vocabulary(temperature, k):
    teacher, prior = _logits(5), _some_prior(11)
    labels = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(6))
    labels[1, 2] = -100
    student = _logits(4).requires_grad_(True)
    sparse = tc.topk_distill_loss(
        student, _cached(teacher, k, prior), labels, temperature=temperature, alpha=0.6, chunk_positions=5, tail="prior"
    )
    (grad,) = torch.autograd.grad(sparse.loss, student)
    reference_student = student.detach().double().requires_grad_(True)
    reference = _dense_prior_reference_loss(reference_student, teacher, labels, k, prior, temperature, 0.6)
    (reference_grad,) = torch.autograd.grad(reference, reference_student)
    assert sparse.loss.item() == pytest.approx(reference.item(), rel=1e-5)
    assert torch.allclose(grad.double(), reference_grad, atol=1e-6, rtol=1e-4)
    if temperature == 1.0:  # the same top-k and tail mass: bucketing can only lose KL (data processing)
        bucket = tc.topk_distill_loss(
            student.detach(), _cached(teacher, k, prior), labels, temperature=1.0, alpha=0.6, tail="bucket"
        )
        assert sparse.kd.item() >= bucket.kd.item() - 1e-6


def test_the_prior_pulls_the_students_tail_towards_its_shape_where_the_bucket_is_blind():
    """A student with the teacher's top-k and tail mass exactly, but a tail shaped unlike the prior: the
    bucketed KL is 0 and gives no gradient; the prior's KL is positive and its step moves the student's
    tail towards the prior."""
    k = 4
    teacher = _logits(21)[:1, :1]
    prior = _some_prior(22)
    p = torch.softmax(teacher.double(), -1)
    top_idx = p.topk(k, -1).indices
    in_top = torch.zeros_like(p, dtype=torch.bool).scatter(-1, top_idx, True)
    r = torch.where(in_top, 0.0, p).sum(-1, keepdim=True)
    uniform_tail = torch.where(in_top, p, r / (VOCAB - k))
    student = uniform_tail.log().float().requires_grad_(True)
    labels = torch.zeros((1, 2), dtype=torch.long)  # one valid target, for the first position
    student2 = torch.cat([student, student.detach()], 1)
    teacher2 = torch.cat([teacher, teacher], 1)
    cached = _cached(teacher2, k, prior)
    bucket = tc.topk_distill_loss(student2, cached, labels, temperature=1.0, alpha=1.0, tail="bucket")
    (bucket_grad,) = torch.autograd.grad(bucket.loss, student)
    assert bucket.kd.item() == pytest.approx(0.0, abs=1e-6) and bucket_grad.abs().max() < 1e-6
    with_prior = tc.topk_distill_loss(student2, cached, labels, temperature=1.0, alpha=1.0, tail="prior")
    (grad,) = torch.autograd.grad(with_prior.loss, student)
    assert with_prior.kd.item() > 1e-3
    target = _dense_prior_teacher(teacher, k, prior, 1.0)
    stepped = torch.softmax((student - 0.5 * grad).double(), -1)
    before = (target * (target.log() - uniform_tail.log())).sum()
    after = (target * (target.log() - stepped.log())).sum()
    assert after < before


def test_held_out_metrics_with_the_prior_match_the_dense_kl():
    teacher, student, prior = _logits(31), _logits(32), _some_prior(33)
    cached = _cached(teacher, 5, prior)
    metrics = tc.cached_kl_metrics(F.log_softmax(student, -1), cached, tail="prior")
    q = _dense_prior_teacher(teacher, 5, prior, 1.0)
    dense = (q * (q.log() - F.log_softmax(student.double(), -1))).sum()
    assert metrics["kl_teacher_student"].item() == pytest.approx(dense.item(), rel=1e-5)


def test_the_prior_is_stored_with_the_cache_and_read_back():
    teacher, blocks = tiny_teacher(), some_blocks()
    cache = build(teacher, blocks, k=8)
    assert cache.prior.dtype == np.float32 and cache.prior.shape == (VOCAB,)
    with torch.no_grad():
        p = torch.softmax(teacher(input_ids=blocks).logits.double(), -1).reshape(-1, VOCAB)
    top = p.topk(8, -1).indices
    tail = p.scatter(-1, top, 0.0).sum(0)  # each token's probability where it was outside the top-k
    expected = (1 - tc.PRIOR_SMOOTHING) * tail / tail.sum() + tc.PRIOR_SMOOTHING / VOCAB
    assert np.allclose(cache.prior, expected.numpy(), rtol=1e-4, atol=1e-9)
    assert (cache.folder / "prior.npy").is_file()
    assert cache.disk_bytes() >= blocks.numel() * tc.bytes_per_position(8, VOCAB) + tc.bytes_per_entry(8, VOCAB)
    again = build(teacher, blocks, k=8)
    assert not again.built and np.array_equal(again.prior, cache.prior)
    batch = again.lookup(torch.tensor([2, 0]), torch.device("cpu"))
    assert torch.equal(batch.prior, torch.from_numpy(np.array(cache.prior)))


@pytest.mark.parametrize("damage", ["no_prior", "no_coef", "no_coef_scale", "old_meta"])
def test_an_entry_without_the_prior_is_rebuilt(damage):
    teacher, blocks = tiny_teacher(), some_blocks()
    first = build(teacher, blocks)
    expected = np.array(first.prior)
    folder = first.folder
    del first
    if damage.startswith("no_"):
        (folder / f"{damage[3:]}.npy").unlink()
    else:  # a format-1 entry's meta.json where this key's entry is
        meta = json.loads((folder / "meta.json").read_text())
        del meta["prior"]
        meta["version"] = 1
        (folder / "meta.json").write_text(json.dumps(meta))
    counter = Counting(teacher)
    rebuilt = build(teacher, blocks)
    assert counter.calls > 0 and rebuilt.built and rebuilt.folder == folder
    assert np.array_equal(rebuilt.prior, expected)


def test_the_loss_refuses_a_teacher_without_a_prior_with_a_clear_message():
    student, teacher = _logits(1), _logits(2)
    ids, logp, tail = tc.topk_of_logits(teacher, 6)
    no_prior = tc.TopK(ids=ids, logp=logp, tail=tail, vocab_size=VOCAB)
    labels = torch.zeros((2, 7), dtype=torch.long)
    with pytest.raises(ValueError, match="no tail prior.*rebuild the cache"):
        tc.topk_distill_loss(student, no_prior, labels, tail="prior")
    with pytest.raises(ValueError, match="no low-rank tail.*rebuild the cache"):
        tc.topk_distill_loss(student, no_prior, labels)
    assert tc.topk_distill_loss(student, no_prior, labels, tail="bucket").loss.isfinite()


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
    cfg = RunConfig()
    assert cfg.distill.cache_tail == "lowrank"
    cfg.apply_overrides(["distill.teacher_cache=topk", "distill.cache_tail=bucket"])
    with pytest.raises(ConfigError) as err:
        cfg.apply_overrides(["distill.cache_tail=uniform"])
    assert err.value.field == "distill.cache_tail"


@pytest.mark.parametrize("tail", ["lowrank", "prior", "bucket"])
def test_the_objective_uses_the_configured_tail(tail):
    import contextlib

    from workbench.config.schema import DistillConfig
    from workbench.engine.train.objective import Batch, Objective

    teacher, blocks = tiny_teacher(), some_blocks()
    cache = build(teacher, blocks, k=6)
    student = tiny_teacher(seed=3)
    settings = DistillConfig(teacher_cache="topk", cache_k=6, cache_tail=tail, temperature=2.0, alpha=0.5)
    objective = Objective(
        settings, alpha=0.5, teacher=teacher, autocast=contextlib.nullcontext, chunk_positions=64, teacher_topk=cache
    )
    index = torch.tensor([4, 1])
    batch = Batch.of_blocks(blocks[index], index)
    parts = objective(student, batch, batch.valid_tokens())
    logits = student(input_ids=blocks[index]).logits
    lookup = cache.lookup(index, torch.device("cpu"))
    expected = {
        name: tc.topk_distill_loss(logits, lookup, blocks[index], temperature=2.0, alpha=0.5, tail=name).loss.item()
        for name in ("lowrank", "prior", "bucket")
    }
    assert len({round(value, 6) for value in expected.values()}) == 3
    assert parts.loss.item() == pytest.approx(expected[tail], rel=1e-6)


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
    small = build(teacher, blocks, k=4)
    smaller = evaluate(student=student, teacher=None, teacher_topk=small, **common)
    # k < V: the prior's estimate over V is at least the bucketed KL, which is at most the full KL.
    with torch.no_grad():
        student_logp = F.log_softmax(student(input_ids=blocks).logits[:, :-1].float(), -1)
    lookup = small.lookup(torch.arange(len(blocks)), torch.device("cpu"))
    bucket = tc.cached_kl_metrics(student_logp, lookup, tail="bucket")["kl_teacher_student"].item()
    bucket /= blocks[:, 1:].numel()
    assert bucket <= smaller["kl_teacher_student"] + 1e-6
    assert bucket <= full["kl_teacher_student"] + 1e-4


def test_the_plan_gives_the_caches_bytes_per_token():
    from workbench.engine.plan import plan_run

    cfg = RunConfig()
    assert plan_run(cfg).teacher_cache_bytes_per_token == 0
    cfg.distill.teacher_cache = "topk"
    plan = plan_run(cfg)
    assert plan.vocab_size == 178
    assert plan.teacher_cache_bytes_per_token == 64 * (2 + 2) + 4 + 36 + 2
    cfg.distill.cache_k = 1024  # above the vocabulary: the whole vocabulary is kept
    assert plan_run(cfg).teacher_cache_bytes_per_token == 178 * 4 + 4 + 36 + 2


def test_the_builds_one_pass_tail_equals_the_logsumexp_and_the_sums_even_for_a_tail_that_underflows():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 300) * 3
    logits[0, 0] = -1e3  # a position whose tail is far below float32's smallest probability
    logits[0, 0, :4] = 50.0
    logp = F.log_softmax(logits, -1)
    ids = logp.topk(4, dim=-1).indices
    tail, sums = tc.tail_and_sums(logp, ids)
    expected = tc.log_rest(logp, ids)
    assert torch.isfinite(tail).all()
    torch.testing.assert_close(tail, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sums, _dense_tail_sums(logp, ids), rtol=1e-5, atol=1e-9)
    everything = logp.topk(300, dim=-1).indices  # k = V: no tail at all
    assert torch.isneginf(tc.tail_and_sums(logp, everything)[0]).all()


# -- the low-rank tail ---------------------------------------------------------------


def _dense_lowrank_teacher(cached: tc.TopK, temperature: float) -> torch.Tensor:
    """Written apart from the module, in fp64: the teacher's tempered distribution over all V tokens from
    the cached fields by the definition: top-k probabilities as cached, the tail mass shared among the other
    tokens in proportion to exp of the reconstructed logits ``center + coef @ basis.T``; every probability
    raised to 1 / T, normalised."""
    rec = cached.center.double() + cached.coef.double() @ cached.basis.double().T
    p_top = cached.logp.double().exp()
    in_top = torch.zeros_like(rec, dtype=torch.bool).scatter(-1, cached.ids, True)
    weights = torch.where(in_top, 0.0, (rec - rec.amax(-1, keepdim=True)).exp())
    tail = cached.tail.double().exp().unsqueeze(-1) * weights / weights.sum(-1, keepdim=True)
    full = tail.scatter(-1, cached.ids, p_top)
    full = full / full.sum(-1, keepdim=True)
    powered = full ** (1 / temperature)
    return powered / powered.sum(-1, keepdim=True)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("k", [1, 6, VOCAB - 1])
def test_the_lowrank_loss_and_gradients_match_a_dense_reference_over_the_vocabulary(temperature, k):
    teacher = _logits(5)
    labels = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(6))
    labels[1, 2] = -100
    student = _logits(4).requires_grad_(True)
    cached = _cached(teacher, k)
    sparse = tc.topk_distill_loss(
        student, cached, labels, temperature=temperature, alpha=0.6, chunk_positions=5, tail="lowrank"
    )
    (grad,) = torch.autograd.grad(sparse.loss, student)
    q = _dense_lowrank_teacher(cached, temperature)
    reference_student = student.detach().double().requires_grad_(True)
    log_s = F.log_softmax(reference_student / temperature, -1)
    kl = (q * (q.log() - log_s)).sum(-1)[:, :-1]
    targets = labels[:, 1:]
    valid = targets != -100
    ce = F.cross_entropy(
        reference_student[:, :-1].reshape(-1, VOCAB), targets.reshape(-1), reduction="none", ignore_index=-100
    ).view(targets.shape)
    n = valid.sum()
    reference = 0.6 * temperature**2 * kl[valid].sum() / n + 0.4 * ce[valid].sum() / n
    (reference_grad,) = torch.autograd.grad(reference, reference_student)
    assert sparse.loss.item() == pytest.approx(reference.item(), rel=1e-5)
    assert torch.allclose(grad.double(), reference_grad, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_a_teacher_of_low_rank_is_rebuilt_from_the_cache_at_every_temperature_where_the_prior_is_not(temperature):
    """Teacher logits of rank 5 (plus a per-row offset, which a softmax ignores) and a top-4 cache: the
    low-rank tail rebuilds the teacher's whole distribution, so its loss is the full one; the prior's,
    one shape for every row, is not."""
    g = torch.Generator().manual_seed(41)
    teacher = (torch.randn(2, 7, 5, generator=g) @ torch.randn(5, VOCAB, generator=g)) * 1.5
    teacher = teacher + torch.randn(2, 7, 1, generator=g) * 10
    student = _logits(42)
    labels = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(43))
    full = distill_loss(student, teacher, labels, temperature=temperature, alpha=1.0)
    cached = _cached(teacher, 4)
    lowrank = tc.topk_distill_loss(student, cached, labels, temperature=temperature, alpha=1.0, tail="lowrank")
    assert lowrank.kd.item() == pytest.approx(full.kd.item(), rel=2e-3)
    # The reconstruction itself, against the teacher: KL(teacher || cached teacher), summed over 14 positions.
    own = F.log_softmax(teacher, -1)
    assert tc.cached_kl_metrics(own, cached)["kl_teacher_student"].item() < 1e-3
    assert tc.cached_kl_metrics(own, cached, tail="prior")["kl_teacher_student"].item() > 0.1
    metrics = tc.cached_kl_metrics(F.log_softmax(student, -1), cached)
    dense = (F.softmax(teacher, -1) * (F.log_softmax(teacher, -1) - F.log_softmax(student, -1))).sum()
    assert metrics["kl_teacher_student"].item() == pytest.approx(dense.item(), rel=2e-3)


def test_the_build_stores_the_low_rank_tail_and_draws_nothing_from_the_runs_random_numbers():
    """A teacher of hidden size 8 has logits of rank at most 8 (9 once centred), under the 36 kept: the
    cached teacher is its full distribution up to float16 and int8 rounding, so the held-out KL from the cache is the true
    one; the basis has orthonormal columns; building it leaves the global random state as it was."""
    from workbench.engine.evaluate import evaluate

    arch = ArchConfig(layers=1, hidden=8, heads=2, max_positions=32)
    teacher = build_model(arch, VOCAB, pad_token_id=0, seed=0).eval()
    student, blocks = tiny_teacher(seed=2), some_blocks()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    cache = build(teacher, blocks, k=4)
    assert torch.equal(torch.get_rng_state(), before)
    assert cache.coef.dtype == np.int8 and cache.coef.shape == (*blocks.shape, tc.TAIL_RANK)
    assert cache.coef_scale.dtype == np.float16 and cache.coef_scale.shape == blocks.shape
    assert cache.basis.shape == (VOCAB, tc.TAIL_RANK) and cache.center.shape == (VOCAB,)
    basis = torch.from_numpy(np.array(cache.basis)).double()
    gram = basis.T @ basis
    rank = int((gram.diagonal() > 0.5).sum())
    assert 8 <= rank <= 10 and torch.allclose(gram[:rank, :rank], torch.eye(rank, dtype=torch.float64), atol=1e-4)
    common = dict(blocks=blocks, batch_size=4, device=torch.device("cpu"))
    full = evaluate(student=student, teacher=teacher, **common)
    cached = evaluate(student=student, teacher=None, teacher_topk=cache, **common)
    assert cached["kl_teacher_student"] == pytest.approx(full["kl_teacher_student"], rel=2e-3)


def test_the_int8_coefficients_come_back_within_half_a_level_of_each_positions_largest():
    """Each position's coefficients are stored over their own largest magnitude: a position of small
    coefficients keeps its resolution beside one of large ones, zeros stay zeros, and nothing overflows."""
    torch.manual_seed(0)
    coef = torch.randn(3, 5, tc.TAIL_RANK) * torch.tensor([1e-3, 1.0, 300.0]).view(3, 1, 1)
    coef[0, 0] = 0.0
    levels, scale = tc.quantize_coefficients(coef)
    assert levels.dtype == torch.int8 and scale.dtype == torch.float16 and scale.shape == coef.shape[:-1]
    back = tc.dequantize_coefficients(levels, scale)
    largest = coef.abs().amax(-1, keepdim=True)
    assert bool(((back - coef).abs() <= largest / tc.COEF_LEVELS * 0.51 + 1e-12).all())
    assert torch.equal(back[0, 0], torch.zeros(tc.TAIL_RANK))
    assert int(levels.abs().amax()) == tc.COEF_LEVELS


def test_large_vocabularies_take_smaller_build_and_evaluation_batches_with_the_same_results(monkeypatch):
    """The build's batch and the evaluation's are capped by their logits; splitting changes no stored value and no
    metric (at vocabulary 151936 the uncapped batches would be about 15 GB and 30 GB)."""
    from workbench.engine import evaluate as ev

    teacher, student, blocks = tiny_teacher(), tiny_teacher(seed=2), some_blocks(n=6, length=12)
    whole = build(teacher, blocks, k=8)
    common = dict(student=student, blocks=blocks, batch_size=6, device=torch.device("cpu"))
    metrics = ev.evaluate(teacher=teacher, **common)
    cached_metrics = ev.evaluate(teacher=None, teacher_topk=whole, **common)

    monkeypatch.setenv("WORKBENCH_HOME", str(tc.paths.home().parent / "split-home"))
    monkeypatch.setattr(tc, "BASIS_SAMPLE_ROWS", 8)
    monkeypatch.setattr(tc, "BUILD_BATCH_LOGITS", 2 * 12 * VOCAB)  # two blocks a batch
    progress = []
    split = tc.teacher_topk_cache(
        teacher, blocks, 8, device=torch.device("cpu"), on_progress=lambda d, n: progress.append(d)
    )
    assert progress == [2, 4, 6]
    for name in ("ids", "logp", "tail"):
        assert np.array_equal(getattr(split, name), getattr(whole, name)), name

    monkeypatch.setattr(ev, "EVAL_LOGITS_PER_BATCH", 11 * VOCAB)  # less than one block: one row at a time
    assert ev.evaluate(teacher=teacher, **common) == pytest.approx(metrics, rel=1e-5)  # fp32 sums in another order
    assert ev.evaluate(teacher=None, teacher_topk=whole, **common) == pytest.approx(cached_metrics, rel=1e-5)
