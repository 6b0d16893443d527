"""What the Runs table reads from a run folder."""

from __future__ import annotations

import json
import os
import time

from workbench import run_folder
from workbench.config.schema import RunConfig
from workbench.run_folder import create_run_dir, list_runs, read_run, write_status


def test_created_is_when_the_folder_was_made_not_its_last_status(tmp_path):
    config = RunConfig()
    config.runs_dir = str(tmp_path)
    run_dir = create_run_dir(config)
    made = time.time() - 3 * 86400  # as if made three days ago
    os.utime(run_dir / "config.toml", (made, made))
    write_status(run_dir, "completed")  # today: moves the folder's own times
    assert read_run(run_dir).created == time.strftime("%Y-%m-%d %H:%M", time.localtime(made))


def _checkpoint(run_dir, name, step, stage="distill"):
    folder = run_dir / "checkpoints" / name
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"step": step, "stage": stage}), encoding="utf-8")
    return folder


def test_a_checkpoint_pruned_while_the_run_is_listed_does_not_break_the_list(tmp_path, monkeypatch):
    """A running job deletes older checkpoints as it writes new ones; the Runs panel refreshes meanwhile.
    A checkpoint seen when the folder was scanned and gone when it is read is passed over, not an error."""
    config = RunConfig()
    config.runs_dir = str(tmp_path)
    run_dir = create_run_dir(config)
    _checkpoint(run_dir, "distill-step-000002", 2)
    newest = _checkpoint(run_dir, "distill-step-000004", 4)
    real_read = run_folder.read_checkpoint_state
    reads: dict = {}

    def read_then_prune(path):
        reads[path.name] = reads.get(path.name, 0) + 1
        if path == newest and reads[path.name] > 1:  # pruned after the first look
            raise FileNotFoundError(path / "state.json")
        return real_read(path)

    monkeypatch.setattr(run_folder, "read_checkpoint_state", read_then_prune)
    [info] = list_runs(tmp_path)
    assert info.last_step == 4 and info.stage == "distill"


def test_a_run_folder_deleted_while_listed_is_left_out(tmp_path, monkeypatch):
    config = RunConfig()
    config.runs_dir = str(tmp_path)
    kept, gone = create_run_dir(config), create_run_dir(config)
    real_read = run_folder.read_run

    def deleted(path):
        if path == gone:
            raise FileNotFoundError(path)
        return real_read(path)

    monkeypatch.setattr(run_folder, "read_run", deleted)
    assert [info.path for info in list_runs(tmp_path)] == [kept]


def test_half_written_summary_and_status_leave_the_run_listed(tmp_path):
    config = RunConfig()
    config.runs_dir = str(tmp_path)
    run_dir = create_run_dir(config)
    (run_dir / "summary.json").write_text('["not", "an object"]', encoding="utf-8")
    (run_dir / "status.json").write_text('{"status": "running", "pid": "x"', encoding="utf-8")
    info = read_run(run_dir)
    assert info.summary == {} and info.status == "unknown"


def test_a_summary_edited_by_hand_and_events_with_damaged_bytes_leave_the_runs_readable(tmp_path):
    from workbench.events import Log, read_events, to_json

    config = RunConfig()
    config.runs_dir = str(tmp_path)
    good, bad = create_run_dir(config), create_run_dir(config)
    (bad / "summary.json").write_text('{"status": "completed", "steps": "abc", "student_ppl": 1e400}', encoding="utf-8")
    assert {info.path for info in list_runs(tmp_path)} == {good, bad}  # one bad summary does not hide the rest
    (good / "events.jsonl").write_bytes(
        to_json(Log("before")).encode() + b"\n\xff\xfe not utf-8\n" + to_json(Log("after")).encode() + b"\n"
    )
    assert [e.message for e in read_events(str(good / "events.jsonl"))] == ["before", "after"]
