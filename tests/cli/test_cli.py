"""The command line as a user types it (in-process, so it stays fast)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbench.cli import main
from workbench.config.schema import RunConfig

TINY = [
    "--set",
    "teacher.arch.layers=2",
    "--set",
    "teacher.arch.hidden=32",
    "--set",
    "train.teacher_steps=8",
    "--set",
    "train.max_steps=6",
    "--set",
    "train.seq_len=16",
    "--set",
    "train.batch_size=4",
    "--set",
    "train.eval_interval=3",
    "--set",
    "train.probe_interval=3",
    "--set",
    "data.toy_sentences=300",
    "--set",
    "train.eval_batches=2",
    "--set",
    "train.warmup_steps=1",
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


def tiny_run_dir(tiny_run) -> str:
    """The run folder of the module's tiny run (its --json summary's last line)."""
    return json.loads(tiny_run[1].strip().splitlines()[-1])["run_dir"]


def copies_of_tiny_run(tiny_run, tmp_path, *names: str) -> list:
    """Copies of the tiny run's folder under ``tmp_path``, to damage without touching the shared one."""
    import shutil

    for name in names:
        shutil.copytree(tiny_run_dir(tiny_run), tmp_path / name)
    return [tmp_path / name for name in names]


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


def test_runs_bought_sets_the_run_beside_its_real_hard_label_baseline(tiny_run, capsys):
    import contextlib
    import io
    from pathlib import Path

    run_dir = Path(json.loads(tiny_run[1].strip().splitlines()[-1])["run_dir"])
    assert main(["runs", "bought", str(run_dir)]) == 0
    alone = capsys.readouterr().out
    assert "Hard-label student" not in alone and "than the teacher" in alone  # no baseline trained yet
    stdout = io.StringIO()
    args = ["run", "toy-quick", *TINY, "--set", "distill.alpha=0", "--set", "name=toy-quick-baseline"]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        assert main([*args, "--out", str(run_dir.parent), "--json"]) == 0
    baseline_dir = json.loads(stdout.getvalue().strip().splitlines()[-1])["run_dir"]
    assert main(["runs", "bought", str(run_dir), "--json"]) == 0  # the baseline is found beside the run
    card = json.loads(capsys.readouterr().out)
    assert card["baseline"] == baseline_dir
    ours = json.loads((run_dir / "summary.json").read_text())
    theirs = json.loads((Path(baseline_dir) / "summary.json").read_text())
    rows = card["rows"]
    assert rows["kl_true"] == {
        "teacher": ours["kl_true_teacher"],
        "distilled": ours["kl_true_student"],
        "baseline": theirs["kl_true_student"],
    }
    assert rows["ce"]["baseline"] == theirs["student_ce"] and rows["top1"]["distilled"] == ours["top1_agreement"]
    assert rows["params"]["teacher"] == ours["teacher_params"]
    assert rows["disk_bytes"]["distilled"] == (run_dir / "student" / "model.safetensors").stat().st_size
    assert main(["runs", "bought", str(run_dir), "--baseline", baseline_dir]) == 0
    text = capsys.readouterr().out
    assert "Hard-label student" in text and "than the same student trained on hard labels" in text
    assert "nan" not in text


