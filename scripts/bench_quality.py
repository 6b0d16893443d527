"""Hard labels, off-policy KD, on-policy KD, importance-chosen layers and hidden-state matching, measured on the
built-in language.

Trains (or reuses) one teacher, the ``toy`` preset's, shared by every arm. Each arm then trains one student per
seed; for a seed every arm starts from the same initial weights (custom students: the same seed; derived
students: the same teacher layers) and reads the same transfer set (``distill.transfer_blocks``) in the same
order for the same number of steps. The arms (``--arms``):

- ``hard``: hard labels only (alpha = 0); ``kd``: off-policy KD, the preset's objective (alpha 1, T = 1);
- ``onpolicy0.5`` / ``onpolicy1``: KD with ``distill.on_policy`` = 0.5 / 1 (the student writes that share of its
  training sequences itself); ``kd-wall``: off-policy KD given the ``onpolicy1`` arm's training wall time of the
  same seed (more steps), measured in the same process, so the two are compared at equal wall time too;
- ``onpolicy-warm0.5`` / ``onpolicy-warm1``: the same after a warm start, ``distill.on_policy_start``
  (``--on-policy-start``, 0.5: the first half of the steps off-policy, as the ``kd`` arm's); ``kd-wall-warm``:
  off-policy KD given ``onpolicy-warm1``'s training wall time;
- ``kd-derived``: off-policy KD of a student derived from the teacher (same width, ``--keep`` of its layers,
  evenly spaced); ``importance``: the same with the layers chosen by importance (``student.keep``);
  ``hidden``: ``kd-derived`` plus hidden-state matching (``distill.hidden_weight``);
  ``onpolicy-derived1``: ``kd-derived`` with every step on-policy from the first (a derived student starts
  out writing text close to the teacher's, the setting on-policy distillation is meant for);
  ``onpolicy-derived-warm1``: the same after the warm start; ``kd-wall-derived``: ``kd-derived`` given
  ``onpolicy-derived1``'s wall time. The derived arms are compared with each other, not with the smaller
  custom students.

Per arm and seed: held-out KL(true || student), KL(teacher || student) and top-1 agreement on data (the run's
final evaluation); and on the student's own samples (held-out sentences continued by sampling at T = 1): the
true per-token NLL gap to the language's entropy rate, the grammatical rate of the sentences written and
KL(teacher || student) on the written tokens (see ``workbench.engine.student_text.judge_written``); the training wall time and the part spent
generating. Then mean, stdev and per-seed values, and the comparisons at equal steps and equal wall time.

``ratio_soft_over_hard`` (the ``kd`` arm's KL to the truth over the ``hard`` arm's, per seed) is the earlier
output of this bench; ``--arms hard,kd --seeds 5`` repeats that measurement alone.

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.config.presets import load_config  # noqa: E402
from workbench.engine.student_text import SMOOTHING, judge_model, judge_written, pooled_judgement  # noqa: E402
from workbench.engine.train.run import run  # noqa: E402

TARGET_RATIO_MEAN_MAX = 0.45
TARGET_RATIO_SEED_MAX = 0.55
TARGET_GAP_RATIO_MAX = 0.7  # on-policy student's sample NLL gap over the off-policy student's, at equal steps

ARMS = (
    "hard",
    "kd",
    "onpolicy0.5",
    "onpolicy1",
    "kd-wall",
    "onpolicy-warm0.5",
    "onpolicy-warm1",
    "kd-wall-warm",
    "kd-derived",
    "importance",
    "hidden",
    "onpolicy-derived1",
    "onpolicy-derived-warm1",
    "kd-wall-derived",
)
WALL_ARMS = {
    # off-policy KD given an on-policy arm's wall time: (the on-policy arm timed, the off-policy arm whose
    # seconds per step size the budget, that is, the arm it is the same run of)
    "kd-wall": ("onpolicy1", "kd"),
    "kd-wall-warm": ("onpolicy-warm1", "kd"),
    "kd-wall-derived": ("onpolicy-derived1", "kd-derived"),
}


@dataclass(frozen=True)
class Settings:
    """The students' side of the comparison (the teacher is the preset's: ``toy`` unless ``--preset``)."""

    preset: str
    steps: int
    temperature: float
    alpha: float
    t_squared: bool
    divergence: str
    beta: float
    transfer_blocks: int
    student_layers: int
    student_hidden: int
    lr: float
    on_policy_divergence: str
    on_policy_start: float
    on_policy_temperature: float
    on_policy_new_tokens: int
    on_policy_sequence_weight: float
    keep: int
    hidden_weight: float
    hidden_loss: str
    samples: int
    sample_tokens: int


def preset_settings(preset: str = "toy") -> Settings:
    """The defaults are the toy preset's (the window's demo): one source for both."""
    cfg = load_config(preset)
    d, arch = cfg.distill, cfg.student.arch
    return Settings(
        preset=preset,
        steps=cfg.train.max_steps,
        temperature=d.temperature,
        alpha=d.alpha,
        t_squared=d.t_squared,
        divergence=d.divergence,
        beta=d.beta,
        transfer_blocks=d.transfer_blocks,
        student_layers=arch.layers,
        student_hidden=arch.hidden,
        lr=cfg.train.lr,
        on_policy_divergence=d.divergence,
        on_policy_start=0.5,
        on_policy_temperature=d.on_policy_temperature,
        on_policy_new_tokens=min(d.on_policy_new_tokens, cfg.train.seq_len - d.on_policy_prompt_tokens),
        on_policy_sequence_weight=d.on_policy_sequence_weight,
        keep=2,
        hidden_weight=1.0,
        hidden_loss=d.hidden_loss,
        samples=200,
        sample_tokens=min(48, cfg.train.seq_len - 16),  # written after prompts of at most 16 tokens (toy: 48)
    )


def train_teacher(runs_dir: Path, preset: str = "toy") -> Path:
    """The preset's teacher stage (toy: 800 steps on 100,000 sentences); returns its folder."""
    cfg = load_config(preset)
    cfg.runs_dir = str(runs_dir)
    cfg.name = "teacher"
    cfg.apply_overrides(["train.max_steps=1", "train.warmup_steps=0", "train.checkpoint_interval=0"])
    result = run(cfg)
    if result.kind == "failed":
        raise SystemExit(f"error: the teacher run failed: {result.message}")
    return Path(result.run_dir) / "teacher"


