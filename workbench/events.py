"""What leaves the engine: small records of plain Python numbers and strings.

``train.run`` reports only through ``on_event(event)``. Every event is a frozen
dataclass with a ``kind``; ``to_dict`` / ``event_from_dict`` give the JSON line
written to ``events.jsonl``, so a run can be replayed from its folder exactly as
it was seen live. Events never hold tensors, so they can cross threads and
processes freely.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

STAGES = ("setup", "teacher", "distill", "evaluate", "export")


@dataclass(frozen=True)
class StageStarted:
    """A stage begins: ``setup`` (loading), ``teacher`` (stage 1), ``distill`` (stage 2), ``evaluate``, ``export``."""

    stage: str
    total_steps: int = 0
    message: str = ""
    kind: str = "stage"


@dataclass(frozen=True)
class Step:
    """Training progress, one per ``log_interval`` optimizer steps.

    ``kd`` and ``ce`` are the two terms before weighting (``kd`` already carries
    T^2 when that switch is on); ``loss`` is the weighted total that was
    minimised. In the teacher stage ``kd`` is NaN and ``loss == ce``. ``hidden`` is the
    hidden-state matching term before its weight (distill.hidden_weight), NaN when that is
    off (and in events written before it existed).

    ``generate_s`` is the part of the log window's time the student spent writing its own samples
    (``distill.on_policy``; 0 otherwise). ``tokens_per_s`` counts those sequences' tokens over the whole
    window, generation included.
    """

    stage: str
    step: int
    total_steps: int
    loss: float
    kd: float
    ce: float
    lr: float
    grad_norm: float
    tokens_per_s: float
    elapsed_s: float
    eta_s: float
    memory_bytes: int = 0
    generate_s: float = 0.0
    hidden: float = math.nan
    kind: str = "step"


@dataclass(frozen=True)
class Eval:
    """Held-out metrics at one step. ``metrics`` maps a metric name to a float.

    Names used: ``student_ce``, ``student_ppl``, ``teacher_ce``, ``teacher_ppl``,
    ``kl_teacher_student``, ``top1_agreement``, ``top5_agreement``, and on the
    built-in language ``kl_true_teacher``, ``kl_true_student`` and
    ``entropy_floor``. In the teacher stage only the ``teacher_*`` ones (and
    ``kl_true_teacher``) are present.
    """

    stage: str
    step: int
    metrics: dict[str, float]
    kind: str = "eval"


@dataclass(frozen=True)
class ProbePrompt:
    """Next-word distributions for one prompt at every position.

    ``tokens`` are the prompt's tokens as text. ``teacher_logits[p]`` and
    ``student_logits[p]`` are the logits after position ``p`` (predicting token
    ``p + 1``), over ``vocab_ids`` (the whole vocabulary when ``vocab_ids`` is
    empty; for big vocabularies the union of both models' top tokens, so
    re-softening with another temperature is exact over that set). ``true_probs``
    holds the exact next-word distribution on the built-in language (same
    indexing), else it is empty. In the teacher stage there is no student yet
    and ``student_logits`` is empty.
    """

    prompt: str
    tokens: list[str]
    teacher_logits: list[list[float]]
    student_logits: list[list[float]]
    vocab_ids: list[int] = field(default_factory=list)
    vocab_tokens: list[str] = field(default_factory=list)
    true_probs: list[list[float]] = field(default_factory=list)


@dataclass(frozen=True)
class StudentText:
    """The student's own sampled continuation of a prompt, judged token by token by the teacher.

    ``tokens`` are the sampled tokens as text (the prompt not included). Per token:
    ``teacher_logprob`` is the teacher's log-probability of it given everything before it (at T = 1), ``kl`` the
    KL(teacher || student) of the two next-token distributions at that position (nats). On the built-in language
    ``true_prob`` is its exact probability and ``forbidden`` says whether that is 0 (the language can never
    write it there); off it both are empty. ``grammatical`` of ``sentences`` is the count over a batch of
    continuations sampled together (this one is the first): complete sentences (up to the end token) that the
    language can produce; both are 0 off the built-in language. ``seed`` draws the batch again.
    """

    prompt: str
    tokens: list[str]
    teacher_logprob: list[float]
    kl: list[float]
    true_prob: list[float] = field(default_factory=list)
    forbidden: list[bool] = field(default_factory=list)
    grammatical: int = 0
    sentences: int = 0
    seed: int = 0


@dataclass(frozen=True)
class Probe:
    """Teacher and student next-word distributions for the configured prompts, and (``train.probe_samples``, in
    the distillation stage) the student's sampled text for each; ``samples`` is empty in events written before
    it existed, in the teacher stage and when it is off."""

    stage: str
    step: int
    temperature: float
    prompts: list[ProbePrompt]
    kind: str = "probe"
    samples: list[StudentText] = field(default_factory=list)

    def grammatical(self) -> tuple[int, int]:
        """(grammatical, sentences) over every prompt's batch of samples."""
        return sum(s.grammatical for s in self.samples), sum(s.sentences for s in self.samples)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint was written (atomically) to ``path``."""

    stage: str
    step: int
    path: str
    kind: str = "checkpoint"


@dataclass(frozen=True)
class Log:
    """A line worth showing the user (a warning, a file written, a choice made)."""

    message: str
    level: str = "info"
    kind: str = "log"


@dataclass(frozen=True)
class Finished:
    """The run ended. ``status`` is ``completed``, ``stopped`` (resumable) or ``cancelled``."""

    status: str
    run_dir: str
    summary: dict[str, Any]
    kind: str = "finished"


@dataclass(frozen=True)
class Failed:
    """The run failed: one sentence for the user and a hint on what to do."""

    message: str
    hint: str = ""
    run_dir: str = ""
    user_error: bool = False
    """True when the user can fix it (a bad value, a missing file, tokenizers that differ): the CLI exits with 2."""
    kind: str = "failed"


Event = StageStarted | Step | Eval | Probe | Checkpoint | Log | Finished | Failed

_KINDS: dict[str, type] = {
    cls.__dataclass_fields__["kind"].default: cls  # type: ignore[attr-defined]
    for cls in (StageStarted, Step, Eval, Probe, Checkpoint, Log, Finished, Failed)
}


def to_dict(event: Any) -> dict[str, Any]:
    return dataclasses.asdict(event)


LOGIT_FIELDS = ("teacher_logits", "student_logits")
"""Probe logits use -inf for tokens a model cannot produce; in JSON those are written as null."""


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN and infinity replaced by None, so it is strict JSON (jq, browsers and most
    languages refuse the NaN literal Python writes by default)."""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        value = float(value)  # numpy floats too
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def _none_to(value: Any, fill: float) -> Any:
    if value is None:
        return fill
    if isinstance(value, list):
        return [_none_to(v, fill) for v in value]
    return value


