#!/usr/bin/env bash
# GPU checks, run on a machine with an NVIDIA GPU from the repository root:
#   bash scripts/gpu_check.sh [STEPS]
# 1. the test suite's GPU-marked tests;
# 2. a longer smollm2 distillation in bf16 (the real GGUF when it has been fetched, else a
#    SmolLM2-135M-shaped teacher with random weights on the built-in language), printing
#    tokens/s and peak GPU memory;
# 3. the speed benchmark's overhead figure on the GPU.
# Uses whatever python3 holds a CUDA build of torch. Packages the project needs beyond it come
# from .whl/ when that folder is there (scripts/gpu_wheels.sh fills it on a machine with pip
# access), installed into /tmp/site; otherwise they must be installed already.
set -uo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
  "${PYTHON:-python3}" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
STEPS="${1:-200}"
OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"

echo "== device"
"$PY" -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== GPU-marked tests"
"$PY" -m pytest -q -m gpu tests/engine/test_gpu.py -p no:cacheprovider 2>&1 | tail -5

echo "== smollm2 distillation, bf16, $STEPS steps"
GGUF="$("$PY" -c 'from workbench.config import resolve_path; print(resolve_path("models:SmolLM2-135M-Instruct.Q4_1.gguf"))')"
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
"$PY" -m workbench.cli run "${PRESET[@]}" --set train.device=cuda --set train.precision=bf16 \
  --set train.max_steps="$STEPS" --set train.eval_interval=50 --set train.probe_interval=50 \
  --out "$OUT/runs" --json > "$OUT/run.json" 2> "$OUT/run.err"
status=$?
tail -3 "$OUT/run.err"
"$PY" - "$OUT/run.json" <<'PY'
import json, sys
from pathlib import Path
lines = Path(sys.argv[1]).read_text().strip().splitlines()
summary = json.loads(lines[-1]) if lines else {}
events = [json.loads(l) for l in (Path(summary.get("run_dir", "/nonexistent")) / "events.jsonl").read_text().splitlines()] if summary.get("run_dir") else []
steps = [e for e in events if e["kind"] == "step" and e["stage"] == "distill"]
rates = sorted(e["tokens_per_s"] for e in steps[len(steps) // 4:]) or [0]
print(json.dumps({
    "status": summary.get("status"),
    "device": summary.get("device"), "precision": summary.get("precision"),
    "distill_tokens_per_s_median": rates[len(rates) // 2],
    "peak_gpu_memory_gib": summary.get("peak_gpu_memory_bytes", 0) / 2**30,
    "kl_teacher_student_first": next((e["metrics"].get("kl_teacher_student") for e in events if e["kind"] == "eval" and e["stage"] == "distill"), None),
    "kl_teacher_student_last": summary.get("kl_teacher_student"),
    "student_ppl_before": summary.get("student_ppl_before"), "student_ppl": summary.get("student_ppl"),
    "teacher_ppl": summary.get("teacher_ppl"), "compression": summary.get("compression"),
}))
PY
echo "== speed benchmark, bf16 on the GPU (overhead = KD step / (teacher forward + student CE step))"
"$PY" scripts/bench_speed.py --device cuda --precision bf16 --batch 16 --seq 256 --json
echo "== fused loss vs chunked loss, Qwen-sized vocabulary 151936, B*L = 8192, bf16 (peak GPU memory)"
"$PY" scripts/bench_kd_memory.py --device cuda --dtype bf16 --vocab 151936 --batch 8 --seq 1024 --from-hidden --hidden 1024 --json
echo "== the same run with the top-k teacher cache (distill.teacher_cache = topk, k = 64) and with the fused loss"
for variant in "distill.teacher_cache=topk" "distill.fused_loss=true"; do
  "$PY" -m workbench.cli run "${PRESET[@]}" --set train.device=cuda --set train.precision=bf16 \
    --set train.max_steps="$STEPS" --set train.eval_interval=50 --set train.probe_interval=50 --set "$variant" \
    --out "$OUT/runs" --json > "$OUT/run-variant.json" 2> "$OUT/run-variant.err" || tail -3 "$OUT/run-variant.err"
  "$PY" - "$OUT/run-variant.json" "$variant" <<'PY'
import json, sys
from pathlib import Path
lines = Path(sys.argv[1]).read_text().strip().splitlines()
summary = json.loads(lines[-1]) if lines else {}
run_dir = Path(summary.get("run_dir", "/nonexistent"))
events = [json.loads(l) for l in (run_dir / "events.jsonl").read_text().splitlines()] if run_dir.is_dir() else []
steps = [e for e in events if e["kind"] == "step" and e["stage"] == "distill"]
rates = sorted(e["tokens_per_s"] for e in steps[len(steps) // 4:]) or [0]
print(json.dumps({"variant": sys.argv[2], "status": summary.get("status"),
                  "distill_tokens_per_s_median": rates[len(rates) // 2],
                  "peak_gpu_memory_gib": summary.get("peak_gpu_memory_bytes", 0) / 2**30,
                  "kl_teacher_student_last": summary.get("kl_teacher_student")}))
PY
done
echo "== done (run exit status $status)"
