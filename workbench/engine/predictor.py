"""A finished (or checkpointed) run's teacher and student, loaded for inference: the soft-target panel's
bars and generations, and ``workbench predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from workbench.engine.assemble import load_run_models
from workbench.engine.evaluate import Truth, generate_pair, probe_prompt
from workbench.engine.student_text import probe_generator, sample_student_text
from workbench.events import ProbePrompt, StudentText


class Predictor:
    """A run's teacher and student, loaded for the soft-target panel and ``workbench predict``."""

    def __init__(
        self,
        teacher: torch.nn.Module,
        student: torch.nn.Module,
        tokenizer: Any,
        *,
        device: torch.device | None = None,
        language: Any = None,
    ):
        self.device = device or torch.device("cpu")
        self.teacher = teacher.to(self.device).eval()
        self.student = student.to(self.device).eval()
        self.tokenizer = tokenizer
        self.language = language
        self._vocab_cache: dict[int, list[str]] = {}

    @classmethod
    def from_run(cls, run_dir: str | Path, *, device: str = "cpu") -> Predictor:
        """Load the teacher and the (exported, else last checkpointed) student of a run folder."""
        teacher, student, tokenizer, language = load_run_models(Path(run_dir))
        return cls(teacher, student, tokenizer, device=torch.device(device), language=language)

    def _truth(self) -> Truth | None:
        return Truth(self.language, len(self.tokenizer)) if self.language is not None else None

    def probe(self, prompt: str) -> ProbePrompt:
        return probe_prompt(
            prompt,
            teacher=self.teacher,
            student=self.student,
            tokenizer=self.tokenizer,
            device=self.device,
            truth=self._truth(),
            vocab_tokens_cache=self._vocab_cache,
        )

    def generate(
        self, prompt: str, *, max_new_tokens: int = 30, temperature: float = 1.0, top_p: float = 0.95, seed: int = 0
    ) -> tuple[str, str]:
        return generate_pair(
            prompt,
            teacher=self.teacher,
            student=self.student,
            tokenizer=self.tokenizer,
            device=self.device,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
        )

    def sample_text(self, prompt: str, *, seed: int = 0, count: int = 16) -> StudentText:
        """The student's sampled continuation of ``prompt``, scored by the teacher (and the language), with the
        grammar's verdict over ``count`` samples drawn with ``seed``."""
        return sample_student_text(
            prompt,
            teacher=self.teacher,
            student=self.student,
            tokenizer=self.tokenizer,
            device=self.device,
            generator=probe_generator(self.device, seed, 0),
            count=count,
            language=self.language,
            seed=seed,
        )
