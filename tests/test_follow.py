"""The follower of a growing events.jsonl (workbench/follow.py), without Qt: each appended byte is read once."""

from __future__ import annotations

import json
import os

from workbench import events as ev
from workbench.follow import EventFollower, is_run_folder, written_status


def step_line(n: int, total: int = 100) -> str:
    return ev.to_json(ev.Step("distill", n, total, 1.0 / n, 0.5, 0.5, 1e-3, 1.0, 100.0, n, 0.0)) + "\n"


def append(path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def steps(batch) -> list[int]:
    return [e.step for e in batch.events]


def test_a_file_not_written_yet_is_waited_for(tmp_path):
    path = tmp_path / "events.jsonl"
    follower = EventFollower(path)
    assert follower.read_new().events == [] and not follower.exists
    append(path, step_line(1))
    assert steps(follower.read_new()) == [1]


def test_appends_are_read_once_and_nothing_is_read_twice(tmp_path):
    path = tmp_path / "events.jsonl"
    follower = EventFollower(path)
    seen = []
    for n in range(1, 31):
        append(path, step_line(n))
        if n % 7 == 0:
            seen += steps(follower.read_new())
    seen += steps(follower.read_new())
    assert seen == list(range(1, 31))
    assert follower.read_new().events == []
    size = path.stat().st_size
    assert follower.offset == size and follower.bytes_read == size  # each byte read from disk exactly once


def test_a_torn_last_line_is_completed_by_the_next_read(tmp_path):
    path = tmp_path / "events.jsonl"
    line = step_line(2)
    append(path, step_line(1) + line[:15])  # the writer is mid-line
    follower = EventFollower(path)
    batch = follower.read_new()
    assert steps(batch) == [1] and follower.skipped == 0  # the torn half is neither an event nor garbage
    append(path, line[15:])
    assert steps(follower.read_new()) == [2]
    assert follower.skipped == 0 and follower.bytes_read == path.stat().st_size


def test_garbage_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, step_line(1) + "not json\n" + json.dumps({"kind": "nonsense"}) + "\n" + "\n" + "[1, 2]\n")
    append(path, step_line(2))
    follower = EventFollower(path)
    assert steps(follower.read_new()) == [1, 2]
    assert follower.skipped == 3  # the blank line is not garbage


def test_a_long_backlog_is_read_in_bounded_chunks(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, "".join(step_line(n, 5000) for n in range(1, 5001)))
    follower = EventFollower(path, max_lines=1000)
    sizes, seen = [], []
    while True:
        batch = follower.read_new()
        sizes.append(len(batch.events))
        seen += steps(batch)
        if not batch.more:
            break
    assert sizes == [1000] * 5 and seen == list(range(1, 5001))
    assert follower.bytes_read == path.stat().st_size


def test_a_byte_budget_cuts_a_long_line_and_the_next_read_finishes_it(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, step_line(1) + step_line(2))
    follower = EventFollower(path, max_bytes=len(step_line(1)) + 10)
    first = follower.read_new()
    assert steps(first) == [1] and first.more
    assert steps(follower.read_new()) == [2] and follower.skipped == 0


def test_a_truncated_or_replaced_file_is_read_from_the_start(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, step_line(1) + step_line(2) + step_line(3))
    follower = EventFollower(path)
    assert steps(follower.read_new()) == [1, 2, 3]
    path.write_text(step_line(7))  # truncated and rewritten: shorter than what was read
    batch = follower.read_new()
    assert batch.started_over and steps(batch) == [7]

    replacement = tmp_path / "new.jsonl"
    replacement.write_text(step_line(8) + step_line(9) + step_line(10) + step_line(11))
    os.replace(replacement, path)  # another file under the same name (longer than the offset)
    batch = follower.read_new()
    assert batch.started_over and steps(batch) == [8, 9, 10, 11]
    assert not follower.read_new().started_over


def test_written_status_and_what_a_run_folder_is(tmp_path):
    assert written_status(tmp_path) == "" and not is_run_folder(tmp_path)
    (tmp_path / "status.json").write_text(json.dumps({"status": "running", "pid": 999999999}))
    assert written_status(tmp_path) == "running"  # as written: the pid may belong to another machine
    (tmp_path / "status.json").write_text("{torn")
    assert written_status(tmp_path) == ""
    (tmp_path / "events.jsonl").write_text("")
    assert is_run_folder(tmp_path) and not is_run_folder(tmp_path / "events.jsonl")
