"""Faults met through the window: each ends in the banner as one sentence and a hint, the window stays alive
(the next run starts and completes), and a run refused before its first step leaves no run folder."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from workbench.engine import checkpoints
from workbench.engine.train import run as train_run

RUN_TIMEOUT = 120_000


def _finish(window, qtbot, cfg):
    with qtbot.waitSignal(window.controller.finished, timeout=RUN_TIMEOUT) as finished:
        assert window.start_run(cfg)
    return finished.args[0]


def _assert_banner(window, *words):
    message, hint = window.banner.message(), window.banner.hint.text()
    assert window.banner.isVisible() and "\n" not in message and hint, (message, hint)
    for word in words:
        assert word in message + " " + hint, (word, message, hint)
    for bad in ("Traceback", "probably a bug", "weights_only"):
        assert bad not in message + hint


def _still_alive(window, qtbot, cfg):
    result = _finish(window, qtbot, cfg)
    assert result.kind == "finished" and result.status == "completed"


def _garbage_gguf(tmp_path, cfg):
    # the magic and a known version (the form's check passes), then a header that is damaged
    (tmp_path / "teacher.gguf").write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\xff" * 64)
    cfg.teacher.source, cfg.teacher.path = "gguf", str(tmp_path / "teacher.gguf")


def _disk_full_at_checkpoints(monkeypatch):
    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_model", fail)


def _no_ram(monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(train_run, "build_model", fail)


@pytest.mark.parametrize(
    "fault, words, leaves_folder",
    [
        ("garbage gguf teacher", ["teacher.gguf"], False),
        ("disk full at a checkpoint", ["The disk is full: writing checkpoint", "free space"], True),
        ("out of RAM", ["The computer ran out of memory (RAM).", "batch_size"], False),
    ],
)
def test_a_fault_is_one_sentence_in_the_banner_and_the_window_stays_alive(
    fault, words, leaves_folder, make_window, runs_dir, tmp_path, qtbot, tiny_config, monkeypatch
):
    cfg = tiny_config(runs_dir, max_steps=6, checkpoint_interval=2)
    if fault == "garbage gguf teacher":
        _garbage_gguf(tmp_path, cfg)
    elif fault == "disk full at a checkpoint":
        _disk_full_at_checkpoints(monkeypatch)
    else:
        _no_ram(monkeypatch)
    window = make_window(tiny_config(runs_dir))
    result = _finish(window, qtbot, cfg)
    assert result.kind == "failed" and result.user_error
    _assert_banner(window, *words)
    folders = [p for p in Path(runs_dir).iterdir() if p.is_dir()]
    if leaves_folder:
        assert len(folders) == 1 and (folders[0] / "config.toml").is_file()  # the run trained: its folder stays
        assert not list((folders[0] / "checkpoints").glob(".*"))  # no temporary checkpoint left
    else:
        assert folders == []  # refused before its first step: nothing left behind
    monkeypatch.undo()
    _still_alive(window, qtbot, tiny_config(runs_dir, max_steps=4))