def arm_overrides(arm: str, s: Settings) -> list[str]:
    """What an arm changes on top of the KD student's config."""
    derived = ["student.source=derived", f"student.keep_layers={s.keep}"]
    on_policy = [
        f"distill.on_policy_divergence={s.on_policy_divergence}",
        f"distill.on_policy_temperature={s.on_policy_temperature}",
        f"distill.on_policy_new_tokens={s.on_policy_new_tokens}",
        f"distill.on_policy_sequence_weight={s.on_policy_sequence_weight}",
    ]
    return {
        "hard": ["distill.alpha=0.0"],
        "kd": [],
        "kd-wall": [],
        "onpolicy0.5": ["distill.on_policy=0.5", *on_policy],
        "onpolicy1": ["distill.on_policy=1.0", *on_policy],
        "kd-wall-warm": [],
        "onpolicy-warm0.5": ["distill.on_policy=0.5", f"distill.on_policy_start={s.on_policy_start}", *on_policy],
        "onpolicy-warm1": ["distill.on_policy=1.0", f"distill.on_policy_start={s.on_policy_start}", *on_policy],
        "kd-derived": [*derived, "student.keep=evenly"],
        "importance": [*derived, "student.keep=importance"],
        "hidden": [
            *derived,
            "student.keep=evenly",
            f"distill.hidden_weight={s.hidden_weight}",
            f"distill.hidden_loss={s.hidden_loss}",
        ],
        "onpolicy-derived1": [*derived, "student.keep=evenly", "distill.on_policy=1.0", *on_policy],
        "onpolicy-derived-warm1": [
            *derived,
            "student.keep=evenly",
            "distill.on_policy=1.0",
            f"distill.on_policy_start={s.on_policy_start}",
            *on_policy,
        ],
        "kd-wall-derived": [*derived, "student.keep=evenly"],
    }[arm]


