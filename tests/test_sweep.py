"""Sweep plans (ground floor): axes, coercion as --set does it, the cells, baselines, refusals."""

from __future__ import annotations

import json

import pytest

from workbench.config.presets import load_config
from workbench.errors import ConfigError
from workbench.run_folder import list_runs
from workbench.sweep import Sweep, load_sweep, sweepable_fields
from workbench.sweep_folder import list_sweeps, read_sweep


@pytest.fixture
def base():
    return load_config("toy-quick")


def test_two_axes_expand_to_their_product_first_axis_slowest_values_coerced(base):
    sweep = Sweep.from_grid(base, ["distill.temperature=1,2,4", "distill.alpha=0.5, 0.9"])
    cells = sweep.cells()
    assert [c.values for c in cells] == [
        {"distill.temperature": t, "distill.alpha": a} for t in (1.0, 2.0, 4.0) for a in (0.5, 0.9)
    ]
    assert all(isinstance(c.values["distill.temperature"], float) for c in cells)
    assert [c.config.distill.temperature for c in cells] == [1.0, 1.0, 2.0, 2.0, 4.0, 4.0]
    assert cells[3].id == "04-temperature-2-alpha-0.9" and cells[3].config.name == "toy-quick-temperature-2-alpha-0.9"
    assert len({c.id for c in cells}) == 6
    assert base.distill.temperature == 2.0  # the base is not changed


def test_integer_choice_and_boolean_axes(base):
    sweep = Sweep.from_grid(base, ["student.arch.layers=1,2", "distill.divergence=forward_kl,jsd"])
    assert [c.config.student.arch.layers for c in sweep.cells()] == [1, 1, 2, 2]
    assert isinstance(sweep.cells()[0].values["student.arch.layers"], int)
    flags = Sweep.from_grid(base, ["distill.t_squared=true,false"]).cells()
    assert [c.config.distill.t_squared for c in flags] == [True, False]


def test_baselines_one_for_distillation_only_axes_else_one_per_other_value(base):
    cells = Sweep.from_grid(base, ["distill.temperature=1,4", "distill.alpha=0.5,0.9"], baseline=True).cells()
    baselines = [c for c in cells if c.kind == "baseline"]
    assert len(cells) == 5 and len(baselines) == 1
    assert (
        baselines[0].config.distill.alpha == 0.0 and baselines[0].config.distill.temperature == base.distill.temperature
    )
    cells = Sweep.from_grid(base, ["train.lr=1e-3,3e-3", "distill.temperature=1,4"], baseline=True).cells()
    baselines = [c for c in cells if c.kind == "baseline"]
    assert [b.config.train.lr for b in baselines] == [1e-3, 3e-3]
    assert all(b.config.distill.alpha == 0.0 for b in baselines)
    cells = Sweep.from_grid(base, ["distill.alpha=0,0.5", "distill.temperature=1,4"], baseline=True).cells()
    assert len(cells) == 4 and all(c.kind == "cell" for c in cells)  # alpha = 0 cells are the baselines already


@pytest.mark.parametrize(
    ("grid", "field", "words"),
    [
        ("distill.temperature=0,1", "distill.temperature", "greater than 0"),
        ("distill.alpha=0.5,2", "distill.alpha", "above the maximum"),
        ("distill.temperature=hot", "distill.temperature", "is not a number"),
        ("distill.divergence=kl", "distill.divergence", "forward_kl"),
        ("distill.temperature=1,1", "distill.temperature", "listed twice"),
        ("distill.temperature=1,,2", "distill.temperature", "empty item"),
        ("distill.temprature=1,2", "distill.temprature", "not a field a sweep can vary"),
        ("student.layer_ids=1,2", "student.layer_ids", "not a field a sweep can vary"),
        ("teacher.arch.layers=2,4", "teacher.arch.layers", "shares one teacher"),
        ("data.toy_sentences=300,600", "data.toy_sentences", "shares one teacher"),
        ("train.seed=0,1", "train.seed", "shares one teacher"),
        ("train.teacher_steps=10,20", "train.teacher_steps", "shares one teacher"),
    ],
)
def test_bad_axes_are_config_errors_naming_the_field_with_a_hint(base, grid, field, words):
    with pytest.raises(ConfigError) as caught:
        Sweep.from_grid(base, [grid])
    assert caught.value.field == field and words in caught.value.message
    assert caught.value.hint


def test_unknown_field_hint_lists_the_fields_a_sweep_can_vary(base):
    with pytest.raises(ConfigError) as caught:
        Sweep.from_grid(base, ["distill.temprature=1,2"])
    assert "distill.temperature" in caught.value.hint and "teacher." not in caught.value.hint
    assert "train.seed" not in caught.value.hint  # a teacher trained here reads it
    assert "distill.temperature" in sweepable_fields() and "student.layer_ids" not in sweepable_fields()


def test_a_loaded_teacher_lets_data_and_training_fields_be_swept(base, tmp_path):
    base.teacher.source = "local"
    base.teacher.path = str(tmp_path)
    assert len(Sweep.from_grid(base, ["train.seed=0,1", "data.toy_sentences=300,600"]).cells()) == 4
    with pytest.raises(ConfigError):
        Sweep.from_grid(base, ["teacher.path=a,b"])


def test_grid_shape_errors(base):
    for grids, words in (
        ([], "at least one --grid"),
        (["distill.temperature=1,2", "distill.alpha=0.1,0.2", "train.lr=0.1,0.2"], "at most 2 axes"),
        (["distill.temperature=1,2", "distill.temperature=3"], "two --grid"),
        (["distill.temperature"], "field=v1,v2"),
    ):
        with pytest.raises(ConfigError, match=words):
            Sweep.from_grid(base, grids)


def test_a_combination_the_relation_checks_refuse_names_its_cell(base):
    base.distill.alpha = 0.0
    base.student.source = "derived"
    with pytest.raises(ConfigError) as caught:
        Sweep.from_grid(base, ["student.keep_layers=1,9"])
    assert "student.keep_layers=9" in caught.value.message or caught.value.field == "student.keep_layers"


def test_the_sweep_folder_reads_back_and_does_not_disturb_the_runs_list(base, tmp_path):
    sweep = Sweep.from_grid(base, ["distill.temperature=0.1234567891,4", "distill.alpha=0.5"], baseline=True)
    path = sweep.create_dir(tmp_path)
    assert path.parent == tmp_path and path.name.endswith("-sweep-toy-quick")
    again = load_sweep(path)
    assert [c.config for c in again.cells()] == [c.config for c in sweep.cells()]  # exact floats too
    info = read_sweep(path)
    assert [c.status for c in info.cells] == ["pending"] * 3 and info.status == "pending"
    data = json.loads((path / "sweep.json").read_text())
    assert [c["run_dir"] for c in data["cells"]] == [c.id for c in sweep.cells()]
    assert list_runs(tmp_path) == [] and [s.path for s in list_sweeps(tmp_path)] == [path]
    with pytest.raises(ConfigError, match="not a sweep folder"):
        load_sweep(tmp_path)
