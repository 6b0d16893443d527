"""``workbench layers CONFIG|RUN_DIR``: how much each of the teacher's layers matters, and which ones a derived
student would keep by importance and evenly spaced (torch is imported only once the command runs)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workbench.config.presets import load_config
from workbench.config.schema import RunConfig
from workbench.errors import ConfigError


def add_parser(sub: Any) -> None:
    layers = sub.add_parser(
        "layers",
        help="measure how much each teacher layer matters (KL when skipped, 1 - cos) and which ones a student keeps",
    )
    layers.add_argument("config", help="a preset, a .toml file, or a run folder (its trained teacher is measured)")
    layers.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    layers.add_argument("--blocks", type=int, default=None, help="held-out blocks to measure on (default: 8, as a run)")
    layers.add_argument("--json", action="store_true", help="print the measurement as JSON")
    layers.set_defaults(handler=cmd_layers)


def _config_and_teacher_dir(target: str, overrides: list[str]) -> tuple[RunConfig, Path | None]:
    """The config, and the run folder's trained teacher when ``target`` is a run folder that has one."""
    folder = Path(target).expanduser()
    if folder.is_dir() and (folder / "config.toml").is_file():
        from workbench.run_folder import load_run_config

        config = load_run_config(folder)
        config.apply_overrides(overrides)
        if (folder / "teacher" / "config.json").is_file():
            return config, folder / "teacher"
        if config.teacher.source == "train":
            raise ConfigError(
                "",
                f"run {folder.name} has no trained teacher yet",
                "wait for its teacher stage to finish (teacher/ in the run folder), or give another run",
            )
        return config, None
    config = load_config(target, validate=False)
    config.apply_overrides(overrides)
    config.validate()
    if config.teacher.source == "train":
        raise ConfigError(
            "teacher.source",
            "this config trains its teacher from scratch, so there is no teacher to measure yet",
            "run the teacher stage first (`workbench run` it), then give its run folder: workbench layers RUN_DIR",
        )
    return config, None


def table(found: dict[str, Any]) -> str:
    keep = found["keep_layers"]
    lines = [
        f"teacher: {found['teacher']} ({found['teacher_layers']} layers), measured on {found['blocks']} held-out "
        f"blocks ({found['positions']:,} positions)",
        "",
        f"{'layer':>5}  {'KL when skipped':>15}  {'1 - cos':>8}  {'rank':>4}  {'importance':>10}  {'evenly':>6}",
    ]
    for row in found["layers"]:
        lines.append(
            f"{row['layer']:>5}  {row['kl']:>15.4g}  {max(row['cosine'], 0.0):>8.4f}  {row['rank']:>4}  "
            f"{'kept' if row['kept_by_importance'] else '':>10}  {'kept' if row['kept_evenly'] else '':>6}"
        )
    lines.append("")
    if found["by_importance"]:
        lines.append(
            f"keeping {keep} (student.keep_layers): by importance {found['by_importance']}, "
            f"evenly spaced {found['evenly']}"
        )
    else:
        lines.append(f"student.keep_layers = {keep} is not fewer than the teacher's {found['teacher_layers']} layers")
    return "\n".join(lines)


def cmd_layers(args: argparse.Namespace) -> int:
    from workbench.engine.importance import IMPORTANCE_BLOCKS, measure_teacher

    blocks = IMPORTANCE_BLOCKS if args.blocks is None else args.blocks
    if blocks < 1:
        raise ConfigError("--blocks", f"{blocks} must be at least 1", f"e.g. --blocks {IMPORTANCE_BLOCKS}")
    config, teacher_dir = _config_and_teacher_dir(args.config, args.overrides)
    found = measure_teacher(config, teacher_dir, blocks, on_log=lambda message: print(f"  {message}", file=sys.stderr))
    print(json.dumps(found) if args.json else table(found))
    return 0
