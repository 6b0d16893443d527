"""``workbench layers``: the table and --json on a tiny local teacher, and the errors a user can cause."""

from __future__ import annotations

import json

import pytest

from tests.engine.test_keep_importance import _identity_layers
from tests.helpers_models import tiny_model, tiny_tokenizer
from workbench.cli import main
from workbench.config.schema import RunConfig


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    """A config whose teacher is a 4-layer local folder with layers 0 and 3 emptied (they change nothing)."""
    tmp = tmp_path_factory.mktemp("layers")
    tokenizer = tiny_tokenizer()
    model = _identity_layers(tiny_model(tokenizer, layers=4, seed=7), [0, 3])
    model.save_pretrained(tmp / "teacher")
    tokenizer.save_pretrained(tmp / "teacher")
    cfg = RunConfig(name="layers", runs_dir=str(tmp / "runs"))
    cfg.teacher.source, cfg.teacher.path = "local", str(tmp / "teacher")
    cfg.student.keep_layers = 2
    cfg.train.seq_len, cfg.train.device = 16, "cpu"
    cfg.data.toy_sentences = 600
    path = tmp / "layers.toml"
    cfg.save(path)
    return str(path)


def test_table_names_each_layer_and_the_layers_each_rule_keeps(config_file, capsys):
    assert main(["layers", config_file, "--blocks", "4"]) == 0
    out = capsys.readouterr().out
    assert "measured on 4 held-out blocks" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("layer"))
    imp, even = header.index("importance"), header.index("evenly")
    rows = {int(line.split()[0]): line for line in lines if line.strip()[:1].isdigit()}
    assert sorted(rows) == [0, 1, 2, 3]
    assert float(rows[0].split()[1]) == pytest.approx(0.0, abs=1e-6)
    assert float(rows[3].split()[1]) == pytest.approx(0.0, abs=1e-6)
    by_importance = [i for i, line in rows.items() if line[imp : imp + 10].strip() == "kept"]
    evenly = [i for i, line in rows.items() if line[even : even + 6].strip() == "kept"]
    assert by_importance == [1, 2] and evenly == [0, 3]
    assert "by importance [1, 2], evenly spaced [0, 3]" in out


def test_json_is_the_same_measurement(config_file, capsys):
    assert main(["layers", config_file, "--blocks", "4", "--json"]) == 0
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert found["by_importance"] == [1, 2] and found["evenly"] == [0, 3]
    assert found["teacher_layers"] == 4 and found["blocks"] == 4 and found["keep_layers"] == 2
    rows = found["layers"]
    assert [r["layer"] for r in rows] == [0, 1, 2, 3]
    assert {r["rank"] for r in rows} == {1, 2, 3, 4} and max(rows[0]["kl"], rows[3]["kl"]) < 1e-6
    assert [r["kept_by_importance"] for r in rows] == [False, True, True, False]


def test_a_teacher_trained_from_scratch_is_one_error_with_a_hint(capsys):
    assert main(["layers", "toy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: ") and "trains its teacher from scratch" in err[0]
    assert err[1].startswith("hint: ") and "workbench layers RUN_DIR" in err[1]
    assert len(err) == 2


def test_zero_blocks_is_refused(config_file, capsys):
    assert main(["layers", config_file, "--blocks", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --blocks: 0 must be at least 1")
