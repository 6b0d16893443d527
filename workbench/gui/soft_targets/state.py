"""The soft-targets panel's arithmetic and its worker, kept apart from the widgets.

The numpy functions re-soften cached logits, measure divergences and entropies, and pick the words to show; the
worker owns a run's teacher and student (evaluate.Predictor) in a QThread and answers probe/generate requests.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

T_MIN, T_MAX, SLIDER_STEPS = 0.25, 10.0, 1000


# -- numpy: what the panel shows, testable without Qt --------------------------------------------------------------
def display_token(text: str) -> str:
    """A token as a readable label: surrounding spaces dropped, whitespace-only tokens shown as symbols."""
    shown = text.replace("\n", "↵").replace("\t", "⇥")
    stripped = shown.strip(" ")
    return stripped if stripped else ("␣" * min(max(len(shown), 1), 3))


def join_tokens(tokens: list[str]) -> str:
    """Tokens back to text: as they are when they carry their own spaces (BPE), else separated by spaces."""
    if any(token[:1].isspace() for token in tokens[1:]):
        return "".join(tokens)
    return " ".join(tokens)


def continue_text(prompt: str, continuation: str) -> str:
    """``prompt`` followed by ``continuation``, with a space between them unless one side already has it."""
    if not continuation or prompt[-1:].isspace() or continuation[:1].isspace():
        return prompt + continuation
    return f"{prompt} {continuation}"


def top_tokens(distributions: list[np.ndarray], k: int, include: int | None = None) -> np.ndarray:
    """Indices of the k tokens most likely under any of ``distributions``, ordered by the first one (teacher).

    ``include`` (the known next token) is appended when it is not among them, so the hard label is always shown.
    """
    score = np.max(np.stack(distributions), axis=0)
    k = min(k, len(score))
    idx = np.argpartition(-score, k - 1)[:k]
    idx = idx[np.lexsort((-score[idx], -distributions[0][idx]))]
    if include is not None and include not in idx:
        idx = np.append(idx, include)
    return idx


def temperature_to_slider(temperature: float) -> int:
    return round(SLIDER_STEPS * math.log(temperature / T_MIN) / math.log(T_MAX / T_MIN))


def slider_to_temperature(value: int) -> float:
    return T_MIN * (T_MAX / T_MIN) ** (value / SLIDER_STEPS)


# -- the worker that owns the run's models ---------------------------------------------------------------------------
def load_predictor(run_dir: str):
    """The default predictor factory: ``evaluate.Predictor.from_run``."""
    from workbench.gui.background.engine_import import load_engine

    load_engine()  # late, and on the worker thread: torch and transformers
    from workbench.engine.predictor import Predictor

    return Predictor.from_run(run_dir)


class PredictorWorker(QObject):
    """Lives in a QThread; loads a run's teacher + student and answers probe/generate requests there."""

    loaded = Signal(str)
    failed = Signal(str, str)  # message, hint
    probed = Signal(int, object)  # request id, ProbePrompt
    generated = Signal(int, str, str)  # request id, teacher text, student text

    def __init__(self, factory: Callable[[str], Any]):
        super().__init__()  # no parent: it is moved to the thread
        self._factory = factory
        self._predictor: Any = None

    @Slot(str)
    def load(self, run_dir: str) -> None:
        self._predictor = None
        if not run_dir:
            return
        try:
            self._predictor = self._factory(run_dir)
        except Exception as error:  # noqa: BLE001 -- shown to the user, the window stays usable
            self.failed.emit(*_describe(error, f"Could not load the models of {Path(run_dir).name}"))
            return
        self.loaded.emit(run_dir)

    @Slot(int, str)
    def probe(self, request: int, prompt: str) -> None:
        if self._predictor is None:
            return
        try:
            self.probed.emit(request, self._predictor.probe(prompt))
        except Exception as error:  # noqa: BLE001
            self.failed.emit(*_describe(error, "Could not compute the next-word distributions"))

    @Slot(int, str, object)
    def generate(self, request: int, prompt: str, settings: dict) -> None:
        if self._predictor is None:
            return
        try:
            teacher_text, student_text = self._predictor.generate(prompt, **settings)
        except Exception as error:  # noqa: BLE001
            self.failed.emit(*_describe(error, "Could not generate"))
            return
        self.generated.emit(request, teacher_text, student_text)


def _describe(error: Exception, what: str) -> tuple[str, str]:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    hint = getattr(error, "hint", "") or "Check that the run folder holds a finished or checkpointed run."
    return f"{what}: {message}", hint
