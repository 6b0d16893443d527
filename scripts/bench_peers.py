"""One optimizer step of distillation: the workbench's paths against the usual recipes, on the same models.

    python scripts/bench_peers.py --json [--shape toy|smollm2] [--steps N] [--rounds R] [--skip-memory]
                                         [--device cpu|cuda] [--precision fp32|bf16] [--vocab V] [--compile]

In one process, on the same random-init teacher and student, the same token blocks, the same batch,
temperature, alpha and AdamW (``schedule.adamw``, fused on CPU; one optimizer and one student shared by
all variants, so every variant steps the same weights), it times one optimizer step of:

- ``workbench``: ``Objective`` with the teacher (its forward pass under no_grad, the chunked loss of
  engine/losses.py, ``distill.fused_loss`` off);
- ``workbench_fused``: the same with ``distill.fused_loss`` on (engine/fused_loss.py: logits a chunk at a time);
- ``workbench_topk``: ``Objective`` reading the top-k teacher cache (``distill.teacher_cache = "topk"``,
  k = ``--k``; no teacher forward in the step; built before timing, over the blocks the timed steps read;
  the build is timed apart and reported per step amortised over ``--epochs`` epochs of those blocks, with
  and without the teacher's weights fingerprint (the cache key; once per teacher, whatever the blocks));
- ``classic``: the usual full-logits recipe: teacher forward (no_grad), student forward,
  ``F.kl_div(log_softmax(s / T), softmax(t / T)) * T^2 * alpha + (1 - alpha) * CE``, backward, step;
- ``trl_gkd``: TRL's own ``GKDTrainer.compute_loss`` with beta 0 (forward KL) and lmbda 0 (no
  generation), called with a stand-in for the trainer (its teacher, beta and the static
  ``generalized_jsd_loss``) on ``input_ids``, an all-ones ``attention_mask`` and ``labels``, inside an
  otherwise identical step (backward, clip, AdamW). That loss has no CE term (no alpha), and
  compute_loss leaves the loss's temperature at 1.0 (a division: the same cost). Not a Trainer step: no
  dataloader, collator, accelerate or logging. Skipped, with a note, when TRL is not importable (the
  core install has none: ``pip install -e ".[bench]"``);
- ``floor``: the teacher's forward pass (no_grad) + the student's plain CE step;
- ``student_ce``: the student's plain CE step alone (``F.cross_entropy`` on its logits).

Every step clips the gradient norm to 1.0 (the workbench's default, and Hugging Face Trainer's).
Rounds are interleaved, the variants' order reversed every other round; each variant runs one untimed
step before its first round, then ``--steps`` timed steps a round, each on the next batch of the blocks. Reported: seconds
per step (median over rounds, min and max), tokens/s, and ratios per round (variant / floor, / student
CE, / TRL; median, min, max), so load drifts on a shared machine hit both sides of a ratio alike.

Peak step memory (``--skip-memory`` leaves it out): each variant in a fresh subprocess, after one step
(so the optimizer state and the cache's pages exist): peak RSS of one more step above the RSS before
it (``VmHWM`` after resetting it with ``/proc/self/clear_refs``, glibc told to ``mmap`` large blocks so
freed tensors leave RSS), as scripts/bench_kd_memory.py measures.

On a GPU (``--device cuda``) each round is bracketed by ``torch.cuda.synchronize()``, and peak step
memory is the CUDA allocator's: ``max_memory_allocated`` over one more step above ``memory_allocated``
before it. ``--precision bf16`` runs every variant's forward passes under bf16 autocast and keeps the
frozen teacher in bf16, as a workbench run in bf16 does (the student's weights and AdamW stay fp32).

``--compile`` gives the three workbench variants ``train.compile`` (each chunk of their loss through
``torch.compile``; compiled in the untimed first step); the other variants are unchanged.

Shapes: ``toy``, the toy preset's teacher (4 layers x 128) and student (its custom 1 layer x 64, not
derived), the toy vocabulary, batch 8 x 64; ``smollm2``, a SmolLM2-135M-shaped teacher (``--teacher-layers``,
30 by default; hidden 576, vocabulary 49152, or ``--vocab``: 151936 is Qwen's) and a student derived from a
third of its layers, batch 2 x 256.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without an install
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from workbench.config.checks import evenly_spaced  # noqa: E402
from workbench.config.schema import ArchConfig, DistillConfig  # noqa: E402
from workbench.engine.device import Device  # noqa: E402
from workbench.engine.losses import loss_chunk_positions  # noqa: E402
from workbench.engine.models.build import build_model, derive_student  # noqa: E402
from workbench.engine.models.sizes import count_parameters  # noqa: E402
from workbench.engine.teacher_cache import teacher_topk_cache, weights_fingerprint  # noqa: E402
from workbench.engine.train.objective import Batch, Objective  # noqa: E402
from workbench.engine.train.schedule import adamw  # noqa: E402

VARIANTS = ("workbench", "workbench_fused", "workbench_topk", "classic", "trl_gkd", "floor", "student_ce")
MIB = 1024 * 1024
GRAD_CLIP = 1.0


def trl_gkd_trainer():
    """TRL's ``GKDTrainer`` class and TRL's version, or (None, why not)."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    errors = []
    for module in ("trl.experimental.gkd", "trl"):  # TRL 1.x keeps it under experimental; 0.x at the top
        try:
            trainer = __import__(module, fromlist=["GKDTrainer"]).GKDTrainer
            import trl

            return trainer, {"trl_version": trl.__version__, "trl_gkd_from": module}
        except Exception as exc:  # noqa: BLE001 - any failure to import means "no TRL here"
            errors.append(f"{module}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return None, {"trl_skipped": "TRL is not importable (pip install -e '.[bench]'); " + "; ".join(errors)}


# -- models and data ----------------------------------------------------------------------


def shape_settings(args) -> dict:
    if args.shape == "toy":
        from workbench.config.presets import load_config
        from workbench.engine.toy.language import get_language

        cfg = load_config("toy")
        return dict(
            vocab=len(get_language().tokenizer()),
            teacher_arch=cfg.teacher.arch,
            student_arch=cfg.student.arch,
            batch=args.batch or 8,
            seq=args.seq or cfg.train.seq_len,
            description="toy preset: teacher 4 x 128, its custom student 1 x 64, toy vocabulary",
        )
    layers = args.teacher_layers
    teacher_arch = ArchConfig(
        family="llama",
        layers=layers,
        hidden=576,
        heads=9,
        kv_heads=3,
        intermediate=1536,
        max_positions=2048,
        tie_embeddings=True,
    )
    keep = max(1, round(layers / 3))
    vocab = args.vocab or 49152
    return dict(
        vocab=vocab,
        teacher_arch=teacher_arch,
        student_layers=evenly_spaced(layers, keep),
        batch=args.batch or 2,
        seq=args.seq or 256,
        description=f"SmolLM2-135M-shaped (random init), teacher {layers} layers x 576 -> derived student {keep} layers"
        + (f", vocabulary {vocab}" if vocab != 49152 else ""),
    )


def run_device(args) -> Device:
    """Where and in which precision every variant runs (the workbench's own ``Device``: its autocast)."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA GPU here")
    label = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"
    return Device(torch.device(args.device), label, args.precision)


def make_models(shape: dict, dev: Device):
    teacher = build_model(shape["teacher_arch"], shape["vocab"], seed=0)
    if "student_layers" in shape:
        student = derive_student(teacher, shape["student_layers"])
    else:
        student = build_model(shape["student_arch"], shape["vocab"], seed=1)
    teacher.eval().requires_grad_(False)
    teacher.to(dev.device, dev.frozen_dtype)  # as a run keeps its frozen teacher
    student.to(dev.device).train()
    return teacher, student


def synchronize(dev: Device) -> None:
    if dev.device.type == "cuda":
        torch.cuda.synchronize(dev.device)


def make_blocks(shape: dict, steps: int) -> torch.Tensor:
    """``steps`` batches of random token blocks: one epoch of the timed steps (int32, as blocks are kept)."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, shape["vocab"], (steps * shape["batch"], shape["seq"]), generator=g, dtype=torch.int32)


# -- the steps ----------------------------------------------------------------------------


class Steps:
    """One optimizer step of each variant on batch ``i`` of the blocks (one student, one optimizer)."""

    def __init__(self, teacher, student, blocks, shape, args, dev: Device, cache=None, trl_trainer=None):
        self.teacher, self.student, self.blocks = teacher, student, blocks
        self.batch, self.vocab = shape["batch"], shape["vocab"]
        self.temperature, self.alpha = args.temperature, args.alpha
        self.dev = dev
        self.device = dev.device
        self.autocast = dev.autocast
        self.optimizer = adamw(student, 0.01, 1e-4, self.device)
        settings = DistillConfig(temperature=args.temperature, alpha=args.alpha, cache_k=args.k)
        chunk = loss_chunk_positions(self.vocab, settings.chunk_positions, dev.device)
        common = dict(alpha=args.alpha, autocast=dev.autocast, chunk_positions=chunk, compile=args.compile)
        self.objectives = {
            "workbench": Objective(settings, teacher=teacher, **common),
            "workbench_fused": Objective(replace(settings, fused_loss=True), teacher=teacher, **common),
        }
        if cache is not None:
            self.objectives["workbench_topk"] = Objective(
                replace(settings, teacher_cache="topk"), teacher=teacher, teacher_topk=cache, **common
            )
        self.trl_trainer = trl_trainer
        self.n_batches = len(blocks) // self.batch

    def available(self) -> list[str]:
        return [
            v
            for v in VARIANTS
            if (v != "workbench_topk" or v in self.objectives) and (v != "trl_gkd" or self.trl_trainer)
        ]

    def _batch(self, i: int) -> Batch:
        i %= self.n_batches
        index = torch.arange(i * self.batch, (i + 1) * self.batch)
        return Batch.of_blocks(
            self.blocks[index].long().to(self.device), index
        )  # the index stays on the host, as a run passes it

    def _finish(self, loss):
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), GRAD_CLIP)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def _teacher_logits(self, ids):
        with torch.no_grad(), self.autocast():
            return self.teacher(input_ids=ids, use_cache=False).logits

    def _student_logits(self, ids):
        with self.autocast():
            return self.student(input_ids=ids, use_cache=False).logits

    def _ce(self, logits, ids):
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())

    def step(self, variant: str, i: int) -> float:
        batch = self._batch(i)
        ids = batch.ids
        if variant in self.objectives:
            parts = self.objectives[variant](self.student, batch, batch.valid_tokens())
            return self._finish(parts.loss)
        if variant == "student_ce":
            return self._finish(self._ce(self._student_logits(ids), ids))
        if variant == "trl_gkd":
            return self._trl_step(ids)
        if variant == "floor":
            self._teacher_logits(ids)
            return self._finish(self._ce(self._student_logits(ids), ids))
        teacher_logits = self._teacher_logits(ids)
        student_logits = self._student_logits(ids)
        T = self.temperature
        if variant == "classic":  # the recipe as usually written: softmaxes in fp32 under autocast
            s = student_logits[:, :-1].flatten(0, 1)
            t = teacher_logits[:, :-1].flatten(0, 1)
            kd = F.kl_div(F.log_softmax(s / T, dim=-1), F.softmax(t / T, dim=-1), reduction="batchmean")
            ce = F.cross_entropy(s, ids[:, 1:].flatten())
            return self._finish(kd * T**2 * self.alpha + (1 - self.alpha) * ce)
        raise ValueError(variant)

    def _trl_step(self, ids) -> float:
        """TRL's own ``GKDTrainer.compute_loss`` (called with a stand-in for the trainer: its teacher, beta 0
        and its static ``generalized_jsd_loss``), then the same backward, clip and AdamW step."""
        trainer = self.trl_trainer
        stand_in = SimpleNamespace(
            teacher_model=self.teacher, beta=0.0, generalized_jsd_loss=trainer.generalized_jsd_loss
        )
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids, "prompts": ids[:, :1]}
        with self.autocast():  # as a Trainer with bf16=True runs compute_loss
            loss = trainer.compute_loss(stand_in, self.student, inputs)
        return self._finish(loss)


