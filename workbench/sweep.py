"""Sweeps: one base config run over a grid of one or two fields (ground floor: no torch, no Qt).

A sweep is a base :class:`RunConfig` and one or two axes ``field=v1,v2,...`` (any numeric, true/false or
choice field; the values are coerced and checked with the rules ``--set`` uses). It expands to the
cartesian product of the axes, one run config per *cell*, in order (the first axis varies slowest).
With ``baseline`` it also holds hard-label baselines (alpha = 0): one for each distinct setting of the
fields that still matter with alpha = 0. The distillation-only fields (``distill.temperature``,
``divergence``, ``beta``, ``skew``, ``t_squared``, ``alpha``) change nothing in a run on hard labels, so a
grid over those gets one baseline in all; a grid over ``train.lr`` or ``student.*`` gets one per value.

Every cell shares one teacher: trained by the first cell when ``teacher.source = "train"`` (the later
cells load it from that cell's ``teacher/`` folder, as a baseline of a run does), else loaded by each cell.
So a field that changes the teacher cannot be an axis: ``teacher.*`` never, and for a teacher trained here
neither ``data.*`` nor the training fields stage 1 reads (:data:`TEACHER_STAGE_FIELDS`).

The sweep folder (``<runs_dir>/<stamp>-sweep-<name>/``) holds ``base.toml`` (the base config, after
``--set``), ``sweep.json`` (axes, cells, each cell's run folder and status; written atomically) and the
cells' run folders themselves, so ``list_runs(runs_dir)`` (the Runs tab, ``workbench runs``) does not list
them (a sweep folder has no ``config.toml``) while ``list_runs(sweep_dir)`` lists exactly its cells, and
``sweep_folder.list_sweeps`` lists the sweeps. The runner is ``engine/sweep_runner.py``.

A baseline that would repeat a cell (an alpha axis with 0 among its values) is left out.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from workbench.config.presets import read_config_text
from workbench.config.schema import RunConfig
from workbench.errors import ConfigError, WriteFailed, writing
from workbench.run_folder import new_stamped_folder, write_json

SWEEP_FILE = "sweep.json"
BASE_FILE = "base.toml"
MAX_AXES = 2
MAX_CELLS = 1000

TEACHER_STAGE_FIELDS = (
    "train.teacher_steps",
    "train.teacher_lr",
    "train.warmup_steps",
    "train.min_lr_ratio",
    "train.weight_decay",
    "train.grad_clip",
    "train.batch_size",
    "train.grad_accum",
    "train.seq_len",
    "train.seed",
    "train.device",
    "train.precision",
)
"""Fields the teacher stage reads: with a teacher trained here, sweeping one would change the teacher."""

DISTILL_ONLY_FIELDS = (
    "distill.alpha",
    "distill.temperature",
    "distill.divergence",
    "distill.beta",
    "distill.skew",
    "distill.t_squared",
)
"""Fields that change nothing in a run on hard labels (alpha = 0): baselines do not differ in them."""


# -- events (the runner reports these beside each cell's own run events) -----------------------


@dataclass(frozen=True)
class CellStarted:
    """Cell ``index`` (0-based) of ``total`` starts (or resumes); the run's own events follow."""

    index: int
    total: int
    cell: str
    run_dir: str
    values: dict[str, Any]
    resumed: bool = False
    kind: str = "cell_started"


@dataclass(frozen=True)
class CellFinished:
    """Cell ``index`` ended with ``status`` (completed / stopped / cancelled / failed; ``skipped``: it had
    completed before this call); ``summary`` is its summary (empty when it failed)."""

    index: int
    total: int
    cell: str
    run_dir: str
    status: str
    summary: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    kind: str = "cell_finished"


@dataclass(frozen=True)
class SweepFinished:
    """The sweep ended: ``completed`` (every cell completed), ``stopped``, or ``failed`` (some cell failed)."""

    status: str
    sweep_dir: str
    kind: str = "sweep_finished"


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    field: str
    values: tuple[Any, ...]


@dataclass
class Cell:
    """One run of the sweep: its folder name (``id``), what it sets, and its config."""

    id: str
    kind: str  # "cell" or "baseline"
    values: dict[str, Any]
    config: RunConfig


