"""Does a student distilled from the top-k teacher cache end as close to the teacher as one distilled from the full teacher?

    python scripts/bench_cache_quality.py --model toy [--seeds 3 --steps 200 --ks 64,16 --tails prior,bucket] [--json]
    python scripts/bench_cache_quality.py --model smollm2 [--steps 48 --transfer-blocks 32] [--json]

The same run configuration is distilled once per arm through ``workbench.engine.train.run``:
``distill.teacher_cache = "full"`` and ``"topk"`` (one arm per ``--ks`` and ``--tails``, the latter
``distill.cache_tail``: arms ``topk64-lowrank``, ``topk64-prior``, ``topk64-bucket``), with the same seed, steps, data and
student initialisation. After each run the exported student is compared with the **full** teacher on
the held-out blocks of its seed (``train.seed`` also draws the train/held-out split of text data):
KL(teacher || student) at T = 1 (nats per position) and the student's cross-entropy.
The run summary's own ``kl_teacher_student`` is not used for this: in topk mode it is measured against the
cache (engine/teacher_cache.py ``cached_kl_metrics``: the teacher's tail reconstructed as the arm's tail
model says), an estimate; ``cached_kl_rel_error`` says how far the cache's estimate of the held-out KL
(``cached_kl_teacher_student``: a cache of the same held-out blocks, the arm's tail model) is from the
true KL on the same positions.

The per-step time of each arm is the wall time between its first and last Step event over the steps between
them (so the cache build and the evaluations at the ends are left out; evaluations in between are counted,
the same for both arms), all arms in one process, one after the other.

The noise floor (``--noise fp16``, the default; ``none`` leaves it out): one more arm, ``full-fp16``, distils
from the full teacher with its weights rounded to fp16 and back, a teacher whose outputs differ from the real
one's by ``noise_kl`` (held-out KL(teacher || rounded teacher): about 1e-6 nats on the toy teacher). With
``--model smollm2`` the student is derived from that rounded teacher, so its initial weights are rounded too.
Its distance from the ``full`` arm is how far a student moves when its teacher changes by rounding alone: a cache arm's per-seed
difference from ``full`` is only a finding where it is larger than the noise floor's.

--model toy: a teacher trained once on the built-in language (the toy preset's architecture, fewer
steps: ``--teacher-steps``), students as in the toy preset (1 layer, hidden 64) on ``distill.transfer_blocks``
blocks, T = ``--temperature`` (default 2, where the cache's tail is approximate).
--model smollm2: the ``smollm2`` preset (SmolLM2-135M-Instruct GGUF teacher, 10 of 30 layers derived),
``--transfer-blocks`` blocks of ``--seq`` tokens so that ``--steps`` covers several epochs and the cache is
reread. 48 steps by default (13 epochs): at 16 the students are still at KL 3-3.8 nats from the teacher, barely
distilled, and two students of one seed land 3-5% apart in either direction (docs/quality-results.md). The GGUF is found as the preset says (``models:`` = ``$WORKBENCH_HOME/models``; fetch it with
scripts/fetch_smollm2.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

TOY_SENTENCES = 10_000
"""Sentences of the built-in language for the toy teacher and students (the preset's 100,000 take minutes to make)."""


@torch.no_grad()
def heldout_kl_ce(teacher, student, blocks: torch.Tensor, batch: int = 8) -> tuple[float, float]:
    """KL(teacher || student) at T = 1 per position, and the student's next-token CE, over ``blocks``."""
    teacher.eval()
    student.eval()
    kl_sum = ce_sum = 0.0
    positions = ce_positions = 0
    for start in range(0, len(blocks), batch):
        ids = blocks[start : start + batch].long()
        t = F.log_softmax(teacher(input_ids=ids, use_cache=False).logits.float(), -1)
        s = F.log_softmax(student(input_ids=ids, use_cache=False).logits.float(), -1)
        kl_sum += float((t.exp() * (t - s)).sum(-1).sum())
        ce_sum += float(-s[:, :-1].gather(-1, ids[:, 1:, None]).sum())
        positions += ids.numel()
        ce_positions += ids[:, 1:].numel()
    return kl_sum / positions, ce_sum / ce_positions


@torch.no_grad()
def cached_kl(teacher, student, blocks: torch.Tensor, k: int, tail: str, batch: int = 8) -> float:
    """KL(teacher || student) at T = 1 per position over ``blocks`` as a top-``k`` cache of them estimates it
    (engine/teacher_cache.py ``cached_kl_metrics``, the teacher's tail modelled as ``tail`` says)."""
    from workbench.engine.teacher_cache import cached_kl_metrics, teacher_topk_cache

    cache = teacher_topk_cache(teacher, blocks, k, device=torch.device("cpu"))
    student.eval()
    total = 0.0
    for start in range(0, len(blocks), batch):
        ids = blocks[start : start + batch].long()
        logp = F.log_softmax(student(input_ids=ids, use_cache=False).logits.float(), -1)
        looked_up = cache.lookup(torch.arange(start, start + len(ids)), torch.device("cpu"))
        total += float(cached_kl_metrics(logp, looked_up, tail=tail)["kl_teacher_student"])
    return total / blocks.numel()


def rounded_teacher(source: str, where: Path, out: Path, dtype: torch.dtype) -> Path:
    """A teacher folder (from a ``"local"`` folder or a ``"gguf"`` file) with every weight rounded to ``dtype``
    and back: the noise-floor arm's teacher."""
    from workbench.engine.export import save_teacher
    from workbench.engine.models.load import load_pretrained

    model, tokenizer = load_pretrained(source, str(where), field="")
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(dtype).to(tensor.dtype))
    save_teacher(model, tokenizer, out)
    return out


