"""The command line: ``workbench`` (the window), ``workbench run``, ``predict``, ``data``, ``presets``, ``runs``.

Errors a user can fix (a bad value, a missing file, tokenizers that differ, out of
memory) print one line ``error: ...`` plus a ``hint: ...`` line and exit with status 2;
a run that fails otherwise (a bug, a non-finite loss) exits with 1; a run stopped
with Ctrl-C keeps a resumable checkpoint and exits with 130.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from workbench.config.presets import (
    field_help,
    load_config,
    preset_description,
    preset_names,
)
from workbench.config.schema import RunConfig
from workbench.errors import ConfigError, WorkbenchWarning, one_line

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _show_warning
    parser = _parser()
    if not argv:
        return _open_gui([])
    if argv[0] == "gui" and not {"-h", "--help"} & set(argv[1:]):
        return _open_gui(argv[1:])  # the window parses its own options
    # `runs export` is a verb of its own under `runs`, whose positional argument is a folder
    args = _export_parser().parse_args(argv[2:]) if argv[:2] == ["runs", "export"] else parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as err:
        _error(err)
        if getattr(args, "json", False):  # a script reading the last line gets one either way
            print(json.dumps({"status": "failed", "message": err.what, "hint": err.hint, "run_dir": ""}))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


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
    if issubclass(category, WorkbenchWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


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
    run.set_defaults(handler=_cmd_run)

    presets = sub.add_parser("presets", help="list the built-in presets")
    presets.add_argument("--fields", action="store_true", help="also list every config field with its documentation")
    presets.set_defaults(handler=_cmd_presets)

    predict = sub.add_parser("predict", help="teacher vs student (vs the truth) next-word probabilities for a prompt")
    predict.add_argument("run_dir")
    predict.add_argument("prompt")
    predict.add_argument("--top-k", type=int, default=10)
    predict.add_argument("--temperature", type=float, default=1.0)
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(handler=_cmd_predict)

    data = sub.add_parser("data", help="preview the data a config reads: examples, tokens, blocks")
    data.add_argument("config")
    data.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    data.set_defaults(handler=_cmd_data)

    listing = sub.add_parser(
        "runs",
        help="list run folders with their status and final metrics (`runs export --tensorboard RUN...`: TensorBoard files)",
    )
    listing.add_argument("runs_dir", nargs="?", help="default: runs (a missing default folder just means no runs yet)")
    listing.set_defaults(handler=_cmd_runs)

    export = sub.add_parser(
        "export", help="write a run's student in another format (--gguf: for llama.cpp, Ollama, LM Studio)"
    )
    export.add_argument("run_dir", help="a run folder whose student was written")
    export.add_argument("--gguf", action="store_true", help="write the student as a .gguf file")
    export.add_argument("--type", default="f16", choices=("f16", "q8_0"), help="GGUF tensor type (default f16)")
    export.add_argument("--out", help="the .gguf file to write (default: RUN/student-TYPE.gguf)")
    export.set_defaults(handler=_cmd_export)

    gui = sub.add_parser("gui", help="open the window (the same as `workbench` alone)")
    gui.add_argument(
        "gui_args",
        nargs=argparse.REMAINDER,
        help="a preset name or a .toml file to open, --theme, --presentation, --fresh, --quit-after SECONDS",
    )
    gui.set_defaults(handler=lambda args: _open_gui(args.gui_args))
    return parser


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


# -- run ------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from workbench.control import Control
    from workbench.engine.train.run import run
    from workbench.events import finite_or_none
    from workbench.run_folder import load_run_config

    if args.out and (args.run_dir or args.resume):
        raise ConfigError(
            "", "--out cannot be combined with --run-dir or --resume (they name the run folder itself)", "drop --out"
        )
    if args.resume:
        config = load_run_config(args.resume)
        if args.overrides:
            raise ConfigError(
                "",
                "--set cannot change a run that is being resumed",
                "start a new run with the changed settings instead",
            )
    else:
        if not args.config:
            raise ConfigError("", "no config given", f"e.g. `workbench run toy`; presets: {', '.join(preset_names())}")
        config = load_config(args.config, validate=False)  # checked after --set
        config.apply_overrides(args.overrides)
        if args.out:
            config.runs_dir = args.out
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not (args.run_dir or args.resume):
        raise ConfigError(
            "",
            "under torchrun every process must write to the same run folder",
            "add --run-dir DIR (the same for all processes)",
        )
    control = Control()
    _install_signal_handlers(control)
    progress = _Progress(sys.stderr)
    result = run(config, progress, control, run_dir=args.run_dir, resume=args.resume)
    progress.close()
    if os.environ.get("RANK", "0") != "0":
        return 0 if result.kind == "finished" else EXIT_FAILED  # under torchrun, rank 0 speaks for all
    if result.kind == "failed":
        if args.json:
            print(
                json.dumps(
                    {"status": "failed", "message": result.message, "hint": result.hint, "run_dir": result.run_dir}
                )
            )
        return EXIT_USAGE if result.user_error else EXIT_FAILED
    summary = {"run_dir": result.run_dir, **result.summary}
    if args.json:
        print(json.dumps(finite_or_none(summary), default=float, allow_nan=False))  # strict JSON: null, not NaN
    else:
        print(_summary_text(summary))
    if result.status == "stopped":
        print(f"stopped; resume with: workbench run --resume {result.run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if result.status == "completed" else EXIT_INTERRUPTED


def _install_signal_handlers(control: Any) -> None:
    """First Ctrl-C stops after the current step with a checkpoint; a second one cancels."""

    def handle(signum: int, frame: Any) -> None:
        if control.stop.is_set():
            control.request_cancel()
            print("\ncancelling (no new checkpoint)...", file=sys.stderr)
        else:
            control.request_stop()
            print("\nstopping after this step and saving a checkpoint (Ctrl-C again to cancel)...", file=sys.stderr)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def _summary_text(summary: dict[str, Any]) -> str:
    names = [
        ("teacher_ce", "teacher held-out CE (nats/token)"),
        ("entropy_floor", "entropy floor of the language"),
        ("teacher_ppl", "teacher perplexity"),
        ("student_ppl_before", "student perplexity before distillation"),
        ("student_ppl", "student perplexity after"),
        ("kl_teacher_student", "KL(teacher || student)"),
        ("top1_agreement", "top-1 agreement with the teacher"),
        ("top5_agreement", "top-5 agreement"),
        ("kl_true_teacher", "KL(true || teacher)"),
        ("kl_true_student", "KL(true || student)"),
        ("teacher_params", "teacher parameters"),
        ("student_params", "student parameters"),
        ("compression", "compression"),
        ("teacher_latency_ms", "teacher next-token latency (ms)"),
        ("student_latency_ms", "student next-token latency (ms)"),
        ("wall_time_s", "wall time (s)"),
    ]
    lines = [f"run {summary.get('status', '?')}: {summary.get('run_dir', '')}"]
    for key, label in names:
        if key in summary:
            value = summary[key]
            text = f"{value:,}" if isinstance(value, int) else f"{value:.4g}"
            lines.append(f"  {label:<42} {text}")
    for key, label in (
        ("teacher_disk_bytes", "teacher size on disk (MB)"),
        ("student_disk_bytes", "student size on disk (MB)"),
    ):
        if key in summary:
            lines.append(f"  {label:<42} {summary[key] / 1e6:.1f}")
    for gen in summary.get("generations", []):
        lines.append(f'  "{gen["prompt"]}"\n    teacher: {gen["teacher"]}\n    student: {gen["student"]}')
    return "\n".join(lines)


class _Progress:
    """Turns engine events into a one-line progress bar (a tty) or periodic lines (a log file)."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.tty = stream.isatty()
        self.last_line = 0.0
        self.stage = ""
        self.width = 0

    def __call__(self, event: Any) -> None:
        kind = event.kind
        if kind == "stage":
            self._newline()
            self.stage = event.stage
            detail = (
                f" ({event.total_steps} steps)"
                if event.total_steps
                else (f": {event.message}" if event.message else "")
            )
            self._print(f"[{event.stage}]{detail}")
        elif kind == "step":
            self._step(event)
        elif kind == "eval":
            m = event.metrics
            parts = [
                f"{k}={m[k]:.4g}"
                for k in ("teacher_ce", "student_ce", "kl_teacher_student", "top1_agreement", "kl_true_student")
                if k in m
            ]
            self._newline()
            self._print(f"  eval @ {event.step}: " + " ".join(parts))
        elif kind == "log":
            self._newline()
            self._print(f"warning: {event.message}" if event.level == "warning" else f"  {event.message}")
        elif kind == "checkpoint":
            pass
        elif kind == "failed":
            self._newline()
            self._print(f"error: {event.message}")
            if event.hint:
                self._print(f"hint: {event.hint}")

    def _step(self, event: Any) -> None:
        frac = event.step / max(event.total_steps, 1)
        bar = "#" * int(frac * 24)
        kd = f" kd {event.kd:.3f}" if not math.isnan(event.kd) else ""
        text = (
            f"{event.stage:<8} [{bar:<24}] {event.step}/{event.total_steps} loss {event.loss:.4f}{kd} "
            f"{event.tokens_per_s:,.0f} tok/s ETA {_duration(event.eta_s)}"
        )
        if self.tty:
            pad = max(self.width - len(text), 0)
            self.stream.write("\r" + text + " " * pad)
            self.stream.flush()
            self.width = len(text)
        elif time.time() - self.last_line > 5 or event.step == event.total_steps:
            self._print(text)
            self.last_line = time.time()

    def _newline(self) -> None:
        if self.tty and self.width:
            self.stream.write("\n")
            self.width = 0

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        self._newline()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