def sweepable_fields() -> list[str]:
    """The dotted fields an axis may name: numbers, true/false and choices, outside ``teacher.*``."""
    out: list[str] = []

    def walk(cls: Any, prefix: str) -> None:
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            name, hint = f"{prefix}{f.name}", hints[f.name]
            if dataclasses.is_dataclass(hint):
                walk(hint, name + ".")
            elif hint in (int, float, bool) or "choices" in f.metadata:
                out.append(name)

    walk(RunConfig, "")
    return [n for n in out if not n.startswith("teacher.")]


def teacher_fields(base: RunConfig) -> list[str]:
    """Sweepable-looking fields that would change the shared teacher of ``base`` (so no axis may name them)."""
    names = [n for n in _all_leaf_fields() if n.startswith("teacher.")]
    if base.teacher.source == "train":
        names += [n for n in _all_leaf_fields() if n.startswith("data.")]
        names += list(TEACHER_STAGE_FIELDS)
    return names


def _all_leaf_fields() -> list[str]:
    out: list[str] = []

    def walk(cls: Any, prefix: str) -> None:
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], f"{prefix}{f.name}.")
            else:
                out.append(f"{prefix}{f.name}")

    walk(RunConfig, "")
    return out


def parse_axis(text: str, base: RunConfig) -> Axis:
    """``field=v1,v2,...`` as an :class:`Axis`, each value coerced and checked as ``--set`` does it."""
    if "=" not in text:
        raise ConfigError(
            "", f"grid {text!r} is not of the form field=v1,v2,...", "e.g. --grid distill.temperature=1,2,4"
        )
    name, raw = (part.strip() for part in text.split("=", 1))
    allowed = [n for n in sweepable_fields() if n not in teacher_fields(base)]
    if name in teacher_fields(base):
        if name.startswith("teacher."):
            why, hint = "the teacher", f"run one sweep per teacher instead (--set {name}=...)"
        else:
            why = "the teacher trained in the first cell (stage 1 reads this field)"
            hint = f"run one sweep per value (--set {name}=...), or load a trained teacher (teacher.source)"
        raise ConfigError(name, f"a sweep shares one teacher among its cells, and this field changes {why}", hint)
    if name not in allowed:
        raise ConfigError(
            name, "is not a field a sweep can vary (a number, true/false or a choice)", f"fields: {', '.join(allowed)}"
        )
    items = [v.strip() for v in raw.split(",")]
    if not raw.strip() or any(not v for v in items):
        raise ConfigError(name, f"grid values {raw!r} have an empty item", f"e.g. --grid {name}=v1,v2")
    values: list[Any] = []
    for item in items:
        probe = base.copy()
        probe.set(name, item)  # the coercion of --set: unknown fields and wrong types raise here
        value = probe.get(name)
        for error in probe.errors():
            if error.field == name:
                raise error
        if value in values:
            raise ConfigError(name, f"grid value {item!r} is listed twice", "list each value once")
        values.append(value)
    return Axis(name, tuple(values))


def _same_run(a: RunConfig, b: RunConfig) -> bool:
    """The same run but for its name (and, with alpha = 0 in both, the distillation-only fields)."""
    a, b = a.copy(), b.copy()
    b.name = a.name
    if a.distill.alpha == 0.0 and b.distill.alpha == 0.0:
        for name in DISTILL_ONLY_FIELDS:
            b.set(name, a.get(name))
    return a == b


