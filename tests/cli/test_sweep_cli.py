"""`workbench sweep` and the sweep runner on the tiny toy config: one teacher, the table, resuming."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from tests.cli.test_cli import TINY
from workbench.cli import main
from workbench.config.presets import load_config
from workbench.control import Control
from workbench.engine.sweep_runner import run_sweep
from workbench.events import read_events
from workbench.run_folder import list_runs, read_run
from workbench.sweep import Sweep
from workbench.sweep_folder import list_sweeps, read_sweep

GRID = ["--grid", "distill.temperature=1,4", "--grid", "distill.alpha=0.5,0.9"]


def _sweep(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _teacher_stages(cell_dir: Path) -> int:
    return sum(1 for e in read_events(str(cell_dir / "events.jsonl")) if e.kind == "stage" and e.stage == "teacher")


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps")
    code, stdout, stderr = _sweep(["sweep", "toy-quick", *TINY, *GRID, "--out", str(out), "--json"])
    return out, code, stdout, stderr


def test_a_2x2_sweep_trains_the_teacher_once_and_prints_its_table_as_json(swept):
    out, code, stdout, stderr = swept
    assert code == 0, stderr
    table = json.loads(stdout.strip().splitlines()[-1])
    assert table["status"] == "completed" and len(table["cells"]) == 4
    assert table["axes"] == [
        {"field": "distill.temperature", "values": [1.0, 4.0]},
        {"field": "distill.alpha", "values": [0.5, 0.9]},
    ]
    sweep_dir = Path(table["sweep_dir"])
    cells = [Path(row["run_dir"]) for row in table["cells"]]
    assert [c.parent for c in cells] == [sweep_dir] * 4
    assert [_teacher_stages(c) for c in cells] == [1, 0, 0, 0]
    assert [(c / "teacher").is_dir() for c in cells] == [True, False, False, False]
    for cell in cells[1:]:
        config = read_run(cell).config
        assert config.teacher.source == "local" and Path(config.teacher.path) == (cells[0] / "teacher").resolve()
    for row, cell in zip(table["cells"], cells):
        summary = json.loads((cell / "summary.json").read_text())
        for key in ("kl_true_student", "kl_teacher_student", "student_ce", "top1_agreement", "student_latency_ms"):
            assert row[key] == summary[key]
        assert row["status"] == "completed"
    assert [(r["distill.temperature"], r["distill.alpha"]) for r in table["cells"]] == [
        (1.0, 0.5),
        (1.0, 0.9),
        (4.0, 0.5),
        (4.0, 0.9),
    ]
    # the same teacher for all: its held-out CE is the same in every cell
    assert len({json.loads((c / "summary.json").read_text())["teacher_ce"] for c in cells}) == 1
    assert stderr.count("== cell ") == 8  # a line as each cell starts and ends


def test_a_sweep_is_listed_as_a_sweep_and_its_cells_by_the_runs_list_of_its_folder(swept):
    out = swept[0]
    assert list_runs(out) == []
    (info,) = list_sweeps(out)
    assert info.status == "completed" and [c.status for c in info.cells] == ["completed"] * 4
    assert len(list_runs(info.path)) == 4
    code, stdout, _ = _sweep(["runs", str(out)])
    assert code == 0 and info.path.name in stdout


def test_the_text_table_has_a_row_per_cell(swept):
    out = swept[0]
    code, stdout, _ = _sweep(["sweep", "--resume", str(list_sweeps(out)[0].path)])
    assert code == 0
    lines = stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["cell", "temperature", "alpha", "status"]
    assert len(lines) == 5 and all("completed" in line for line in lines[1:])


def _tiny_base(out: Path):
    config = load_config("toy-quick", validate=False)
    config.apply_overrides(TINY[1::2] + ["train.checkpoint_interval=2"])
    config.runs_dir = str(out)
    return config


def test_a_stopped_sweep_resumes_the_interrupted_cell_and_skips_finished_ones(tmp_path):
    sweep = Sweep.from_grid(_tiny_base(tmp_path), ["distill.temperature=1,4", "distill.alpha=0.5,0.9"])
    path = sweep.create_dir()
    control = Control()
    cell_of: list[int] = []
    seen: list = []

    def stop_in_second_cell(event):
        seen.append(event)
        if event.kind == "cell_started":
            cell_of.append(event.index)
        if event.kind == "step" and cell_of[-1] == 1 and event.step >= 3:
            control.request_stop()

    first = run_sweep(path, stop_in_second_cell, control)
    assert first.status == "stopped"
    info = read_sweep(path)
    assert [c.status for c in info.cells] == ["completed", "stopped", "pending", "pending"]
    assert not any(Path(c.run_dir).exists() for c in info.cells[2:])
    done = info.cells[0].run_dir / "events.jsonl"
    before = done.stat().st_size

    again: list = []
    second = run_sweep(path, again.append)
    assert second.status == "completed"
    assert [c.status for c in read_sweep(path).cells] == ["completed"] * 4
    finished = [e for e in again if e.kind == "cell_finished"]
    assert [e.status for e in finished] == ["skipped", "completed", "completed", "completed"]
    started = [e for e in again if e.kind == "cell_started"]
    assert [(e.index, e.resumed) for e in started] == [(1, True), (2, False), (3, False)]
    assert any(e.kind == "log" and "resumed the distill stage at step" in e.message for e in again)
    assert not any(e.kind == "stage" and e.stage == "teacher" for e in again)
    assert done.stat().st_size == before  # the finished cell was not run again
    assert sum(_teacher_stages(c.run_dir) for c in read_sweep(path).cells) == 1


def test_a_killed_cell_without_a_checkpoint_starts_again_and_the_cli_resumes_it(swept, tmp_path):
    import shutil

    path = tmp_path / "sweep"
    shutil.copytree(list_sweeps(swept[0])[0].path, path)  # the later cells still load the first one's teacher
    last = read_sweep(path).cells[-1].run_dir
    # what a kill during the last cell leaves: no summary, a status that says running (its process gone)
    (last / "summary.json").unlink()
    (last / "status.json").write_text(json.dumps({"status": "running", "pid": 2**22 + 12345}))
    shutil.rmtree(last / "checkpoints", ignore_errors=True)
    sizes = [(c.run_dir / "events.jsonl").stat().st_size for c in read_sweep(path).cells[:-1]]
    assert [c.status for c in read_sweep(path).cells] == ["completed"] * 3 + ["interrupted"]
    code, stdout, stderr = _sweep(["sweep", "--resume", str(path), "--json"])
    assert code == 0, stderr
    table = json.loads(stdout.strip().splitlines()[-1])
    assert [r["status"] for r in table["cells"]] == ["completed"] * 4
    assert "== cell 4/4 04-temperature-4-alpha-0.9: distill.temperature=4" in stderr  # started again, not resumed
    assert json.loads((last / "summary.json").read_text())["steps"] == 6
    assert [(c.run_dir / "events.jsonl").stat().st_size for c in read_sweep(path).cells[:-1]] == sizes
    assert _teacher_stages(last) == 0


def test_sweep_user_errors_are_one_error_and_one_hint_line(tmp_path, capsys):
    for argv, words in (
        (["sweep", "toy-quick", "--grid", "teacher.arch.layers=2,4", "--out", str(tmp_path)], "shares one teacher"),
        (["sweep", "toy-quick", "--grid", "distill.temperature=0,2", "--out", str(tmp_path)], "greater than 0"),
        (["sweep", "toy-quick", "--out", str(tmp_path)], "at least one --grid"),
        (["sweep", "--resume", str(tmp_path)], "not a sweep folder"),
        (["sweep", "toy-quick", "--resume", str(tmp_path)], "--resume continues a sweep"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2 and err[0].startswith("error: ") and words in err[0] and err[1].startswith("hint: ")
    assert os.listdir(tmp_path) == []  # nothing was made


def test_a_sweep_another_live_process_runs_is_refused(tmp_path, capsys):
    sweep = Sweep.from_grid(_tiny_base(tmp_path), ["distill.alpha=0.5,0.9"])
    path = sweep.create_dir()
    data = json.loads((path / "sweep.json").read_text())
    data.update(status="running", pid=os.getppid())  # alive, and not this process
    (path / "sweep.json").write_text(json.dumps(data))
    assert main(["sweep", "--resume", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"is running in process {os.getppid()}" in err and "hint: " in err
    assert not any(p.is_dir() for p in path.iterdir())  # no cell was started


def _fake_run(fail: set[str], calls: list[str]):
    """A stand-in for train.run that writes a run folder's files (and a teacher in the first cell) at once."""
    from workbench.events import Failed, Finished
    from workbench.run_folder import write_status

    def run(config, on_event, control, *, run_dir=None, resume=None):
        folder = Path(run_dir or resume)
        calls.append(folder.name)
        folder.mkdir(exist_ok=True)
        config.save(folder / "config.toml")
        if config.teacher.source == "train":
            (folder / "teacher").mkdir()
            (folder / "teacher" / "config.json").write_text("{}")
        if any(word in folder.name for word in fail):
            write_status(folder, "failed")
            return Failed("The distill loss became nan at step 3.", "lower the temperature", run_dir=str(folder))
        write_status(folder, "completed")
        return Finished("completed", str(folder), {"status": "completed"})

    return run


