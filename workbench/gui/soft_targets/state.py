"""What the soft-targets panel shows, as a plain object without Qt (the panel is its view).

:class:`SoftTargetsState` owns the probe results (every prompt's cached teacher, student and true logits or
probabilities, per prompt position, and where each came from), the prompt list (the run's probe prompts and
the ones the user pinned), the shown prompt and position, the temperature, the divergence of the heat strip
and the number of words on the bars. From these it computes what is drawn: the distributions re-softened at
the temperature (numpy, no forward pass: what the distillation loss does with T), the divergence at every
position, the top-k rows with the prompt's known next token, entropies and the texts around the bars.

Only numpy, :mod:`workbench.probabilities` and :mod:`workbench.events` are imported here, so the tests build
and drive it without a display, and the arithmetic cannot touch a widget.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.events import STAGES, Probe, ProbePrompt, StudentText, event_from_dict
from workbench.probabilities import DIVERGENCES, divergence, entropy, soften

T_MIN, T_MAX, SLIDER_STEPS = 0.25, 10.0, 1000
SERIES = ("teacher", "student", "truth")
ANSWERED_BY_RUN_MODELS = "run folder models"


def read_probes(events_path: str | Path) -> list[Probe]:
    """The Probe events of an ``events.jsonl`` file, in file order (a torn or foreign line is skipped).

    Only lines that name the probe kind are parsed: a long run's file is mostly steps and evals."""
    probes = []
    with open(events_path, encoding="utf-8", errors="replace") as handle:  # damaged bytes: a line skipped
        for line in handle:
            if '"probe"' not in line:
                continue
            try:
                event = event_from_dict(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            if isinstance(event, Probe):
                probes.append(event)
    return probes


def _step_key(event: Probe) -> tuple[int, int]:
    """Where a probe sits in the replay: by stage (teacher before distill), then by step."""
    stage = STAGES.index(event.stage) if event.stage in STAGES else len(STAGES)
    return stage, int(event.step)


# -- small pure helpers ----------------------------------------------------------------------------------------------
def display_token(text: str) -> str:
    """A token as a readable label: surrounding spaces dropped, whitespace-only tokens shown as symbols."""
    shown = text.replace("\n", "↵").replace("\t", "⇥")
    stripped = shown.strip(" ")
    return stripped if stripped else ("␣" * min(max(len(shown), 1), 3))


def distinct_labels(tokens: list[str]) -> list[str]:
    """:func:`display_token` of each token, with the tokens that would look the same told apart: a subword
    tokenizer has both " the" (a word) and "the" (the end of one); the one that continues a word is shown
    as "…the"."""
    labels = [display_token(token) for token in tokens]
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    return [
        "…" + label if seen[label] > 1 and token[:1] not in (" ", "\n", "\t") and token.strip() else label
        for token, label in zip(tokens, labels, strict=True)
    ]


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
    """The slider position of ``temperature``: the slider is logarithmic from T_MIN to T_MAX."""
    return round(SLIDER_STEPS * math.log(temperature / T_MIN) / math.log(T_MAX / T_MIN))


def slider_to_temperature(value: int) -> float:
    return T_MIN * (T_MAX / T_MIN) ** (value / SLIDER_STEPS)


def clamp_temperature(temperature: float) -> float:
    return min(max(float(temperature), T_MIN), T_MAX)


@dataclass(frozen=True)
class Bars:
    """The bar chart at the shown position: one row per word, one series per distribution there is."""

    series: list[tuple[str, np.ndarray]]  # (teacher|student|truth, probability of each row's word), teacher first
    token_ids: np.ndarray  # each row's index into the prompt's vocab_tokens, top row first
    labels: list[str]  # each row's word, readable
    hard_row: int | None  # the row of the prompt's known next token (None at the last position)


class SoftTargetsState:
    """The soft-targets panel's model; see the module's documentation. Every setter keeps the derived arrays current."""

    def __init__(self, possible: Callable[[list[str]], bool] | None = None) -> None:
        # Whether the language the truth comes from can produce these tokens (the panel hands in the built-in
        # language's); a truth computed for a context it never produces is no true distribution at all.
        self.possible = possible
        self._cache: dict[str, ProbePrompt] = {}
        self._source: dict[str, str] = {}
        self._probe_prompts: list[str] = []
        self._pinned: list[str] = []
        self.run_temperature: float | None = None
        self._shown: ProbePrompt | None = None
        self._arrays: dict[str, np.ndarray | None] = {}  # teacher and student logits, true probabilities
        self._token_index: dict[str, int] = {}
        self._position = 0
        self._temperature = 1.0
        self._divergence = DIVERGENCES[0]
        self.top_k = 10
        self._probs: dict[str, np.ndarray | None] = {}
        self._heat = np.empty(0)
        self._history: list[Probe] = []  # the run's Probe events, ordered by (stage, step)
        self._history_keys: list[tuple[int, int]] = []  # their (stage, step) keys: a probe is placed by bisection
        self._replay_index: int | None = None  # None: show the newest probe (follow a live run)

    # -- the replay history --------------------------------------------------------------------------------------------
    def take_probe(self, event: Probe) -> bool:
        """Add a Probe event to the history; returns whether what is shown changed.

        While the replay follows the newest probe, the event is shown (see :meth:`_apply_probe`); while the
        user has moved the replay back to an earlier step, the history grows and the shown step stays.
        """
        keys, key = self._history_keys, _step_key(event)
        # the usual probe is the newest: appended without a search (a 100,000-event run has thousands)
        at = len(keys) if not keys or key > keys[-1] else bisect.bisect_left(keys, key)
        if at < len(keys) and keys[at] == key:
            self._history[at] = event  # a resumed run probes the same step again: the newer numbers win
        else:
            self._history.insert(at, event)
            keys.insert(at, key)
            if self._replay_index is not None and at <= self._replay_index:
                self._replay_index += 1  # an older step arrived: the shown probe keeps its place
        if self._replay_index is not None:
            return False
        if at != len(self._history) - 1:
            return False  # not the newest probe: the newest stays shown
        return self._apply_probe(event)

    def load_history(self, probes: list[Probe]) -> bool:
        """Replace the run's probes by ``probes`` (a finished run's, read from its events.jsonl) and show the
        newest; returns whether anything is shown."""
        self.forget_probes()
        shown = False
        for probe in probes:
            shown = self.take_probe(probe) or shown
        return shown

    def history(self) -> list[Probe]:
        return list(self._history)

    @property
    def replay_index(self) -> int | None:
        """The index in :meth:`history` of the probe shown, None while following the newest."""
        return self._replay_index

    def shown_index(self) -> int | None:
        """The index in :meth:`history` of the probe the numbers come from (None while there is none)."""
        if not self._history:
            return None
        return len(self._history) - 1 if self._replay_index is None else self._replay_index

    def is_following(self) -> bool:
        return self._replay_index is None

    def select_step(self, index: int) -> bool:
        """Show the probe at ``index`` of the history (clamped); the last one means "follow the newest".

        The shown prompt and position are kept when that probe has the prompt; otherwise (a typed prompt) its
        first probe prompt is shown. Returns whether anything is shown.
        """
        if not self._history:
            return False
        index = max(0, min(int(index), len(self._history) - 1))
        self._replay_index = None if index == len(self._history) - 1 else index
        event = self._history[index]
        names = [probe.prompt for probe in event.prompts]
        current = self.shown_prompt()
        self._apply_probe(event)
        if current not in names and names:
            self.show(names[0])
        return self._shown is not None

    def shown_samples(self) -> list[StudentText]:
        """The student's sampled texts of the shown probe (empty before the distillation stage, in runs recorded
        before probes held them, and with train.probe_samples = 0)."""
        index = self.shown_index()
        return list(self._history[index].samples) if index is not None else []

    def grammar_history(self) -> list[tuple[int, int, int]]:
        """(history index, grammatical, sentences) of every probe whose samples held complete sentences, in order
        of steps: the grammatical rate over the run."""
        rows = []
        for index, event in enumerate(self._history):
            good, total = event.grammatical()
            if total:
                rows.append((index, good, total))
        return rows

    def follow_latest(self) -> bool:
        """Go back to showing the newest probe, and to following new ones."""
        return self.select_step(len(self._history) - 1)

    def replay_label(self) -> str:
        """``step 40 of 200 (distill)``: the shown probe's step, of the last step probed in its stage."""
        index = self.shown_index()
        if index is None:
            return "no probes yet"
        event = self._history[index]
        last = max(probe.step for probe in self._history if probe.stage == event.stage)
        return f"step {event.step:,} of {last:,} ({event.stage})"

    # -- probe results -----------------------------------------------------------------------------------------------
    def _apply_probe(self, event: Probe) -> bool:
        """Cache a Probe event's prompts; returns whether the shown prompt changed or got fresh numbers.

        The shown prompt is refreshed (at the same position) when the event has it; otherwise the event's first
        prompt is shown, unless the user is looking at a prompt the run's models answered (typed, not probed).
        """
        self.run_temperature = float(event.temperature)
        source = f"step {event.step:,} ({event.stage})"
        for probe in event.prompts:
            self._cache[probe.prompt] = probe
            self._source[probe.prompt] = source
            if probe.prompt not in self._probe_prompts:
                self._probe_prompts.append(probe.prompt)
        names = [probe.prompt for probe in event.prompts]
        current = self.shown_prompt()
        if current in names:
            self.show(current, keep_position=True)
            return True
        if names and (current is None or current in self._probe_prompts):
            self.show(names[0])
            return True
        return False

    def take_answer(self, probe: ProbePrompt) -> None:
        """Cache and show what the run folder's models answered for a typed prompt."""
        self._cache[probe.prompt] = probe
        self._source[probe.prompt] = ANSWERED_BY_RUN_MODELS
        self.show(probe.prompt)

    def has_probes(self) -> bool:
        return bool(self._cache)

    def is_replayed(self, prompt: str) -> bool:
        """Whether ``prompt`` is one of the run's probe prompts with a replay history: its numbers come from the
        replayed step, never from the final models (which would not match the step the replay names)."""
        return any(prompt == probe.prompt for event in self._history for probe in event.prompts)

    def is_cached(self, prompt: str) -> bool:
        return prompt in self._cache

    def forget_probes(self) -> None:
        """Drop every cached result and the run's probe prompts (pins stay); nothing is shown afterwards."""
        self._cache.clear()
        self._source.clear()
        self._probe_prompts.clear()
        self._history.clear()
        self._history_keys.clear()
        self._replay_index = None
        self.run_temperature = None
        self.show_nothing()

    # -- the prompt list -------------------------------------------------------------------------------------------
    def listed_prompts(self) -> list[str]:
        """The prompts in the list: the run's probe prompts, then the ones the user pinned."""
        return self._probe_prompts + [p for p in self._pinned if p not in self._probe_prompts]

    def pin(self, prompt: str) -> bool:
        """Keep ``prompt`` in the list; returns whether the list changed."""
        if not prompt or prompt in self._pinned:
            return False
        self._pinned.append(prompt)
        return True

    def unpin(self, prompt: str) -> bool:
        if prompt not in self._pinned:
            return False
        self._pinned.remove(prompt)
        return True

    def is_pinned(self, prompt: str) -> bool:
        return prompt in self._pinned

    # -- what is shown -------------------------------------------------------------------------------------------------
    def show(self, prompt: str, keep_position: bool = False) -> None:
        """Show the cached result of ``prompt``, at its last position unless ``keep_position`` and it is shown already."""
        probe = self._cache[prompt]
        same_prompt = self.shown_prompt() == prompt
        self._shown = probe
        self._arrays = {
            "teacher": np.asarray(probe.teacher_logits, np.float64),
            "student": np.asarray(probe.student_logits, np.float64) if probe.student_logits else None,
            # Empty when the run has no exact distribution (its data is not the built-in language).
            "truth": np.asarray(probe.true_probs, np.float64) if probe.true_probs else None,
        }
        self._token_index = {}
        for i, text in enumerate(probe.vocab_tokens):
            self._token_index.setdefault(text, i)
        last = len(probe.tokens) - 1
        self._position = min(self._position, last) if keep_position and same_prompt else last
        self._resoften()

    def show_nothing(self) -> None:
        self._shown = None
        self._arrays = {}
        self._probs = {}
        self._heat = np.empty(0)

    @property
    def shown(self) -> ProbePrompt | None:
        return self._shown

    def shown_prompt(self) -> str | None:
        return self._shown.prompt if self._shown is not None else None

    @property
    def position(self) -> int:
        """The shown position: the bars are the distributions of the token after token ``position``."""
        return self._position

    def set_position(self, position: int) -> None:
        if self._shown is not None:
            self._position = max(0, min(int(position), len(self._shown.tokens) - 1))

    @property
    def temperature(self) -> float:
        return self._temperature

    def set_temperature(self, temperature: float) -> None:
        """Re-soften the cached logits at ``temperature``, clamped to T_MIN..T_MAX (no forward pass)."""
        self._temperature = clamp_temperature(temperature)
        self._resoften()

    def slider_value(self) -> int:
        return temperature_to_slider(self._temperature)

    def set_slider_value(self, value: int) -> None:
        self.set_temperature(slider_to_temperature(value))

    @property
    def divergence(self) -> str:
        """What the heat strip measures: one of ``probabilities.DIVERGENCES``."""
        return self._divergence

    def set_divergence(self, kind: str) -> None:
        if kind not in DIVERGENCES:
            raise ValueError(f"unknown divergence {kind!r}; use one of {DIVERGENCES}")
        self._divergence = kind
        self._measure()

    # -- derived: what is drawn ------------------------------------------------------------------------------------------
    def distributions(self) -> dict[str, np.ndarray]:
        """Every position's next-word distribution of teacher, student and truth (those there are) at the
        temperature; the truth does not change with T."""
        return {name: values for name, values in self._probs.items() if values is not None}

    def heat(self) -> np.ndarray:
        """The divergence between teacher and student after each token (NaN while there is no student)."""
        return self._heat.copy()

    def hard_label(self) -> str | None:
        """The prompt's actual next token at the shown position (None at the last position)."""
        if self._shown is None or self._position + 1 >= len(self._shown.tokens):
            return None
        return self._shown.tokens[self._position + 1]

    def has_truth(self) -> bool:
        """Whether the shown prompt came with true distributions (the run's data is the built-in language)."""
        return self._shown is not None and self._arrays.get("truth") is not None

    def truth_unreachable(self) -> bool:
        """Whether the shown context (the tokens up to the shown position) is one that the language never
        produces: then it has no true next-word distribution, and none is shown."""
        if not self.has_truth() or self.possible is None:
            return False
        return not self.possible(list(self._shown.tokens[: self._position + 1]))

    def context(self) -> str:
        """The shown context as text, clipped to its last 40 characters."""
        if self._shown is None:
            return ""
        context = join_tokens(self._shown.tokens[: self._position + 1]).strip()
        return ("…" + context[-40:]) if len(context) > 40 else context

    def rows_at_position(self) -> list[tuple[str, np.ndarray]]:
        """(name, distribution) at the shown position for each series that has a row there, teacher first (no
        truth where the context is one the language never produces)."""
        p = self._position
        skip = {"truth"} if self.truth_unreachable() else set()
        return [
            (name, self._probs[name][p])
            for name in SERIES
            if name not in skip and self._probs.get(name) is not None and len(self._probs[name]) > p
        ]

    def bars(self) -> Bars | None:
        """The top-k words at the shown position (plus the known next token when it is not among them)."""
        if self._shown is None:
            return None
        rows = self.rows_at_position()
        hard = self.hard_label()
        hard_index = self._token_index.get(hard) if hard is not None else None
        idx = top_tokens([values for _, values in rows], self.top_k, hard_index)
        hard_row = int(np.flatnonzero(idx == hard_index)[0]) if hard_index is not None else None
        return Bars(
            [(name, values[idx]) for name, values in rows],
            idx,
            distinct_labels([self._shown.vocab_tokens[i] for i in idx]),
            hard_row,
        )

    def entropies(self) -> dict[str, float]:
        """Entropy (nats) of each shown distribution at the shown position and temperature."""
        return {name: float(entropy(values)) for name, values in self.rows_at_position()}

    def readout(self, token_id: int) -> str:
        """The exact probabilities of vocab entry ``token_id`` at the shown position, as one line."""
        if self._shown is None:
            return ""
        parts = [f"“{display_token(self._shown.vocab_tokens[token_id])}”"]
        parts += [f"{name} {values[token_id]:.3f}" for name, values in self.rows_at_position()]
        return "   ".join(parts)

    def title(self) -> str:
        """``Next word after “the cat”  ·  position 2 of 6  ·  step 100 (distill)``: the context, clipped."""
        if self._shown is None:
            return ""
        tokens = self._shown.tokens
        context = join_tokens(tokens[: self._position + 1])
        context = ("…" + context[-40:]) if len(context) > 40 else context
        source = self._source.get(self._shown.prompt, "")
        return f"Next word after “{context.strip()}”  ·  position {self._position + 1} of {len(tokens)}" + (
            f"  ·  {source}" if source else ""
        )

    def _resoften(self) -> None:
        if self._shown is None:
            return
        student = self._arrays["student"]
        self._probs = {
            "teacher": soften(self._arrays["teacher"], self._temperature),
            "student": soften(student, self._temperature) if student is not None else None,
            "truth": self._arrays["truth"],  # probabilities already, and T does not change the truth
        }
        self._measure()

    def _measure(self) -> None:
        if self._shown is None:
            return
        teacher, student = self._probs["teacher"], self._probs["student"]
        if student is None:
            self._heat = np.full(len(self._shown.tokens), np.nan)
        else:
            self._heat = divergence(teacher, student, self._divergence)
