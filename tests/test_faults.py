"""Bad inputs and faults, each answered in one sentence plus a hint, with nothing on disk lost.

The CLI is called in-process (``workbench.cli.main``): exit status 2, an ``error:`` line and a ``hint:``
line, no traceback, no "probably a bug". Engine faults (a full disk at each write, memory, damaged
checkpoint files, a run refused before it starts) go through ``train.run`` on the tests' tiny config; a
full disk is a write patched to raise ``OSError(ENOSPC)`` inside the test's own folders.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.engine.test_train import tiny_config
from workbench import cli
from workbench.commands import run as run_command
from workbench.control import Control
from workbench.engine import checkpoints, export
from workbench.engine.train import run as run_module
from workbench.engine.train.run import run
from workbench.events import read_events
from workbench.run_folder import latest_checkpoint

DISK_FULL = OSError(errno.ENOSPC, "No space left on device")


# -- helpers -------------------------------------------------------------------------------


def quick_config(tmp_path: Path, **overrides: str):
    """The tiny config made quicker still: 2 teacher steps, 2 distillation steps, a checkpoint at each."""
    cfg = tiny_config(tmp_path)
    t = cfg.train
    t.teacher_steps, t.max_steps, t.batch_size, t.eval_batches = 2, 2, 4, 1
    t.eval_interval = t.probe_interval = 100
    t.checkpoint_interval = 1
    t.probe_prompts = []
    cfg.data.toy_sentences = 200
    cfg.apply_overrides([f"{k}={v}" for k, v in overrides.items()])
    return cfg


def cli_call(capsys, monkeypatch, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(run_command, "install_signal_handlers", lambda control: None)  # leave pytest's Ctrl-C alone
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_sentence(code: int, out: str, err: str, *words: str, starts: bool = True) -> str:
    """Exit status 2, one ``error:`` line followed by a ``hint:`` line, and nothing that looks like a crash."""
    assert code == cli.EXIT_USAGE, (code, out, err)
    if starts:
        assert err.startswith("error: "), err
    lines = err.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert (
        errors[0] + 1 < len(lines) and lines[errors[0] + 1].startswith("hint: ") and len(lines[errors[0] + 1]) > 10
    ), err
    text = out + err
    assert "Traceback" not in text and "probably a bug" not in text and "weights_only" not in text, text
    for word in words:
        assert word.lower() in lines[errors[0]].lower(), (word, err)
    return lines[errors[0]]


def assert_failed(result, *words: str):
    assert result.kind == "failed", result
    assert result.user_error, result
    assert result.hint and "probably a bug" not in result.hint and "weights_only" not in result.message + result.hint
    assert "Traceback" not in result.message and "\n" not in result.message
    for word in words:
        assert word.lower() in (result.message + " " + result.hint).lower(), (word, result)
    return result


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or folders (``.name.tmp-...``) anywhere under ``folder``."""
    return [str(p) for p in folder.rglob(".*tmp-*")]


def status_of(run_dir: Path) -> str:
    return json.loads((run_dir / "status.json").read_text())["status"]


# -- the CLI: bad inputs -------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


