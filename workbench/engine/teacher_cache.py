"""The top-k teacher cache (``distill.teacher_cache = "topk"``): the frozen teacher run once over a set of
blocks, its top-k tokens per position kept on disk, and the sparse forward KL that reads them.

What is stored, per position of every block (``[N, L]`` positions): the ids of the teacher's k most likely
tokens (uint16 when the vocabulary has fewer than 65536 entries, else int32), their log-probabilities at
T = 1 (float16), the log of the tail mass ``log(1 - sum of the top-k probabilities)`` (float32, computed
as a logsumexp over the other tokens, so it is accurate even when the tail is tiny; -inf when k is the
vocabulary) and ``TAIL_RANK`` (36) int8 **low-rank coefficients** with a float16 scale: the position's
logits, less their mean and the entry's centre, projected on the entry's basis, over their largest
magnitude times 127. About ``k * (2 or 4 + 2) + 4 + 36 + 2`` bytes a position (298 at k = 64 below a 65536
vocabulary). Once per entry (not per position): the **basis** ``basis.npy`` (float32 ``[V, 36]``: the top
right singular vectors of up to ``BASIS_SAMPLE_ROWS`` centred logit rows of the first build batch) and its **centre** ``center.npy`` (float32 ``[V]``), and the **tail
prior** ``prior.npy``, a float32 ``[V]`` vector: the teacher's probabilities summed over every cached
position where the token was *outside* that position's top-k, normalised (so each position weighs in with
its tail mass, and a token that is usually in the top-k is not inflated by those positions), mixed with
``PRIOR_SMOOTHING`` of a uniform vector so that no entry is 0. ``V * 4 * 38`` bytes per entry.

Where: ``$WORKBENCH_HOME/cache/teacher_topk/<key>/`` holding ``ids.npy``, ``logp.npy``, ``tail.npy``,
``coef.npy``, ``coef_scale.npy``, ``basis.npy``, ``center.npy``, ``prior.npy`` (numpy memmaps) and
``meta.json`` (written last). The key hashes the cache format version, the teacher's weights (:func:`weights_fingerprint`: a
teacher trained in stage 1 of the same run keys on what it learnt), the blocks' bytes, the block length
and k. An entry is written in a temporary folder and renamed into place; one whose files do not match its
``meta.json`` (or that has none, or lacks one of its files) is rebuilt, never read.

The loss (:func:`topk_distill_loss`) is forward KL(teacher_T || student_T); ``tail`` chooses how the
teacher's distribution outside its top-k is modelled:

- ``"lowrank"`` (``distill.cache_tail = "lowrank"``, the default): the teacher over all V tokens is its
  exact top-k, and the tail mass r spread over the position's other tokens as the softmax, over those
  tokens, of its rebuilt logits ``center + coef @ basis.T`` (:func:`lowrank_teacher_logp`). A teacher's
  logits are its final hidden state times its output matrix, so they lie in a space of the hidden size's
  dimension, and most of their variation across positions in far fewer directions: 36 of them carry the
  tail's shape *at that position* (on the built-in language's teacher, held-out KL(teacher_T=2 ||
  reconstruction_T=2) is 7e-6 nats at k = 64, against 1e-2 for the prior; on SmolLM2's training blocks at
  T = 2 0.17 nats, a quarter of the prior's). The loss rebuilds the teacher's ``[chunk, V]``
  log-probabilities for each chunk and takes the full forward KL's closed form (``losses.forward_kl_chunk``), so re-tempering at any T is exact for
  the reconstruction.
- ``"prior"``: the tail mass r spread in proportion to the prior π, ``p_j = r * π_j / Z`` with ``Z`` the
  prior's mass outside that position's top-k: one shape for every position. At temperature T every
  teacher weight is raised to ``1 / T`` under that model: the top-k ``exp(l_i / T)``, tail token j
  ``(r π_j / Z) ** (1 / T)``, then all V normalised. The sums over a position's tail come from vectors
  over the vocabulary prepared once per call (``π``, ``π^(1/T)``, ``π^(1/T) log π``) minus a gather at
  the position's k ids (in float64, so the subtraction loses nothing that matters), and the student's
  side is one product of its log-probabilities (top-k entries zeroed) with ``π^(1/T)``: no ``[N, V]``
  teacher tensor.
- ``"bucket"``: KL between two distributions over k + 1 buckets, the top-k tokens and one tail bucket
  for everything else. The teacher's tail at T is taken as spread evenly over its ``V - k`` tokens,
  ``(V - k) * (r / (V - k)) ** (1 / T)``; the student's tail bucket is its exact tail mass, and the
  shape of its distribution inside the tail gets no signal.

Exact (all three): the teacher's top-k log-probabilities at T = 1 (up to float16 rounding; the k + 1 or V
weights are normalised at every T, which removes it) and its tail mass at T = 1. At k = V they are the
full KL at every T. Approximate: the teacher's distribution inside its tail. With ``"lowrank"`` it is the
position's logits rebuilt from 36 directions (exact, up to the coefficients' int8 rounding, when the
centred logits have rank 36 or less); with
``"prior"`` one vector for the whole cache renormalised per position. For both, at T = 1 the loss is the
KL to that reconstruction (at least the bucketed KL, by the data-processing inequality, but no bound of
the true KL), and at T != 1 the tempered tail mass, and through the normalisation every tempered
probability, is exact under that reconstruction. With ``"bucket"``, at T = 1 the loss is exactly the KL
between the bucketed distributions (a lower bound of the full KL); at T != 1 the tail is re-tempered as
if uniform (for T > 1 an upper bound of its tempered mass, by the power-mean inequality). Masking, the T^2
factor and the division by the valid tokens of the whole step are those of ``losses.distill_loss``.

The held-out metrics (:func:`cached_kl_metrics`) use the low-rank reconstruction at T = 1 (or the tail
model asked for).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from workbench import paths
from workbench.config.schema import CACHE_TAILS
from workbench.engine.losses import (
    IGNORE_INDEX,
    CompileFailed,
    LossParts,
    LossSettings,
    check_loss_arguments,
    forward_kl_chunk,
    loss_targets_and_settings,
    scale_saved_gradients,
)
from workbench.engine.losses import _chunk_terms as _full_chunk_terms

CACHE_VERSION = 4
"""2: the tail prior (``prior.npy``) is part of an entry. 3: so are the low-rank tail's per-position
coefficients (``coef.npy``) and its basis (``basis.npy``, ``center.npy``). 4: the coefficients are int8 with
a float16 scale a position (``coef_scale.npy``), 36 of them. An entry of an older version has
another key, so it is not looked at (a new one is built beside it); one found under a current key without
all of its files is rebuilt."""
TAIL_RANK = 36
"""Coefficients per position of the ``"lowrank"`` tail: the teacher's logits projected on this many
directions of the vocabulary (int8, 1 byte each, with one float16 scale a position). 36 fills the 300 bytes
a token at k = 64 (298): on SmolLM2's training blocks at T = 2 the reconstruction's KL falls with the rank
(0.24 nats at 16, 0.17 at 36), and int8 against float16 coefficients changed it by less than 1e-4."""
RANK_TOLERANCE = 1e-6
"""A direction of the sampled logits is kept in the low-rank basis when its variance is above this share of
the largest (below it, float32 rounding; the columns past the kept ones are zero)."""
BASIS_SAMPLE_ROWS = 2048
"""Positions of the first build batch (evenly strided) whose logits the low-rank basis is fitted to."""
PRIOR_SMOOTHING = 1e-6
"""The uniform share mixed into the tail prior, so that every token has some tail weight (and
``log π`` is finite)."""
BUILD_BATCH_POSITIONS = 8192
"""Most positions per teacher forward pass while building (the batch size in blocks is this over the block
length)."""
BUILD_BATCH_LOGITS = 2**28
"""Most logits (positions x vocabulary) per build batch, though never fewer positions than BASIS_SAMPLE_ROWS
(the basis is fitted to the first batch): its fp32 logits, log-probabilities and temporaries are a few copies
of this, 1 GiB each. At vocabulary 151936 that is 2048 positions, where 8192 were about 15 GB."""
FINGERPRINT_SAMPLES = 4096
"""Elements of each weight tensor hashed as bytes (evenly strided), beside each tensor's exact fp64 sum."""