def train_toy_teacher(out: Path, steps: int) -> Path:
    """The toy preset's teacher architecture trained for ``steps`` steps; returns its ``teacher/`` folder."""
    from workbench.config.presets import load_config
    from workbench.engine.train.run import run

    cfg = load_config("toy", validate=False)
    cfg.name, cfg.runs_dir = "cache-quality-teacher", str(out)
    cfg.apply_overrides(
        [
            f"train.teacher_steps={steps}",
            f"data.toy_sentences={TOY_SENTENCES}",
            "train.max_steps=1",
            "train.warmup_steps=0",
            "train.checkpoint_interval=0",
        ]
    )
    cfg.validate()
    result = run(cfg)
    if result.kind == "failed":
        raise SystemExit(f"error: the teacher run failed: {result.message}")
    return Path(result.run_dir) / "teacher"


def student_config(args, runs_dir: Path, teacher_dir: Path | None, *, cache: str, k: int, tail: str, seed: int):
    from workbench.config.presets import load_config

    cfg = load_config(args.model, validate=False)
    cfg.name, cfg.runs_dir = f"{arm_name(cache, k, tail)}-seed{seed}", str(runs_dir)
    overrides = [
        f"distill.teacher_cache={cache}",
        f"distill.cache_k={k}",
        f"distill.cache_tail={tail}",
        f"distill.temperature={args.temperature}",
        f"distill.transfer_blocks={args.transfer_blocks}",
        f"train.max_steps={args.steps}",
        f"train.seed={seed}",
        f"train.eval_interval={args.steps}",
        f"train.probe_interval={args.steps}",
        "train.log_interval=1",
        "train.checkpoint_interval=0",
        "train.probe_prompts=[]",
        "train.device=cpu",
        *args.set,
    ]
    if teacher_dir is not None:  # the toy teacher, or a noise-floor arm's rounded one
        cfg.teacher.source, cfg.teacher.path = "local", str(teacher_dir)
    if args.model == "toy":
        overrides.append(f"data.toy_sentences={TOY_SENTENCES}")
    else:
        overrides += [f"train.seq_len={args.seq}", f"train.batch_size={args.batch}"]
    cfg.apply_overrides(overrides)
    cfg.validate()
    return cfg


def arm_name(cache: str, k: int, tail: str) -> str:
    if cache.startswith("full-"):  # the noise-floor arm: the full teacher, rounded
        return cache
    return "full" if cache == "full" else f"topk{k}-{tail}"


