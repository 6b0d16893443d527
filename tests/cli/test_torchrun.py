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
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(_free_port()),
            "-m",
            "workbench.cli",
            "run",
            "toy-quick",
            *TINY,
            "--run-dir",
            str(run_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summaries = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1, "only rank 0 speaks"
    summary = json.loads(summaries[0])
    assert summary["status"] == "completed" and summary["run_dir"] == str(run_dir)
    assert (run_dir / "student" / "config.json").is_file()


_FAIL_ON_RANK_1 = """
import os, sys
if os.environ.get("RANK") == "1":  # one process meets an error the others do not (a full disk, say)
    from workbench.engine.train import run as train_run

    def broken(*args, **kwargs):
        raise OSError("no space left on device")

    train_run.load_blocks = broken  # where the training loop looks it up
from workbench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_failure_in_one_process_ends_the_whole_run_with_its_message(tmp_path):
    script = tmp_path / "fail_on_rank_1.py"
    script.write_text(_FAIL_ON_RANK_1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(_free_port()),
            str(script),
            "run",
            "toy-quick",
            *TINY,
            "--run-dir",
            str(tmp_path / "ddp"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,  # a hang (a process waiting for the failed one) runs into this
    )
    assert done.returncode != 0
    assert "no space left on device" in done.stderr