def bytes_per_position(k: int, vocab_size: int) -> int:
    """Disk bytes per cached position: k ids, k float16 log-probabilities, one float32 tail and the
    low-rank tail's int8 coefficients with their float16 scale (the prior and the basis are once per entry:
    :func:`bytes_per_entry`)."""
    return k * (id_dtype(vocab_size).itemsize + 2) + 4 + tail_rank(vocab_size) + 2


def bytes_per_entry(k: int, vocab_size: int) -> int:
    """Disk bytes of an entry beside its positions: the float32 tail prior, the low-rank basis and its centre."""
    return 4 * vocab_size * (2 + tail_rank(vocab_size))


def tail_rank(vocab_size: int) -> int:
    return min(TAIL_RANK, vocab_size)


def id_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size < 65536 else np.dtype(np.int32)


# -- the key ---------------------------------------------------------------------


@torch.no_grad()
def weights_fingerprint(model: torch.nn.Module) -> str:
    """A hash of a model's weights: every tensor's name, shape, dtype, exact fp64 sum and a strided sample
    of its bytes. Any training step changes it; so does loading other weights into the same architecture."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().reshape(-1)
        stride = max(1, flat.numel() // FINGERPRINT_SAMPLES)
        sample = flat[::stride][:FINGERPRINT_SAMPLES].float().cpu().numpy()
        total = float(flat.double().sum())
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|{total!r}|".encode())
        digest.update(sample.tobytes())
    return digest.hexdigest()


def blocks_fingerprint(blocks: Tensor) -> str:
    """A hash of the blocks' token ids (all of them, as int64, so int32 and int64 copies agree)."""
    array = np.ascontiguousarray(blocks.detach().cpu().numpy().astype(np.int64, copy=False))
    return hashlib.sha256(memoryview(array).cast("B")).hexdigest()


