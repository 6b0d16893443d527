"""``workbench run``: a config headless, with a progress line on stderr and a summary (or JSON) on stdout.

Ctrl-C stops after the current step with a resumable checkpoint (exit 130); a second one cancels.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
import unicodedata
from typing import Any

from workbench.commands import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from workbench.config.presets import load_config, preset_names
from workbench.errors import ConfigError


def cmd_run(args: argparse.Namespace) -> int:
    from workbench.control import Control
    from workbench.engine.train.run import run
    from workbench.events import finite_or_none
    from workbench.run_folder import load_run_config

    if args.out and (args.run_dir or args.resume):
        raise ConfigError(
            "", "--out cannot be combined with --run-dir or --resume (they name the run folder itself)", "drop --out"
        )
    if args.resume:
        if args.config:
            raise ConfigError(
                "",
                f"--resume continues the run with its own config.toml, so the config {args.config!r} would be ignored",
                f"drop {args.config!r} (workbench run --resume {args.resume}), or start a new run with it",
            )
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
    install_signal_handlers(control)
    progress = Progress(sys.stderr)
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
        print(summary_text(summary))
    if result.status == "stopped":
        print(f"stopped; resume with: workbench run --resume {result.run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if result.status == "completed" else EXIT_INTERRUPTED


def install_signal_handlers(control: Any) -> None:
    """First Ctrl-C stops after the current step with a checkpoint; a second one cancels. SIGTERM (a kill,
    torchrun's forwarding) and SIGHUP (the terminal closed, the ssh session dropped) stop the same way."""

    def say(text: str) -> None:
        try:
            print(text, file=sys.stderr)
        except (OSError, ValueError):  # the terminal is gone (SIGHUP): the stop matters, not the sentence
            pass

    def handle(signum: int, frame: Any) -> None:
        if control.stop.is_set():
            if signum == getattr(signal, "SIGHUP", None):
                return  # a second hang-up (the shell's, then the terminal's) is not a request to cancel
            control.request_cancel()
            say("\ncancelling (no new checkpoint)...")
        else:
            control.request_stop()
            say("\nstopping after this step and saving a checkpoint (Ctrl-C again to cancel)...")

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, handle)


def summary_text(summary: dict[str, Any]) -> str:
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
    if summary.get("tokenizer"):
        lines.append(f"  {'tokenizer':<42} {summary['tokenizer']}")
    if summary.get("kept_layers"):
        lines.append(f"  {'teacher layers kept (by importance)':<42} {summary['kept_layers']}")
    for key, label in (
        ("teacher_disk_bytes", "teacher size on disk (MB)"),
        ("student_disk_bytes", "student size on disk (MB)"),
    ):
        if key in summary:
            lines.append(f"  {label:<42} {summary[key] / 1e6:.1f}")
    for gen in summary.get("generations", []):
        lines.append(
            f'  "{_visible(gen["prompt"])}"\n    teacher: {_visible(gen["teacher"])}\n    student: {_visible(gen["student"])}'
        )
    return "\n".join(lines)


def _visible(text: str) -> str:
    """Generated text on one line: line breaks, tabs and other control characters as escapes (a model that
    writes twenty newlines would otherwise print twenty blank lines), everything else as written."""
    return "".join(
        char.encode("unicode_escape").decode("ascii") if unicodedata.category(char).startswith("C") else char
        for char in str(text)
    )


class Progress:
    """Turns engine events into a one-line progress bar (a tty) or periodic lines (a log file).

    A stream that can no longer be written (a closed pipe, ``| head``, a terminal or ssh session gone) mutes
    it: the run goes on and keeps its work; only its progress is no longer shown."""

    def __init__(self, stream: Any):
        self.stream = stream
        try:
            self.tty = stream.isatty()
        except (OSError, ValueError):
            self.tty = False
        self.muted = False
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
        generating = getattr(event, "generate_s", 0.0)
        gen = f" (gen {generating:.1f}s)" if generating > 0 else ""
        hidden = getattr(event, "hidden", math.nan)
        if not math.isnan(hidden):
            kd += f" hidden {hidden:.4f}"
        text = (
            f"{event.stage:<8} [{bar:<24}] {event.step}/{event.total_steps} loss {event.loss:.4f}{kd} "
            f"{event.tokens_per_s:,.0f} tok/s{gen} ETA {duration(event.eta_s)}"
        )
        if self.tty:
            pad = max(self.width - len(text), 0)
            self._write("\r" + text + " " * pad)
            self.width = len(text)
        elif time.time() - self.last_line > 5 or event.step == event.total_steps:
            self._print(text)
            self.last_line = time.time()

    def _newline(self) -> None:
        if self.tty and self.width:
            self._write("\n")
            self.width = 0

    def _print(self, text: str) -> None:
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        if self.muted:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # BrokenPipeError, EIO from a gone terminal, a closed file
            self.muted = True

    def close(self) -> None:
        self._newline()


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"
