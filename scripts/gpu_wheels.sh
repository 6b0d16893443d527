#!/usr/bin/env bash
# Wheels for a GPU machine that has Python 3.12, CUDA torch and transformers but not the
# rest of what the workbench imports (tomli-w always; gguf and datasets for those sources), and TRL
# for scripts/bench_peers.py's trl_gkd variant (the bench extra; pure Python).
# Run here, where pip can reach PyPI:
#   bash scripts/gpu_wheels.sh            # -> .whl/ (keep it out of git: .git/info/exclude)
# then on the GPU machine, from the repository root, with .whl/ copied along:
#   bash scripts/gpu_check.sh             # installs .whl/*.whl into /tmp/site first
# Versions are the ones this checkout's .venv holds, so both machines run the same code.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
version() { "$PY" -m pip show "$1" 2>/dev/null | awk '/^Version:/{print $2}'; }
mkdir -p .whl
specs=()
for name in tomli-w gguf datasets dill multiprocess trl; do
  v="$(version "$name")"
  specs+=("$name${v:+==$v}")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "${specs[@]}"
ls -1 .whl