def cache_key(teacher_fingerprint: str, blocks: Tensor, k: int) -> str:
    parts = {
        "version": CACHE_VERSION,
        "teacher": teacher_fingerprint,
        "blocks": blocks_fingerprint(blocks),
        "shape": list(blocks.shape),  # [N, seq_len]
        "k": int(k),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


# -- the cache entry ---------------------------------------------------------------


@dataclass
class TopKCache:
    """One entry, memory-mapped: ``ids`` ``[N, L, k]``, ``logp`` ``[N, L, k]`` (T = 1), ``tail`` ``[N, L]``,
    the tail prior ``prior`` ``[V]``, and the low-rank tail's ``coef`` ``[N, L, r]`` with its ``basis``
    ``[V, r]`` and ``center`` ``[V]``."""

    folder: Path
    ids: np.ndarray
    logp: np.ndarray
    tail: np.ndarray
    prior: np.ndarray
    vocab_size: int
    coef: np.ndarray | None = None
    coef_scale: np.ndarray | None = None
    basis: np.ndarray | None = None
    center: np.ndarray | None = None
    built: bool = False  # True when this call ran the teacher; False when the entry was found
    # The per-entry vectors (prior, basis, centre) as tensors, per device, copied there once.
    _on_device: dict[tuple[str, str], Tensor] = field(default_factory=dict, repr=False)

    @property
    def k(self) -> int:
        return int(self.ids.shape[-1])

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.folder.iterdir() if f.is_file())

    def lookup(self, block_index: Tensor, device: torch.device) -> TopK:
        """The cached teacher side of the blocks ``block_index`` (indices into the cached blocks)."""
        index = np.asarray(block_index.cpu().numpy(), dtype=np.int64)
        return TopK(  # copied in their stored (narrow) dtypes and widened on the device
            ids=_host_to(self.ids[index], device).long(),
            logp=_host_to(self.logp[index], device).float(),
            tail=_host_to(self.tail[index], device).float(),
            vocab_size=self.vocab_size,
            prior=self.prior_on(device),
            coef=None if self.coef is None else self._coefficients(index, device),
            basis=self._vector_on("basis", device),
            center=self._vector_on("center", device),
        )

    def _coefficients(self, index: np.ndarray, device: torch.device) -> Tensor:
        """The low-rank coefficients of the blocks ``index``, float32 on ``device`` (the int8 levels and their
        scales are copied there, a quarter of the bytes, and multiplied there)."""
        return dequantize_coefficients(_host_to(self.coef[index], device), _host_to(self.coef_scale[index], device))

    def prior_on(self, device: torch.device) -> Tensor:
        """The tail prior as a float32 tensor on ``device`` (copied there once)."""
        return self._vector_on("prior", device)

    def _vector_on(self, name: str, device: torch.device) -> Tensor | None:
        array = getattr(self, name)
        if array is None:
            return None
        key = (name, str(device))
        if key not in self._on_device:
            self._on_device[key] = torch.from_numpy(np.array(array, dtype=np.float32)).to(device)
        return self._on_device[key]


def _host_to(array: np.ndarray, device: torch.device) -> Tensor:
    """A host array (a fresh copy: fancy-indexed) as a tensor on ``device``. To a CUDA device through pinned
    memory and a copy that does not block the host: a copy from pageable memory waits for the work queued
    before it, which would make every micro-batch that reads the cache a host sync."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


@dataclass
class TopK:
    """The teacher side of one batch: ``ids`` ``[B, L, k]`` (int64), ``logp`` ``[B, L, k]``, ``tail`` ``[B, L]``,
    the entry's tail prior ``prior`` ``[V]`` and the low-rank tail: ``coef`` ``[B, L, r]``, ``basis``
    ``[V, r]``, ``center`` ``[V]`` (float32; each None only where nothing reads it)."""

    ids: Tensor
    logp: Tensor
    tail: Tensor
    vocab_size: int
    prior: Tensor | None = None
    coef: Tensor | None = None
    basis: Tensor | None = None
    center: Tensor | None = None


def _files(shape: tuple[int, int], k: int, vocab_size: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    n, length = shape
    rank = tail_rank(vocab_size)
    return {
        "ids": ((n, length, k), id_dtype(vocab_size)),
        "logp": ((n, length, k), np.dtype(np.float16)),
        "tail": ((n, length), np.dtype(np.float32)),
        "prior": ((vocab_size,), np.dtype(np.float32)),
        "coef": ((n, length, rank), np.dtype(np.int8)),
        "coef_scale": ((n, length), np.dtype(np.float16)),
        "basis": ((vocab_size, rank), np.dtype(np.float32)),
        "center": ((vocab_size,), np.dtype(np.float32)),
    }


def open_entry(folder: Path, shape: tuple[int, int], k: int, vocab_size: int) -> TopKCache | None:
    """The entry in ``folder`` when it is complete and matches; None for one missing, partial or corrupt."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta != _meta(shape, k, vocab_size):
            return None
        arrays = {}
        for name, (want_shape, dtype) in _files(shape, k, vocab_size).items():
            array = np.load(folder / f"{name}.npy", mmap_mode="r")
            if array.shape != want_shape or array.dtype != dtype:
                return None
            arrays[name] = array
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    return TopKCache(folder, vocab_size=vocab_size, **arrays)


def _meta(shape: tuple[int, int], k: int, vocab_size: int) -> dict[str, Any]:
    return {
        "version": CACHE_VERSION,
        "blocks": list(shape),
        "k": int(k),
        "vocab_size": int(vocab_size),
        "prior": "tail_probability_sums",  # the name this format was written under (meta must match)
        "tail_rank": tail_rank(vocab_size),
    }


