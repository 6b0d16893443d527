"""The cost of distillation: how much a KD step costs beyond its two unavoidable parts.

Times, in one process, (a) the teacher's forward pass alone, (b) a plain
cross-entropy training step of the student alone (forward, backward, AdamW) and
(c) a full KD step (teacher forward + student step on the KD loss), and prints
``overhead = c / (a + b)`` (target: at most 1.10). Two shapes: the ``toy``
preset, and a SmolLM2-135M-shaped teacher (vocabulary 49152, 30 layers, random
weights) with a student derived from it (10 layers). Also prints the peak
memory of the KD loss alone (forward + backward) against a naive full-logits
implementation at vocabulary 49152 (from scripts/bench_kd_memory.py).

    python scripts/bench_speed.py --json
    python scripts/bench_speed.py --device cuda --precision bf16 --batch 16 --json   # on a GPU
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workbench.config.checks import evenly_spaced
from workbench.config.presets import load_config
from workbench.config.schema import ArchConfig
from workbench.engine.losses import distill_loss, loss_chunk_positions
from workbench.engine.models.build import build_model, derive_student
from workbench.engine.models.sizes import count_parameters

SMOLLM2_135M = ArchConfig(
    family="llama",
    layers=30,
    hidden=576,
    heads=9,
    kv_heads=3,
    intermediate=1536,
    max_positions=2048,
    tie_embeddings=True,
)


def _timed(fn, repeats: int, device: torch.device, warmup: int = 2) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls, after ``warmup`` calls (GPU work included)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(
    teacher,
    student,
    vocab: int,
    batch: int,
    seq: int,
    repeats: int,
    temperature: float = 2.0,
    alpha: float = 0.7,
    device: str = "cpu",
    precision: str = "fp32",
) -> dict[str, float]:
    dev = torch.device(device)
    ids = torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(0)).to(dev)
    teacher.to(dev).eval().requires_grad_(False)
    student.to(dev).train()
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)

    def autocast():  # as the training loop runs bf16: fp32 weights, bf16 matmuls
        if precision == "bf16":
            return torch.autocast(dev.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def teacher_forward():
        with torch.no_grad(), autocast():
            return teacher(input_ids=ids, use_cache=False).logits

    def ce_step():
        with autocast():
            logits = student(input_ids=ids, use_cache=False).logits
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    chunk = loss_chunk_positions(vocab, 1024, dev)  # as the training loop does

    def kd_step():
        teacher_logits = teacher_forward()
        with autocast():
            logits = student(input_ids=ids, use_cache=False).logits
        parts = distill_loss(logits, teacher_logits, ids, temperature=temperature, alpha=alpha, chunk_positions=chunk)
        parts.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    # Interleave the three so that drifts in machine load hit all of them alike.
    a, b, c = [], [], []
    for _ in range(3):
        a.append(_timed(teacher_forward, repeats, dev))
        b.append(_timed(ce_step, repeats, dev))
        c.append(_timed(kd_step, repeats, dev))
    a_s, b_s, c_s = min(a), min(b), min(c)
    return {
        "teacher_forward_ms": a_s * 1000,
        "student_ce_step_ms": b_s * 1000,
        "kd_step_ms": c_s * 1000,
        "overhead": c_s / (a_s + b_s),
        "tokens_per_step": batch * seq,
        "loss_chunk_positions": chunk,
    }


def toy_case(repeats: int, device: str, precision: str) -> dict:
    from workbench.engine.toy.language import get_language

    cfg = load_config("toy")
    vocab = len(get_language().tokenizer())
    teacher = build_model(cfg.teacher.arch, vocab, seed=0)
    student = build_model(cfg.student.arch, vocab, seed=1)
    result = measure(
        teacher, student, vocab, cfg.train.batch_size, cfg.train.seq_len, repeats, device=device, precision=precision
    )
    return {
        "shape": "toy preset",
        "vocab": vocab,
        "teacher_params": count_parameters(teacher),
        "student_params": count_parameters(student),
        "batch": cfg.train.batch_size,
        "seq_len": cfg.train.seq_len,
        **result,
    }


def smollm2_case(repeats: int, batch: int, seq: int, device: str, precision: str) -> dict:
    vocab = 49152
    teacher = build_model(SMOLLM2_135M, vocab, seed=0)
    student = derive_student(teacher, evenly_spaced(30, 10))
    result = measure(teacher, student, vocab, batch, seq, repeats, device=device, precision=precision)
    return {
        "shape": "SmolLM2-135M (random weights) -> derived 10 of 30 layers",
        "vocab": vocab,
        "teacher_params": count_parameters(teacher),
        "student_params": count_parameters(student),
        "batch": batch,
        "seq_len": seq,
        **result,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2, help="SmolLM2 case: sequences per step")
    parser.add_argument("--seq", type=int, default=256, help="SmolLM2 case: tokens per sequence")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument(
        "--precision", default="fp32", choices=("fp32", "bf16"), help="bf16: autocast, as train.precision=bf16"
    )
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    report = {
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
        "precision": args.precision,
        "threads": torch.get_num_threads(),
        "target_overhead_max": 1.10,
        "cases": [
            toy_case(args.repeats * 4, args.device, args.precision),
            smollm2_case(args.repeats, args.batch, args.seq, args.device, args.precision),
        ],
    }
    if not args.skip_memory:
        from bench_kd_memory import kd_loss_peak_memory

        dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
        report["kd_loss_memory"] = kd_loss_peak_memory(
            vocab=49152,
            batch=args.batch,
            seq=args.seq,
            dtype=dtype,
            chunk_positions=loss_chunk_positions(49152, 1024, args.device),
            device=args.device,
        )
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
