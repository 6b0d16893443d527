"""``workbench layers CONFIG|RUN_DIR``: how much each of the teacher's layers matters, and which ones a derived
student would keep by importance and evenly spaced (torch is imported only once the command runs)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workbench.config.checks import evenly_spaced, keep_by_importance
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


def measure(config: RunConfig, teacher_dir: Path | None, blocks: int, on_log: Any = None) -> dict[str, Any]:
    """The measurement as plain data (what ``--json`` prints)."""
    from transformers.utils import logging as hf_logging

    from workbench.engine.data.blocks import load_blocks
    from workbench.engine.data.generated import teacher_cache_key
    from workbench.engine.device import pick_device
    from workbench.engine.importance import layer_importance
    from workbench.engine.models.load import load_pretrained, load_teacher

    hf_logging.disable_progress_bar()
    dev = pick_device(config.train.device, config.train.precision)
    if teacher_dir is not None:
        teacher, tokenizer = load_pretrained("local", str(teacher_dir), field="")
        label = str(teacher_dir)
    else:
        teacher, tokenizer = load_teacher(config.teacher, on_warning=on_log)
        label = f"{config.teacher.source} {config.teacher.path}"
    teacher = teacher.to(dev.device).eval()
    kwargs: dict[str, Any] = {}
    if config.data.source == "generated":
        kwargs.update(teacher=teacher, teacher_key=teacher_cache_key(config.teacher))
    data = load_blocks(config.data, tokenizer, config.train.seq_len, seed=config.train.seed, on_log=on_log, **kwargs)
    held_out = data.val[:blocks].long()
    if len(held_out) == 0:
        raise ConfigError("data", "the data has no held-out block to measure on", "give more text, or a longer file")
    result = layer_importance(teacher, held_out)
    n_layers = len(result.kl)
    keep = config.student.keep_layers
    kept_imp = keep_by_importance(result.kl, keep) if 1 <= keep < n_layers else []
    kept_even = evenly_spaced(n_layers, keep) if 1 <= keep < n_layers else []
    return {
        "teacher": label,
        "teacher_layers": n_layers,
        "blocks": result.blocks,
        "positions": result.positions,
        "keep_layers": keep,
        "by_importance": kept_imp,
        "evenly": kept_even,
        "layers": [
            {
                "layer": i,
                "kl": result.kl[i],
                "cosine": result.cosine[i],
                "rank": result.rank(i),
                "kept_by_importance": i in kept_imp,
                "kept_evenly": i in kept_even,
            }
            for i in range(n_layers)
        ],
    }


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
            f"{row['layer']:>5}  {row['kl']:>15.4g}  {row['cosine']:>8.4f}  {row['rank']:>4}  "
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
    from workbench.engine.importance import IMPORTANCE_BLOCKS

    blocks = IMPORTANCE_BLOCKS if args.blocks is None else args.blocks
    if blocks < 1:
        raise ConfigError("--blocks", f"{blocks} must be at least 1", f"e.g. --blocks {IMPORTANCE_BLOCKS}")
    config, teacher_dir = _config_and_teacher_dir(args.config, args.overrides)
    found = measure(config, teacher_dir, blocks, on_log=lambda message: print(f"  {message}", file=sys.stderr))
    print(json.dumps(found) if args.json else table(found))
    return 0