CLI_CASES = {
    "run without a config": (lambda tmp: ["run"], ["no config"]),
    "unknown preset": (lambda tmp: ["run", "no-such-preset"], []),
    "missing toml file": (lambda tmp: ["run", str(tmp / "missing.toml")], []),
    "toml syntax error": (lambda tmp: ["run", _write(tmp, "bad.toml", "name = \n[[[")], ["not valid TOML"]),
    "toml nested 5000 deep": (
        lambda tmp: ["run", _write(tmp, "deep.toml", "x = " + "[" * 5000 + "]" * 5000)],
        ["deeply"],
    ),
    "unknown field in --set": (lambda tmp: ["run", "toy-quick", "--set", "distill.nope=1"], []),
    "--set without '='": (lambda tmp: ["run", "toy-quick", "--set", "distill.temperature"], []),
    "temperature not a number": (lambda tmp: ["run", "toy-quick", "--set", "distill.temperature=hot"], ["temperature"]),
    "alpha above 1": (lambda tmp: ["run", "toy-quick", "--set", "distill.alpha=2"], ["alpha"]),
    "negative batch size": (lambda tmp: ["run", "toy-quick", "--set", "train.batch_size=-1"], ["batch_size"]),
    "unknown divergence": (lambda tmp: ["run", "toy-quick", "--set", "distill.divergence=cosine"], ["divergence"]),
    "unknown teacher source": (lambda tmp: ["run", "toy-quick", "--set", "teacher.source=ftp"], ["teacher.source"]),
    "run name of 300 characters": (lambda tmp: ["run", "toy-quick", "--set", "name=" + "n" * 300], ["name"]),
    "run name with a slash": (lambda tmp: ["run", "toy-quick", "--set", "name=a/b"], ["name"]),
    "run name of spaces only": (lambda tmp: ["run", "toy-quick", "--set", "name=   "], ["name: is empty"]),
    "run name with a control character": (lambda tmp: ["run", "toy-quick", "--set", "name=a\tb"], ["name"]),
    "missing data file": (
        lambda tmp: ["run", "toy-quick", "--set", "data.source=file", "--set", f"data.path={tmp / 'none.txt'}"],
        ["does not exist"],
    ),
    "teacher folder that does not exist": (
        lambda tmp: ["run", "toy-quick", "--set", "teacher.source=local", "--set", f"teacher.path={tmp / 'nope'}"],
        ["does not exist"],
    ),
    "--out with --resume": (lambda tmp: ["run", "--resume", str(tmp), "--out", str(tmp)], ["--out"]),
    "--resume a folder that is not a run": (lambda tmp: ["run", "--resume", str(tmp)], ["not a run folder"]),
    "--run-dir that is not empty": (
        lambda tmp: ["run", "toy-quick", "--run-dir", str(Path(_write(tmp, "x.txt", "x")).parent)],
        ["not empty"],
    ),
    "--run-dir that is a file": (
        lambda tmp: ["run", "toy-quick", "--run-dir", _write(tmp, "f.txt", "x")],
        ["run folder"],
    ),
    "--out under a file": (
        lambda tmp: ["run", "toy-quick", "--out", _write(tmp, "f.txt", "x") + "/runs"],
        ["run folder"],
    ),
    "predict: --top-k 0": (lambda tmp: ["predict", str(tmp), "the cat", "--top-k", "0"], ["top-k"]),
    "predict: --temperature 0": (lambda tmp: ["predict", str(tmp), "the cat", "--temperature", "0"], ["temperature"]),
    "predict: --temperature nan": (
        lambda tmp: ["predict", str(tmp), "the cat", "--temperature", "nan"],
        ["temperature"],
    ),
    "predict: no such folder": (lambda tmp: ["predict", str(tmp / "nope"), "the cat"], ["not a folder"]),
    "predict: a folder that is not a run": (lambda tmp: ["predict", str(tmp), "the cat"], []),
    "export without a format": (lambda tmp: ["export", str(tmp)], ["format"]),
    "export --gguf without a student": (lambda tmp: ["export", str(tmp), "--gguf"], ["no exported student"]),
    "runs: a file instead of a folder": (lambda tmp: ["runs", _write(tmp, "f.txt", "x")], ["not a folder"]),
    "runs: a folder that does not exist": (lambda tmp: ["runs", str(tmp / "nope")], ["not a folder"]),
    "runs export without a format": (lambda tmp: ["runs", "export", str(tmp)], ["format"]),
    "data: unknown preset": (lambda tmp: ["data", "no-such-preset"], []),
    "data: missing data file": (
        lambda tmp: ["data", "toy-quick", "--set", "data.source=file", "--set", f"data.path={tmp / 'none.txt'}"],
        ["does not exist"],
    ),
    "data: a folder as data file": (
        lambda tmp: ["data", "toy-quick", "--set", "data.source=file", "--set", f"data.path={tmp}"],
        [],
    ),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_bad_input_is_one_sentence_and_a_hint(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    argv, words = CLI_CASES[case]
    before = sorted(p.name for p in work.iterdir())
    code, out, err = cli_call(capsys, monkeypatch, *argv(work))
    assert_one_sentence(code, out, err, *words)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "a refused run left a folder"
    after = sorted(p.name for p in work.iterdir())
    assert set(before) <= set(after), "a refused command removed files"


# -- runs refused before they start leave no folder ------------------------------------------


def _hub(tmp):
    return {"teacher.source": "hub", "teacher.path": "no-such-user/no-such-model"}


def _teacher_file(tmp):
    return {"teacher.source": "local", "teacher.path": _write(tmp, "teacher.bin", "not a model")}


def _gguf_garbage(tmp):
    """Right magic and version, damaged after them: only reading the header finds it (at the start of a run)."""
    path = tmp / "teacher.gguf"
    path.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\xff" * 40)
    return {"teacher.source": "gguf", "teacher.path": str(path)}


@pytest.mark.parametrize(
    "content, words",
    [
        (b"not a gguf", "GGUF magic"),
        (b"GGUF" + (7).to_bytes(4, "little") + bytes(32), "version 7"),
        (b"GG", "GGUF magic"),
    ],
)
def test_a_gguf_teacher_with_the_wrong_first_bytes_is_a_config_error_at_its_field(tmp_path, content, words):
    """Caught by the checks every edit runs (the window marks the field at once), not after a background parse."""
    (tmp_path / "teacher.gguf").write_bytes(content)
    cfg = quick_config(tmp_path)
    cfg.teacher.source, cfg.teacher.path = "gguf", str(tmp_path / "teacher.gguf")
    [error] = [e for e in cfg.errors() if e.field == "teacher.path"]
    assert words in error.message and error.hint


def _teacher_no_config(tmp):
    (tmp / "empty-model").mkdir()
    return {"teacher.source": "local", "teacher.path": str(tmp / "empty-model")}


def _data_wrong_type(tmp):
    return {"data.source": "file", "data.path": _write(tmp, "data.docx", "x")}


def _data_folder(tmp):
    return {"data.source": "file", "data.path": str(tmp)}


def _student_file(tmp):
    return {"student.source": "local", "student.path": _write(tmp, "student.bin", "x")}


REFUSED = {
    "unreachable hub id": (_hub, ["hub"]),
    "teacher path is a file": (_teacher_file, ["is a file"]),
    "teacher .gguf is garbage": (_gguf_garbage, []),
    "teacher folder without config.json": (_teacher_no_config, ["config.json"]),
    "data file of an unknown type": (_data_wrong_type, []),
    "data path is a folder": (_data_folder, []),
    "student path is a file": (_student_file, []),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_run_refused_before_it_starts_leaves_no_run_folder(case, tmp_path):
    make, words = REFUSED[case]
    received = []
    cfg = quick_config(tmp_path)
    cfg.apply_overrides([f"{k}={v}" for k, v in make(tmp_path).items()])
    result = run(cfg, received.append)
    assert_failed(result, *words)
    assert result.run_dir == ""
    runs = tmp_path / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []
    assert received[-1] is result  # the caller hears why


def test_refused_run_in_an_empty_run_dir_keeps_that_folder_and_empties_it(tmp_path):
    given = tmp_path / "mine"
    given.mkdir()
    cfg = quick_config(tmp_path, **{"teacher.source": "hub", "teacher.path": "no-such-user/no-such-model"})
    assert_failed(run(cfg, run_dir=given), "hub")
    assert given.is_dir() and list(given.iterdir()) == []


def test_cli_refused_hub_teacher_exits_2_and_leaves_no_run_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli_call(
        capsys,
        monkeypatch,
        "run",
        "toy-quick",
        "--out",
        str(tmp_path / "runs"),
        "--set",
        "teacher.source=hub",
        "--set",
        "teacher.path=no-such-user/no-such-model",
    )
    assert_one_sentence(code, out, err, "hub", starts=False)
    assert list((tmp_path / "runs").iterdir()) == []


# -- memory --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate 123 bytes."
        ),
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:83] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB. Error code 12 (Cannot allocate memory)"
        ),
        MemoryError(),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    ],
    ids=["cpu-not-enough", "cpu-cannot-allocate", "MemoryError", "device"],
)
def test_out_of_memory_while_building_the_teacher_is_one_sentence(error, tmp_path, monkeypatch):
    def too_big(*args, **kwargs):
        raise error

    monkeypatch.setattr(run_module, "build_model", too_big)
    result = assert_failed(run(quick_config(tmp_path)), "out of memory", "batch_size")
    assert result.run_dir == ""  # nothing ran: no folder
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_bug_stays_loud(tmp_path, monkeypatch):
    """The other side of the line: an error no user can cause is still reported as a bug, with its traceback kept."""

    def broken(*args, **kwargs):
        raise RuntimeError("index 3 is out of bounds")

    monkeypatch.setattr(run_module, "build_model", broken)
    result = run(quick_config(tmp_path))
    assert result.kind == "failed" and not result.user_error and "probably a bug" in result.hint
    assert "Traceback" in (Path(result.run_dir) / "error.log").read_text()


