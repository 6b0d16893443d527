"""``student.keep = "importance"``: the layers it keeps, the run folder's record, and rebuilding from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.engine.test_train import _stop_at, tiny_config
from tests.helpers_models import tiny_model, tiny_tokenizer
from workbench.config.checks import derived_layers, evenly_spaced
from workbench.config.schema import RunConfig, StudentConfig
from workbench.control import Control
from workbench.engine import assemble
from workbench.engine.importance import LAYERS_FILE, choose_layers, keep_by_importance
from workbench.engine.models import build
from workbench.engine.plan import plan_run
from workbench.engine.train.run import run
from workbench.errors import ConfigError
from workbench.events import read_events


def _identity_layers(model, indices):
    """Zero the output projections of these layers: each block then adds nothing to the residual stream."""
    with torch.no_grad():
        for i in indices:
            layer = model.model.layers[i]
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    return model


def test_importance_keeps_the_layers_the_measure_ranks_highest():
    tokenizer = tiny_tokenizer()
    teacher = _identity_layers(tiny_model(tokenizer, layers=4, seed=5), [0, 3]).eval()
    blocks = torch.randint(4, len(tokenizer), (4, 12), generator=torch.Generator().manual_seed(2))
    student = StudentConfig(source="derived", keep_layers=2, keep="importance")
    ids, importance = choose_layers(student, teacher, blocks)
    assert importance.kl[0] == pytest.approx(0.0, abs=1e-9) and importance.kl[3] == pytest.approx(0.0, abs=1e-9)
    assert min(importance.kl[1], importance.kl[2]) > 1e-6
    assert ids == [1, 2] != evenly_spaced(4, 2)
    assert ids == keep_by_importance(importance.kl, 2)
    # the same teacher kept evenly keeps the two empty layers: the choice is the measure's
    assert derived_layers(StudentConfig(source="derived", keep_layers=2), 4) == [0, 3]


def test_importance_without_a_measurement_is_refused_never_evenly_spaced():
    student = StudentConfig(source="derived", keep_layers=2, keep="importance")
    with pytest.raises(ConfigError) as err:
        derived_layers(student, 4)
    assert err.value.field == "student.keep"
    assert derived_layers(student, 4, [0.1, 0.5, 0.0, 0.4]) == [1, 3]
    explicit = StudentConfig(source="derived", keep_layers=2, keep="importance", layer_ids=[2, 0])
    assert derived_layers(explicit, 4) == [2, 0]  # layer_ids still win


def test_a_count_the_teacher_cannot_give_is_refused_before_measuring(monkeypatch):
    from workbench.engine import importance

    monkeypatch.setattr(importance, "layer_importance", lambda *a, **k: pytest.fail("measured anyway"))
    teacher = tiny_model(tiny_tokenizer(), layers=2)
    with pytest.raises(ConfigError) as err:
        choose_layers(StudentConfig(keep_layers=2, keep="importance"), teacher, torch.zeros(1, 4, dtype=torch.long))
    assert err.value.field == "student.keep_layers"


def test_plan_says_the_layers_are_chosen_at_start(tmp_path):
    cfg = tiny_config(
        tmp_path, **{"teacher.arch.layers": "4", "student.keep_layers": "2", "student.keep": "importance"}
    )
    plan = plan_run(cfg)
    assert plan.ok, plan.errors
    assert plan.kept_layer_ids == [] and plan.kept_by_importance == 2
    evenly = plan_run(tiny_config(tmp_path, **{"teacher.arch.layers": "4", "student.keep_layers": "2"}))
    assert plan.student_params == evenly.student_params > 0


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keep")
    cfg = tiny_config(tmp, **{"teacher.arch.layers": "4", "student.keep_layers": "2", "student.keep": "importance"})
    control = Control()
    events: list = []

    def on_event(event):
        events.append(event)
        stop(event)

    stop = _stop_at(control, "distill", 6)
    result = run(cfg, on_event, control)
    assert result.status == "stopped", result
    return Path(result.run_dir), events


def test_run_records_the_layers_it_measured(stopped_run):
    run_dir, events = stopped_run
    data = json.loads((run_dir / LAYERS_FILE).read_text())
    assert len(data["kl"]) == 4 and data["blocks"] == 8
    assert data["layer_ids"] == keep_by_importance(data["kl"], 2)
    logs = [e.message for e in events if e.kind == "log" and "chosen by importance" in e.message]
    assert logs and str(data["layer_ids"]) in logs[0]
    on_disk = [e.message for e in read_events(run_dir / "events.jsonl") if e.kind == "log"]
    assert any("chosen by importance" in m for m in on_disk)


def test_load_run_models_rebuilds_the_recorded_layers(stopped_run, monkeypatch):
    run_dir, _ = stopped_run
    recorded = json.loads((run_dir / LAYERS_FILE).read_text())
    seen: list[list[int]] = []
    real = build.derive_student

    def spy(teacher, layer_ids):
        seen.append(list(layer_ids))
        return real(teacher, layer_ids)

    monkeypatch.setattr(build, "derive_student", spy)
    assemble.load_run_models(run_dir)
    assert seen == [recorded["layer_ids"]]
    # the file is what decides: other recorded layers are the ones rebuilt, nothing is measured again
    other = [i for i in range(4) if i not in recorded["layer_ids"]]
    original = (run_dir / LAYERS_FILE).read_text()
    try:
        (run_dir / LAYERS_FILE).write_text(json.dumps({**recorded, "layer_ids": other}))
        assemble.load_run_models(run_dir)
        assert seen[-1] == other
        (run_dir / LAYERS_FILE).unlink()
        with pytest.raises(ConfigError, match=LAYERS_FILE):
            assemble.load_run_models(run_dir)
    finally:
        (run_dir / LAYERS_FILE).write_text(original)


def test_resumed_run_keeps_the_recorded_layers_and_the_card_names_them(stopped_run, monkeypatch):
    run_dir, _ = stopped_run
    recorded = json.loads((run_dir / LAYERS_FILE).read_text())["layer_ids"]
    events: list = []
    resumed = run(RunConfig(), events.append, resume=run_dir)
    assert resumed.status == "completed", resumed
    assert resumed.summary["kept_layers"] == recorded and resumed.summary["kept_by"] == "importance"
    assert any(e.kind == "log" and f"read from {LAYERS_FILE}" in e.message for e in events)
    assert not any(e.kind == "log" and "measuring" in e.message for e in events)
    card = (run_dir / "student" / "README.md").read_text()
    assert f"keeping layers {recorded}, the 2 most important" in card


def test_workbench_layers_on_the_run_folder_measures_what_the_run_chose(stopped_run, capsys):
    from workbench.cli import main

    run_dir, _ = stopped_run
    recorded = json.loads((run_dir / LAYERS_FILE).read_text())
    assert main(["layers", str(run_dir), "--json"]) == 0
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert found["teacher"] == str(run_dir / "teacher")
    assert found["by_importance"] == recorded["layer_ids"]
    assert [r["kl"] for r in found["layers"]] == pytest.approx(recorded["kl"], rel=1e-4, abs=1e-7)