def teacher_topk_cache(
    teacher: torch.nn.Module,
    blocks: Tensor,
    k: int,
    *,
    device: torch.device,
    autocast: Callable[[], Any] = contextlib.nullcontext,
    fingerprint: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> TopKCache:
    """The top-k cache of ``teacher`` over ``blocks`` (``[N, L]`` token ids): found, or built now.

    ``on_progress(done, total)`` is called with blocks done while building. ``fingerprint``: the
    teacher's :func:`weights_fingerprint` when the caller has it already."""
    vocab_size = int(teacher.get_output_embeddings().weight.shape[0])
    k = min(int(k), vocab_size)
    shape = (int(blocks.shape[0]), int(blocks.shape[1]))
    key = cache_key(fingerprint or weights_fingerprint(teacher), blocks, k)
    entry = paths.cache_dir("teacher_topk") / key
    found = open_entry(entry, shape, k, vocab_size)
    if found is not None:
        return found
    with paths.atomic_target(entry) as tmp:  # a partial or corrupt entry is replaced
        tmp.mkdir()
        _build_into(tmp, teacher, blocks, k, vocab_size, device, autocast, on_progress)
    built = open_entry(entry, shape, k, vocab_size)
    if built is None:
        raise RuntimeError(f"the teacher cache just written to {entry} cannot be read back")
    built.built = True
    return built


@torch.no_grad()
def _build_into(folder, teacher, blocks, k, vocab_size, device, autocast, on_progress) -> None:
    shape = (int(blocks.shape[0]), int(blocks.shape[1]))
    arrays = {
        name: np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=dtype, shape=want_shape)
        for name, (want_shape, dtype) in _files(shape, k, vocab_size).items()
    }
    tail_sums = torch.zeros(vocab_size, dtype=torch.float64, device=device)
    was_training = teacher.training
    teacher.eval()
    positions = max(BASIS_SAMPLE_ROWS, min(BUILD_BATCH_POSITIONS, BUILD_BATCH_LOGITS // max(vocab_size, 1)))
    batch = max(1, positions // max(shape[1], 1))
    for start in range(0, shape[0], batch):
        ids = blocks[start : start + batch].long().to(device)
        with autocast():
            logits = teacher(input_ids=ids, use_cache=False).logits
        logits = logits.float()
        if start == 0:  # the low-rank tail's basis, fitted to the first batch (BASIS_SAMPLE_ROWS of its positions)
            flat = logits.reshape(-1, vocab_size)
            stride = max(1, flat.shape[0] // BASIS_SAMPLE_ROWS)
            center, basis = logit_basis(flat[::stride][:BASIS_SAMPLE_ROWS])
            arrays["center"][:], arrays["basis"][:] = center.cpu().numpy(), basis.cpu().numpy()
            del flat
        coef = tail_coefficients(logits, center, basis)
        logp = F.log_softmax(logits, dim=-1)
        del logits
        top_logp, top_ids = logp.topk(k, dim=-1)
        tail, rest_sums = tail_and_sums(logp, top_ids)
        tail_sums += rest_sums
        del logp
        stop = start + ids.shape[0]
        arrays["ids"][start:stop] = top_ids.cpu().numpy().astype(arrays["ids"].dtype)
        arrays["logp"][start:stop] = top_logp.cpu().numpy().astype(np.float16)
        arrays["tail"][start:stop] = tail.cpu().numpy()
        quantized, scale = quantize_coefficients(coef)
        arrays["coef"][start:stop] = quantized.cpu().numpy()
        arrays["coef_scale"][start:stop] = scale.cpu().numpy()
        if on_progress is not None:
            on_progress(stop, shape[0])
    teacher.train(was_training)
    arrays["prior"][:] = tail_prior(tail_sums).cpu().numpy()
    for array in arrays.values():
        array.flush()
    del arrays
    (folder / "meta.json").write_text(json.dumps(_meta(shape, k, vocab_size)), encoding="utf-8")


def topk_of_logits(logits: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(ids, log-probabilities, log tail mass)`` of the top ``k`` of ``logits`` ``[..., V]`` at T = 1, fp32."""
    logp = F.log_softmax(logits.float(), dim=-1)
    top_logp, top_ids = logp.topk(k, dim=-1)
    return top_ids, top_logp, log_rest(logp, top_ids)


@torch.no_grad()
def logit_basis(logits: Tensor) -> tuple[Tensor, Tensor]:
    """``(center [V], basis [V, r])``, float32, of the low-rank tail from a sample of the teacher's logits
    ``[n, V]``: each row less its mean (a softmax ignores a row's offset), ``center`` the mean of those rows,
    ``basis`` the top ``r = tail_rank(V)`` right singular vectors of the centred rows (orthonormal
    columns; zero columns beyond the sample's rank). From the eigenvectors (float64, on the CPU) of the
    smaller of the two Gram matrices: deterministic, and it draws nothing from the run's random numbers."""
    x = logits.float()
    x = x - x.mean(-1, keepdim=True)
    center = x.mean(0)
    x = x - center
    n, vocab = x.shape
    rank = tail_rank(vocab)
    basis = torch.zeros(vocab, rank, dtype=torch.float32, device=x.device)
    small = vocab <= n
    # The Gram matrix on the device in float32; its eigenvectors on the CPU in float64 (MPS has no float64).
    values, vectors = torch.linalg.eigh((x.T @ x if small else x @ x.T).cpu().double())
    keep = min(rank, values.shape[0])
    values, vectors = values[-keep:].flip(-1), vectors[:, -keep:].flip(-1)
    # Only the directions the sample spans (values[0] is the largest; float32 Gram matrices hold ~1e-7 of it).
    spanned = values > values[0].clamp_min(0) * RANK_TOLERANCE
    if bool(spanned.any()):
        vectors = vectors[:, spanned].float().to(x.device)
        if not small:  # right singular vectors from the left ones: x.T u / sigma
            vectors = (x.T @ vectors) / values[spanned].sqrt().float().to(x.device)
        basis[:, : vectors.shape[1]] = vectors
    return center, basis


def tail_coefficients(logits: Tensor, center: Tensor, basis: Tensor) -> Tensor:
    """The low-rank tail's coefficients ``[..., r]`` of teacher logits ``[..., V]``: each row less its mean
    and ``center``, projected on ``basis``."""
    x = logits.float()
    return (x - x.mean(-1, keepdim=True) - center) @ basis


COEF_LEVELS = 127
"""The int8 coefficients run over -127..127: each position's coefficients over their largest magnitude."""


def quantize_coefficients(coef: Tensor) -> tuple[Tensor, Tensor]:
    """``(int8 [..., r], float16 scale [...])`` of coefficients ``[..., r]``: each position's scaled so that its
    largest magnitude is ``COEF_LEVELS``, rounded to the nearest level (the scale is rounded to float16
    first, so that the levels are those :func:`dequantize_coefficients` multiplies back)."""
    x = coef.float()
    scale = (x.abs().amax(-1) / COEF_LEVELS).clamp_max(torch.finfo(torch.float16).max).half()
    divisor = scale.float().unsqueeze(-1)
    levels = torch.where(divisor > 0, x / divisor.clamp_min(torch.finfo(torch.float32).tiny), torch.zeros_like(x))
    return levels.round().clamp(-COEF_LEVELS, COEF_LEVELS).to(torch.int8), scale


def dequantize_coefficients(levels: Tensor, scale: Tensor) -> Tensor:
    """The float32 coefficients ``[..., r]`` that :func:`quantize_coefficients` stored as ``levels`` and ``scale``."""
    return levels.float() * scale.float().unsqueeze(-1)


def lowrank_teacher_logp(
    ids: Tensor, logp: Tensor, tail: Tensor, coef: Tensor, basis: Tensor, center: Tensor, *, normalise: bool = True
) -> Tensor:
    """The teacher's log-probabilities over all V tokens at T = 1 ``[..., V]`` (float32) under the
    ``"lowrank"`` tail model: its cached top-k exactly, and its tail mass spread over the other tokens as
    the softmax (over those tokens) of the position's reconstructed logits ``center + coef @ basis.T``;
    normalised (which removes the float16 rounding of the top-k). ``normalise=False`` leaves that last
    step to a caller that takes a log-softmax of the rows anyway (the loss: one pass over ``[..., V]`` less;
    the rows are then log-probabilities up to an offset of the order of float16's rounding)."""
    vocab = basis.shape[0]
    lead = ids.shape[:-1]
    if ids.shape[-1] >= vocab:  # no tail
        full = torch.full((*lead, vocab), -math.inf, dtype=torch.float32, device=ids.device)
    else:
        rows = coef.reshape(-1, coef.shape[-1]).float()
        full = torch.addmm(center, rows, basis.T).view(*lead, vocab).scatter_(-1, ids, -math.inf)
        # In place only on the CPU, whose kernel reads each element before writing it (as losses.forward_kl_chunk).
        full = torch.log_softmax(full, dim=-1, out=full) if full.device.type == "cpu" else torch.log_softmax(full, -1)
        full.add_(tail.float().unsqueeze(-1))
    full.scatter_(-1, ids, logp.float())
    return torch.log_softmax(full, dim=-1) if normalise else full


TAIL_SUM_FLOOR = 1e-30  # a tail mass summed from probabilities below this may have lost most of its terms to underflow


def tail_and_sums(logp: Tensor, ids: Tensor) -> tuple[Tensor, Tensor]:
    """The log tail mass (as :func:`log_rest`) of each position of ``logp`` ``[..., V]`` and the ``[V]`` float64
    tail sums: each token's probability summed over the positions where it is not among that position's ``ids``
    ``[..., k]`` (the teacher's top-k). One pass over the logits (the build's cost after the teacher's forward):
    the probabilities outside the top-k, summed per position (positive terms, accurate in float32) and per
    token (in float32 over the batch, then float64). A position whose tail is so small that its terms
    underflow takes the logsumexp of :func:`log_rest`."""
    rest = logp.exp().scatter_(-1, ids, 0.0)
    mass = rest.sum(-1)
    tail = mass.log()
    if ids.shape[-1] < logp.shape[-1]:
        small = mass < TAIL_SUM_FLOOR
        if bool(small.any()):
            tail[small] = log_rest(logp[small], ids[small])
    return tail, rest.reshape(-1, logp.shape[-1]).sum(0).double()


def tail_prior(tail_sums: Tensor) -> Tensor:
    """The stored tail prior from :func:`tail_and_sums`' sums over all cached positions: normalised, mixed
    with ``PRIOR_SMOOTHING`` of a uniform vector (uniform when there was no tail: k = V), float32."""
    vocab = tail_sums.shape[-1]
    total = tail_sums.sum()
    shape = tail_sums / total if total > 0 else torch.full_like(tail_sums, 1.0 / vocab)
    return ((1.0 - PRIOR_SMOOTHING) * shape + PRIOR_SMOOTHING / vocab).float()


def log_rest(logp: Tensor, ids: Tensor) -> Tensor:
    """log of the mass of ``logp`` ``[..., V]`` outside the entries ``ids`` ``[..., k]``; -inf when none is left.

    A logsumexp over the other entries (a large finite fill, not -inf, so its gradient is 0 rather than
    NaN when nothing is left), never ``log(1 - sum)``, which loses a small tail to rounding."""
    if ids.shape[-1] >= logp.shape[-1]:
        return torch.full(logp.shape[:-1], -math.inf, dtype=logp.dtype, device=logp.device)
    rest = logp.scatter(-1, ids, torch.finfo(logp.dtype).min)
    return torch.logsumexp(rest, dim=-1)


# -- the loss ----------------------------------------------------------------------


def tempered_teacher_buckets(logp: Tensor, tail: Tensor, vocab_size: int, temperature: float) -> Tensor:
    """The teacher's log-probabilities over k + 1 buckets (top-k, then the tail) at ``temperature``.

    From the T = 1 cache: ``logp / T`` for the top-k, and for the tail its mass taken as spread evenly over
    the ``V - k`` other tokens, ``log(V - k) + (log r - log(V - k)) / T``; then normalised. Exact at T = 1
    (up to the float16 rounding of the stored log-probabilities)."""
    k = logp.shape[-1]
    logp = logp.float()
    tail = tail.float().unsqueeze(-1)
    if temperature != 1.0 and vocab_size > k:
        log_rest_count = math.log(vocab_size - k)
        tail = log_rest_count + (tail - log_rest_count) / temperature
    # Normalised at every T: at T = 1 this only removes the float16 rounding of the stored log-probabilities.
    return torch.log_softmax(torch.cat([logp / temperature, tail], dim=-1), dim=-1)


def student_buckets(student_logits: Tensor, ids: Tensor, temperature: float) -> Tensor:
    """The student's log-probabilities at ``temperature`` over the same k + 1 buckets (the tail exact)."""
    logits = student_logits.float()
    logp = F.log_softmax(logits / temperature if temperature != 1.0 else logits, dim=-1)
    return torch.cat([logp.gather(-1, ids), log_rest(logp, ids).unsqueeze(-1)], dim=-1)


def bucket_kl(teacher_buckets: Tensor, student_buckets_: Tensor) -> Tensor:
    """KL(teacher || student) per row over the buckets; a bucket the teacher gives 0 contributes 0."""
    p = teacher_buckets.exp()
    log_ratio = (teacher_buckets - student_buckets_).masked_fill(p == 0, 0.0)
    return (p * log_ratio).sum(-1)


@dataclass
class PreparedPrior:
    """The tail prior's vectors over the vocabulary at one temperature T, made once per loss call:
    ``pi`` (π), ``powered`` (π^(1/T)), ``weighted_log`` (π^(1/T) log π), in float64 (float32 on MPS, which
    has no float64), their totals, and ``powered32`` (π^(1/T) in float32, for the product with the
    student's log-probabilities)."""

    temperature: float
    pi: Tensor
    powered: Tensor
    weighted_log: Tensor
    pi_total: Tensor
    powered_total: Tensor
    weighted_log_total: Tensor
    powered32: Tensor

    @classmethod
    def of(cls, prior: Tensor, temperature: float) -> PreparedPrior:
        pi = prior.to(torch.float32 if prior.device.type == "mps" else torch.float64)
        log_pi = pi.log()
        powered = (log_pi / temperature).exp()
        weighted_log = powered * log_pi
        return cls(
            temperature=temperature,
            pi=pi,
            powered=powered,
            weighted_log=weighted_log,
            pi_total=pi.sum(),
            powered_total=powered.sum(),
            weighted_log_total=weighted_log.sum(),
            powered32=powered.float(),
        )


def prior_teacher_terms(logp: Tensor, tail: Tensor, ids: Tensor, prior: PreparedPrior) -> tuple[Tensor, Tensor, Tensor]:
    """The teacher's side of the ``"prior"`` tail model at ``prior.temperature`` for rows ``[..., k]``:
    ``(top_p, tail_scale, neg_entropy)`` in the prior's dtype. ``top_p`` ``[..., k]``: the tempered probabilities of the
    top-k; ``tail_scale`` ``[...]``: c with tail token j's tempered probability ``c * π_j^(1/T)``;
    ``neg_entropy`` ``[...]``: ``sum over all V of p log p`` of that tempered distribution."""
    t, dtype = prior.temperature, prior.pi.dtype
    tiny = torch.finfo(dtype).tiny
    top = logp.to(dtype) / t
    log_r = tail.to(dtype)
    # The prior's mass and powered mass outside each row's top-k: the totals minus a gather (float64).
    log_z = (prior.pi_total - prior.pi[ids].sum(-1)).clamp_min(tiny).log()
    powered_rest = (prior.powered_total - prior.powered[ids].sum(-1)).clamp_min(tiny)
    weighted_log_rest = prior.weighted_log_total - prior.weighted_log[ids].sum(-1)
    log_scale = (log_r - log_z) / t  # tail token j's tempered weight: exp(log_scale) * π_j^(1/T)
    log_norm = torch.logsumexp(torch.cat([top, (log_scale + powered_rest.log()).unsqueeze(-1)], -1), -1)
    log_top_p = top - log_norm.unsqueeze(-1)
    top_p = log_top_p.exp()
    log_c = log_scale - log_norm
    c = log_c.exp()
    tail_p = c * powered_rest
    # sum over the tail of p_j log p_j = P_tail * log c + (c / T) * sum_tail π_j^(1/T) log π_j; 0 with no tail.
    tail_term = torch.where(tail_p > 0, tail_p * log_c + c * weighted_log_rest / t, 0.0)
    neg_entropy = torch.where(top_p > 0, top_p * log_top_p, 0.0).sum(-1) + tail_term
    return top_p, c, neg_entropy


def prior_kl(student_logits: Tensor, logp: Tensor, tail: Tensor, ids: Tensor, prior: PreparedPrior) -> Tensor:
    """KL(teacher_T || student_T) per row over all V tokens, the teacher's tail modelled by the prior (its
    graph kept with respect to ``student_logits``). The student's side costs its log-softmax, one copy with
    the top-k entries zeroed, and a product with the ``[V]`` vector π^(1/T)."""
    t = prior.temperature
    logits = student_logits.float()
    log_q = F.log_softmax(logits / t if t != 1.0 else logits, dim=-1)
    top_p, c, neg_entropy = prior_teacher_terms(logp, tail, ids, prior)
    top_cross = (top_p.float() * log_q.gather(-1, ids)).sum(-1)
    tail_cross = log_q.scatter(-1, ids, 0.0) @ prior.powered32
    return neg_entropy.float() - top_cross - c.float() * tail_cross


def _check_tail(tail: str, teacher: TopK) -> None:
    if tail not in CACHE_TAILS:
        raise ValueError(f"unknown cache tail model {tail!r}; choose one of {', '.join(CACHE_TAILS)}")
    if tail == "lowrank" and (teacher.coef is None or teacher.basis is None or teacher.center is None):
        raise ValueError(
            "the cached teacher has no low-rank tail (an entry from before cache format 3); "
            "rebuild the cache with teacher_topk_cache, or use the prior or bucket tail"
        )
    if tail == "prior" and teacher.prior is None:
        raise ValueError(
            "the cached teacher has no tail prior (an entry from before cache format 2); "
            "rebuild the cache with teacher_topk_cache, or use the bucket tail"
        )


def topk_distill_loss(
    student_logits: Tensor,
    teacher: TopK,
    labels: Tensor,
    *,
    temperature: float = 1.0,
    alpha: float = 0.5,
    t_squared: bool = True,
    num_valid_tokens: int | None = None,
    chunk_positions: int = 1024,
    tail: str = "lowrank",
    compile: bool = False,
) -> LossParts:
    """``alpha * (T^2) * sum(KL) / n + (1 - alpha) * sum(CE) / n`` for one micro-batch, the KL with the
    teacher's tail modelled as ``tail`` says (``"prior"``: over all V tokens; ``"bucket"``: over the top-k
    and one tail bucket; see the module's docstring).

    The counterpart of ``losses.distill_loss`` (same masking, denominator and LossParts) with the
    teacher's side from the cache. Computed in fp32, ``chunk_positions`` rows at a time, each chunk's
    gradient computed with its loss (as distill_loss does): memory is one chunk's fp32 temporaries plus a
    gradient buffer the size of ``student_logits``. No host sync. ``compile`` (``train.compile``) runs the
    low-rank tail's chunk, the teacher's reconstruction and the loss terms together, through
    ``torch.compile``, so that on a GPU its passes over ``[rows, V]`` can fuse (the other tails ignore it)."""
    check_loss_arguments(temperature, alpha, "forward_kl", chunk_positions)
    _check_tail(tail, teacher)
    if teacher.ids.shape[:2] != student_logits.shape[:2] or labels.shape != student_logits.shape[:2]:
        raise ValueError(
            f"cached teacher {tuple(teacher.ids.shape[:2])}, labels {tuple(labels.shape)} and student logits "
            f"{tuple(student_logits.shape[:2])} differ in [batch, seq]"
        )
    if teacher.vocab_size != student_logits.shape[-1]:
        raise ValueError(
            f"the cached teacher's vocabulary ({teacher.vocab_size}) differs from the student's ({student_logits.shape[-1]})"
        )
    targets, valid, settings = loss_targets_and_settings(
        labels,
        student_logits.device,
        temperature=temperature,
        alpha=alpha,
        divergence="forward_kl",
        beta=0.5,
        skew=0.0,
        t_squared=t_squared,
        num_valid_tokens=num_valid_tokens,
        chunk_positions=chunk_positions,
        compile=compile,
    )
    prior = PreparedPrior.of(teacher.prior.to(student_logits.device), temperature) if tail == "prior" else None
    lowrank = (teacher.coef, teacher.basis, teacher.center) if tail == "lowrank" else None
    loss, kd, ce = _ChunkedTopKLoss.apply(
        student_logits, teacher.ids, teacher.logp, teacher.tail, targets, teacher.vocab_size, settings, prior, lowrank
    )
    return LossParts(loss=loss, kd=kd, ce=ce, valid=valid)


class _ChunkedTopKLoss(torch.autograd.Function):
    """The sparse loss a chunk of rows at a time, its gradient computed per chunk into one buffer of the
    logits' dtype (as losses.py's ``_ChunkedDistillLoss``): no fp32 ``[rows, V]`` tensor outlives its chunk."""

    @staticmethod
    def forward(ctx, student_logits, ids, logp, tail, targets, vocab_size: int, settings: LossSettings, prior, lowrank):  # noqa: D401
        want_grad = ctx.needs_input_grad[0]
        vocab, k = student_logits.shape[-1], ids.shape[-1]
        flat_student = student_logits.reshape(-1, vocab)
        flat_ids, flat_logp, flat_tail = ids.reshape(-1, k), logp.reshape(-1, k), tail.reshape(-1)
        grad_buffer = torch.empty_like(flat_student) if want_grad else None
        kd_sum = torch.zeros((), dtype=torch.float32, device=student_logits.device)
        ce_sum = torch.zeros((), dtype=torch.float32, device=student_logits.device)
        flat_coef = None if lowrank is None else lowrank[0].reshape(-1, lowrank[0].shape[-1])
        for start in range(0, flat_student.shape[0], settings.chunk_positions):
            rows = slice(start, start + settings.chunk_positions)
            teacher_rows = (flat_ids[rows], flat_logp[rows], flat_tail[rows])
            if lowrank is not None and settings.compile:
                kd, ce, grad = _compiled_lowrank_chunk(
                    flat_student[rows], *teacher_rows, flat_coef[rows], *lowrank[1:], targets[rows], settings, want_grad
                )
            elif lowrank is not None:  # the teacher over all V rebuilt for the chunk: the full loss's closed form
                teacher_logp = lowrank_teacher_logp(*teacher_rows, flat_coef[rows], *lowrank[1:], normalise=False)
                kd, ce, grad = forward_kl_chunk(flat_student[rows], teacher_logp, targets[rows], settings, want_grad)
                del teacher_logp
            else:
                kd, ce, grad = _autograd_chunk(
                    flat_student[rows], *teacher_rows, targets[rows], vocab_size, settings, prior, want_grad
                )
            if grad is not None:
                grad_buffer[rows].copy_(grad)
                del grad
            kd_sum += kd.detach().float()
            ce_sum += ce.detach().float()
        loss, kd_mean, ce_mean = settings.means(kd_sum, ce_sum)
        if want_grad:
            ctx.save_for_backward(grad_buffer.view(student_logits.shape))
        ctx.mark_non_differentiable(kd_mean, ce_mean)
        return loss, kd_mean, ce_mean

    @staticmethod
    def backward(ctx, grad_loss, _grad_kd, _grad_ce):
        (grad_buffer,) = scale_saved_gradients(ctx, grad_loss, ctx.saved_tensors)
        return grad_buffer, None, None, None, None, None, None, None, None


def _lowrank_chunk_terms(student, ids, logp, tail, coef, basis, center, targets, settings: LossSettings):
    """``(total, kd, ce)`` of one chunk under the low-rank tail, written out of place for ``torch.compile``:
    the teacher's log-probabilities as :func:`lowrank_teacher_logp` (``normalise=False``) rebuilds them, then
    the full loss's terms (``losses._chunk_terms``, which tempers and normalises them)."""
    full = torch.addmm(center, coef.float(), basis.T).scatter(-1, ids, -math.inf)
    full = (torch.log_softmax(full, dim=-1) + tail.float().unsqueeze(-1)).scatter(-1, ids, logp.float())
    return _full_chunk_terms(student, full, targets, settings)


_COMPILED: dict[str, Any] = {}


def _compiled_lowrank_chunk(student_rows, ids, logp, tail, coef, basis, center, targets, settings, want_grad):
    """``(kd, ce, grad or None)`` of one low-rank chunk through the compiled :func:`_lowrank_chunk_terms`
    (made once per process; compiled at the first call of each chunk shape)."""
    if "lowrank" not in _COMPILED:
        _COMPILED["lowrank"] = torch.compile(_lowrank_chunk_terms, dynamic=False)
    student = student_rows.detach().float().requires_grad_(want_grad)
    with torch.autocast(student.device.type, enabled=False), torch.enable_grad() if want_grad else torch.no_grad():
        try:
            total, kd, ce = _COMPILED["lowrank"](student, ids, logp, tail, coef, basis, center, targets, settings)
        except Exception as err:  # noqa: BLE001 - torch.compile raises many kinds (inductor, a missing compiler)
            raise CompileFailed.of(err) from err
        if not want_grad:
            return kd.detach(), ce.detach(), None
        (grad,) = torch.autograd.grad(total / settings.denominator, student)
    return kd.detach(), ce.detach(), grad


def _autograd_chunk(student_rows, ids, logp, tail, targets, vocab_size: int, settings: LossSettings, prior, want_grad):
    """``(kd, ce, grad or None)`` of one chunk with the prior's or the bucketed tail: :func:`_chunk_terms`,
    and the gradient of the chunk's share of the loss with respect to ``student_rows`` by autograd."""
    student = student_rows.detach().float().requires_grad_(want_grad)
    with torch.enable_grad() if want_grad else torch.no_grad():
        kd, ce = _chunk_terms(student, ids, logp, tail, targets, vocab_size, settings, prior)
        if not want_grad:
            return kd, ce, None
        total = (settings.alpha * settings.kd_scale) * kd + (1.0 - settings.alpha) * ce
        (grad,) = torch.autograd.grad(total / settings.denominator, student)
    return kd, ce, grad


def _chunk_terms(student, ids, logp, tail, targets, vocab_size: int, settings: LossSettings, prior):
    """Sums of the KL (with the prior's tail when ``prior`` is given, else bucketed) and of the CE over one
    chunk of rows (with their graphs); a row whose target is -100 is computed and weighted 0 (no
    data-dependent shape, so no host sync)."""
    with torch.autocast(student.device.type, enabled=False):
        temperature = settings.temperature
        if prior is not None:
            per_row = prior_kl(student, logp, tail, ids, prior)
        else:
            teacher_b = tempered_teacher_buckets(logp, tail, vocab_size, temperature)
            per_row = bucket_kl(teacher_b, student_buckets(student, ids, temperature))
        kd = torch.where(targets != IGNORE_INDEX, per_row, 0.0).sum()
        ce = F.cross_entropy(student.float(), targets, reduction="sum", ignore_index=IGNORE_INDEX)
    return kd, ce


# -- held-out metrics from the cache ------------------------------------------------


@torch.no_grad()
def cached_kl_metrics(student_logits: Tensor, teacher: TopK, tail: str = "lowrank") -> dict[str, Tensor]:
    """Sums over the positions of ``[B, L', V]`` student logits (L' the positions scored, from the start of
    each block) against the cached teacher at T = 1: ``kl_teacher_student``, ``top1_agreement`` and
    ``top5_agreement`` (the teacher's argmax is its first cached id). The KL with ``tail = "prior"``: over
    all V tokens, the teacher's tail reconstructed from the entry's prior (an estimate of the full KL, no
    bound of it); ``"bucket"``: over the top-k and one tail bucket (exact for the buckets, a lower bound)."""
    _check_tail(tail, teacher)
    positions = student_logits.shape[1]
    ids, logp, rest = teacher.ids[:, :positions], teacher.logp[:, :positions], teacher.tail[:, :positions]
    if tail == "lowrank":
        teacher_logp = lowrank_teacher_logp(ids, logp, rest, teacher.coef[:, :positions], teacher.basis, teacher.center)
        student_logp = F.log_softmax(student_logits.float(), dim=-1)
        kl = torch.nansum(teacher_logp.exp() * (teacher_logp - student_logp), dim=-1)
        del teacher_logp, student_logp
    elif tail == "prior":
        kl = prior_kl(student_logits, logp, rest, ids, PreparedPrior.of(teacher.prior, 1.0))
    else:
        kl = bucket_kl(
            tempered_teacher_buckets(logp, rest, teacher.vocab_size, 1.0), student_buckets(student_logits, ids, 1.0)
        )
    teacher_top1 = ids[..., 0]
    student_top5 = student_logits.topk(min(5, student_logits.shape[-1]), dim=-1).indices
    return {
        "kl_teacher_student": kl.sum(),
        "top1_agreement": (student_top5[..., 0] == teacher_top1).sum(),
        "top5_agreement": (student_top5 == teacher_top1.unsqueeze(-1)).any(-1).sum(),
    }
