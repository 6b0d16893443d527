"""No host sync inside a micro-batch: the loss and its backward, on every path of the objective.

On an accelerator, reading a tensor's value on the host (``.item()``, ``.tolist()``, ``bool(t)``, a
boolean-mask selection whose shape depends on the data, ``torch.equal``) waits for the device to finish
everything queued before it; once per micro-batch that serialises the step. On the CPU those calls cost
nothing, but they go through the same operators, so a dispatch mode that records them finds every one.
The training loop reads its sums once per logged step, outside the micro-batch (train/stages.py).

What the models' own forward passes do is Transformers' code, not ours, and is recorded apart: with
Transformers 5 each llama forward checks its position ids for packed sequences, one ``.all()`` read.
"""

from __future__ import annotations

import contextlib
import traceback

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tests.helpers_models import tiny_model, tiny_tokenizer
from workbench.config.schema import DistillConfig
from workbench.engine import teacher_cache as tc
from workbench.engine.models.build import derive_student
from workbench.engine.train.objective import Batch, Objective

aten = torch.ops.aten
_SYNCING = {
    aten._local_scalar_dense.default,  # .item(), int(t), float(t), bool(t)
    aten.is_nonzero.default,
    aten.equal.default,
    aten.nonzero.default,
    aten.masked_select.default,
}


class SyncRecorder(TorchDispatchMode):
    """Records every operator call that reads device data on the host, and every ``tolist``."""

    def __init__(self):
        super().__init__()
        self.syncs: list[str] = []  # ours: the objective, the losses, their backward
        self.in_models: list[str] = []  # inside Transformers' code (the models' forward passes)

    def record(self, what: str) -> None:
        inside = any("/transformers/" in frame.filename for frame in traceback.extract_stack())
        (self.in_models if inside else self.syncs).append(what)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in _SYNCING:
            self.record(str(func))
        elif func is aten.index.Tensor and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or [])
        ):
            self.record("boolean-mask indexing")
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def recording(monkeypatch):
    recorder = SyncRecorder()
    real_tolist = torch.Tensor.tolist

    def tolist(self):
        recorder.record("tolist")
        return real_tolist(self)

    monkeypatch.setattr(torch.Tensor, "tolist", tolist)
    with recorder:
        yield recorder
    monkeypatch.setattr(torch.Tensor, "tolist", real_tolist)


def _models(seed=0):
    tokenizer = tiny_tokenizer()
    teacher = tiny_model(tokenizer, "llama", seed=1).eval()
    ids = torch.randint(0, len(tokenizer), (6, 10), generator=torch.Generator().manual_seed(seed))
    return tokenizer, teacher, ids


def _micro_batch(monkeypatch, objective, student, batch):
    n_valid = batch.valid_tokens()  # a tensor, as the training loop passes it
    with recording(monkeypatch) as recorder:
        parts = objective(student, batch, n_valid)
        parts.loss.backward()
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    return recorder.syncs, parts


def _padded_batch(ids):
    labels = ids[:2].clone()
    labels[1, 6:] = -100  # padding: the mask decides which rows count
    labels[0, 3] = -100
    return Batch(ids=ids[:2], labels=labels)


@pytest.mark.parametrize("path", ["chunked", "fused", "hidden", "sequence"])
def test_a_micro_batch_makes_no_host_sync(monkeypatch, path):
    tokenizer, teacher, ids = _models()
    if path == "hidden":
        student, kept = derive_student(teacher, [0]), [0]
        settings = DistillConfig(temperature=2.0, alpha=0.5, hidden_weight=1.0, hidden_loss="cosine")
    else:
        student, kept = tiny_model(tokenizer, "llama", seed=0), None
        settings = DistillConfig(temperature=2.0, alpha=0.5, divergence="jsd", fused_loss=path == "fused")
    objective = Objective(
        settings,
        alpha=0.5,
        teacher=teacher,
        autocast=contextlib.nullcontext,
        chunk_positions=3,
        hidden_layers=kept,
        sequence_weight=1.0 if path == "sequence" else 0.0,  # on_policy_sequence_weight's term
    )
    syncs, parts = _micro_batch(monkeypatch, objective, student, _padded_batch(ids))
    assert syncs == []
    assert parts.n_tokens == 8 + 5  # reading the count afterwards is the caller's (one) sync
    if path == "hidden":
        assert parts.hidden is not None


def test_a_micro_batch_from_the_topk_cache_makes_no_host_sync(monkeypatch):
    tokenizer, teacher, ids = _models()
    cache = tc.teacher_topk_cache(teacher, ids, 8, device=torch.device("cpu"))
    student = tiny_model(tokenizer, "llama", seed=0)
    settings = DistillConfig(teacher_cache="topk", cache_k=8, temperature=2.0, alpha=0.5)
    objective = Objective(
        settings, alpha=0.5, teacher=teacher, autocast=contextlib.nullcontext, chunk_positions=4, teacher_topk=cache
    )
    index = torch.tensor([4, 1])
    syncs, _ = _micro_batch(monkeypatch, objective, student, Batch.of_blocks(ids[index], index))
    assert syncs == []


def test_the_recorder_sees_the_syncs_it_is_meant_to(monkeypatch):
    """The test above can fail: each kind of sync the hot path used to make is recorded."""
    x, mask = torch.randn(4), torch.tensor([True, False, True, True])
    with recording(monkeypatch) as recorder:
        x.sum().item()
        x[mask].sum()
        torch.equal(x, x)
        x.tolist()
        bool(x[0] > 0)
    assert recorder.syncs == [
        "aten._local_scalar_dense.default",
        "boolean-mask indexing",
        "aten.equal.default",
        "tolist",
        "aten._local_scalar_dense.default",
    ]