def test_runs_bought_refuses_what_is_not_a_finished_run(tiny_run, tmp_path, capsys):
    from pathlib import Path

    run_dir = json.loads(tiny_run[1].strip().splitlines()[-1])["run_dir"]
    assert main(["runs", "bought", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: ") and "is not a run folder" in err[0] and err[1].startswith("hint: ")
    unfinished = Path(tmp_path) / "20260101-000000-half"
    unfinished.mkdir()
    (unfinished / "config.toml").write_text((Path(run_dir) / "config.toml").read_text())
    assert main(["runs", "bought", run_dir, "--baseline", str(unfinished)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: --baseline: ") and "has not finished" in err[0] and len(err) == 2
    assert main(["runs", "bought", run_dir, "--baseline", run_dir]) == 2
    assert "the baseline is the run itself" in capsys.readouterr().err


def test_presets_are_listed_with_descriptions(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.strip().splitlines()]
    assert {"toy", "toy-quick"} <= set(names)
    assert main(["presets", "--fields"]) == 0
    assert "distill.temperature" in capsys.readouterr().out


@pytest.mark.parametrize(
    "override, field",
    [
        ("distill.temperature=0", "distill.temperature"),
        ("distill.alpha=1.5", "distill.alpha"),
        ("distill.divergence=cosine", "distill.divergence"),
        ("train.steps=5", "train.steps"),
        ("student.arch.heads=3", "student.arch.heads"),
        ("train.seq_len=100000", "train.seq_len"),
        ("data.source=file", "data.path"),
        ("train.probe_prompts=[the cat]", "train.probe_prompts"),  # a TOML list needs quoted items
    ],
)
def test_bad_values_exit_2_with_one_line_naming_the_field(override, field, capsys):
    code = main(["run", "toy", "--set", override])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[0].startswith(f"error: {field}: ")
    assert err[1].startswith("hint: ")


def test_a_list_is_set_as_a_toml_array_or_comma_separated():
    cfg = RunConfig()
    cfg.apply_overrides(["train.probe_prompts=[]"])
    assert cfg.train.probe_prompts == []  # was ["[]"]: a probe of the text "[]"
    cfg.apply_overrides(['train.probe_prompts=["the cat, the dog", "a bird"]', "student.layer_ids=[0, 3]"])
    assert cfg.train.probe_prompts == ["the cat, the dog", "a bird"] and cfg.student.layer_ids == [0, 3]
    cfg.apply_overrides(["train.probe_prompts=the cat, a bird"])
    assert cfg.train.probe_prompts == ["the cat", "a bird"]


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
    bad.write_bytes(b'name = "caf\xe9"\n')
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a UTF-8 text file" in err and "Traceback" not in err


def test_finished_runs_and_used_folders_are_refused(tiny_run, capsys):
    run_dir = json.loads(tiny_run[1].strip().splitlines()[-1])["run_dir"]
    assert main(["run", "--resume", run_dir]) == 2
    assert "already completed" in capsys.readouterr().err
    assert main(["run", "toy-quick", *TINY, "--run-dir", run_dir]) == 2
    assert "is not empty" in capsys.readouterr().err
    from workbench.run_folder import read_run

    assert read_run(run_dir).status == "completed", "a refused start must not touch the run it names"
    assert main(["predict", run_dir, "the cat", "--top-k", "0"]) == 2
    assert "--top-k" in capsys.readouterr().err


def test_a_run_folder_that_cannot_be_written_is_one_error_before_anything_starts(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    for args in (["--out", str(a_file)], ["--out", str(a_file / "sub")], ["--run-dir", str(a_file)]):
        assert main(["run", "toy-quick", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert (
            err[0].startswith("error: ") and "cannot write a run folder" in err[0] and "a file is in the way" in err[0]
        )
        assert err[1].startswith("hint: ") and "Traceback" not in "\n".join(err)


def test_runs_that_cannot_start_on_this_machine_leave_no_run_folder(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["run", "toy-quick", "--set", "train.precision=fp16", "--out", str(out)]) == 2
    assert "fp16 is not supported: it needs loss scaling" in capsys.readouterr().err  # on a GPU too: no GradScaler
    assert (
        main(
            [
                "run",
                "toy-quick",
                "--set",
                "data.source=generated",
                "--set",
                "data.gen_prompts=['the cat']",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "pretrained teacher" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_json_output_gets_a_failed_line_for_a_bad_config_too(capsys):
    assert main(["run", "toy-quick", "--set", "distill.alpha=2", "--json"]) == 2
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["status"] == "failed" and last["message"].startswith("distill.alpha")


def test_config_path_that_is_a_folder_and_runs_of_a_missing_folder(tmp_path, capsys):
    assert main(["run", str(tmp_path)]) == 2
    assert "is a folder, not a config file" in capsys.readouterr().err
    assert main(["runs", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("temperature", ["nan", "inf", "-1"])
def test_predict_refuses_a_temperature_that_is_not_a_positive_number(tiny_run, temperature, capsys):
    run_dir = json.loads(tiny_run[1].strip().splitlines()[-1])["run_dir"]
    assert main(["predict", run_dir, "the cat", "--temperature", temperature]) == 2
    assert capsys.readouterr().err.startswith("error: --temperature")


def test_data_refuses_what_the_run_refuses_and_reads_only_the_tokenizer(tmp_path, capsys):
    from tests.helpers_models import save_tiny_model

    teacher = tmp_path / "teacher"
    save_tiny_model(teacher)  # 64 positions
    (teacher / "model.safetensors").write_bytes(b"damaged")  # a preview needs no weights
    text = tmp_path / "text.txt"
    text.write_text("\n".join(f"the cat sat on the mat number {i} ." for i in range(300)))
    common = [
        "--set",
        "teacher.source=local",
        "--set",
        f"teacher.path={teacher}",
        "--set",
        "student.source=derived",
        "--set",
        "student.keep_layers=1",
        "--set",
        "data.source=file",
        "--set",
        f"data.path={text}",
    ]
    assert main(["data", "toy-quick", *common, "--set", "train.seq_len=16"]) == 0
    assert "blocks" in capsys.readouterr().out
    assert main(["data", "toy-quick", *common, "--set", "train.seq_len=128"]) == 2
    err = capsys.readouterr().err
    assert "train.seq_len: 128 is above the teacher's 64 positions" in err and "hint: " in err


def test_damaged_weights_of_a_local_teacher_are_a_user_error(tmp_path, capsys):
    from tests.helpers_models import save_tiny_model

    teacher = tmp_path / "teacher"
    save_tiny_model(teacher)
    weights = teacher / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    code = main(
        [
            "run",
            "toy-quick",
            "--set",
            "teacher.source=local",
            "--set",
            f"teacher.path={teacher}",
            "--set",
            "student.source=derived",
            "--set",
            "student.keep_layers=1",
            "--set",
            "train.seq_len=16",
            "--set",
            "train.max_steps=2",
            "--out",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "could not be read" in err and "probably a bug" not in err and "hint: " in err


def test_a_student_with_another_tokenizer_is_refused_before_the_teacher_stage(tmp_path, capsys):
    from tests.helpers_models import save_tiny_model

    student = tmp_path / "student"
    save_tiny_model(student)  # its own small vocabulary, not the built-in language's
    code = main(
        [
            "run",
            "toy-quick",
            *TINY,
            "--set",
            "train.teacher_steps=400",
            "--set",
            "student.source=local",
            "--set",
            f"student.path={student}",
            "--out",
            str(tmp_path / "runs"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert "tokenizer differs" in captured.err
    assert "[teacher]" not in captured.err, "no teacher step may run before the refusal"


def test_trust_remote_code_is_one_warning_line_and_in_the_run_record(tmp_path, capsys):
    from tests.helpers_models import save_tiny_model

    teacher = tmp_path / "teacher"
    save_tiny_model(teacher)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(f"the cat sat on the mat number {i} ." for i in range(300)))
    code = main(
        [
            "run",
            "toy-quick",
            "--set",
            "teacher.source=local",
            "--set",
            f"teacher.path={teacher}",
            "--set",
            "teacher.trust_remote_code=true",
            "--set",
            "student.source=derived",
            "--set",
            "student.keep_layers=1",
            "--set",
            "data.source=file",
            "--set",
            f"data.path={text}",
            "--set",
            "train.seq_len=16",
            "--set",
            "train.max_steps=2",
            "--set",
            "train.eval_interval=2",
            "--set",
            "train.probe_interval=2",
            "--out",
            str(tmp_path / "runs"),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    warnings = [line for line in captured.err.splitlines() if "trust_remote_code is on" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ")
    run_dir = json.loads(captured.out.strip().splitlines()[-1])["run_dir"]
    from pathlib import Path

    logged = [json.loads(line) for line in (Path(run_dir) / "events.jsonl").read_text().splitlines()]
    assert any(
        e["kind"] == "log" and e.get("level") == "warning" and "trust_remote_code" in e["message"] for e in logged
    )


def test_a_preset_whose_model_is_not_fetched_runs_with_the_path_given_by_set(tmp_path, capsys):
    from tests.helpers_models import save_tiny_model

    teacher = tmp_path / "teacher"
    save_tiny_model(teacher)  # this test's home has no SmolLM2: only --set makes the preset usable
    args = [
        "smollm2",
        "--set",
        "teacher.source=local",
        "--set",
        f"teacher.path={teacher}",
        "--set",
        "student.keep_layers=1",
        "--set",
        "train.seq_len=32",
    ]
    assert main(["data", *args]) == 0, capsys.readouterr().err
    assert main(["run", "smollm2"]) == 2  # without it, the missing file is one error with the fetch hint
    err = capsys.readouterr().err
    assert "teacher.path" in err and "fetch" in err.lower()


def test_a_run_name_too_long_for_a_folder_and_a_config_nested_too_deep_are_one_line_each(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text('name = "x"\n[teacher]\narch = ' + "{a=" * 3000 + "1" + "}" * 3000 + "\n")
    for args, expected in (
        ([str(deep)], "nests tables or lists too deeply"),
        (["toy-quick", "--set", "name=" + "n" * 300], "name: is 300 bytes long"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "workbench.cli", "run", *args, "--out", str(tmp_path / "runs")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 2 and expected in lines[0] and lines[1].startswith("hint: "), done.stderr[-400:]
    assert not (tmp_path / "runs").exists()  # refused before anything was made


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def _damage(student, how):
    import torch
    from safetensors.torch import load_file

    if how == "pickle with code":
        (student / "model.safetensors").unlink()
        torch.save({"model.embed_tokens.weight": _Payload()}, student / "pytorch_model.bin")
    elif how == "pickle of noise":
        (student / "model.safetensors").unlink()
        (student / "pytorch_model.bin").write_bytes(bytes(range(256)) * 4)
    elif how == "cut short":
        data = (student / "model.safetensors").read_bytes()
        (student / "model.safetensors").write_bytes(data[: len(data) // 3])
    elif how == "no config":
        (student / "config.json").unlink()
        (student / "model.safetensors").unlink()
    else:
        raise AssertionError(how)
    del load_file


@pytest.mark.parametrize("how", ["pickle with code", "pickle of noise", "cut short", "no config"])
def test_predict_answers_a_damaged_student_in_one_line_and_never_relays_weights_only_advice(
    tiny_run, tmp_path, capsys, how
):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(json.loads(tiny_run[1].strip().splitlines()[-1])["run_dir"], run_dir)
    _damage(run_dir / "student", how)
    capsys.readouterr()
    assert main(["predict", str(run_dir), "the cat is"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), captured.err
    assert "weights_only" not in captured.err and "this must never run" not in captured.out + captured.err
    assert "Traceback" not in captured.err


def test_export_gguf_of_a_built_in_language_student_says_why_not_in_one_line(tiny_run, capsys):
    run_dir = json.loads(tiny_run[1].strip().splitlines()[-1])["run_dir"]
    capsys.readouterr()
    assert main(["export", run_dir, "--gguf"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "word-level tokenizer" in err[0] and err[1].startswith("hint: ")


def test_a_preset_name_alone_opens_the_window_with_it(monkeypatch):
    import workbench.cli as cli

    opened = []
    monkeypatch.setattr(cli, "_open_gui", lambda args: opened.append(args) or 0)
    assert main(["toy-quick", "--quit-after", "1"]) == 0
    assert opened == [["toy-quick", "--quit-after", "1"]]


def test_a_name_neither_command_nor_preset_is_one_error_with_a_hint(monkeypatch, capsys):
    import workbench.cli as cli

    monkeypatch.setattr(cli, "_open_gui", lambda args: pytest.fail("the window opened"))
    assert main(["no-such-thing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "error: 'no-such-thing' is neither a command nor a preset"
    assert err[1].startswith("hint: commands: run,") and "toy-quick" in err[1]


def test_the_demo_preset_exists_and_validates():
    from workbench.config.presets import load_config, preset_names

    assert "demo" in preset_names()
    cfg = load_config("demo")
    assert (cfg.distill.temperature, cfg.distill.alpha) == (1.0, 1.0) and cfg.distill.transfer_blocks == 200


class _ClosedPipe:
    """A stream whose reader has gone: every write raises, as stderr does after `| head` or a lost ssh session."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")

    def isatty(self):
        return False


def test_a_run_whose_output_pipe_closes_trains_on_and_keeps_its_work(tmp_path):
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(_ClosedPipe()):
        code = main(["run", "toy-quick", *TINY, "--out", str(tmp_path), "--json"])
    summary = json.loads(stdout.getvalue().strip().splitlines()[-1])
    assert code == 0 and summary["status"] == "completed", summary
    assert (tmp_path / summary["run_dir"].split("/")[-1] / "student" / "config.json").is_file()


def test_resuming_a_run_another_process_is_running_is_refused(tiny_run, tmp_path, capsys):
    (run_dir,) = copies_of_tiny_run(tiny_run, tmp_path, "live")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        status = json.dumps({"status": "running", "pid": other.pid, "time": 0})
        (run_dir / "status.json").write_text(status)
        assert main(["run", "--resume", str(run_dir)]) == 2
        err = capsys.readouterr().err
        assert f"is still running (process {other.pid})" in err and "hint: stop it first" in err
        assert (run_dir / "status.json").read_text() == status  # the live run's status is left alone
    finally:
        other.kill()
        other.wait()
    main(["run", "--resume", str(run_dir)])  # its process gone, the folder is an interrupted run: not refused as live
    assert "still running" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["run", "--resume", "{tmp}/nowhere"], "does not exist"),
        (["run", "--resume", "{tmp}/a-file"], "is a file, not a run folder"),
        (["run", "toy-quick", "--resume", "{tmp}"], "so the config 'toy-quick' would be ignored"),
        (["run", "toy-quick", "--set", "=3"], "names no field"),
        (["run", "toy-quick", "--set", "distill=3"], "distill: is a table of fields, not one value"),
        (["run", "toy-quick", "--set", "teacher.source=hub", "--set", "teacher.path=not a valid id!!"], "not a valid"),
    ],
)
def test_mistaken_paths_fields_and_hub_ids_are_named_for_what_they_are(tmp_path, capsys, monkeypatch, argv, words):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "a-file").write_text("x")
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and words in errors[0], err
    assert "hint: " in err and "Traceback" not in err


def test_runs_given_a_run_folder_lists_that_run(tiny_run, capsys):
    run_dir = tiny_run_dir(tiny_run)
    assert main(["runs", run_dir]) == 0
    out = capsys.readouterr().out
    assert "completed" in out and "no runs in" not in out


def test_predict_says_which_words_it_does_not_know_and_refuses_a_prompt_longer_than_the_models(tiny_run, capsys):
    run_dir = tiny_run_dir(tiny_run)
    assert main(["predict", run_dir, "the cat xyzzy"]) == 0
    captured = capsys.readouterr()
    assert "warning: the models do not know 'xyzzy'" in captured.err
    assert "true" not in captured.out.splitlines()[1]  # no truth column: the language has no such word
    assert main(["predict", run_dir, " ".join(["the cat"] * 40)]) == 2
    err = capsys.readouterr().err
    assert "error: the prompt is 80 tokens long, more than the 64 positions" in err and "hint: shorten it" in err


def test_runs_bought_refuses_a_distilled_baseline_and_a_completed_run_without_its_summary(tiny_run, tmp_path, capsys):
    distilled, bare = copies_of_tiny_run(tiny_run, tmp_path, "distilled", "bare")
    (bare / "summary.json").unlink()
    assert main(["runs", "bought", tiny_run_dir(tiny_run), "--baseline", str(distilled)]) == 2
    assert "distilled is not a hard-label run (its distill.alpha is" in capsys.readouterr().err
    assert main(["runs", "bought", str(bare)]) == 2
    assert "bare completed but its summary.json is missing or unreadable" in capsys.readouterr().err


def test_a_finished_run_with_damaged_status_or_empty_config_is_not_trained_again(tiny_run, tmp_path, capsys):
    no_status, empty_config = copies_of_tiny_run(tiny_run, tmp_path, "no-status", "empty-config")
    (no_status / "status.json").unlink()
    (no_status / "status.json").mkdir()  # unreadable: the status is unknown, the exported student says it finished
    student = (no_status / "student" / "model.safetensors").read_bytes()
    assert main(["run", "--resume", str(no_status)]) == 2
    assert "has already completed" in capsys.readouterr().err
    assert (no_status / "student" / "model.safetensors").read_bytes() == student
    (empty_config / "config.toml").write_text("")
    assert main(["run", "--resume", str(empty_config)]) == 2
    assert "error: the config.toml of empty-config is empty" in capsys.readouterr().err


def test_a_whole_number_of_many_digits_is_read_exactly(capsys):
    assert main(["run", "toy-quick", "--set", "data.toy_seed=99999999999999999999999"]) == 2
    assert "99999999999999999999999 is above the maximum" in capsys.readouterr().err  # not 99999999999999991611392
    config = RunConfig()
    config.set("data.toy_seed", "1_000")
    config.set("train.max_steps", "1e3")
    assert (config.data.toy_seed, config.train.max_steps) == (1000, 1000)
