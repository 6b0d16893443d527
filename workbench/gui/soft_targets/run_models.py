"""A run folder's teacher and student as the soft-targets panel's background work sees them.

:class:`RunModels` holds the loaded predictor (``engine.predictor.Predictor`` or a test's stand-in). Its
methods are the work the panel submits to its :class:`~workbench.gui.background.jobs.Jobs`, so they all run
on that one thread, one at a time: the predictor is built there and lives there between requests, and the
GUI thread never touches it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.events import ProbePrompt, StudentText


def load_predictor(run_dir: str) -> Any:
    """The default predictor factory: ``Predictor.from_run``."""
    from workbench.gui.background.engine_import import load_engine

    load_engine()  # late, and on the jobs thread: torch and transformers
    from workbench.engine.predictor import Predictor

    return Predictor.from_run(run_dir)


class RunModels:
    """The predictor of the run folder last loaded (None before, after an unload, or after a failed load)."""

    def __init__(self, factory: Callable[[str], Any] | None = None):
        self._factory = factory or load_predictor
        self._predictor: Any = None

    def load(self, run_dir: str) -> str:
        """Load ``run_dir``'s teacher and student (the previous ones are dropped first); returns ``run_dir``."""
        self._predictor = None
        self._predictor = self._factory(run_dir)
        return run_dir

    def unload(self) -> None:
        self._predictor = None

    def probe(self, prompt: str) -> ProbePrompt | None:
        """Both models' logits at every position of ``prompt``; None when no models are loaded."""
        return self._predictor.probe(prompt) if self._predictor is not None else None

    def generate(self, prompt: str, settings: dict) -> tuple[str, str] | None:
        """The teacher's and the student's continuations of ``prompt``; None when no models are loaded."""
        return self._predictor.generate(prompt, **settings) if self._predictor is not None else None

    def sample_text(self, prompt: str, seed: int) -> StudentText | None:
        """The student's sampled text after ``prompt``, scored by the teacher; None when no models are loaded."""
        return self._predictor.sample_text(prompt, seed=seed) if self._predictor is not None else None