def event_from_dict(data: dict[str, Any]) -> Any:
    """Inverse of ``to_dict`` (used to replay ``events.jsonl``). A null where a number belongs reads as NaN
    (a gap in a curve), in probe logits as -inf; files written before nulls, with NaN literals, read too."""
    data = dict(data)
    cls = _KINDS[data["kind"]]
    if cls is Probe:
        prompts = []
        for prompt in data["prompts"]:
            prompt = dict(prompt)
            for name in LOGIT_FIELDS:
                prompt[name] = _none_to(prompt.get(name, []), -math.inf)
            prompt["true_probs"] = _none_to(prompt.get("true_probs", []), math.nan)
            prompts.append(ProbePrompt(**prompt))
        data["prompts"] = prompts
        samples = []
        for sample in data.get("samples", []):
            sample = dict(sample)
            sample["teacher_logprob"] = _none_to(sample.get("teacher_logprob", []), -math.inf)
            sample["kl"] = _none_to(sample.get("kl", []), math.nan)
            sample["true_prob"] = _none_to(sample.get("true_prob", []), math.nan)
            samples.append(StudentText(**sample))
        data["samples"] = samples
    for f in dataclasses.fields(cls):
        if f.type in ("float", float) and data.get(f.name, 0) is None:
            data[f.name] = math.nan
    if cls is Eval:
        data["metrics"] = {k: math.nan if v is None else v for k, v in data["metrics"].items()}
    if cls is Finished:
        data["summary"] = {k: math.nan if v is None else v for k, v in data["summary"].items()}
    return cls(**data)


def to_json(event: Any) -> str:
    """One strict-JSON line: non-finite numbers become null (see :func:`event_from_dict`)."""
    return json.dumps(finite_or_none(to_dict(event)), separators=(",", ":"), allow_nan=False)


def read_events(path: str) -> list[Any]:
    """All events of an ``events.jsonl`` file; a torn last line (killed run) is skipped, as is any line that is not
    an event (edited by hand, damaged on disk: bytes that are not UTF-8 are read as U+FFFD)."""
    events = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                events.append(event_from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError, AttributeError):  # JSONDecodeError is a ValueError
                continue
    return events
