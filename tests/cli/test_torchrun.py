"""The README's multi-process command: two CPU processes under torchrun share one run folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

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


_COUNT_FUSED = """
import os, sys
from workbench.engine.train import objective
real = objective.fused_distill_loss

def counted(*args, **kwargs):  # which processes took the fused path, and how often
    with open(os.path.join(os.environ["FUSED_CALLS_DIR"], "rank-" + os.environ.get("RANK", "0")), "a") as out:
        out.write("call\\n")
    return real(*args, **kwargs)

objective.fused_distill_loss = counted
from workbench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _fused_run(tmp_path, name: str, processes: int) -> tuple[list, list[str]]:
    from workbench.events import read_events

    script = tmp_path / "count_fused.py"
    script.write_text(_COUNT_FUSED)
    calls = tmp_path / f"{name}-calls"
    calls.mkdir()
    run_dir = tmp_path / name
    # The same global batch: 8 sequences per micro-batch, one process or two of 4 each.
    batch = ["--set", f"train.batch_size={8 // processes}", "--set", "distill.fused_loss=true"]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
    launch += ["--master_port", str(_free_port())]
    done = subprocess.run(
        [*launch, str(script), "run", "toy-quick", *TINY, *batch, "--set", "train.log_interval=1"]
        + ["--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "FUSED_CALLS_DIR": str(calls)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return read_events(str(run_dir / "events.jsonl")), sorted(p.name for p in calls.iterdir())


def test_the_fused_loss_under_two_processes_trains_like_one_process_on_the_same_global_batch(tmp_path):
    one, one_calls = _fused_run(tmp_path, "one", 1)
    two, two_calls = _fused_run(tmp_path, "two", 2)
    assert one_calls == ["rank-0"] and two_calls == ["rank-0", "rank-1"], "every process took the fused path"

    def last(events, kind, stage="distill"):
        return [e for e in events if e.kind == kind and getattr(e, "stage", None) == stage][-1]

    step_one, step_two = last(one, "step"), last(two, "step")
    assert step_two.step == step_one.step == 6
    # The logged loss is the whole step's (each process's share added up), and the gradients were
    # all-reduced (the output weight's too), so the trained students agree.
    assert step_two.loss == pytest.approx(step_one.loss, rel=1e-4)
    assert step_two.kd == pytest.approx(step_one.kd, rel=1e-4)
    eval_one, eval_two = last(one, "eval").metrics, last(two, "eval").metrics
    for key in ("student_ce", "kl_teacher_student"):
        assert eval_two[key] == pytest.approx(eval_one[key], rel=1e-4), key


def _any_of_on_rank(rank: int, init_file: str, results: str) -> None:
    import torch
    import torch.distributed as dist

    from workbench.engine.train.parallel import Parallel

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        parallel = Parallel(rank=rank, world_size=2)
        # rank 1 alone was told to stop, rank 0 alone to cancel: both processes see both
        answer = parallel.any_of([rank == 1, rank == 0], torch.device("cpu"))
        neither = parallel.any_of([False, False], torch.device("cpu"))
        with open(f"{results}.{rank}", "w") as out:
            json.dump([answer, neither], out)
    finally:
        dist.destroy_process_group()


def test_a_stop_told_to_one_process_reaches_every_process(tmp_path):
    """Under torchrun a signal reaches the processes at different steps; all of them must stop at one."""
    import torch.multiprocessing as mp

    results = str(tmp_path / "answer")
    mp.spawn(_any_of_on_rank, args=(str(tmp_path / "init"), results), nprocs=2, join=True)
    for rank in (0, 1):
        with open(f"{results}.{rank}") as f:
            assert json.load(f) == [[True, True], [False, False]]