def build_cache(teacher, blocks, k, dev: Device):
    """The top-k cache of ``blocks``, built now: ``(cache, seconds building, seconds fingerprinting the teacher)``.
    The fingerprint (the cache key's hash of the weights) is once per teacher, whatever the number of blocks."""
    started = time.perf_counter()
    fingerprint = weights_fingerprint(teacher)
    hashed = time.perf_counter()
    cache = teacher_topk_cache(teacher, blocks, k, device=dev.device, autocast=dev.autocast, fingerprint=fingerprint)
    synchronize(dev)
    return cache, time.perf_counter() - hashed, hashed - started


# -- timing -------------------------------------------------------------------------------


def _spread(values: list[float], digits: int = 4) -> dict:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def time_rounds(steps: Steps, variants: list[str], n_steps: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per step of each variant in each round (interleaved, order reversed every other round)."""
    per_round: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        order = variants if r % 2 == 0 else list(reversed(variants))
        for variant in order:
            if r == 0:
                steps.step(variant, 0)  # untimed: caches warm, allocations made
            synchronize(steps.dev)
            started = time.perf_counter()
            for i in range(n_steps):
                steps.step(variant, i)
            synchronize(steps.dev)
            per_round[variant].append((time.perf_counter() - started) / n_steps)
    return per_round


def summarise(per_round: dict[str, list[float]], tokens_per_step: int) -> dict:
    rows = {}
    for variant, seconds in per_round.items():
        row = {
            "s_per_step": _spread(seconds),
            "tokens_per_s": round(tokens_per_step / statistics.median(seconds), 1),
        }
        for base, key in (("floor", "vs_floor"), ("student_ce", "vs_student_ce"), ("trl_gkd", "vs_trl")):
            if base in per_round and variant != base:
                row[key] = _spread([a / b for a, b in zip(seconds, per_round[base])], 3)
        rows[variant] = row
    return rows


# -- memory (one variant per subprocess) --------------------------------------------------


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def memory_worker(args) -> None:
    """In a fresh process: models, one step of ``args.worker``, then the peak memory of one more step
    (RSS on the CPU, the CUDA allocator's on a GPU)."""
    shape = shape_settings(args)
    dev = run_device(args)
    teacher, student = make_models(shape, dev)
    blocks = make_blocks(shape, args.steps)
    cache = build_cache(teacher, blocks, args.k, dev)[0] if args.worker == "workbench_topk" else None
    trl_trainer = trl_gkd_trainer()[0] if args.worker == "trl_gkd" else None
    steps = Steps(teacher, student, blocks, shape, args, dev, cache=cache, trl_trainer=trl_trainer)
    steps.step(args.worker, 0)
    if dev.device.type == "cuda":
        synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev.device)
        before = torch.cuda.memory_allocated(dev.device)
        steps.step(args.worker, 1)
        synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev.device)
        print(
            json.dumps({"steady_mib": round(before / MIB, 1), "peak_step_extra_mib": round((peak - before) / MIB, 1)})
        )
        return
    with open("/proc/self/clear_refs", "w") as clear:  # VmHWM back to the current RSS
        clear.write("5")
    before = _status_kib("VmRSS")
    steps.step(args.worker, 1)
    peak = _status_kib("VmHWM")
    print(
        json.dumps({"steady_rss_mib": round(before / 1024, 1), "peak_step_extra_mib": round((peak - before) / 1024, 1)})
    )


