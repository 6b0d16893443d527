#!/usr/bin/env bash
# GPU checks, run on a machine with an NVIDIA GPU from the repository root:
#   bash scripts/gpu_check.sh [STEPS]
# In order of what matters most, each section under its own time limit (a slow one cannot eat the rest):
# 1. the fused loss against the chunked one at a Qwen-sized vocabulary (151936), B*L = 8192, bf16:
#    peak GPU memory and seconds (scripts/bench_kd_memory.py);
# 2. the peers benchmark at that GPU shape (scripts/bench_peers.py --device cuda --precision bf16: the
#    workbench with and without the top-k cache, fused, TRL's GKD loss when TRL is there, the classic
#    recipe, the floor): s/step, tokens/s, ratios, peak GPU memory per variant;
# 3. the test suite's GPU-marked tests, then the peers again with train.compile (timing only);
# 4. a longer smollm2 distillation in bf16 (the real GGUF when it has been fetched, else a
#    SmolLM2-135M-shaped teacher trained here on the built-in language), then the same run with the
#    top-k teacher cache and with the fused loss, printing tokens/s and peak GPU memory;
# 5. the speed benchmark's overhead figure on the GPU.
# Uses whatever python3 holds a CUDA build of torch. Packages the project needs beyond it come
# from .whl/ when that folder is there (scripts/gpu_wheels.sh fills it on a machine with pip
# access), installed into /tmp/site; otherwise they must be installed already.
# JSON results go to $OUT (default /tmp/gpu-check); the runs' folders to /tmp/gpu-check-runs.
set -uo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
  "${PYTHON:-python3}" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
STEPS="${1:-200}"
OUT="${OUT:-/tmp/gpu-check}"
RUNS=/tmp/gpu-check-runs
mkdir -p "$OUT" "$RUNS"
PY="${PYTHON:-python3}"
# The whole script ends within GPU_CHECK_BUDGET seconds (default 520), so that a lease's limit never
# cuts it off before it has printed what it measured.
DEADLINE=$((SECONDS + ${GPU_CHECK_BUDGET:-520}))
# limit SECONDS CMD...: run CMD for at most SECONDS (and never past the deadline), and say so when its
# time ran out; the script goes on with the next section.
limit() {
  local seconds="$1"; shift
  local left=$((DEADLINE - SECONDS))
  if [ "$left" -lt 15 ]; then echo "(skipped: the script's time budget is spent)"; return 124; fi
  [ "$left" -lt "$seconds" ] && seconds="$left"
  timeout --kill-after=10 "$seconds" "$@"
  local rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "(stopped at its ${seconds} s limit)"; fi
  return "$rc"
}

# peers_summary FILE: what a bench_peers.py --json result says, one line per variant.
peers_summary() {
  "$PY" - "$1" <<'PY'
import json, sys
from pathlib import Path
text = Path(sys.argv[1]).read_text().strip()
if not text:
    sys.exit("(no peers result)")
r = json.loads(text.splitlines()[-1])
print(r["description"], "|", r["device"], r["precision"], "| tokens/step", r["tokens_per_step"], "|", r.get("trl_version") or r.get("trl_skipped"))
memory = r.get("memory", {}).get("variants", {})
for name, row in r["variants"].items():
    ratios = "  ".join(f"{k} {row[k]['median']}" for k in ("vs_floor", "vs_student_ce", "vs_trl") if k in row)
    mem = memory.get(name, {})
    print(f"{name:16s} {row['s_per_step']['median']:.4f} s/step  {row['tokens_per_s']:>10.0f} tok/s  {ratios}  peak step +{mem.get('peak_step_extra_mib', mem.get('error'))} MiB")
PY
}

echo "== device"
"$PY" -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== fused loss vs chunked loss, Qwen-sized vocabulary 151936, B*L = 8192, bf16 (peak GPU memory)"
limit 120 "$PY" scripts/bench_kd_memory.py --device cuda --dtype bf16 --vocab 151936 --batch 8 --seq 1024 \
  --from-hidden --hidden 1024 --json | tee "$OUT/kd-memory-gpu.json"