# -- other commands ---------------------------------------------------------------


def _cmd_presets(args: argparse.Namespace) -> int:
    for name in preset_names():
        print(f"{name:<12} {preset_description(name)}")
    if args.fields:
        print()
        for dotted in _all_fields(RunConfig()):
            print(f"{dotted:<28} {field_help(dotted)}")
    return 0


def _all_fields(obj: Any, prefix: str = "") -> list[str]:
    import dataclasses

    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.extend(_all_fields(value, f"{prefix}{f.name}."))
        else:
            out.append(f"{prefix}{f.name}")
    return out


def _cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from workbench.engine.predictor import Predictor
    from workbench.probabilities import soften

    if args.top_k < 1:
        raise ConfigError("--top-k", f"{args.top_k} must be at least 1", "e.g. --top-k 10")
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise ConfigError(
            "--temperature", f"{args.temperature} must be a number greater than 0", "e.g. --temperature 1"
        )
    if not Path(args.run_dir).is_dir():
        raise ConfigError("", f"{args.run_dir!r} is not a folder", "give a run folder made by `workbench run`")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        predictor = Predictor.from_run(args.run_dir)
        probe = predictor.probe(args.prompt)
    except ConfigError:
        raise
    except (
        OSError,
        RuntimeError,
        ValueError,
        KeyError,
    ) as err:  # files a user damaged or moved: one line, no traceback
        raise ConfigError(
            "",
            f"the models of {Path(args.run_dir).name} could not be used: {one_line(err, 200)}",
            "check that the run finished (or has a distillation checkpoint) and that its files are whole",
        ) from None
    teacher = soften(np.array(probe.teacher_logits[-1]), args.temperature)
    student = soften(np.array(probe.student_logits[-1]), args.temperature)
    truth = np.array(probe.true_probs[-1]) if probe.true_probs else None
    order = np.argsort(-(teacher + student))[: args.top_k]
    rows = [
        {
            "token": probe.vocab_tokens[i],
            "teacher": float(teacher[i]),
            "student": float(student[i]),
            **({"true": float(truth[i])} if truth is not None else {}),
        }
        for i in order
    ]
    if args.json:
        print(json.dumps({"prompt": args.prompt, "temperature": args.temperature, "rows": rows}))
        return 0
    print(f'next word after "{args.prompt}" (T = {args.temperature:g}):')
    header = f"  {'token':<16}{'teacher':>9}{'student':>9}" + (f"{'true':>9}" if truth is not None else "")
    print(header)
    for row in rows:
        line = f"  {row['token']!r:<16}{row['teacher']:>9.3f}{row['student']:>9.3f}"
        if truth is not None:
            line += f"{row['true']:>9.3f}"
        print(line)
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    """What the run would train on; a config the run would refuse is refused here too."""
    from workbench.engine.assemble import data_tokenizer
    from workbench.engine.data.blocks import describe
    from workbench.engine.data.generated import teacher_cache_key
    from workbench.engine.plan import plan_run

    config = load_config(args.config, validate=False)  # checked after --set
    config.apply_overrides(args.overrides)
    config.validate()
    problems = plan_run(config).errors  # sizes, positions, tokenizers: from configs, no weights loaded
    if problems:
        for problem in problems:
            print(f"error: {problem.line}", file=sys.stderr)
        print("hint: `workbench run` refuses this config too; fix the value named above", file=sys.stderr)
        return EXIT_USAGE
    tokenizer = data_tokenizer(config.teacher, config.data)
    print(
        describe(
            config.data,
            tokenizer,
            config.train.seq_len,
            seed=config.train.seed,
            teacher_key=teacher_cache_key(config.teacher),
            on_log=_data_log,
        )
    )
    return 0