# -- a full disk at each write -------------------------------------------------------------


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A run whose disk filled up at the distillation checkpoint of step 2: the one of step 1 must be intact."""
    tmp = tmp_path_factory.mktemp("diskfull")
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if "distill-step-000002" in str(f):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    received: list = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoints.torch, "save", save)
        result = run(quick_config(tmp, **{"train.max_steps": "3"}), received.append)
    return result, received, tmp


def test_disk_full_at_a_checkpoint_names_it_and_keeps_the_previous_one(interrupted_run):
    result, received, tmp = interrupted_run
    assert_failed(
        result,
        "The disk is full: writing checkpoint distill-step-000002 failed.",
        "free space",
        "--resume",
        "distill-step-000001",
    )
    run_dir = Path(result.run_dir)
    assert status_of(run_dir) == "failed"
    assert latest_checkpoint(run_dir).name == "distill-step-000001"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["distill-step-000001"]
    assert leftovers(run_dir) == []
    assert [e.kind for e in read_events(str(run_dir / "events.jsonl"))][-1] == "failed"


def test_after_freeing_space_the_run_resumes_and_completes(interrupted_run, tmp_path):
    result, _, _ = interrupted_run
    copy = tmp_path / "copy"
    shutil.copytree(result.run_dir, copy)
    resumed = run(None, resume=copy)
    assert resumed.kind == "finished" and resumed.status == "completed", resumed
    assert (copy / "student" / "config.json").is_file() and status_of(copy) == "completed"


def test_a_resume_whose_trained_teacher_is_gone_keeps_the_distillation_checkpoint(interrupted_run, tmp_path):
    """Retraining the teacher would restart the distillation at step 0 and prune the checkpoint of its steps."""
    result, _, _ = interrupted_run
    copy = tmp_path / "copy"
    shutil.copytree(result.run_dir, copy)
    shutil.rmtree(copy / "teacher")
    assert_failed(run(None, resume=copy), "distillation checkpoint (distill-step-000001)", "(teacher/) is gone")
    assert latest_checkpoint(copy).name == "distill-step-000001"


def _fail_on(monkeypatch, target, name, *, when=lambda *a, **k: True):
    real = getattr(target, name)

    def fake(*args, **kwargs):
        if when(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, fake)


def test_disk_full_at_the_teacher_save_keeps_the_teacher_checkpoint(tmp_path, monkeypatch):
    _fail_on(monkeypatch, export, "_save_pretrained")
    result = assert_failed(
        run(quick_config(tmp_path)),
        "The disk is full: writing the trained teacher (teacher/) failed.",
        "teacher-step-000001",
    )
    run_dir = Path(result.run_dir)
    assert not (run_dir / "teacher").exists() and leftovers(run_dir) == []
    assert latest_checkpoint(run_dir).name == "teacher-step-000001" and status_of(run_dir) == "failed"


def test_disk_full_at_the_student_export_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    _fail_on(monkeypatch, export, "model_card")
    result = assert_failed(
        run(quick_config(tmp_path)), "The disk is full: writing the student (student/) failed.", "--resume"
    )
    run_dir = Path(result.run_dir)
    assert not (run_dir / "student").exists() and leftovers(run_dir) == []
    assert (run_dir / "teacher" / "config.json").is_file() and status_of(run_dir) == "failed"


def test_a_full_disk_reported_by_safetensors_itself_is_a_disk_full_error_not_a_bug(tmp_path, monkeypatch):
    """safetensors raises its own SafetensorError (the OS's code inside its text), not an OSError."""
    from safetensors import SafetensorError

    def full(*args, **kwargs):
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
        )

    monkeypatch.setattr(checkpoints, "save_model", full)
    result = assert_failed(
        run(quick_config(tmp_path)), "The disk is full: writing checkpoint teacher-step-000001 failed.", "free space"
    )
    assert status_of(Path(result.run_dir)) == "failed"