def _student_config(
    teacher_dir: Path, runs_dir: Path, s: Settings, *, alpha: float, name: str, seed: int, extra=(), steps=None
):
    steps = steps or s.steps
    cfg = load_config(s.preset)
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
            f"distill.beta={s.beta}",
            f"distill.transfer_blocks={s.transfer_blocks}",
            f"train.max_steps={steps}",
            f"train.lr={s.lr}",
            f"train.eval_interval={steps}",
            f"train.probe_interval={steps}",
            "train.checkpoint_interval=0",
            f"train.seed={seed}",
            "train.probe_prompts=[]",
            *extra,
        ]
    )
    return cfg


# -- the student's own samples, judged by the language -------------------------------------------------------


def sample_prompts(language, tokenizer, n: int, max_len: int) -> list[list[int]]:
    """``n`` held-out sentences (a seed the training data does not use) of at most ``max_len`` tokens."""
    out: list[list[int]] = []
    for sentence in language.sample_sentences(4 * n, seed=987_654):
        ids = tokenizer(sentence, add_special_tokens=False)["input_ids"]
        if len(ids) <= max_len:
            out.append(ids)
        if len(out) == n:
            break
    return out


def judge_language(language, tokenizer, prompts: list[list[int]], new_tokens: int, vocab: int) -> dict:
    """The same measure on text drawn from the language itself (the estimator's own bias: about 0)."""
    parts = []
    stream = iter(language.sample_sentences(len(prompts) * (new_tokens // 2 + 1), seed=4242))
    for prompt in prompts:
        ids: list[int] = []
        while len(ids) < new_tokens:
            ids += tokenizer(next(stream), add_special_tokens=False)["input_ids"]
        parts.append(judge_written(language, prompt, ids[:new_tokens], vocab))
    return pooled_judgement(parts, language.entropy_rate())


# -- the arms --------------------------------------------------------------------------------------------------


def run_arm(arm: str, teacher_dir: Path, runs_dir: Path, s: Settings, seed: int, judge, steps: int | None = None):
    """One student: train it, time it, judge it."""
    steps = steps or s.steps
    alpha = 0.0 if arm == "hard" else s.alpha
    cfg = _student_config(
        teacher_dir,
        runs_dir,
        s,
        alpha=alpha,
        name=f"student-{arm}-seed{seed}",
        seed=seed,
        extra=arm_overrides(arm, s),
        steps=steps,
    )
    result = run(cfg)
    if result.kind == "failed" or result.summary.get("status") != "completed":
        raise SystemExit(f"error: the {arm} student (seed {seed}) failed: {getattr(result, 'message', result)}")
    return entry_from_folder(Path(result.run_dir), seed, judge)


def entry_from_folder(run_dir: Path, seed: int, judge) -> tuple[dict, dict]:
    """One finished student's figures, from its run folder (summary.json, events.jsonl, student/)."""
    from transformers import AutoModelForCausalLM

    from workbench.run_folder import run_events

    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    seen = [e for e in run_events(run_dir) if getattr(e, "kind", "") == "step" and e.stage == "distill"]
    # Training wall time: between the first and the last Step event, scaled to all steps (the step-0 and
    # final evaluations, loading and the importance measurement are left out; generation is counted in).
    first, last = seen[0], seen[-1]
    train_s = (last.elapsed_s - first.elapsed_s) * last.step / max(last.step - first.step, 1)
    student = AutoModelForCausalLM.from_pretrained(run_dir / "student")
    entry = {
        "steps": int(summary["steps"]),
        "kl_true_student": summary["kl_true_student"],
        "kl_teacher_student": summary["kl_teacher_student"],
        "top1_agreement": summary["top1_agreement"],
        "student_ce": summary["student_ce"],
        "student_params": summary["student_params"],
        "train_s": train_s,
        "generate_s": sum(e.generate_s for e in seen),
        **judge(student, seed),
    }
    if "kept_layers" in summary:
        entry["kept_layers"] = summary["kept_layers"]
    return entry, summary


METRICS = (
    "kl_true_student",
    "sample_nll_gap",
    "grammatical_rate",
    "impossible_token_rate",
    "sample_kl_teacher_student",
    "kl_teacher_student",
    "top1_agreement",
    "sample_nll",
    "student_ce",
    "train_s",
    "generate_s",
    "steps",
)


def spread(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        "per_seed": [round(float(v), 4) for v in values],
    }


def aggregate(entries: list[dict]) -> dict:
    out = {m: spread([e[m] for e in entries]) for m in METRICS if all(m in e for e in entries)}
    if "kept_layers" in entries[0]:
        out["kept_layers"] = [e["kept_layers"] for e in entries]
    out["student_params"] = entries[0]["student_params"]
    return out


def compare(per_seed: dict[str, list[dict]], a: str, b: str) -> dict:
    """Arm ``a`` against arm ``b``, seed by seed (the seeds both have): the sample NLL gap ratio, the
    grammatical rate and the training wall time."""
    seeds_b = {y["seed"]: y for y in per_seed[b]}
    pairs = [(x, seeds_b[x["seed"]]) for x in per_seed[a] if x["seed"] in seeds_b]
    per_seed = {a: [x for x, _ in pairs], b: [y for _, y in pairs]}
    gaps = [x["sample_nll_gap"] / y["sample_nll_gap"] for x, y in zip(per_seed[a], per_seed[b])]
    gram = [x["grammatical_rate"] - y["grammatical_rate"] for x, y in zip(per_seed[a], per_seed[b])]
    wall = [x["train_s"] / y["train_s"] for x, y in zip(per_seed[a], per_seed[b])]
    mean_a = statistics.fmean(x["sample_nll_gap"] for x in per_seed[a])
    mean_b = statistics.fmean(y["sample_nll_gap"] for y in per_seed[b])
    return {
        "seeds": [x["seed"] for x, _ in pairs],
        "gap_ratio": spread(gaps),
        "gap_ratio_of_means": mean_a / mean_b,
        "grammatical_rate_difference": spread(gram),
        "train_s_ratio": spread(wall),
        "gap_target_met": mean_a / mean_b <= TARGET_GAP_RATIO_MAX,
        "grammatical_higher": statistics.fmean(gram) > 0,
    }


def measure(
    teacher_dir: Path, runs_dir: Path, s: Settings, seeds: list[int], arms: list[str], collect: list[Path] = ()
) -> dict:
    """Every arm for each seed, interleaved (seed by seed); per-arm figures and the comparisons.

    With ``collect`` nothing is trained: the students are the finished ``student-ARM-seedN`` run folders
    under those folders (the latest of each), judged again (the sampling is seeded, so the figures repeat)."""
    from transformers import AutoModelForCausalLM

    from workbench.engine.toy.language import get_language

    language = get_language()
    tokenizer = language.tokenizer()
    teacher = AutoModelForCausalLM.from_pretrained(teacher_dir)
    vocab = max(len(tokenizer), teacher.config.vocab_size)
    # prompt + written tokens fit the blocks the students were trained on (train.seq_len)
    prompts = sample_prompts(language, tokenizer, s.samples, load_config(s.preset).train.seq_len - s.sample_tokens)

    def judge(model, seed: int) -> dict:
        return judge_model(model, teacher, language, prompts, s.sample_tokens, 1000 + seed, vocab)

    per_seed: dict[str, list[dict]] = {arm: [] for arm in arms}
    kl_true_teacher = None
    if collect:
        found = collected(collect)
        arms = [a for a in ARMS if any(arm == a for arm, _ in found)]
        per_seed = {arm: [] for arm in arms}
        for (arm, seed), folder in sorted(found.items(), key=lambda kv: (kv[0][1], ARMS.index(kv[0][0]))):
            entry, summary = entry_from_folder(folder, seed, judge)
            entry["seed"] = seed
            kl_true_teacher = summary.get("kl_true_teacher", kl_true_teacher)
            per_seed[arm].append(entry)
        seeds = []
    for seed in seeds:
        for arm in arms:
            steps = None
            if arm in WALL_ARMS:  # off-policy KD given an on-policy (lambda 1) student's training time
                timed, base = WALL_ARMS[arm]
                on, off = per_seed[timed][-1], per_seed[base][-1]
                steps = max(1, round(s.steps * on["train_s"] / off["train_s"]))
            started = time.time()
            entry, summary = run_arm(arm, teacher_dir, runs_dir, s, seed, judge, steps)
            entry["seed"] = seed
            kl_true_teacher = summary.get("kl_true_teacher", kl_true_teacher)
            per_seed[arm].append(entry)
            # what is measured so far, in case the bench is stopped before the end
            (runs_dir / "partial.json").write_text(json.dumps({"settings": asdict(s), "per_seed": per_seed}))
            print(
                f"  seed {seed} {arm:<16} {entry['steps']:>5} steps  gap {entry['sample_nll_gap']:.4f}  "
                f"grammatical {entry['grammatical_rate']:.3f}  KL(true||s) {entry['kl_true_student']:.4f}  "
                f"train {entry['train_s']:.1f} s (generating {entry['generate_s']:.1f})  [{time.time() - started:.0f} s]",
                file=sys.stderr,
                flush=True,
            )
    report: dict = {
        "arms": {arm: aggregate(entries) for arm, entries in per_seed.items()},
        "per_seed": per_seed,
        "teacher_samples": judge_model(teacher, teacher, language, prompts, s.sample_tokens, 1000, vocab),
        "language_samples": judge_language(language, tokenizer, prompts, s.sample_tokens, vocab),
        "entropy_rate": language.entropy_rate(),
        "kl_true_teacher": kl_true_teacher,
        "sample_prompts": len(prompts),
        "comparisons": {},
        "seeds": sorted({e["seed"] for entries in per_seed.values() for e in entries}),
    }
    pairs = [
        ("onpolicy1", "kd", "equal steps"),
        ("onpolicy0.5", "kd", "equal steps"),
        ("onpolicy1", "kd-wall", "equal wall time"),
        ("onpolicy0.5", "kd-wall", "on-policy 0.5 against KD at on-policy 1's wall time"),
        ("onpolicy-warm1", "kd", "equal steps"),
        ("onpolicy-warm0.5", "kd", "equal steps"),
        ("onpolicy-warm1", "kd-wall-warm", "equal wall time"),
        ("onpolicy-warm0.5", "kd-wall-warm", "on-policy 0.5 against KD at warm on-policy 1's wall time"),
        ("onpolicy-warm1", "onpolicy1", "equal steps: the warm start alone"),
        ("importance", "kd-derived", "equal steps, same layer count"),
        ("hidden", "kd-derived", "equal steps, same layer count"),
        ("onpolicy-derived1", "kd-derived", "equal steps, derived students"),
        ("onpolicy-derived-warm1", "kd-derived", "equal steps, derived students"),
        ("onpolicy-derived1", "kd-wall-derived", "equal wall time, derived students"),
        ("kd", "hard", "equal steps"),
    ]
    for a, b, how in pairs:
        if per_seed.get(a) and per_seed.get(b) and {x["seed"] for x in per_seed[a]} & {y["seed"] for y in per_seed[b]}:
            report["comparisons"][f"{a} vs {b}"] = {"how": how, **compare(per_seed, a, b)}
    if "hard" in per_seed and "kd" in per_seed:  # the earlier output of this bench
        by_seed = {e["seed"]: e["kl_true_student"] for e in per_seed["hard"]}
        soft = [e["kl_true_student"] for e in per_seed["kd"] if e["seed"] in by_seed]
        hard = [by_seed[e["seed"]] for e in per_seed["kd"] if e["seed"] in by_seed]
        ratios = [a / b for a, b in zip(soft, hard)]
        report.update(
            ratio_soft_over_hard=statistics.fmean(ratios),
            ratio_per_seed=[round(r, 4) for r in ratios],
            ratio_stdev=statistics.stdev(ratios) if len(ratios) > 1 else 0.0,
            ratio_min=min(ratios),
            ratio_max=max(ratios),
            ratio_of_means=statistics.fmean(soft) / statistics.fmean(hard),
            kl_true_student_soft_per_seed=[round(v, 4) for v in soft],
            kl_true_student_hard_per_seed=[round(v, 4) for v in hard],
        )
    return report


def collected(folders: list[Path]) -> dict[tuple[str, int], Path]:
    """(arm, seed) -> the latest finished run folder named ``...-student-ARM-seedN`` under ``folders``."""
    import re

    found: dict[tuple[str, int], Path] = {}
    for root in folders:
        for folder in sorted(Path(root).iterdir()):  # stamped names: later ones sort last
            match = re.fullmatch(r"\d{8}-\d{6}(?:-\d+)?-student-(.+)-seed(\d+)", folder.name)
            if match and match.group(1) in ARMS and (folder / "summary.json").is_file():
                found[(match.group(1), int(match.group(2)))] = folder
    return found


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = list(__import__("os").getloadavg())
    except OSError:
        load = []
    return {
        "cpu": cpu,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": load,
    }


def _table(report: dict) -> str:
    columns = [
        ("steps", "steps", "{:.0f}"),
        ("kl_true_student", "KL(true||s)", "{:.4f}"),
        ("sample_nll_gap", "sample gap", "{:.4f}"),
        ("grammatical_rate", "grammatical", "{:.3f}"),
        ("impossible_token_rate", "impossible", "{:.4f}"),
        ("sample_kl_teacher_student", "KL(t||s) smp", "{:.4f}"),
        ("kl_teacher_student", "KL(t||s)", "{:.4f}"),
        ("top1_agreement", "top-1", "{:.3f}"),
        ("train_s", "train s", "{:.1f}"),
        ("generate_s", "gen s", "{:.1f}"),
    ]
    lines = [f"{'arm':<17}" + "".join(f"{title:>20}" for _, title, _ in columns)]
    for arm, figures in report["arms"].items():
        cells = []
        for key, _, fmt in columns:
            f = figures.get(key)
            cells.append(f"{(fmt.format(f['mean']) + ' ± ' + fmt.format(f['stdev'])) if f else '-':>20}")
        lines.append(f"{arm:<17}" + "".join(cells))
    t, lang = report["teacher_samples"], report["language_samples"]
    lines.append(
        f"teacher's samples: gap {t['sample_nll_gap']:.4f}, grammatical {t['grammatical_rate']:.3f}; "
        f"the language's own: gap {lang['sample_nll_gap']:.4f}, grammatical {lang['grammatical_rate']:.3f} "
        f"(entropy rate {report['entropy_rate']:.4f} nats/token)"
    )
    for name, c in report["comparisons"].items():
        lines.append(
            f"{name:<26} ({c['how']}): gap ratio {c['gap_ratio_of_means']:.3f} of means "
            f"(per seed {c['gap_ratio']['per_seed']}), grammatical {c['grammatical_rate_difference']['mean']:+.3f}, "
            f"train time ratio {c['train_s_ratio']['mean']:.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--preset", default="toy", choices=("toy", "toy-quick"))
    d = preset_settings(first.parse_known_args(argv)[0].preset)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset",
        default="toy",
        choices=("toy", "toy-quick"),
        help="the preset the teacher, the students and the defaults below come from",
    )
    parser.add_argument("--teacher", help="a trained teacher folder (default: train one with the toy preset)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from {', '.join(ARMS)}")
    parser.add_argument("--seeds", type=int, default=3, help="student seeds (initial weights and data order)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument(
        "--collect",
        nargs="+",
        type=Path,
        help="train nothing: report the finished student-ARM-seedN run folders under these folders (with --teacher)",
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--steps", type=int, default=d.steps, help="distillation steps of each student")
    parser.add_argument("--temperature", type=float, default=d.temperature)
    parser.add_argument("--alpha", type=float, default=d.alpha, help="soft-target weight of the KD students")
    parser.add_argument(
        "--no-t-squared", dest="t_squared", action="store_false", help="do not scale the KD term by T^2"
    )
    parser.add_argument("--divergence", default=d.divergence)
    parser.add_argument("--beta", type=float, default=d.beta, help="JSD's mixture weight (distill.beta), every arm")
    parser.add_argument(
        "--transfer-blocks",
        type=int,
        default=d.transfer_blocks,
        help="training blocks the students read (the transfer set; 0 = all of the teacher's corpus)",
    )
    parser.add_argument("--student-layers", type=int, default=d.student_layers)
    parser.add_argument("--student-hidden", type=int, default=d.student_hidden)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument(
        "--on-policy-divergence",
        default=d.on_policy_divergence,
        help="the divergence of the on-policy arms' on-policy steps (distill.on_policy_divergence)",
    )
    parser.add_argument(
        "--on-policy-start",
        type=float,
        default=d.on_policy_start,
        help="the warm arms' distill.on_policy_start: the share of steps done off-policy first",
    )
    parser.add_argument("--on-policy-temperature", type=float, default=d.on_policy_temperature)
    parser.add_argument("--on-policy-new-tokens", type=int, default=d.on_policy_new_tokens)
    parser.add_argument(
        "--on-policy-sequence-weight",
        type=float,
        default=d.on_policy_sequence_weight,
        help="the on-policy arms' distill.on_policy_sequence_weight (the long-term reverse-KL term)",
    )
    parser.add_argument("--keep", type=int, default=d.keep, help="teacher layers a derived student keeps")
    parser.add_argument("--hidden-weight", type=float, default=d.hidden_weight)
    parser.add_argument("--hidden-loss", default=d.hidden_loss)
    parser.add_argument("--samples", type=int, default=d.samples, help="held-out sentences each student continues")
    parser.add_argument("--sample-tokens", type=int, default=d.sample_tokens, help="tokens written after each")
    parser.add_argument("--out", help="folder for the run folders (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown arm {unknown[0]!r}; the arms are {', '.join(ARMS)}")
    for wall, (timed, base) in WALL_ARMS.items():  # it needs both arms it is sized from, measured first in the seed
        if wall in arms:
            arms = [a for a in ARMS if a in set(arms) | {base, timed}]
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings(**{f.name: getattr(args, f.name) for f in fields(Settings)})

    runs_dir = Path(args.out or tempfile.mkdtemp(prefix="bench-quality-"))
    start = time.time()
    load_before = machine()["load_average"]
    if args.collect and not args.teacher:
        parser.error("--collect needs --teacher: the teacher the students were distilled from")
    teacher_dir = Path(args.teacher) if args.teacher else train_teacher(runs_dir, args.preset)
    teacher_time = time.time() - start
    report = {
        **measure(
            teacher_dir,
            runs_dir,
            settings,
            list(range(args.first_seed, args.first_seed + args.seeds)),
            arms,
            collect=args.collect or [],
        ),
        "settings": asdict(settings),
        "smoothing": SMOOTHING,
        "machine": machine(),
        "load_average_before": load_before,
        "teacher": str(teacher_dir),
        "target_gap_ratio_max": TARGET_GAP_RATIO_MAX,
        "target_ratio_mean_max": TARGET_RATIO_MEAN_MAX,
        "target_ratio_seed_max": TARGET_RATIO_SEED_MAX,
        "teacher_seconds": round(teacher_time, 1),
        "total_seconds": round(time.time() - start, 1),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(_table(report))
        for key in ("ratio_soft_over_hard", "ratio_per_seed", "kl_true_teacher", "seeds", "settings", "machine"):
            if key in report:
                print(f"{key:<30} {report[key]}")
        print(f"{'total_seconds':<30} {report['total_seconds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