def distill_once(cfg) -> dict:
    from workbench.engine.train.run import run

    stamps: list[tuple[int, float]] = []
    started = time.perf_counter()

    def on_event(event) -> None:
        if event.kind == "step" and getattr(event, "stage", "") != "teacher":
            stamps.append((event.step, time.perf_counter()))

    result = run(cfg, on_event)
    if result.kind == "failed":
        raise SystemExit(f"error: the run {cfg.name} failed: {result.message}")
    (s0, t0), (s1, t1) = stamps[0], stamps[-1]
    return {
        "run_dir": result.run_dir,
        "summary_kl_teacher_student": result.summary.get("kl_teacher_student"),
        "s_per_step": (t1 - t0) / max(s1 - s0, 1),
        "steps_timed": s1 - s0,
        "run_wall_s": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("toy", "smollm2"), default="toy")
    parser.add_argument("--seeds", type=int, default=None, help="student seeds (toy default 3, smollm2 1)")
    parser.add_argument("--steps", type=int, default=None, help="distillation steps (toy 200, smollm2 48)")
    parser.add_argument("--ks", default=None, help="comma-separated cache k values (toy 64,16; smollm2 64)")
    parser.add_argument("--tails", default="lowrank,prior,bucket", help="comma-separated distill.cache_tail values")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--transfer-blocks", type=int, default=None, help="toy 200, smollm2 32")
    parser.add_argument("--teacher-steps", type=int, default=300, help="toy: the teacher's training steps")
    parser.add_argument("--teacher", help="toy: a trained teacher/ folder instead of training one")
    parser.add_argument("--seq", type=int, default=128, help="smollm2: block length")
    parser.add_argument("--batch", type=int, default=4, help="smollm2: batch size")
    parser.add_argument("--eval-blocks", type=int, default=64, help="held-out blocks compared on (at most)")
    parser.add_argument(
        "--noise", choices=("fp16", "bf16", "none"), default="fp16", help="the noise-floor arm's rounding"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every student run (repeatable), e.g. --set train.lr=0.001",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    toy = args.model == "toy"
    args.seeds = args.seeds or (3 if toy else 1)
    args.steps = args.steps or (200 if toy else 48)
    args.transfer_blocks = args.transfer_blocks if args.transfer_blocks is not None else (200 if toy else 32)
    ks = [int(k) for k in (args.ks or ("64,16" if toy else "64")).split(",")]
    torch.set_num_threads(args.threads)
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="bench-cache-quality-"))
    tmp = tempfile.TemporaryDirectory(prefix="bench-cache-quality-runs-")
    runs_dir = Path(tmp.name)
    started = time.perf_counter()

    from workbench.engine.data.blocks import load_blocks
    from workbench.engine.models.load import load_pretrained

    teacher_dir = None
    if toy:
        teacher_dir = Path(args.teacher) if args.teacher else train_toy_teacher(runs_dir, args.teacher_steps)
    teacher_s = time.perf_counter() - started

    tails = [t for t in args.tails.split(",") if t]
    arms = [("full", ks[0], tails[0])] + [("topk", k, tail) for k in ks for tail in tails]
    noisy_dir = None
    if args.noise != "none":
        rounding = {"fp16": torch.float16, "bf16": torch.bfloat16}[args.noise]
        if toy:
            source, where = "local", teacher_dir
        else:
            from workbench.config.presets import load_config
            from workbench.paths import resolve_path

            source, where = "gguf", resolve_path(load_config(args.model, validate=False).teacher.path)
        noisy_dir = rounded_teacher(source, where, runs_dir / f"teacher-{args.noise}", rounding)
        arms.insert(1, (f"full-{args.noise}", ks[0], tails[0]))
    per_arm: dict[str, list[dict]] = {arm_name(*arm): [] for arm in arms}
    teacher = tokenizer = None
    heldout: dict[int, torch.Tensor] = {}  # per seed: train.seed also draws the train/held-out split
    for seed in range(args.seeds):
        for cache, k, tail in arms:
            noisy = cache.startswith("full-")
            cfg = student_config(
                args,
                runs_dir,
                noisy_dir if noisy else teacher_dir,
                cache="full" if noisy else cache,
                k=k,
                tail=tail,
                seed=seed,
            )
            cfg.name = f"{arm_name(cache, k, tail)}-seed{seed}"
            print(f"  {time.perf_counter() - started:7.1f} s  {cfg.name}", file=sys.stderr, flush=True)
            row = distill_once(cfg)
            if teacher is None:  # the run's own teacher, loaded once
                if toy:
                    teacher, tokenizer = load_pretrained("local", str(teacher_dir), field="")
                else:
                    from workbench.paths import resolve_path

                    teacher, tokenizer = load_pretrained("gguf", str(resolve_path(cfg.teacher.path)), field="")
            if seed not in heldout:  # this seed's held-out blocks, as the run split them
                data = load_blocks(cfg.data, tokenizer, cfg.train.seq_len, seed=cfg.train.seed)
                heldout[seed] = data.val[: args.eval_blocks].long()
            blocks = heldout[seed]
            student, _ = load_pretrained("local", str(Path(row["run_dir"]) / "student"), field="")
            row["kl_teacher_student"], row["student_ce"] = heldout_kl_ce(teacher, student, blocks)
            row["seed"] = seed
            if cache == "topk":  # the cache's own estimate of that KL, on the same blocks and positions
                row["cached_kl_teacher_student"] = cached_kl(teacher, student, blocks, k, tail)
                row["cached_kl_rel_error"] = row["cached_kl_teacher_student"] / row["kl_teacher_student"] - 1
            del row["run_dir"]
            per_arm[arm_name(cache, k, tail)].append(row)

    full = per_arm["full"]
    noise_kl = None
    if noisy_dir is not None:
        noisy_teacher, _ = load_pretrained("local", str(noisy_dir), field="")
        noise_kl = statistics.fmean(heldout_kl_ce(teacher, noisy_teacher, b)[0] for b in heldout.values())
    from workbench.engine.teacher_cache import bytes_per_entry, bytes_per_position

    vocab = int(teacher.get_output_embeddings().weight.shape[0])
    result: dict = {
        "model": args.model,
        "steps": args.steps,
        "seeds": args.seeds,
        "temperature": args.temperature,
        "transfer_blocks": args.transfer_blocks,
        "overrides": args.set,
        "seq_len": cfg.train.seq_len,
        "batch_size": cfg.train.batch_size,
        "heldout_blocks": len(blocks),
        "teacher_ce": statistics.fmean(heldout_kl_ce(teacher, teacher, b)[1] for b in heldout.values()),
        "vocab_size": vocab,
        "cache_bytes_per_token": {f"k{k}": bytes_per_position(min(k, vocab), vocab) for k in ks},
        "cache_bytes_per_entry": bytes_per_entry(ks[0], vocab),
        "noise": args.noise if noisy_dir is not None else "none",
        "noise_kl": noise_kl,
        "arms": per_arm,
        "comparisons": {},
        "teacher_train_s": teacher_s,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    for name, rows in per_arm.items():
        if name == "full":
            continue
        rel = [r["kl_teacher_student"] / f["kl_teacher_student"] - 1 for r, f in zip(rows, full)]
        result["comparisons"][name] = {
            "kl_rel_diff_per_seed": rel,
            "kl_rel_diff_mean": statistics.fmean(rel),
            "kl_mean": statistics.fmean(r["kl_teacher_student"] for r in rows),
            "kl_full_mean": statistics.fmean(f["kl_teacher_student"] for f in full),
            "ce_mean": statistics.fmean(r["student_ce"] for r in rows),
            "ce_full_mean": statistics.fmean(f["student_ce"] for f in full),
            "step_time_ratio_per_seed": [r["s_per_step"] / f["s_per_step"] for r, f in zip(rows, full)],
            "within_2pct": all(abs(x) <= 0.02 for x in rel),
        }
        if name.startswith("topk"):
            result["comparisons"][name]["cached_kl_rel_error_mean"] = statistics.fmean(
                r["cached_kl_rel_error"] for r in rows
            )
    result["wall_s"] = time.perf_counter() - started
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.model}: {args.steps} steps, T={args.temperature}, held-out {len(blocks)} blocks")
    for name, rows in per_arm.items():
        for r in rows:
            print(
                f"  {name:>7} seed {r['seed']}: KL {r['kl_teacher_student']:.4f} CE {r['student_ce']:.4f} "
                f"{r['s_per_step'] * 1000:.1f} ms/step"
            )
    for name, c in result["comparisons"].items():
        print(
            f"  {name} vs full: KL rel diff {[round(x, 4) for x in c['kl_rel_diff_per_seed']]} "
            f"(mean {c['kl_rel_diff_mean']:+.4f}), step time ratio "
            f"{[round(x, 3) for x in c['step_time_ratio_per_seed']]}"
        )
    if noise_kl is not None:
        print(f"  noise floor: held-out KL(teacher || {args.noise}-rounded teacher) {noise_kl:.3g}")
    print(f"  cache: {result['cache_bytes_per_token']} bytes/token + {result['cache_bytes_per_entry']} bytes/entry")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