def test_disk_full_at_events_jsonl_mid_run(tmp_path, monkeypatch):
    from workbench import events as ev

    real = ev.to_json

    def to_json(event):
        if getattr(event, "kind", "") == "step" and event.stage == "distill":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(event)

    monkeypatch.setattr(ev, "to_json", to_json)
    received = []
    result = assert_failed(
        run(quick_config(tmp_path), received.append), "The disk is full: writing the event log events.jsonl failed."
    )
    assert received[-1] is result
    assert status_of(Path(result.run_dir)) == "failed"


def test_disk_full_everywhere_at_the_end_still_tells_the_caller(tmp_path, monkeypatch):
    """summary.json fails, then even status.json and events.jsonl: the Failed event still reaches the caller."""
    from workbench import run_folder

    _fail_on(
        monkeypatch,
        run_folder.paths,
        "write_text_atomic",
        when=lambda path, text: path.name == "summary.json" or (path.name == "status.json" and "failed" in text),
    )
    _fail_on(monkeypatch, run_folder.ev, "to_json", when=lambda event: event.kind == "failed")
    received = []
    result = assert_failed(
        run(quick_config(tmp_path), received.append), "The disk is full: writing summary.json failed."
    )
    assert received[-1] is result
    # status.json keeps the last status that could be written (consistent: the run did not complete)
    assert status_of(Path(result.run_dir)) == "running"
    assert (Path(result.run_dir) / "checkpoints" / "distill-step-000001").is_dir()


