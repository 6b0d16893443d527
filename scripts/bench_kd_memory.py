"""Peak memory of the KD loss (forward + backward): chunked engine loss vs a naive full-logits one.

    python scripts/bench_kd_memory.py [--vocab 49152 --batch 4 --seq 512 --dtype bf16] [--json]
    python scripts/bench_kd_memory.py --from-hidden --vocab 151936 --batch 4 --seq 512 --hidden 64 --json

Both implementations start from the same student and teacher logits ``[batch, seq, vocab]``
(already in memory, not counted; the student's come from a small output head, as in
a model) and end once the gradient has flowed through that head. "Peak extra" is the highest memory in use while the loss runs,
minus what was in use just before it.

How it is measured:

- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, in
  this process; exactly the caching allocator's bytes.
- CPU: torch's CPU allocator is plain malloc, which neither ``tracemalloc`` nor the
  profiler's memory events see reliably. So each implementation runs in a fresh
  subprocess that resets the kernel's peak-RSS counter (``/proc/self/clear_refs``
  with ``5``) after building its inputs and reads ``VmHWM`` afterwards. glibc is
  told to serve every allocation above 1 MiB with ``mmap`` (``MALLOC_MMAP_THRESHOLD_``),
  so freed tensors leave RSS at once and the peak is that of live tensors. Pages are
  touched by writing the inputs, so RSS counts them before the baseline.

``--from-hidden`` compares instead the fused loss (engine/fused_loss.py) with the chunked
loss on ``hidden @ W.T``: both start from the final hidden states ``[batch, seq, --hidden]``
of student and teacher and the two output weights ``[vocab, --hidden]``, so the unfused side's
counted peak includes the logits of both models, which the fused loss never forms.

The naive implementation is the usual one: ``F.log_softmax`` over the whole shifted
fp32 logits of both models, ``F.kl_div`` and ``F.cross_entropy``, then ``backward``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without an install
    sys.path.insert(0, str(ROOT))

from workbench.engine.fused_loss import fused_distill_loss  # noqa: E402 - after the path set-up above
from workbench.engine.losses import distill_loss  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
MIB = 1024 * 1024


def naive_kd_loss(student_logits, teacher_logits, labels, *, temperature=2.0, alpha=0.5):
    """Forward-KL KD loss the straightforward way: whole-batch fp32 log-softmax of both models."""
    vocab = student_logits.shape[-1]
    student = student_logits[:, :-1].reshape(-1, vocab).float()
    teacher = teacher_logits[:, :-1].reshape(-1, vocab).float()
    targets = labels[:, 1:].reshape(-1)
    valid = targets != -100
    n = valid.sum().clamp(min=1)
    student_logp = F.log_softmax(student / temperature, dim=-1)
    teacher_logp = F.log_softmax(teacher / temperature, dim=-1)
    kd = (F.kl_div(student_logp, teacher_logp, reduction="none", log_target=True).sum(-1) * valid).sum() / n
    ce = F.cross_entropy(student, targets, ignore_index=-100, reduction="sum") / n
    return alpha * temperature**2 * kd + (1 - alpha) * ce


HIDDEN = 32  # width of the stand-in output head below


def _inputs(vocab, batch, seq, dtype, device, seed=0):
    """Student logits from a small output head (so, as in a model, the logits' gradient
    flows on and is consumed rather than kept on a leaf), teacher logits, labels."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    hidden = torch.randn(batch, seq, HIDDEN, generator=g).to(device=device, dtype=dtype).requires_grad_(True)
    head = (
        (torch.randn(HIDDEN, vocab, generator=g) * (2 / HIDDEN**0.5))
        .to(device=device, dtype=dtype)
        .requires_grad_(True)
    )
    student = hidden @ head
    teacher = (torch.randn(batch, seq, vocab, generator=g) * 2).to(device=device, dtype=dtype)
    labels = torch.randint(0, vocab, (batch, seq), generator=g).to(device)
    labels[:, -seq // 8 :] = -100  # some padding, as in real batches
    return student, teacher, labels


def _hidden_inputs(vocab, batch, seq, hidden, dtype, device, seed=0):
    """Final hidden states and output weights of student (with grad) and teacher, labels."""
    g = torch.Generator(device="cpu").manual_seed(seed)

    def make(*shape, scale=1.0, grad=False):
        return (torch.randn(*shape, generator=g) * scale).to(device=device, dtype=dtype).requires_grad_(grad)

    student = (make(batch, seq, hidden, grad=True), make(vocab, hidden, scale=2 / hidden**0.5, grad=True))
    teacher = (make(batch, seq, hidden), make(vocab, hidden, scale=2 / hidden**0.5))
    labels = torch.randint(0, vocab, (batch, seq), generator=g).to(device)
    labels[:, -seq // 8 :] = -100
    return student, teacher, labels


def _run_once(impl, student, teacher, labels, chunk_positions):
    if impl == "fused":
        (h, w), (th, tw) = student, teacher
        kw = dict(temperature=2.0, alpha=0.5, chunk_positions=chunk_positions)
        loss = fused_distill_loss(h, w, th, tw, labels, **kw).loss
    elif impl == "unfused":
        (h, w), (th, tw) = student, teacher
        with torch.no_grad():
            teacher_logits = th @ tw.t()
        loss = distill_loss(
            h @ w.t(), teacher_logits, labels, temperature=2.0, alpha=0.5, chunk_positions=chunk_positions
        ).loss
    elif impl == "chunked":
        loss = distill_loss(student, teacher, labels, temperature=2.0, alpha=0.5, chunk_positions=chunk_positions).loss
    else:
        loss = naive_kd_loss(student, teacher, labels, temperature=2.0, alpha=0.5)
    loss.backward()
    return float(loss.detach())


def _status_kib(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def _make_inputs(impl, vocab, batch, seq, dtype, device, hidden):
    if impl in ("fused", "unfused"):
        return _hidden_inputs(vocab, batch, seq, hidden, dtype, device)
    return _inputs(vocab, batch, seq, dtype, device)


def _cpu_worker(impl, vocab, batch, seq, dtype_name, chunk_positions, hidden=64):
    """Runs in a fresh process: one loss, forward + backward; prints JSON."""
    torch.manual_seed(0)
    student, teacher, labels = _make_inputs(impl, vocab, batch, seq, DTYPES[dtype_name], "cpu", hidden)
    with open("/proc/self/clear_refs", "w") as clear:  # reset VmHWM to the current RSS
        clear.write("5")
    before = _status_kib("VmRSS")
    loss = _run_once(impl, student, teacher, labels, chunk_positions)
    peak = _status_kib("VmHWM")
    print(json.dumps({"peak_extra_bytes": (peak - before) * 1024, "loss": loss}))


def _cpu_measure(impl, vocab, batch, seq, dtype_name, chunk_positions, hidden=64):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MIB), MALLOC_TRIM_THRESHOLD_=str(MIB))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        impl,
        "--vocab",
        str(vocab),
        "--batch",
        str(batch),
        "--seq",
        str(seq),
        "--dtype",
        dtype_name,
        "--chunk-positions",
        str(chunk_positions),
        "--hidden",
        str(hidden),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory worker for {impl} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cuda_measure(impl, vocab, batch, seq, dtype, chunk_positions, hidden=64):
    student, teacher, labels = _make_inputs(impl, vocab, batch, seq, dtype, "cuda", hidden)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    loss = _run_once(impl, student, teacher, labels, chunk_positions)
    torch.cuda.synchronize()
    result = {"peak_extra_bytes": torch.cuda.max_memory_allocated() - before, "loss": loss}
    del student, teacher, labels
    torch.cuda.empty_cache()
    return result


def kd_loss_peak_memory(
    vocab: int = 49152,
    batch: int = 4,
    seq: int = 512,
    dtype: torch.dtype = torch.bfloat16,
    *,
    chunk_positions: int = 1024,
    device: str | None = None,
    from_hidden: bool = False,
    hidden: int = 64,
) -> dict:
    """Peak extra memory (MiB) of the chunked KD loss and of a naive one, forward + backward.

    ``device`` None picks CUDA when available, else CPU (Linux only: it reads /proc).
    The returned dict is plain JSON: sizes, both peaks, their ratio, and the two
    losses' difference (they compute the same objective). No timings: the CPU
    measurement slows allocation on purpose; ``scripts/bench_speed.py`` times steps.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype_name = next(name for name, value in DTYPES.items() if value == dtype)
    results = {}
    impls = ("fused", "unfused") if from_hidden else ("chunked", "naive")
    for impl in impls:
        if device == "cuda":
            results[impl] = _cuda_measure(impl, vocab, batch, seq, dtype, chunk_positions, hidden)
        else:
            results[impl] = _cpu_measure(impl, vocab, batch, seq, dtype_name, chunk_positions, hidden)
    element = torch.empty((), dtype=dtype).element_size()
    if from_hidden:
        fused, unfused = results["fused"]["peak_extra_bytes"], results["unfused"]["peak_extra_bytes"]
        return {
            "device": device,
            "method": "torch.cuda.max_memory_allocated"
            if device == "cuda"
            else "VmHWM of a fresh subprocess (peak RSS)",
            "vocab": vocab,
            "batch": batch,
            "seq": seq,
            "hidden": hidden,
            "dtype": dtype_name,
            "chunk_positions": chunk_positions,
            "logits_mib": round(batch * seq * vocab * element / MIB, 1),
            "output_weight_fp32_mib": round(vocab * hidden * 4 / MIB, 1),
            "fused_peak_extra_mib": round(fused / MIB, 1),
            "unfused_peak_extra_mib": round(unfused / MIB, 1),
            "unfused_over_fused": round(unfused / max(fused, 1), 2),
            "loss_abs_diff": abs(results["fused"]["loss"] - results["unfused"]["loss"]),
        }
    chunked, naive = results["chunked"]["peak_extra_bytes"], results["naive"]["peak_extra_bytes"]
    return {
        "device": device,
        "method": "torch.cuda.max_memory_allocated" if device == "cuda" else "VmHWM of a fresh subprocess (peak RSS)",
        "vocab": vocab,
        "batch": batch,
        "seq": seq,
        "dtype": dtype_name,
        "chunk_positions": chunk_positions,
        "logits_mib": round(batch * seq * vocab * element / MIB, 1),
        "chunked_peak_extra_mib": round(chunked / MIB, 1),
        "naive_peak_extra_mib": round(naive / MIB, 1),
        "naive_over_chunked": round(naive / max(chunked, 1), 2),
        "loss_abs_diff": abs(results["chunked"]["loss"] - results["naive"]["loss"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--chunk-positions", type=int, default=1024)
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.add_argument("--from-hidden", action="store_true", help="fused loss vs chunked loss on hidden @ W.T")
    parser.add_argument("--hidden", type=int, default=64, help="--from-hidden: width of the hidden states")
    parser.add_argument("--worker", choices=("chunked", "naive", "fused", "unfused"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _cpu_worker(args.worker, args.vocab, args.batch, args.seq, args.dtype, args.chunk_positions, args.hidden)
        return 0
    result = kd_loss_peak_memory(
        args.vocab,
        args.batch,
        args.seq,
        DTYPES[args.dtype],
        chunk_positions=args.chunk_positions,
        device=args.device,
        from_hidden=args.from_hidden,
        hidden=args.hidden,
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
