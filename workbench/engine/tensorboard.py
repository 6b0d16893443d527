"""TensorBoard event files beside ``events.jsonl``, for every tool that reads a TensorBoard log directory.

With the optional ``tensorboard`` extra installed (``pip install -e ".[tensorboard]"``: tensorboardX), every
run writes ``<run folder>/tensorboard/``; ``workbench runs export --tensorboard RUN...`` writes the same
from an existing run's ``events.jsonl``. ``tensorboard --logdir runs`` then shows all runs side by side.

What is written, from the same events the window draws:

- ``train/<stage>/<loss|kd|ce|lr|grad_norm|tokens_per_s>`` at each Step event;
- ``eval/<stage>/<metric>`` at each Eval event (held-out CE, KL to the teacher, agreement, KL to the truth);
- ``probe/<prompt>`` as text: the teacher's and the student's top next tokens (T = 1) at each Probe event;
- ``summary`` as text when the run finishes.

The window keeps reading ``events.jsonl``: this is an export, never a second source of truth. Non-finite
values (a baseline's KD term is NaN) are left out, as TensorBoard has no gap for them.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import ConfigError
from workbench.events import Eval, Finished, Probe, Step, read_events

FOLDER = "tensorboard"
STEP_SCALARS = ("loss", "kd", "ce", "hidden", "lr", "grad_norm", "tokens_per_s")
PROBE_TOP = 5


def available() -> bool:
    """Whether the optional writer (tensorboardX) is installed."""
    return importlib.util.find_spec("tensorboardX") is not None


class TensorBoardLog:
    """Writes a run's events as TensorBoard scalars and text, into ``<run_dir>/tensorboard``."""

    def __init__(self, run_dir: str | Path):
        from tensorboardX import SummaryWriter

        self.folder = Path(run_dir) / FOLDER
        self._writer = SummaryWriter(logdir=str(self.folder), flush_secs=10)

    def write(self, event: Any) -> None:
        if isinstance(event, Step):
            for name in STEP_SCALARS:
                self._scalar(f"train/{event.stage}/{name}", getattr(event, name), event.step)
        elif isinstance(event, Eval):
            for name, value in event.metrics.items():
                self._scalar(f"eval/{event.stage}/{name}", value, event.step)
        elif isinstance(event, Probe):
            for prompt in event.prompts:
                self._writer.add_text(f"probe/{prompt.prompt}", probe_table(prompt), event.step)
        elif isinstance(event, Finished):
            lines = [
                f"| {k} | {v:.6g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in event.summary.items()
            ]
            self._writer.add_text("summary", "| metric | value |\n|---|---|\n" + "\n".join(lines), 0)

    def _scalar(self, tag: str, value: Any, step: int) -> None:
        if isinstance(value, (int, float)) and math.isfinite(value):
            self._writer.add_scalar(tag, float(value), step)

    def close(self) -> None:
        self._writer.flush()
        self._writer.close()


def probe_table(prompt: Any) -> str:
    """Markdown: the teacher's and the student's most likely next tokens after ``prompt`` (T = 1)."""
    rows = []
    for role, logits in (("teacher", prompt.teacher_logits), ("student", prompt.student_logits)):
        if not logits:
            continue  # the teacher stage has no student yet
        last = np.asarray(logits[-1], dtype=np.float64)
        probs = np.exp(last - np.max(last))
        probs /= probs.sum()
        top = np.argsort(-probs)[:PROBE_TOP]
        words = prompt.vocab_tokens or [str(i) for i in range(len(last))]
        rows.append(
            f"| {role} | " + " | ".join(f"`{words[i].strip() or repr(words[i])}` {probs[i]:.3f}" for i in top) + " |"
        )
    header = "| model | " + " | ".join(f"#{i + 1}" for i in range(PROBE_TOP)) + " |\n|---|" + "---|" * PROBE_TOP
    return header + "\n" + "\n".join(rows)


def export_run(run_dir: str | Path) -> Path:
    """Write ``<run_dir>/tensorboard`` from the run's ``events.jsonl`` (replacing an earlier export)."""
    import shutil

    run_dir = Path(run_dir)
    events_file = run_dir / "events.jsonl"
    if not events_file.is_file():
        raise ConfigError(
            "",
            f"{str(run_dir)!r} is not a run folder (it has no events.jsonl)",
            "give a folder made by `workbench run`",
        )
    if not available():
        raise ConfigError(
            "",
            "TensorBoard export needs tensorboardX, which is not installed",
            'install the extra: pip install -e ".[tensorboard]"',
        )
    shutil.rmtree(run_dir / FOLDER, ignore_errors=True)
    log = TensorBoardLog(run_dir)
    try:
        for event in read_events(str(events_file)):
            log.write(event)
    finally:
        log.close()
    return run_dir / FOLDER
