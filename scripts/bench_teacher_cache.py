"""What the top-k teacher cache (distill.teacher_cache = "topk") costs on disk and what it loses.

    python scripts/bench_teacher_cache.py [--k 64 --blocks 16 --seq 64 --teacher FOLDER] [--json]

For two teachers, the toy language's vocabulary (178 tokens; with ``--teacher`` the ``teacher/`` folder of
a run on the built-in language, read on held-out toy blocks, else a random-init one on random blocks) and
a random-init model with vocabulary 49152 (small layers, random blocks), it builds the cache and reports:

- ``bytes_per_token``: the cache's size on disk over the positions it holds (the .npy headers included);
  ``bytes_per_token_without_entry_vectors``: the same less what an entry keeps once, whatever its length
  (``entry_bytes``: the tail prior, V float32, and the low-rank tail's basis and centre, V x 37 float32),
  which a cache of many positions spreads thin;
- ``kl_full_vs_cached_T1`` / ``_T2``: held-out KL(full teacher_T || cached reconstruction_T), nats per
  position, where the reconstruction is what the default loss uses (``distill.cache_tail = "lowrank"``,
  engine/teacher_cache.py): the exact top-k and the tail's mass spread over the other tokens like the
  softmax of the position's logits rebuilt from its 36 stored coefficients, tempered;
  ``kl_full_vs_prior_T1`` / ``_T2``: the same for ``"prior"`` (the tail spread like the cache's average
  tail) and ``kl_full_vs_bucket_T1`` / ``_T2`` for ``"bucket"``, whose reconstruction spreads it evenly.

A random-init teacher is nearly uniform, so its tail is nearly uniform and the KL is small for a reason
that a trained teacher does not share; ``--logit-scale`` sharpens the random teacher's logits (x the
factor) to show a peakier case.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from workbench.config.schema import ArchConfig  # noqa: E402
from workbench.engine import teacher_cache as tc  # noqa: E402
from workbench.engine.models.build import build_model  # noqa: E402


def reconstruction_kl(teacher_logits: torch.Tensor, cache: tc.TopKCache, temperature: float, tail: str) -> float:
    """Mean KL(full teacher_T || reconstruction_T) over the positions, the tail modelled as ``tail`` says."""
    vocab = teacher_logits.shape[-1]
    cached = cache.lookup(torch.arange(teacher_logits.shape[0]), teacher_logits.device)
    k = cached.ids.shape[-1]
    if tail == "lowrank":
        at_one = tc.lowrank_teacher_logp(cached.ids, cached.logp, cached.tail, cached.coef, cached.basis, cached.center)
        recon = F.log_softmax(at_one / temperature, dim=-1)
    elif tail == "prior":
        prior = tc.PreparedPrior.of(cached.prior, temperature)
        top_p, c, _ = tc.prior_teacher_terms(cached.logp, cached.tail, cached.ids, prior)
        recon = (c.unsqueeze(-1) * prior.powered).clone()  # tail token j: c * pi_j^(1/T)
        recon.scatter_(-1, cached.ids, top_p)
        recon = recon.clamp_min(torch.finfo(recon.dtype).tiny).log().float()
    else:
        buckets = tc.tempered_teacher_buckets(cached.logp, cached.tail, vocab, temperature)
        rest = max(vocab - k, 1)
        recon = (buckets[..., -1:] - math.log(rest)).expand(*buckets.shape[:-1], vocab).clone()
        recon.scatter_(-1, cached.ids, buckets[..., :k])
    full = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return float((full.exp() * (full - recon)).sum(-1).mean())


def measure(name: str, teacher: torch.nn.Module, vocab: int, args, blocks: torch.Tensor | None = None) -> dict:
    if blocks is None:
        blocks = torch.randint(0, vocab, (args.blocks, args.seq), generator=torch.Generator().manual_seed(0))
    started = time.perf_counter()
    cache = tc.teacher_topk_cache(teacher, blocks, args.k, device=torch.device("cpu"))
    build_s = time.perf_counter() - started
    with torch.no_grad():
        logits = teacher(input_ids=blocks).logits
    return {
        "model": name,
        "vocab": vocab,
        "k": cache.k,
        "positions": blocks.numel(),
        "bytes_per_token": cache.disk_bytes() / blocks.numel(),
        "entry_bytes": tc.bytes_per_entry(cache.k, vocab),  # once per entry, whatever its length
        "bytes_per_token_without_entry_vectors": (cache.disk_bytes() - tc.bytes_per_entry(cache.k, vocab))
        / blocks.numel(),
        "bytes_per_token_formula": tc.bytes_per_position(cache.k, vocab),
        **{
            f"kl_full_vs_{name}_T{t:g}": reconstruction_kl(logits, cache, t, tail)
            for name, tail in (("cached", "lowrank"), ("prior", "prior"), ("bucket", "bucket"))
            for t in (1.0, 2.0)
        },
        "build_s": build_s,
    }


def random_teacher(vocab: int, scale: float) -> torch.nn.Module:
    model = build_model(ArchConfig(layers=2, hidden=64, heads=4, max_positions=256), vocab, seed=0).eval()
    if scale != 1.0:
        with torch.no_grad():
            model.get_output_embeddings().weight.mul_(scale)
    return model


def trained_toy_teacher(folder: str, args) -> tuple[torch.nn.Module, torch.Tensor]:
    """A teacher a run trained on the built-in language (its ``teacher/`` folder) and held-out toy blocks."""
    from workbench.config.schema import DataConfig
    from workbench.engine.data.blocks import load_blocks
    from workbench.engine.models.load import load_pretrained

    teacher, tokenizer = load_pretrained("local", folder)
    blocks = load_blocks(DataConfig(toy_sentences=2000), tokenizer, args.seq, seed=0, on_log=None)
    return teacher.eval(), blocks.val[: args.blocks].long()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--teacher", default="", help="the teacher/ folder of a run on the built-in language")
    parser.add_argument("--logit-scale", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="bench-teacher-cache-"))
    torch.set_num_threads(min(2, torch.get_num_threads()))
    toy_blocks = None
    if args.teacher:
        toy, toy_blocks = trained_toy_teacher(args.teacher, args)
        toy_name = "toy teacher (trained), held-out toy blocks"
    else:
        toy, toy_name = random_teacher(178, args.logit_scale), "toy vocabulary, random init"
    rows = [
        measure(toy_name, toy, int(toy.get_output_embeddings().weight.shape[0]), args, toy_blocks),
        measure("random init, vocabulary 49152", random_teacher(49152, args.logit_scale), 49152, args),
    ]
    result = {"k": args.k, "logit_scale": args.logit_scale, "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for row in rows:
        print(
            f"{row['model']}: k={row['k']}, {row['bytes_per_token']:.1f} B/token "
            f"(formula {row['bytes_per_token_formula']}), KL(full||cached) T=1 {row['kl_full_vs_cached_T1']:.4g}, "
            f"T=2 {row['kl_full_vs_cached_T2']:.4g} nats (prior tail: {row['kl_full_vs_prior_T1']:.4g}, "
            f"{row['kl_full_vs_prior_T2']:.4g})"
        )


if __name__ == "__main__":
    main()