def test_a_failed_cell_does_not_stop_the_others_and_is_retried_on_resume(tmp_path):
    sweep = Sweep.from_grid(_tiny_base(tmp_path), ["distill.temperature=1,4,8"])
    path = sweep.create_dir()
    calls: list[str] = []
    events: list = []
    result = run_sweep(path, events.append, run_fn=_fake_run({"temperature-4"}, calls))
    assert result.status == "failed"
    assert [c.status for c in read_sweep(path).cells] == ["completed", "failed", "completed"]
    assert [e.message for e in events if e.kind == "cell_finished"][1].startswith("The distill loss became nan")
    calls.clear()
    assert run_sweep(path, run_fn=_fake_run(set(), calls)).status == "completed"
    assert calls == ["02-temperature-4"]  # only the failed cell ran again


def test_without_the_teacher_of_the_first_cell_the_others_do_not_start(tmp_path, capsys):
    sweep = Sweep.from_grid(_tiny_base(tmp_path), ["distill.temperature=1,4"])
    path = sweep.create_dir()
    calls: list[str] = []

    def refused(config, on_event, control, *, run_dir=None, resume=None):
        calls.append(Path(run_dir).name)
        from workbench.events import Failed

        return Failed("The teacher cannot be trained.", "a hint", user_error=True)

    assert run_sweep(path, run_fn=refused).status == "failed"
    assert calls == ["01-temperature-1"]
    info = read_sweep(path)
    assert [c.status for c in info.cells] == ["failed", "failed"]
