"""The exploration behind scripts/bench_quality.py's defaults: one teacher, then soft-vs-hard student pairs
for one setting changed at a time from the defaults; prints a Markdown table (docs/quality-results.md).

    python scripts/explore_quality.py --teacher RUN/teacher --seeds 3 [--only NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_quality import machine, measure, preset_settings, train_teacher  # noqa: E402

BASE = preset_settings()
VARIANTS = {
    "defaults": BASE,
    "T=2": dataclasses.replace(BASE, temperature=2.0),
    "T=4": dataclasses.replace(BASE, temperature=4.0),
    "T=2, no T^2": dataclasses.replace(BASE, temperature=2.0, t_squared=False),
    "alpha=0.7": dataclasses.replace(BASE, alpha=0.7),
    "alpha=0.9": dataclasses.replace(BASE, alpha=0.9),
    "reverse KL": dataclasses.replace(BASE, divergence="reverse_kl"),
    "JSD": dataclasses.replace(BASE, divergence="jsd"),
    "50 blocks": dataclasses.replace(BASE, transfer_blocks=50),
    "800 blocks": dataclasses.replace(BASE, transfer_blocks=800),
    "all blocks": dataclasses.replace(BASE, transfer_blocks=0),
    "student 2x128": dataclasses.replace(BASE, student_layers=2, student_hidden=128),
    "150 steps": dataclasses.replace(BASE, steps=150),
    "600 steps": dataclasses.replace(BASE, steps=600),
    "T=2, alpha=0.7 (old preset)": dataclasses.replace(BASE, temperature=2.0, alpha=0.7),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="explore-quality-"))
    teacher = Path(args.teacher) if args.teacher else train_teacher(runs)
    print(f"machine: {machine()}", flush=True)
    print("| variant | ratio mean | per seed | KL soft | KL hard | seconds |\n|---|---|---|---|---|---|", flush=True)
    for name, settings in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        start = time.time()
        r = measure(teacher, runs, settings, list(range(args.seeds)))
        soft = sum(r["kl_true_student_soft_per_seed"]) / args.seeds
        hard = sum(r["kl_true_student_hard_per_seed"]) / args.seeds
        print(
            f"| {name} | {r['ratio_soft_over_hard']:.3f} | {', '.join(f'{v:.2f}' for v in r['ratio_per_seed'])} | "
            f"{soft:.4f} | {hard:.4f} | {time.time() - start:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
