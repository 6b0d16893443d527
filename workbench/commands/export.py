"""Out of the workbench: ``workbench export RUN --gguf`` (the student for llama.cpp, Ollama, LM Studio) and
``workbench runs export --tensorboard RUN...`` (a run's events as TensorBoard files)."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.errors import ConfigError


def cmd_export(args: argparse.Namespace) -> int:
    if not args.gguf:
        raise ConfigError(
            "", "`workbench export` needs a format", "add --gguf (the safetensors student is already in RUN/student)"
        )
    run_dir = Path(args.run_dir)
    if not (run_dir / "student" / "config.json").is_file():
        raise ConfigError(
            "",
            f"{str(run_dir)!r} holds no exported student (no student/config.json)",
            "give a run folder whose distillation finished, or resume the run to finish it",
        )
    from workbench.engine.models.gguf_export import export_gguf

    target = Path(args.out) if args.out else run_dir / f"student-{args.type}.gguf"
    print(export_gguf(run_dir / "student", target, type_=args.type, name=run_dir.name))
    return 0


def runs_export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench runs export", description="Write existing runs in another format.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN", help="run folders made by `workbench run`")
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="write each run's events.jsonl as TensorBoard files into RUN/tensorboard",
    )
    parser.set_defaults(handler=cmd_runs_export)
    return parser


def cmd_runs_export(args: argparse.Namespace) -> int:
    if not args.tensorboard:
        raise ConfigError("", "`workbench runs export` needs a format", "add --tensorboard")
    from workbench.engine.tensorboard import export_run

    for run_dir in args.run_dirs:
        print(f"{export_run(run_dir)}")
    return 0