def measure_memory(args, variants: list[str]) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MIB), MALLOC_TRIM_THRESHOLD_=str(MIB))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    out = {}
    for variant in variants:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, *forwarded(args)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            out[variant] = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
        else:
            out[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def forwarded(args) -> list[str]:
    return [
        "--shape", args.shape, "--steps", str(args.steps), "--k", str(args.k),
        "--temperature", str(args.temperature), "--alpha", str(args.alpha),
        "--teacher-layers", str(args.teacher_layers), "--batch", str(args.batch), "--seq", str(args.seq),
        "--threads", str(args.threads), "--device", args.device, "--precision", args.precision,
        "--vocab", str(args.vocab), *(["--compile"] if args.compile else []),
    ]  # fmt: skip


# -- main ---------------------------------------------------------------------------------


def memory_only(args) -> dict:
    shape = shape_settings(args)
    variants = [v for v in VARIANTS if v != "trl_gkd" or trl_gkd_trainer()[0] is not None]
    return {
        "shape": args.shape,
        "description": shape["description"],
        "batch": shape["batch"],
        "seq_len": shape["seq"],
        "threads": torch.get_num_threads(),
        "device": args.device,
        "precision": args.precision,
        "memory": {"method": memory_method(args), "variants": measure_memory(args, variants)},
    }


def memory_method(args) -> str:
    if args.device == "cuda":
        return "torch.cuda.max_memory_allocated of a fresh subprocess per variant, one step above memory_allocated after a first step"
    return "VmHWM of a fresh subprocess per variant, one step above the RSS after a first step"


def run(args) -> dict:
    shape = shape_settings(args)
    dev = run_device(args)
    teacher, student = make_models(shape, dev)
    blocks = make_blocks(shape, args.steps)
    trl_trainer, trl_info = trl_gkd_trainer()
    cache, build_s, fingerprint_s = build_cache(teacher, blocks, args.k, dev)
    steps = Steps(teacher, student, blocks, shape, args, dev, cache=cache, trl_trainer=trl_trainer)
    variants = steps.available()
    tokens_per_step = shape["batch"] * shape["seq"]
    started = time.perf_counter()
    per_round = time_rounds(steps, variants, args.steps, args.rounds)
    timing_s = time.perf_counter() - started
    rows = summarise(per_round, tokens_per_step)
    epoch_steps = args.steps  # the cached blocks are one epoch of the timed steps
    topk_step = statistics.median(per_round["workbench_topk"])
    amortised = (build_s + fingerprint_s) / (args.epochs * epoch_steps)
    marginal = build_s / (args.epochs * epoch_steps)  # the fingerprint amortised over a long run: ~0
    cache_row = {
        "k": cache.k,
        "blocks": len(blocks),
        "build_s": round(build_s, 3),
        "fingerprint_s": round(fingerprint_s, 3),
        "amortised_over_epochs": args.epochs,
        "build_s_per_step_amortised": round(amortised, 4),
        "build_s_per_step_amortised_without_fingerprint": round(marginal, 4),
        "step_plus_build_s": round(topk_step + amortised, 4),
        "step_plus_build_without_fingerprint_s": round(topk_step + marginal, 4),
        "disk_mib": round(cache.disk_bytes() / MIB, 2),
    }
    if "floor" in per_round:
        floor = statistics.median(per_round["floor"])
        cache_row["step_plus_build_vs_floor"] = round((topk_step + amortised) / floor, 3)
        cache_row["step_plus_build_without_fingerprint_vs_floor"] = round((topk_step + marginal) / floor, 3)
    rows["workbench_topk"]["cache"] = cache_row
    report = {
        "shape": args.shape,
        "description": shape["description"],
        "vocab": shape["vocab"],
        "teacher_params": count_parameters(teacher),
        "student_params": count_parameters(student),
        "batch": shape["batch"],
        "seq_len": shape["seq"],
        "tokens_per_step": tokens_per_step,
        "temperature": args.temperature,
        "alpha": args.alpha,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": dev.label,
        "precision": args.precision,
        "compile": args.compile,
        "timing_wall_s": round(timing_s, 1),
        **trl_info,
        "trl_timed": "GKDTrainer.compute_loss (TRL's code, beta 0, no generation: lmbda 0) with a stand-in self "
        "(teacher_model, beta, generalized_jsd_loss), inputs input_ids + attention_mask of ones + labels, then "
        "backward + clip + AdamW; not a Trainer step (no dataloader, accelerate, logging); its loss has no CE "
        "term and compute_loss leaves generalized_jsd_loss's temperature at 1.0"
        if trl_trainer
        else None,
        "variants": rows,
    }
    if not args.skip_memory:
        report["memory"] = {
            "method": memory_method(args),
            "variants": measure_memory(args, variants),
        }
    return report


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("toy", "smollm2"), default="toy")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the blocks the cache build is amortised over")
    parser.add_argument("--k", type=int, default=64, help="top-k teacher cache: tokens kept per position")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--teacher-layers", type=int, default=30, help="smollm2 shape: the teacher's layers")
    parser.add_argument("--batch", type=int, default=0, help="sequences per step (0: 8 at toy, 2 at smollm2)")
    parser.add_argument("--seq", type=int, default=0, help="tokens per sequence (0: 64 at toy, 256 at smollm2)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--vocab", type=int, default=0, help="smollm2 shape: the vocabulary (0: SmolLM2's 49152)")
    parser.add_argument(
        "--compile", action="store_true", help="the workbench variants with train.compile (the loss's chunks compiled)"
    )
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true", help="only the peak step memory (no timing)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.steps = max(1, args.steps)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.worker:  # WORKBENCH_HOME is the parent's: the cache is found there
        memory_worker(args)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as home:
        os.environ["WORKBENCH_HOME"] = home  # a fresh cache: the build is timed, and the workers find it
        report = memory_only(args) if args.memory_only else run(args)
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