def test_disk_full_at_status_json_before_the_run_starts_leaves_no_folder(tmp_path, monkeypatch):
    from workbench import run_folder

    _fail_on(monkeypatch, run_folder.paths, "write_text_atomic", when=lambda path, text: path.name == "status.json")
    result = assert_failed(run(quick_config(tmp_path)), "The disk is full: writing status.json failed.", "free space")
    assert result.run_dir == "" and list((tmp_path / "runs").iterdir()) == []


@pytest.mark.parametrize("code,words", [(errno.EROFS, "read-only"), (errno.EACCES, "Permission denied")])
def test_read_only_or_forbidden_events_jsonl(code, words, tmp_path, monkeypatch):
    from workbench import run_folder

    real_open = open

    def fake_open(file, *args, **kwargs):
        if str(file).endswith("events.jsonl"):
            raise OSError(code, "refused")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(run_folder, "open", fake_open, raising=False)
    result = assert_failed(run(quick_config(tmp_path)), words, "events.jsonl")
    assert result.run_dir == "" and list((tmp_path / "runs").iterdir()) == []


def test_disk_full_at_the_config_toml_leaves_no_folder(tmp_path, monkeypatch):
    from workbench.config.schema import RunConfig

    _fail_on(monkeypatch, RunConfig, "save")
    result = assert_failed(run(quick_config(tmp_path)), "The disk is full: writing the run's config.toml failed.")
    assert result.run_dir == "" and list((tmp_path / "runs").iterdir()) == []


