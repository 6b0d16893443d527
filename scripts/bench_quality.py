"""What do soft targets carry that hard labels do not? Measured on the built-in language.

Trains (or reuses) one teacher, then pairs of students with the same seed, the same initial weights, the same
data order and the same number of steps: one on soft targets (alpha > 0) and one on hard labels only
(alpha = 0). For each pair it takes both students' held-out KL(true || student), the exact KL to the
language's true next-word distribution, and their ratio; it prints the per-seed ratios, their mean and
spread, the settings, the thread count and the CPU (the figure moves with them: see docs/quality-results.md).

The defaults are the ``toy`` preset's, the window's demo. The students read a transfer set much smaller than
the teacher's corpus (``distill.transfer_blocks``: 200 blocks of 64 tokens, 1.7% of it), the setting distillation is for: the teacher knows more
than the student's data shows, and soft targets pass that on while hard labels let the student memorise
its few sentences.

    python scripts/bench_quality.py --json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from workbench.config.presets import load_config
from workbench.engine.train.run import run

TARGET_RATIO_MEAN_MAX = 0.45
TARGET_RATIO_SEED_MAX = 0.55


@dataclass(frozen=True)
class Settings:
    """The students' side of the comparison (the teacher is the toy preset's)."""

    steps: int
    temperature: float
    alpha: float
    t_squared: bool
    divergence: str
    transfer_blocks: int
    student_layers: int
    student_hidden: int
    lr: float


def preset_settings() -> Settings:
    """The defaults are the toy preset's (the window's demo): one source for both."""
    cfg = load_config("toy")
    d, arch = cfg.distill, cfg.student.arch
    return Settings(
        steps=cfg.train.max_steps,
        temperature=d.temperature,
        alpha=d.alpha,
        t_squared=d.t_squared,
        divergence=d.divergence,
        transfer_blocks=d.transfer_blocks,
        student_layers=arch.layers,
        student_hidden=arch.hidden,
        lr=cfg.train.lr,
    )


def train_teacher(runs_dir: Path) -> Path:
    """The toy preset's teacher stage (800 steps on 100,000 sentences); returns its folder."""
    cfg = load_config("toy")
    cfg.runs_dir = str(runs_dir)
    cfg.name = "teacher"
    cfg.apply_overrides(["train.max_steps=1", "train.warmup_steps=0", "train.checkpoint_interval=0"])
    result = run(cfg)
    if result.kind == "failed":
        raise SystemExit(f"error: the teacher run failed: {result.message}")
    return Path(result.run_dir) / "teacher"


def _student_config(teacher_dir: Path, runs_dir: Path, s: Settings, *, alpha: float, name: str, seed: int):
    cfg = load_config("toy")
    cfg.name = name
    cfg.runs_dir = str(runs_dir)
    cfg.teacher.source = "local"
    cfg.teacher.path = str(teacher_dir)
    cfg.student.arch.layers, cfg.student.arch.hidden = s.student_layers, s.student_hidden
    cfg.student.arch.heads = max(1, s.student_hidden // 32)
    cfg.apply_overrides(
        [
            f"distill.alpha={alpha}",
            f"distill.temperature={s.temperature}",
            f"distill.t_squared={str(s.t_squared).lower()}",
            f"distill.divergence={s.divergence}",
            f"distill.transfer_blocks={s.transfer_blocks}",
            f"train.max_steps={s.steps}",
            f"train.lr={s.lr}",
            f"train.eval_interval={s.steps}",
            f"train.probe_interval={s.steps}",
            "train.checkpoint_interval=0",
            f"train.seed={seed}",
            "train.probe_prompts=[]",
        ]
    )
    return cfg


def measure(teacher_dir: Path, runs_dir: Path, s: Settings, seeds: list[int]) -> dict:
    """Soft and hard students for each seed, interleaved; per-seed KL to the truth and their ratios."""
    soft, hard, summaries = [], [], []
    for seed in seeds:
        pair = {}
        for label, alpha in (("soft", s.alpha), ("hard", 0.0)):
            cfg = _student_config(teacher_dir, runs_dir, s, alpha=alpha, name=f"student-{label}-seed{seed}", seed=seed)
            result = run(cfg)
            if result.kind == "failed":
                raise SystemExit(f"error: the {label} student (seed {seed}) failed: {result.message}")
            pair[label] = result.summary
        soft.append(pair["soft"]["kl_true_student"])
        hard.append(pair["hard"]["kl_true_student"])
        summaries.append(pair)
    ratios = [a / b for a, b in zip(soft, hard)]
    return {
        "ratio_soft_over_hard": statistics.fmean(ratios),
        "ratio_per_seed": [round(r, 4) for r in ratios],
        "ratio_stdev": statistics.stdev(ratios) if len(ratios) > 1 else 0.0,
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ratio_of_means": statistics.fmean(soft) / statistics.fmean(hard),
        "kl_true_student_soft_per_seed": [round(v, 4) for v in soft],
        "kl_true_student_hard_per_seed": [round(v, 4) for v in hard],
        "kl_true_teacher": summaries[0]["soft"]["kl_true_teacher"],
        "student_ce_soft": statistics.fmean(p["soft"]["student_ce"] for p in summaries),
        "student_ce_hard": statistics.fmean(p["hard"]["student_ce"] for p in summaries),
        "entropy_floor": summaries[0]["soft"]["entropy_floor"],
        "student_params": summaries[0]["soft"]["student_params"],
    }


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    d = preset_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", help="a trained teacher folder (default: train one with the toy preset)")
    parser.add_argument("--seeds", type=int, default=5, help="student seeds (initial weights and data order)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--steps", type=int, default=d.steps, help="distillation steps of each student")
    parser.add_argument("--temperature", type=float, default=d.temperature)
    parser.add_argument("--alpha", type=float, default=d.alpha, help="soft-target weight of the KD student")
    parser.add_argument(
        "--no-t-squared", dest="t_squared", action="store_false", help="do not scale the KD term by T^2"
    )
    parser.add_argument("--divergence", default=d.divergence)
    parser.add_argument(
        "--transfer-blocks",
        type=int,
        default=d.transfer_blocks,
        help="training blocks the students read (the transfer set; 0 = all of the teacher's corpus)",
    )
    parser.add_argument("--student-layers", type=int, default=d.student_layers)
    parser.add_argument("--student-hidden", type=int, default=d.student_hidden)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--out", help="folder for the run folders (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings(**{f.name: getattr(args, f.name) for f in fields(Settings)})

    runs_dir = Path(args.out or tempfile.mkdtemp(prefix="bench-quality-"))
    start = time.time()
    teacher_dir = Path(args.teacher) if args.teacher else train_teacher(runs_dir)
    teacher_time = time.time() - start
    report = {
        **measure(teacher_dir, runs_dir, settings, list(range(args.seeds))),
        "seeds": args.seeds,
        "settings": asdict(settings),
        "machine": machine(),
        "teacher": str(teacher_dir),
        "target_ratio_mean_max": TARGET_RATIO_MEAN_MAX,
        "target_ratio_seed_max": TARGET_RATIO_SEED_MAX,
        "teacher_seconds": round(teacher_time, 1),
        "total_seconds": round(time.time() - start, 1),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:<30} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
