"""Time of the loss (forward + backward) with and without ``train.compile``, for the fused and the chunked loss.

    python scripts/bench_fused.py [--vocab 32768 --tokens 1024 --hidden 256 --rounds 7 --device cpu] [--json]

Both losses start from the final hidden states of student and teacher ``[1, tokens, hidden]`` and the two
output weights ``[vocab, hidden]`` (the chunked loss forms the logits first, as the model's head would;
the fused loss never does), forward KL at T = 2, alpha 0.5. Each variant is first run twice, untimed
(the compiled ones compile there; that time is reported apart as ``warmup_s``), then the variants are
timed in interleaved rounds whose order alternates, so drift in the machine's load falls on all of them.
Reported per variant: the median seconds per call and the spread (min-max) over the rounds.

The machine this project's figures come from is shared and loaded by other work: compare the variants
of one run with each other, not a figure of one run with another run's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.engine.fused_loss import fused_distill_loss  # noqa: E402
from workbench.engine.losses import distill_loss, loss_chunk_positions  # noqa: E402

KW = dict(temperature=2.0, alpha=0.5, divergence="forward_kl")


def _inputs(args, device):
    g = torch.Generator().manual_seed(0)
    h = torch.randn(1, args.tokens, args.hidden, generator=g).to(device)
    w = (torch.randn(args.vocab, args.hidden, generator=g) / args.hidden**0.5).to(device)
    th = torch.randn(1, args.tokens, args.hidden, generator=g).to(device)
    tw = (torch.randn(args.vocab, args.hidden, generator=g) / args.hidden**0.5).to(device)
    labels = torch.randint(0, args.vocab, (1, args.tokens), generator=g).to(device)
    return h, w, th, tw, labels


def _step(variant: str, inputs, chunk: int) -> None:
    h, w, th, tw, labels = inputs
    hh, ww = h.detach().requires_grad_(True), w.detach().requires_grad_(True)
    compile = variant.endswith("compiled")
    if variant.startswith("fused"):
        parts = fused_distill_loss(hh, ww, th, tw, labels, chunk_positions=chunk, compile=compile, **KW)
    else:
        with torch.no_grad():
            teacher = th @ tw.t()
        parts = distill_loss(hh @ ww.t(), teacher, labels, chunk_positions=chunk, compile=compile, **KW)
    parts.loss.backward()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", default="fused,fused-compiled,chunked,chunked-compiled")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    inputs = _inputs(args, device)
    chunk = loss_chunk_positions(args.vocab, 1024)
    variants = args.variants.split(",")
    warmup: dict[str, float] = {}
    for variant in variants:
        start = time.perf_counter()
        for _ in range(2):
            _step(variant, inputs, chunk)
        _sync(device)
        warmup[variant] = time.perf_counter() - start
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for variant in variants if r % 2 == 0 else variants[::-1]:
            _sync(device)
            start = time.perf_counter()
            _step(variant, inputs, chunk)
            _sync(device)
            times[variant].append(time.perf_counter() - start)
    result = {
        "shape": {"vocab": args.vocab, "tokens": args.tokens, "hidden": args.hidden, "chunk_positions": chunk},
        "device": str(device),
        "torch": torch.__version__,
        "rounds": args.rounds,
        "threads": torch.get_num_threads(),
        "variants": {
            v: {
                "median_s": statistics.median(t),
                "min_s": min(t),
                "max_s": max(t),
                "warmup_s": warmup[v],
            }
            for v, t in times.items()
        },
    }
    for base in ("fused", "chunked"):
        if base in times and f"{base}-compiled" in times:
            result[f"{base}_compiled_over_plain"] = statistics.median(times[f"{base}-compiled"]) / statistics.median(
                times[base]
            )
    if args.json:
        print(json.dumps(result))
    else:
        print(f"shape {result['shape']} on {device}, {args.rounds} interleaved rounds (a shared, loaded machine)")
        for v, r in result["variants"].items():
            print(
                f"  {v:18s} median {r['median_s'] * 1000:8.1f} ms  (min {r['min_s'] * 1000:.1f}, max {r['max_s'] * 1000:.1f})"
                f"  first two calls {r['warmup_s']:.1f} s"
            )
        for key in ("fused_compiled_over_plain", "chunked_compiled_over_plain"):
            if key in result:
                print(f"  {key}: {result[key]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
