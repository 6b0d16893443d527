"""What do soft targets carry that hard labels do not? Measured on the built-in language.

Trains (or reuses) one teacher, then pairs of students with the same seed, the
same initial weights, the same data order and the same number of steps: one on
soft targets (alpha > 0, T > 1) and one on hard labels only (alpha = 0). Prints
both students' held-out KL(true || student), the exact KL to the language's true
next-word distribution, averaged over ``--seeds`` pairs, and their ratio
(target: at most 0.6).

The students read a transfer set smaller than the teacher's corpus (by default
2,000 sentences), the setting distillation is for: the teacher knows more than
the student's data shows, and soft targets pass that on.

    python scripts/bench_quality.py --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from workbench.config.presets import load_config
from workbench.engine.train.run import run


def _student_config(teacher_dir: Path, runs_dir: Path, args: argparse.Namespace, *, alpha: float, name: str,
                    seed: int):
    cfg = load_config("toy")
    cfg.name = name
    cfg.runs_dir = str(runs_dir)
    cfg.teacher.source = "local"
    cfg.teacher.path = str(teacher_dir)
    cfg.data.toy_sentences = args.student_sentences
    cfg.data.toy_seed = args.student_data_seed
    cfg.apply_overrides([
        f"distill.alpha={alpha}", f"distill.temperature={args.temperature}", f"train.max_steps={args.steps}",
        f"train.eval_interval={args.steps}", f"train.probe_interval={args.steps}", "train.checkpoint_interval=0",
        f"train.seed={seed}",
    ])
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", help="a trained teacher folder (default: train one with the toy preset)")
    parser.add_argument("--steps", type=int, default=300, help="distillation steps of each student")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.9, help="soft-target weight of the KD student")
    parser.add_argument("--student-sentences", type=int, default=2000, help="size of the students' transfer set")
    parser.add_argument("--student-data-seed", type=int, default=99)
    parser.add_argument("--seeds", type=int, default=3, help="student seeds (initial weights and data order) to average over")
    parser.add_argument("--out", help="folder for the run folders (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    runs_dir = Path(args.out or tempfile.mkdtemp(prefix="bench-quality-"))
    start = time.time()
    teacher_dir = Path(args.teacher) if args.teacher else None
    if teacher_dir is None:
        cfg = load_config("toy")
        cfg.runs_dir = str(runs_dir)
        cfg.name = "teacher"
        cfg.apply_overrides(["train.max_steps=1", "train.warmup_steps=0"])
        result = run(cfg)
        if result.kind == "failed":
            print(f"error: teacher run failed: {result.message}", file=sys.stderr)
            return 1
        teacher_dir = Path(result.run_dir) / "teacher"
    teacher_time = time.time() - start

    # Per seed, both students start from the same weights and read the same batches in the same order.
    results: dict[str, list[dict]] = {"soft": [], "hard": []}
    for seed in range(args.seeds):
        for label, alpha in (("soft", args.alpha), ("hard", 0.0)):
            cfg = _student_config(teacher_dir, runs_dir, args, alpha=alpha, name=f"student-{label}-seed{seed}", seed=seed)
            result = run(cfg)
            if result.kind == "failed":
                print(f"error: {label} student failed: {result.message}", file=sys.stderr)
                return 1
            results[label].append(result.summary)

    def mean(label: str, key: str) -> float:
        return statistics.fmean(r[key] for r in results[label])

    soft_kl, hard_kl = mean("soft", "kl_true_student"), mean("hard", "kl_true_student")
    report = {
        "teacher": str(teacher_dir),
        "steps": args.steps,
        "temperature": args.temperature,
        "alpha_soft": args.alpha,
        "student_sentences": args.student_sentences,
        "seeds": args.seeds,
        "kl_true_teacher": results["soft"][0]["kl_true_teacher"],
        "kl_true_student_soft": soft_kl,
        "kl_true_student_hard": hard_kl,
        "ratio_soft_over_hard": soft_kl / hard_kl,
        "kl_true_student_soft_per_seed": [round(r["kl_true_student"], 4) for r in results["soft"]],
        "kl_true_student_hard_per_seed": [round(r["kl_true_student"], 4) for r in results["hard"]],
        "student_ce_soft": mean("soft", "student_ce"),
        "student_ce_hard": mean("hard", "student_ce"),
        "entropy_floor": results["soft"][0]["entropy_floor"],
        "target_ratio_max": 0.6,
        "teacher_seconds": round(teacher_time, 1),
        "total_seconds": round(time.time() - start, 1),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:<24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
