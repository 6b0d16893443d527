"""``workbench sweep``: a config over a grid of one or two fields, one run per cell, one teacher for all.

A progress line per cell (and each run's own progress) on stderr; at the end a table of the cells' final
metrics on stdout (``--json``: the table as one JSON object on the last line). ``--resume SWEEP_DIR`` skips the
cells that completed and continues the interrupted one from its checkpoint. Ctrl-C stops the running cell
with a checkpoint (exit 130); a second one cancels it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from workbench.commands import EXIT_FAILED, EXIT_INTERRUPTED
from workbench.config.presets import load_config, preset_names
from workbench.errors import ConfigError
from workbench.sweep import Sweep, value_text
from workbench.sweep_folder import METRICS, read_sweep, table_rows

HELP = """\
Run CONFIG once per cell of a grid: --grid FIELD=V1,V2,... (one or two, any number, true/false or choice
field; the values are checked as --set checks them). The first axis varies slowest. The cells' run
folders are made inside one sweep folder, RUNS_DIR/<stamp>-sweep-<name>/ (its sweep.json says which cell
is which). All cells share one teacher: a teacher trained here is trained by the first cell and loaded
by the others, so teacher.* fields, and for a teacher trained here data.* and the fields stage 1 reads
(train.teacher_steps, seed, batch_size, seq_len, ...), cannot be swept. --baseline adds hard-label
runs (alpha = 0): one in all when the axes are distillation-only fields (distill.temperature, alpha,
divergence, beta, skew, t_squared), else one per value of the other axes. To continue a stopped or
killed sweep give --resume SWEEP_DIR: finished cells are skipped, an interrupted cell continues
from its last checkpoint (a cell with none starts again); running the same command again starts a
new sweep. Ctrl-C stops the running cell with a checkpoint and starts no other (exit 130); exit 1
when a cell failed, 2 for a config or grid that is not allowed."""


def add_parser(sub: Any) -> None:
    sweep = sub.add_parser(
        "sweep",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run a config over a grid of one or two fields, sharing one teacher (a table of final metrics)",
        description=HELP,
    )
    sweep.add_argument("config", nargs="?", help="a preset name (see `workbench presets`) or a .toml file")
    sweep.add_argument(
        "--grid",
        dest="grids",
        action="append",
        default=[],
        metavar="FIELD=V1,V2,...",
        help="an axis, e.g. --grid distill.temperature=1,2,4 (at most two)",
    )
    sweep.add_argument("--baseline", action="store_true", help="also train hard-label baselines (alpha = 0)")
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of the base config for every cell (repeatable)",
    )
    sweep.add_argument("--out", help="folder in which the sweep folder is made (default: the config's runs_dir)")
    sweep.add_argument("--resume", metavar="SWEEP_DIR", help="continue a stopped or killed sweep")
    sweep.add_argument("--json", action="store_true", help="print the table as JSON on the last line of stdout")
    sweep.set_defaults(handler=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from workbench.commands.run import install_signal_handlers
    from workbench.control import Control
    from workbench.engine.sweep_runner import run_sweep
    from workbench.sweep import load_sweep

    if args.resume:
        if args.config or args.grids or args.overrides or args.baseline or args.out:
            raise ConfigError(
                "",
                "--resume continues a sweep as it was made: no config, --grid, --set, --baseline or --out with it",
                f"workbench sweep --resume {args.resume}",
            )
        sweep_dir = args.resume
        load_sweep(sweep_dir)  # a folder that is not a sweep is an error before anything runs
    else:
        if not args.config:
            raise ConfigError(
                "",
                "no config given",
                f"e.g. `workbench sweep toy-quick --grid distill.temperature=1,2,4`; presets: {', '.join(preset_names())}",
            )
        config = load_config(args.config, validate=False)  # checked after --set
        config.apply_overrides(args.overrides)
        sweep = Sweep.from_grid(config, args.grids, baseline=args.baseline)
        sweep_dir = str(sweep.create_dir(args.out))
        print(f"sweep folder: {sweep_dir}", file=sys.stderr)
    control = Control()
    install_signal_handlers(control)
    progress = CellProgress(sys.stderr)
    finished = run_sweep(sweep_dir, progress, control)
    progress.close()
    info = read_sweep(sweep_dir)
    rows = table_rows(info)
    if args.json:
        from workbench.events import finite_or_none

        axes = [{"field": a.field, "values": list(a.values)} for a in info.axes]
        data = {"status": finished.status, "sweep_dir": sweep_dir, "axes": axes, "cells": rows}
        print(json.dumps(finite_or_none(data), default=float, allow_nan=False))
    else:
        print(table_text(info.axes, rows))
    if finished.status == "stopped":
        print(f"stopped; resume with: workbench sweep --resume {sweep_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if finished.status == "completed" else EXIT_FAILED


class CellProgress:
    """The run's progress line, with a line per cell before and after it (muted, as Progress is, when the
    stream can no longer be written)."""

    def __init__(self, stream: Any):
        from workbench.commands.run import Progress

        self.stream = stream
        self.run_progress = Progress(stream)

    def __call__(self, event: Any) -> None:
        kind = getattr(event, "kind", "")
        if kind == "cell_started":
            self.run_progress._newline()
            values = " ".join(f"{k}={value_text(v)}" for k, v in event.values.items())
            verb = "resuming" if event.resumed else "cell"
            self.run_progress._print(f"== {verb} {event.index + 1}/{event.total} {event.cell}: {values}")
        elif kind == "cell_finished":
            self.run_progress._newline()
            detail = f" ({event.message})" if event.message else ""
            self.run_progress._print(f"== cell {event.index + 1}/{event.total} {event.cell}: {event.status}{detail}")
        elif kind == "sweep_finished":
            self.run_progress._newline()
            self.run_progress._print(f"== sweep {event.status}")
        elif kind != "finished":
            self.run_progress(event)

    def close(self) -> None:
        self.run_progress.close()


def table_text(axes: list[Any], rows: list[dict[str, Any]]) -> str:
    fields = [a.field for a in axes]
    present = [(k, label) for k, label in METRICS if any(k in r for r in rows)]
    header = ["cell", *[f.rsplit(".", 1)[-1] for f in fields], "status", *[label for _, label in present]]

    def cell_text(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        if value is None:
            return "-"
        if isinstance(value, float):
            return "nan" if math.isnan(value) else f"{value:.4g}"
        return value_text(value)

    lines = [
        [r["cell"], *[cell_text(r, f) for f in fields], r["status"], *[cell_text(r, k) for k, _ in present]]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    out = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in [header, *lines]]
    return "\n".join(out)