def _data_log(message: str) -> None:
    """Tokenization progress and warnings while `workbench data` works, on stderr (the report is stdout)."""
    print(message if message.startswith("warning:") else f"  {message}", file=sys.stderr, flush=True)


def _cmd_runs(args: argparse.Namespace) -> int:
    from workbench.run_folder import list_runs

    given = args.runs_dir
    runs_dir = given or "runs"
    where = Path(runs_dir).expanduser()
    if (where.exists() and not where.is_dir()) or (given is not None and not where.exists()):
        raise ConfigError(
            "", f"{runs_dir!r} is not a folder", "give the folder that holds the run folders (the config's runs_dir)"
        )
    found = list_runs(runs_dir)
    if not found:
        print(f"no runs in {runs_dir}")
        return 0
    for info in found:
        s = info.summary
        metrics = " ".join(
            f"{k}={s[k]:.3g}"
            for k in ("student_ppl", "kl_teacher_student", "top1_agreement")
            if isinstance(s.get(k), float)
        )
        print(f"{info.path.name:<40} {info.status:<11} step {info.last_step:<6} {metrics}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
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


def _export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench runs export", description="Write existing runs in another format.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN", help="run folders made by `workbench run`")
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="write each run's events.jsonl as TensorBoard files into RUN/tensorboard",
    )
    parser.set_defaults(handler=_cmd_runs_export)
    return parser


def _cmd_runs_export(args: argparse.Namespace) -> int:
    if not args.tensorboard:
        raise ConfigError("", "`workbench runs export` needs a format", "add --tensorboard")
    from workbench.engine.tensorboard import export_run

    for run_dir in args.run_dirs:
        print(f"{export_run(run_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
