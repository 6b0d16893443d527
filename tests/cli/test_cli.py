"""The command line as a user types it (in-process, so it stays fast)."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main

TINY = [
    "--set", "teacher.arch.layers=2", "--set", "teacher.arch.hidden=32", "--set", "train.teacher_steps=8",
    "--set", "train.max_steps=6", "--set", "train.seq_len=16", "--set", "train.batch_size=4",
    "--set", "train.eval_interval=3", "--set", "train.probe_interval=3", "--set", "data.toy_sentences=300",
    "--set", "train.eval_batches=2", "--set", "train.warmup_steps=1",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-runs")
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        code = main(["run", "toy-quick", *TINY, "--out", str(out), "--json"])
    return code, stdout.getvalue()


def test_run_json_prints_the_summary_on_the_last_line(tiny_run):
    code, stdout = tiny_run
    assert code == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed"
    for key in ("teacher_ce", "entropy_floor", "kl_teacher_student", "top1_agreement", "student_ppl", "compression"):
        assert key in summary


def test_predict_shows_teacher_student_and_truth_side_by_side(tiny_run, capsys):
    run_dir = json.loads(tiny_run[1].strip().splitlines()[-1])["run_dir"]
    assert main(["predict", run_dir, "the cat is sitting on the", "--top-k", "5"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[1]
    assert header.split() == ["token", "teacher", "student", "true"]
    assert len(out.strip().splitlines()) == 2 + 5
    assert main(["predict", run_dir, "the cat is sitting on the", "--json", "--temperature", "4"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert all(0 <= r["teacher"] <= 1 and 0 <= r["student"] <= 1 for r in rows)
    # the truth does not depend on the display temperature; after "the" comes a noun or an adjective, never "."
    assert all(r["true"] == 0 for r in rows if r["token"] == ".")


def test_runs_lists_the_finished_run(tiny_run, capsys):
    run_dir = json.loads(tiny_run[1].strip().splitlines()[-1])["run_dir"]
    from pathlib import Path

    assert main(["runs", str(Path(run_dir).parent)]) == 0
    assert "completed" in capsys.readouterr().out


def test_presets_are_listed_with_descriptions(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.strip().splitlines()]
    assert {"toy", "toy-quick"} <= set(names)
    assert main(["presets", "--fields"]) == 0
    assert "distill.temperature" in capsys.readouterr().out


@pytest.mark.parametrize("override, field", [
    ("distill.temperature=0", "distill.temperature"),
    ("distill.alpha=1.5", "distill.alpha"),
    ("distill.divergence=cosine", "distill.divergence"),
    ("train.steps=5", "train.steps"),
    ("student.arch.heads=3", "student.arch.heads"),
    ("train.seq_len=100000", "train.seq_len"),
    ("data.source=file", "data.path"),
])
def test_bad_values_exit_2_with_one_line_naming_the_field(override, field, capsys):
    code = main(["run", "toy", "--set", override])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[0].startswith(f"error: {field}: ")
    assert err[1].startswith("hint: ")


def test_unknown_preset_and_missing_file_exit_2(capsys):
    assert main(["run", "no-such-preset"]) == 2
    assert "neither a preset nor a file" in capsys.readouterr().err
    assert main(["run", "missing.toml"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_data_preview_counts_blocks(capsys):
    assert main(["data", "toy-quick"]) == 0
    out = capsys.readouterr().out
    assert "blocks" in out and "the" in out


def test_unreadable_config_files_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"name = \"caf\xe9\"\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a UTF-8 text file" in err and "Traceback" not in err


def test_finished_runs_and_used_folders_are_refused(tiny_run, capsys):
    run_dir = json.loads(tiny_run[1].strip().splitlines()[-1])["run_dir"]
    assert main(["run", "--resume", run_dir]) == 2
    assert "already completed" in capsys.readouterr().err
    assert main(["run", "toy-quick", *TINY, "--run-dir", run_dir]) == 2
    assert "is not empty" in capsys.readouterr().err
    from workbench.engine import runs

    assert runs.read_run(run_dir).status == "completed", "a refused start must not touch the run it names"
    assert main(["predict", run_dir, "the cat", "--top-k", "0"]) == 2
    assert "--top-k" in capsys.readouterr().err