def test_disk_full_at_the_data_cache_is_a_warning_and_the_data_still_loads(tmp_path, monkeypatch):
    from workbench.engine.data import blocks

    cfg = quick_config(tmp_path)
    _fail_on(monkeypatch, blocks.torch, "save", when=lambda obj, f, *a, **k: "toy" in str(f))
    logs: list[str] = []
    loaded = blocks.load_blocks(cfg.data, None, cfg.train.seq_len, seed=0, on_log=logs.append)
    assert len(loaded.train) > 0
    warnings = [m for m in logs if "could not be cached" in m]
    assert len(warnings) == 1 and "the disk is full" in warnings[0] and "\n" not in warnings[0], logs
    assert list(blocks.paths.cache_dir("toy").iterdir()) == [], "a temporary cache file was left"


def test_disk_full_at_the_generated_cache_is_one_warning(tmp_path, monkeypatch):
    from workbench.engine.data import generated
    from workbench.errors import WorkbenchWarning

    target = tmp_path / "cache" / "x.jsonl"
    target.parent.mkdir()
    _fail_on(monkeypatch, Path, "open", when=lambda self, *a, **k: ".x.jsonl.tmp-" in self.name)
    with pytest.warns(WorkbenchWarning, match="could not be cached .*the disk is full"):
        generated._write_atomic(target, ["p"], ["text"])
    assert list(target.parent.iterdir()) == []


# -- damaged checkpoint files ---------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00garbage" * 50)


class _Payload:
    def __reduce__(self):
        return (print, ("this would run",))


def _pickle_payload(path: Path) -> None:
    torch.save({"state": _Payload()}, path)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _missing(path: Path) -> None:
    path.unlink()


def _wrong_json(path: Path) -> None:
    path.write_text(json.dumps({"stage": "distill", "step": 1, "python_random": "nonsense"}))