echo "== peers at a GPU shape: SmolLM2-135M-shaped teacher (30 layers), vocabulary 151936, batch 8 x 1024, bf16"
limit 240 "$PY" scripts/bench_peers.py --device cuda --precision bf16 --shape smollm2 --vocab 151936 \
  --batch 8 --seq 1024 --steps 3 --rounds 4 --json > "$OUT/peers-gpu.json"
peers_summary "$OUT/peers-gpu.json"

echo "== GPU-marked tests"
limit 150 "$PY" -m pytest -q -m gpu tests/engine/test_gpu.py -p no:cacheprovider 2>&1 | tail -5

echo "== the same peers with train.compile (the workbench variants' loss chunks through torch.compile)"
limit 180 "$PY" scripts/bench_peers.py --device cuda --precision bf16 --shape smollm2 --vocab 151936 \
  --batch 8 --seq 1024 --steps 3 --rounds 3 --skip-memory --compile --json > "$OUT/peers-gpu-compile.json"
peers_summary "$OUT/peers-gpu-compile.json"

echo "== smollm2 distillation, bf16, $STEPS steps"
GGUF="$("$PY" -c 'from workbench.paths import resolve_path; print(resolve_path("models:SmolLM2-135M-Instruct.Q4_1.gguf"))')"
if [ -f "$GGUF" ]; then
  PRESET=(smollm2 --set train.batch_size=16 --set train.seq_len=256)
else
  echo "(no SmolLM2 GGUF at $GGUF: a SmolLM2-135M-shaped teacher trained here on the built-in language instead)"
  PRESET=(toy --set teacher.arch.layers=30 --set teacher.arch.hidden=576 --set teacher.arch.heads=9
          --set teacher.arch.kv_heads=3 --set teacher.arch.intermediate=1536 --set teacher.arch.max_positions=512
          --set student.source=derived --set student.keep_layers=10 --set train.teacher_steps=200
          --set train.batch_size=32 --set train.seq_len=256 --set train.lr=5e-4 --set train.teacher_lr=1e-3
          --set data.toy_sentences=200000)
fi
status=0
for variant in "" "distill.teacher_cache=topk" "distill.fused_loss=true"; do
  extra=()
  [ -n "$variant" ] && extra=(--set "$variant")
  name="${variant:-baseline}"
  limit 180 "$PY" -m workbench.cli run "${PRESET[@]}" --set train.device=cuda --set train.precision=bf16 \
    --set train.max_steps="$STEPS" --set train.eval_interval=50 --set train.probe_interval=50 "${extra[@]}" \
    --out "$RUNS" --json > "$RUNS/run.json" 2> "$RUNS/run.err" || { status=$?; tail -3 "$RUNS/run.err"; }
  "$PY" - "$RUNS/run.json" "$name" <<'PY' | tee -a "$OUT/runs-gpu.jsonl"
import json, sys
from pathlib import Path
lines = Path(sys.argv[1]).read_text().strip().splitlines()
summary = json.loads(lines[-1]) if lines else {}
run_dir = Path(summary.get("run_dir", "/nonexistent"))
events = [json.loads(l) for l in (run_dir / "events.jsonl").read_text().splitlines()] if run_dir.is_dir() else []
steps = [e for e in events if e["kind"] == "step" and e["stage"] == "distill"]
rates = sorted(e["tokens_per_s"] for e in steps[len(steps) // 4:]) or [0]
print(json.dumps({
    "variant": sys.argv[2], "status": summary.get("status"),
    "device": summary.get("device"), "precision": summary.get("precision"),
    "distill_tokens_per_s_median": rates[len(rates) // 2],
    "peak_gpu_memory_gib": summary.get("peak_gpu_memory_bytes", 0) / 2**30,
    "kl_teacher_student_before": summary.get("kl_teacher_student_before"),
    "kl_teacher_student_last": summary.get("kl_teacher_student"),
    "student_ppl_before": summary.get("student_ppl_before"), "student_ppl": summary.get("student_ppl"),
    "teacher_ppl": summary.get("teacher_ppl"), "compression": summary.get("compression"),
    "wall_time_s": summary.get("wall_time_s"),
}))
PY
done

echo "== speed benchmark, bf16 on the GPU (overhead = KD step / (teacher forward + student CE step))"
limit 120 "$PY" scripts/bench_speed.py --device cuda --precision bf16 --batch 16 --seq 256 --json | tee "$OUT/speed-gpu.json"
echo "== done (run exit status $status)"
