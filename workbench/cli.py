"""The command line: ``workbench`` (the window), ``workbench run``, ``sweep``, ``predict``, ``data``, ``layers``,
``presets``, ``runs`` (``runs export``, ``runs bought``).

Errors a user can fix (a bad value, a missing file, tokenizers that differ, out of
memory) print one line ``error: ...`` plus a ``hint: ...`` line and exit with status 2;
a run that fails otherwise (a bug, a non-finite loss) exits with 1; a run stopped
with Ctrl-C keeps a resumable checkpoint and exits with 130.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any

from workbench.commands import EXIT_INTERRUPTED, EXIT_USAGE
from workbench.commands.export import cmd_export, runs_export_parser
from workbench.commands.inspect import cmd_data, cmd_predict, cmd_presets, cmd_runs, runs_bought_parser
from workbench.commands.layers import add_parser as add_layers_parser
from workbench.commands.run import cmd_run
from workbench.commands.sweep import add_parser as add_sweep_parser
from workbench.config.presets import preset_names
from workbench.errors import ConfigError, WorkbenchWarning


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _show_warning
    parser = _parser()
    if not argv:
        return _open_gui([])
    if argv[0] == "gui" and not {"-h", "--help"} & set(argv[1:]):
        return _open_gui(argv[1:])  # the window parses its own options
    commands = _command_names(parser)
    if not argv[0].startswith("-") and argv[0] not in commands:
        if argv[0] in preset_names():
            return _open_gui(argv)  # `workbench PRESET ...` is `workbench gui PRESET ...`
        _error(
            ConfigError(
                "",
                f"{argv[0]!r} is neither a command nor a preset",
                f"commands: {', '.join(commands)}; presets: {', '.join(preset_names())}",
            )
        )
        return EXIT_USAGE
    # `runs export` and `runs bought` are verbs of their own under `runs`, whose positional argument is a folder
    verbs = {"export": runs_export_parser, "bought": runs_bought_parser}
    if argv[0] == "runs" and len(argv) > 1 and argv[1] in verbs:
        args = verbs[argv[1]]().parse_args(argv[2:])
    else:
        args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except BrokenPipeError:  # `workbench ... | head`: the reader has all it wanted; say nothing more
        _silence_stdout()
        return 0
    except ConfigError as err:
        _error(err)
        if getattr(args, "json", False):  # a script reading the last line gets one either way
            print(json.dumps({"status": "failed", "message": err.what, "hint": err.hint, "run_dir": ""}))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's own flush at exit finds no closed pipe (it would
    print a traceback of its own)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


_python_showwarning = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Warnings meant for the user are one ``warning:`` line; any other keeps Python's format."""
    try:
        if issubclass(category, WorkbenchWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            _python_showwarning(message, category, filename, lineno, file, line)
    except (OSError, ValueError):  # stderr is gone (a closed pipe, a closed terminal): the run goes on
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench", description="Knowledge distillation of language models: run `workbench` alone for the window."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a config or preset headless (teacher stage, distillation, export)")
    run.add_argument("config", nargs="?", help="a preset name (see `workbench presets`) or a .toml file")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field, e.g. --set distill.temperature=4 (repeatable)",
    )
    run.add_argument("--out", help="folder in which the run folder is created (default: the config's runs_dir)")
    run.add_argument("--run-dir", help="use exactly this run folder (give every process the same one under torchrun)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or killed run from its last checkpoint")
    run.add_argument("--json", action="store_true", help="print the run summary as JSON on the last line of stdout")
    run.set_defaults(handler=cmd_run)

    add_sweep_parser(sub)

    presets = sub.add_parser("presets", help="list the built-in presets")
    presets.add_argument("--fields", action="store_true", help="also list every config field with its documentation")
    presets.set_defaults(handler=cmd_presets)

    predict = sub.add_parser("predict", help="teacher vs student (vs the truth) next-word probabilities for a prompt")
    predict.add_argument("run_dir", help="a run folder (a finished run, or one with a distillation checkpoint)")
    predict.add_argument("prompt", help='the text to continue, e.g. "the cat is sitting on the"')
    predict.add_argument("--top-k", type=int, default=10, help="words shown (default 10)")
    predict.add_argument(
        "--temperature", type=float, default=1.0, help="softens both models' distributions (default 1; not the truth's)"
    )
    predict.add_argument("--json", action="store_true", help="print the rows as one JSON line")
    predict.set_defaults(handler=cmd_predict)

    data = sub.add_parser("data", help="preview the data a config reads: examples, tokens, blocks")
    data.add_argument("config", help="a preset name (see `workbench presets`) or a .toml file")
    data.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field, e.g. --set data.source=file (repeatable)",
    )
    data.set_defaults(handler=cmd_data)

    add_layers_parser(sub)

    runs_help = (
        "list run folders with their status and final metrics (`runs export --tensorboard RUN...`: TensorBoard "
        "files; `runs bought RUN [--baseline RUN]`: what distillation bought)"
    )
    listing = sub.add_parser("runs", help=runs_help, description=runs_help[0].upper() + runs_help[1:] + ".")
    listing.add_argument("runs_dir", nargs="?", help="default: runs (a missing default folder just means no runs yet)")
    listing.set_defaults(handler=cmd_runs)

    export = sub.add_parser(
        "export", help="write a run's student in another format (--gguf: for llama.cpp, Ollama, LM Studio)"
    )
    export.add_argument("run_dir", help="a run folder whose student was written")
    export.add_argument("--gguf", action="store_true", help="write the student as a .gguf file")
    export.add_argument("--type", default="f16", choices=("f16", "q8_0"), help="GGUF tensor type (default f16)")
    export.add_argument("--out", help="the .gguf file to write (default: RUN/student-TYPE.gguf)")
    export.set_defaults(handler=cmd_export)

    gui = sub.add_parser("gui", help="open the window (the same as `workbench` alone)")
    gui.add_argument(
        "gui_args",
        nargs=argparse.REMAINDER,
        help="a preset name or a .toml file to open, --theme, --presentation, --fresh, --quit-after SECONDS",
    )
    gui.set_defaults(handler=lambda args: _open_gui(args.gui_args))
    return parser


def _command_names(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def _error(err: ConfigError) -> None:
    print(f"error: {err.what}", file=sys.stderr)
    if err.hint:
        print(f"hint: {err.hint}", file=sys.stderr)


def _open_gui(gui_args: list[str]) -> int:
    from workbench.qt_platform import platform_problem

    if not {"-h", "--help"} & set(gui_args):
        problem = platform_problem()  # before Qt is imported: a missing X11 library makes Qt abort the process
        if problem is not None:
            _error(ConfigError("", *problem))
            return EXIT_USAGE
    from workbench.gui.app import main as gui_main

    return gui_main(gui_args)


if __name__ == "__main__":
    sys.exit(main())