def value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class Sweep:
    """A base config, its axes and whether hard-label baselines join the cells."""

    base: RunConfig
    axes: list[Axis]
    baseline: bool = False

    @classmethod
    def from_grid(cls, base: RunConfig, grids: list[str], *, baseline: bool = False) -> Sweep:
        if not grids:
            raise ConfigError("", "a sweep needs at least one --grid", "e.g. --grid distill.temperature=1,2,4")
        if len(grids) > MAX_AXES:
            raise ConfigError(
                "",
                f"a sweep has at most {MAX_AXES} axes, got {len(grids)}",
                "drop a --grid, or run one sweep per value",
            )
        base.validate()
        axes = [parse_axis(g, base) for g in grids]
        if len({a.field for a in axes}) < len(axes):
            raise ConfigError(axes[0].field, "is named by two --grid options", "give each field one --grid")
        sweep = cls(base, axes, baseline)
        sweep.cells()  # every combination is checked now, before any folder is made
        return sweep

    def cells(self) -> list[Cell]:
        combos: list[dict[str, Any]] = [{}]
        for axis in self.axes:
            combos = [{**c, axis.field: v} for c in combos for v in axis.values]
        if len(combos) > MAX_CELLS:
            raise ConfigError("", f"the grid has {len(combos)} cells", f"at most {MAX_CELLS}: fewer values")
        cells: list[Cell] = []
        for i, values in enumerate(combos, 1):
            config = self._config(values)
            label = "-".join(f"{k.rsplit('.', 1)[-1]}-{value_text(v)}" for k, v in values.items())
            config.name = f"{self.base.name}-{label}"
            cells.append(Cell(f"{i:02d}-{label}", "cell", values, config))
        if self.baseline:
            seen: list[dict[str, Any]] = []
            for values in combos:
                kept = {k: v for k, v in values.items() if k not in DISTILL_ONLY_FIELDS}
                if kept in seen:
                    continue
                seen.append(kept)
                config = self._config({**kept, "distill.alpha": 0.0})
                if any(_same_run(config, c.config) for c in cells):
                    continue  # a cell already trains on hard labels alone (an alpha axis with 0 in it)
                label = "-".join(["baseline", *(f"{k.rsplit('.', 1)[-1]}-{value_text(v)}" for k, v in kept.items())])
                config.name = f"{self.base.name}-{label}"
                cells.append(Cell(f"b{len(seen):02d}-{label}", "baseline", {**kept, "distill.alpha": 0.0}, config))
        return cells

    def _config(self, values: dict[str, Any]) -> RunConfig:
        config = self.base.copy()
        for name, value in values.items():
            config.set(name, value)
        errors = config.errors()
        if errors:
            where = ", ".join(f"{k}={value_text(v)}" for k, v in values.items())
            err = errors[0]
            raise ConfigError(err.field, f"{err.message} (in the cell {where})", err.hint)
        return config

    # -- the folder ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "name": self.base.name,
            "axes": [{"field": a.field, "values": list(a.values)} for a in self.axes],
            "baseline": self.baseline,
        }

    def create_dir(self, runs_dir: str | Path | None = None) -> Path:
        """A new sweep folder with ``base.toml`` and ``sweep.json`` (every cell pending)."""
        root = Path(runs_dir if runs_dir is not None else self.base.runs_dir).expanduser()
        path = new_stamped_folder(root, f"sweep-{self.base.name}")
        try:
            with writing("the sweep's base.toml", path):
                self.base.save(path / BASE_FILE)
            write_sweep_file(path, self, "pending", {c.id: "pending" for c in self.cells()})
        except WriteFailed:
            import shutil

            shutil.rmtree(path, ignore_errors=True)
            raise
        return path


def load_sweep(sweep_dir: str | Path) -> Sweep:
    """The sweep a folder holds (its base.toml and axes), checked again as when it was made."""
    path = Path(sweep_dir).expanduser()
    if not (path / SWEEP_FILE).is_file() or not (path / BASE_FILE).is_file():
        raise ConfigError(
            "",
            f"{str(sweep_dir)!r} is not a sweep folder (it has no sweep.json)",
            "pick a folder made by `workbench sweep`",
        )
    data = read_json_or_none(path / SWEEP_FILE)
    if not isinstance(data, dict) or not isinstance(data.get("axes"), list):
        raise ConfigError("", f"{str(path / SWEEP_FILE)!r} cannot be read", "it was damaged; start the sweep again")
    base = RunConfig.from_toml(read_config_text(path / BASE_FILE), source=str(path / BASE_FILE))
    grids = [f"{a['field']}={','.join(_exact_text(v) for v in a['values'])}" for a in data["axes"]]
    return Sweep.from_grid(base, grids, baseline=bool(data.get("baseline")))


def _exact_text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else value_text(value)


def write_sweep_file(path: Path, sweep: Sweep, status: str, cells: dict[str, str]) -> None:
    """``sweep.json``, atomically: the axes, each cell's run folder (relative) and status, the sweep's status."""
    data = {
        **sweep.to_json(),
        "status": status,
        "pid": os.getpid(),
        "time": time.time(),
        "cells": [
            {"id": c.id, "kind": c.kind, "values": c.values, "run_dir": c.id, "status": cells.get(c.id, "pending")}
            for c in sweep.cells()
        ],
    }
    write_json(path / SWEEP_FILE, data)


def read_json_or_none(path: Path) -> Any:
    """A JSON file's content; None when it is missing, being replaced or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