DAMAGE = {
    "model.safetensors truncated": ("model.safetensors", _truncate),
    "model.safetensors garbage": ("model.safetensors", _garbage),
    "model.safetensors empty": ("model.safetensors", _empty),
    "model.safetensors missing": ("model.safetensors", _missing),
    "optimizer.pt truncated": ("optimizer.pt", _truncate),
    "optimizer.pt garbage": ("optimizer.pt", _garbage),
    "optimizer.pt pickle payload": ("optimizer.pt", _pickle_payload),
    "rng.pt garbage": ("rng.pt", _garbage),
    "rng.pt pickle payload": ("rng.pt", _pickle_payload),
    "rng.pt truncated": ("rng.pt", _truncate),
    "state.json garbage": ("state.json", _garbage),
    "state.json truncated": ("state.json", _truncate),
    "state.json wrong contents": ("state.json", _wrong_json),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_checkpoint_file_is_named_with_the_earlier_point_to_resume_from(case, interrupted_run, tmp_path):
    result, _, _ = interrupted_run
    run_dir = tmp_path / "run"
    shutil.copytree(result.run_dir, run_dir)
    file, damage = DAMAGE[case]
    damage(run_dir / "checkpoints" / "distill-step-000001" / file)
    (
        run_dir / "checkpoints" / ".distill-step-000002.tmp-1-0a0a0a0a"
    ).mkdir()  # what a killed write leaves: not a checkpoint
    before = {
        p.relative_to(run_dir) for p in run_dir.rglob("*") if "status.json" not in p.name and "events" not in p.name
    }
    failed = assert_failed(
        run(None, resume=run_dir), f"checkpoint distill-step-000001: {file} ", "distillation starts again", "teacher"
    )
    assert "missing" in failed.message if "missing" in case else "damaged" in failed.message
    if "pickle" in case:
        assert "pickle" in failed.message
    after = {
        p.relative_to(run_dir) for p in run_dir.rglob("*") if "status.json" not in p.name and "events" not in p.name
    }
    assert before <= after, "resuming a damaged run lost files"


def test_damaged_teacher_stage_checkpoint_says_to_start_again(tmp_path, monkeypatch):
    cfg = quick_config(tmp_path)
    control = Control()

    def stop_after_checkpoint(event):
        if event.kind == "checkpoint":
            control.request_stop()

    stopped = run(cfg, stop_after_checkpoint, control)
    assert stopped.kind == "finished" and stopped.status == "stopped"
    run_dir = Path(stopped.run_dir)
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint.name.startswith("teacher-step-")
    _garbage(checkpoint / "optimizer.pt")
    failed = assert_failed(
        run(None, resume=run_dir),
        f"checkpoint {checkpoint.name}: optimizer.pt is damaged",
        "start the run again",
        "config.toml",
    )
    assert failed.run_dir == str(run_dir) and run_dir.is_dir() and checkpoint.is_dir()  # a resumed run is never removed


def test_cli_resume_of_a_damaged_checkpoint_is_one_line(interrupted_run, tmp_path, capsys, monkeypatch):
    result, _, _ = interrupted_run
    run_dir = tmp_path / "run"
    shutil.copytree(result.run_dir, run_dir)
    _pickle_payload(run_dir / "checkpoints" / "distill-step-000001" / "optimizer.pt")
    code, out, err = cli_call(capsys, monkeypatch, "run", "--resume", str(run_dir))
    assert_one_sentence(code, out, err, "checkpoint distill-step-000001: optimizer.pt is damaged", starts=False)


def test_cli_resume_with_set_is_refused(interrupted_run, capsys, monkeypatch):
    result, _, _ = interrupted_run
    code, out, err = cli_call(capsys, monkeypatch, "run", "--resume", result.run_dir, "--set", "train.lr=1")
    assert_one_sentence(code, out, err, "--set")


def test_cli_resume_of_a_completed_run_is_refused(interrupted_run, tmp_path, capsys, monkeypatch):
    result, _, _ = interrupted_run
    run_dir = tmp_path / "run"
    shutil.copytree(result.run_dir, run_dir)
    (run_dir / "status.json").write_text(json.dumps({"status": "completed", "pid": 0}))
    code, out, err = cli_call(capsys, monkeypatch, "run", "--resume", str(run_dir))
    assert_one_sentence(code, out, err, "already completed", starts=False)


def test_cli_predict_on_a_damaged_run_is_one_line(interrupted_run, tmp_path, capsys, monkeypatch):
    result, _, _ = interrupted_run
    run_dir = tmp_path / "run"
    shutil.copytree(result.run_dir, run_dir)
    _truncate(run_dir / "checkpoints" / "distill-step-000001" / "model.safetensors")
    code, out, err = cli_call(capsys, monkeypatch, "predict", str(run_dir), "the cat")
    assert_one_sentence(code, out, err)


def test_a_workbench_home_that_cannot_be_made_costs_its_cache_not_the_run(tmp_path, capsys, monkeypatch):
    """The built-in language's blocks are only cached there: the run goes on, with one warning line."""
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "a-file" / "home"))
    argv = ["run", "toy-quick", "--set", "train.teacher_steps=4", "--set", "train.max_steps=2"]
    code, out, err = cli_call(
        capsys, monkeypatch, *argv, "--set", "train.warmup_steps=1", "--out", str(tmp_path / "runs")
    )
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "could not be cached" in warnings[0] and "a-file" in warnings[0], err
    assert "Traceback" not in err and "error:" not in err
