"""The README's multi-process command: two CPU processes under torchrun share one run folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from .test_cli import TINY


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_under_torchrun_write_one_run_and_one_summary(tmp_path):
    run_dir = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
         "-m", "workbench.cli", "run", "toy-quick", *TINY, "--run-dir", str(run_dir), "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summaries = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1, "only rank 0 speaks"
    summary = json.loads(summaries[0])
    assert summary["status"] == "completed" and summary["run_dir"] == str(run_dir)
    assert (run_dir / "student" / "config.json").is_file()
