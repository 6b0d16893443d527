"""A newcomer's explanations, written with the user's own numbers: what the help panel ("What am I looking at?") says.

Four sections, each a short piece of rich text (a subset of HTML that Qt's rich text draws):

- ``soft_targets``: the teacher's soft target at the shown position against the one-hot hard label;
- ``temperature``: the same distribution at T = 1 and at another T (top probability, entropy in bits);
- ``t_squared``: why the soft term is multiplied by T², with the gradient it would have without, and the switch;
- ``kl``: forward vs reverse KL between the shown teacher and student distributions, and the words each
  charges most for.

The numbers come from a :class:`Moment` (one position of a prompt: the teacher's and the student's logits, the
known next token, the temperature on the bars) and the form's :class:`Settings`. With no moment (no run, no
prompt yet) every section still explains its idea and says how to get numbers of one's own.

Ground floor: numpy through :mod:`workbench.probabilities` only, no Qt and no torch, so the text is unit-tested.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

import numpy as np

from workbench.events import ProbePrompt
from workbench.probabilities import divergence, entropy, soften

SECTIONS = ("soft_targets", "temperature", "t_squared", "kl")
TITLES = {
    "soft_targets": "Soft targets vs the hard label",
    "temperature": "What the temperature T does",
    "t_squared": "Why the soft term is multiplied by T²",
    "kl": "Forward vs reverse KL",
}
GET_THERE = "Train the demo (Start) or type a prompt in the soft-targets panel to fill this in."
GET_NUMBERS = (
    "To see this with real numbers: press <b>Start</b> (Ctrl+R) to train the demo on the built-in language "
    "(File ▸ Load preset ▸ demo is the quickest: under a minute on a CPU); its probe prompts appear in the "
    "soft-targets panel as it runs. A finished run (Runs tab, “Show in soft targets”) answers any prompt you "
    "type there."
)
_DIVERGENCE_WORDS = {
    "forward_kl": "forward KL(teacher‖student), the classic choice (Hinton et al., 2015)",
    "reverse_kl": "reverse KL(student‖teacher)",
    "jsd": "the generalized Jensen-Shannon divergence, between the two (beta 0 is close to forward, 1 to reverse)",
    "skew_forward_kl": "skew forward KL (forward KL against a student mixed with a little of the teacher)",
    "skew_reverse_kl": "skew reverse KL (reverse KL against a teacher mixed with a little of the student)",
    "tv": "total variation (half the summed absolute differences; neither KL)",
}
_SAME_T = 1e-3


@dataclass(frozen=True)
class Moment:
    """What the soft-targets panel shows: the next-word distributions after ``context`` at one position."""

    context: str  # the prompt's text up to and including the shown token
    words: list[str]  # the vocabulary entries (token strings) the logits are over
    teacher_logits: np.ndarray  # 1-D, over ``words``
    student_logits: np.ndarray | None  # None in the teacher stage
    hard_label: str | None  # the prompt's next token after ``context``; None at the prompt's end
    temperature: float  # the temperature the bars are drawn at (the panel's slider)


@dataclass(frozen=True)
class Settings:
    """The form's distillation settings the explanations quote."""

    temperature: float = 2.0
    alpha: float = 0.5
    t_squared: bool = True
    divergence: str = "forward_kl"


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    html: str

    def text(self) -> str:
        """The section as plain text: tags dropped, entities decoded (what tests and screen readers read)."""
        return html.unescape(re.sub(r"<[^>]+>", " ", self.html)).replace("\xa0", " ")


def moment_from_probe(probe: ProbePrompt, position: int, temperature: float) -> Moment:
    """The :class:`Moment` of ``probe`` after token ``position`` at ``temperature``."""
    position = max(0, min(int(position), len(probe.tokens) - 1))
    student = np.asarray(probe.student_logits[position], np.float64) if probe.student_logits else None
    words = list(probe.vocab_tokens) or [str(i) for i in range(len(probe.teacher_logits[position]))]
    tokens = probe.tokens[: position + 1]
    context = "".join(tokens) if any(t[:1].isspace() for t in tokens[1:]) else " ".join(tokens)
    hard = probe.tokens[position + 1] if position + 1 < len(probe.tokens) else None
    return Moment(
        context.strip(),
        words,
        np.asarray(probe.teacher_logits[position], np.float64),
        student,
        hard,
        float(temperature),
    )


# -- formatting --------------------------------------------------------------------------------------------------
def word(token: str) -> str:
    """A token as a readable, escaped word in quotes: spaces around it dropped, whitespace shown as symbols."""
    shown = token.replace("\n", "↵").replace("\t", "⇥").strip(" ")
    return f"“{html.escape(shown or '␣')}”"


def percent(p: float) -> str:
    """41%, 4.2%, 0.3%, <0.1%: as many digits as a newcomer needs."""
    value = 100.0 * float(p)
    if value >= 9.95:
        return f"{value:.0f}%"
    if value >= 0.05:
        return f"{value:.1f}%"
    return "<0.1%"


def bits(p: np.ndarray) -> float:
    """Entropy in bits."""
    return float(entropy(p)) / math.log(2.0)


def _t(value: float) -> str:
    return f"{value:g}" if abs(value - round(value, 2)) < 1e-9 else f"{value:.2f}"


def _listing(words: list[str], probs: np.ndarray, idx: np.ndarray) -> str:
    return ", ".join(f"{word(words[i])} {percent(probs[i])}" for i in idx)


def _muted(text: str) -> str:
    return f"<span class='muted'>{text}</span>"


def _table(header: list[str], rows: list[list[str]], footer: list[str]) -> str:
    """A full-width rich-text table: the first column (the words) left-aligned, the numbers right-aligned."""

    def row(cells: list[str], tag: str) -> str:
        first, *rest = cells
        return (
            f"<tr><{tag} align='left'>{first}</{tag}>"
            + "".join(f"<{tag} align='right'>{c}</{tag}>" for c in rest)
            + "</tr>"
        )

    body = "".join(row(r, "td") for r in rows)
    return f"<table width='100%' cellspacing='0' cellpadding='2'>{row(header, 'th')}{body}{row(footer, 'td')}</table>"


def comparison_temperature(moment: Moment, settings: Settings) -> float:
    """The T the temperature section puts beside T = 1: the bars' when the slider is off 1, else the run's
    (distill.temperature), else 4."""
    for t in (moment.temperature, settings.temperature):
        if abs(t - 1.0) > _SAME_T:
            return float(t)
    return 4.0


# -- the sections ------------------------------------------------------------------------------------------------------
def explain(moment: Moment | None, settings: Settings) -> list[Section]:
    """The help panel's sections, in :data:`SECTIONS` order."""
    build = {
        "soft_targets": _soft_targets,
        "temperature": _temperature,
        "t_squared": _t_squared,
        "kl": _kl,
    }
    return [Section(key, TITLES[key], build[key](moment, settings)) for key in SECTIONS]


def _soft_targets(m: Moment | None, s: Settings) -> str:
    idea = (
        "<p>A <b>hard label</b> is the word that actually came next in the training text: 100% on it, 0% on "
        "every other word. A <b>soft target</b> is the teacher's whole next-word distribution "
        "softmax(logits / T): it also says which other words were plausible and how much. Distillation trains "
        "the student on both: "
        f"loss = α·{'T²·' if s.t_squared else ''}D(teacher‖student) + (1 − α)·CE(hard label), here with "
        f"α = {s.alpha:g} (distill.alpha in the form).</p>"
    )
    if m is None:
        return (
            idea + "<p>With a prompt shown in the soft-targets panel, this section quotes the teacher's top words "
            "for it and what the hard label keeps of them.</p>"
            f"<p>{GET_NUMBERS}</p>"
        )
    p = soften(m.teacher_logits, m.temperature)
    order = np.argsort(-p, kind="stable")
    top = order[:4]
    at_t = "" if abs(m.temperature - 1.0) < _SAME_T else f" (at T = {_t(m.temperature)}, as on the bars)"
    parts = [f"<p>For “{html.escape(m.context)}”, the teacher gives {_listing(m.words, p, top)}{at_t}.</p>"]
    hard = m.hard_label
    hard_index = m.words.index(hard) if hard is not None and hard in m.words else None
    if hard_index is not None:
        rank = int(np.flatnonzero(order == hard_index)[0]) + 1
        parts.append(
            f"<p>The hard label says only {word(hard)} (100%), the word that comes next in this prompt (★ on the "
            f"bars); the teacher gives it {percent(p[hard_index])}"
            + (", its first choice." if rank == 1 else f", its choice number {rank}.")
            + "</p>"
        )
        others = [i for i in order[:4] if i != hard_index]
    elif hard is not None:
        parts.append(
            f"<p>The hard label says only {word(hard)} (100%), the word that comes next in this prompt; the "
            "teacher gives it less than any word it kept for the bars (the probe keeps each model's top words of "
            "a large vocabulary).</p>"
        )
        others = [int(i) for i in order[:3]]
    else:
        first = int(order[0])
        parts.append(
            f"<p>The prompt ends here, so no next word is known: if the text went on with {word(m.words[first])}, "
            f"the hard label would say only {word(m.words[first])} (100%) and every other word 0%. (Click an "
            "earlier token in the strip to see a prompt's real next word, starred on the bars.)</p>"
        )
        others = [int(i) for i in order[1:4]]
    plausible = [i for i in others if p[i] >= 0.01][:3]
    if plausible:
        names = [word(m.words[i]) for i in plausible]
        joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        parts.append(
            f"<p>The soft target also says {joined} {'are' if len(plausible) > 1 else 'is'} plausible "
            f"({', '.join(percent(p[i]) for i in plausible)}): that is what distillation passes on, and what "
            "the hard label cannot teach.</p>"
        )
    if m.student_logits is not None:
        q = soften(m.student_logits, m.temperature)
        parts.append(f"<p>{_muted('The student now gives ' + _listing(m.words, q, top) + ' for the same words.')}</p>")
    return idea + "".join(parts)


def _temperature(m: Moment | None, s: Settings) -> str:
    idea = (
        "<p>The temperature divides the logits before the softmax: softmax(logits / T). T above 1 flattens the "
        "distribution (the top word loses probability, the unlikely ones gain), T below 1 sharpens it; the "
        "order of the words never changes. Both the teacher and the student are softened with the same T in the "
        "loss, so the student sees more of the teacher's second and third choices. The slider re-softens the "
        f"bars without asking the models; the form distils at T = {_t(s.temperature)} (distill.temperature).</p>"
    )
    if m is None:
        return idea + (
            "<p>With a prompt shown, this section puts the teacher's distribution at T = 1 beside the one at "
            "your T: the top word's probability and the entropy in bits at both.</p>"
            f"<p>{_muted(GET_THERE)}</p>"
        )
    t = comparison_temperature(m, s)
    p1, pt = soften(m.teacher_logits, 1.0), soften(m.teacher_logits, t)
    order = np.argsort(-p1, kind="stable")
    first = int(order[0])
    h1, ht = bits(p1), bits(pt)
    table = _table(
        ["word", "T = 1", f"T = {_t(t)}"],
        [[word(m.words[i]), percent(p1[i]), percent(pt[i])] for i in order[:5]],
        [_muted("entropy"), f"{h1:.2f} bits", f"{ht:.2f} bits"],
    )
    return idea + (
        f"<p>Here the teacher's top word {word(m.words[first])} has {percent(p1[first])} at T = 1 and "
        f"{percent(pt[first])} at T = {_t(t)}; its entropy goes from {h1:.2f} bits to {ht:.2f} bits "
        f"(about {2**h1:.1f} → {2**ht:.1f} equally likely words).</p>{table}"
    )


def _grad_norm(teacher: np.ndarray, student: np.ndarray, t: float) -> float:
    """|d KL(teacher_T || student_T) / d student logits| = |student_T - teacher_T| / T (Euclidean norm)."""
    return float(np.linalg.norm(soften(student, t) - soften(teacher, t))) / t


def _t_squared(m: Moment | None, s: Settings) -> str:
    idea = (
        "<p>The soft term's gradient on the student's logits is (student<sub>T</sub> − teacher<sub>T</sub>) / T, "
        "and for large T the difference itself shrinks like 1/T, so the gradient shrinks like 1/T². Multiplying "
        "the soft term by T² gives it back its size, so the balance α sets between the soft and the hard term "
        "stays the same whatever T you choose.</p>"
    )
    t = s.temperature
    if abs(t - 1.0) < _SAME_T:
        switch = (
            f"<p>Your switch (“Scale by T²”, distill.t_squared) is <b>{'on' if s.t_squared else 'off'}</b>; at the "
            "form's T = 1 that changes nothing (T² = 1). It matters as soon as T moves away from 1.</p>"
        )
    elif s.t_squared:
        switch = (
            f"<p>Your switch (“Scale by T²”, distill.t_squared) is <b>on</b>: at T = {_t(t)} the soft term is "
            f"multiplied by T² = {t * t:.2f}.</p>"
        )
    else:
        switch = (
            f"<p>Your switch (“Scale by T²”, distill.t_squared) is <b>off</b>: at T = {_t(t)} the soft term's "
            f"gradients are about {t * t:.2f} times {'weaker' if t > 1 else 'stronger'} than α = {s.alpha:g} "
            "suggests, and changing T also changes the soft/hard balance.</p>"
        )
    if m is None or m.student_logits is None:
        missing = (
            "<p>With a student on the bars, this section measures that gradient for the shown prompt at T = 1 "
            "and at the run's T.</p>"
            if m is not None
            else "<p>With a prompt shown, this section measures that gradient for it at T = 1 and at the run's T.</p>"
        )
        return idea + switch + missing + ("" if m is not None else f"<p>{_muted(GET_THERE)}</p>")
    t_grad = t if abs(t - 1.0) > _SAME_T else comparison_temperature(m, s)
    g1 = _grad_norm(m.teacher_logits, m.student_logits, 1.0)
    gt = _grad_norm(m.teacher_logits, m.student_logits, t_grad)
    ratio = gt / g1 if g1 > 0 else float("nan")
    return (
        idea
        + (
            f"<p>For the shown prompt the gradient's size is {g1:.3f} at T = 1 and {gt:.3f} at T = {_t(t_grad)}: "
            f"×{ratio:.3f}, where 1/T² = {1 / t_grad**2:.3f}. Times T² = {t_grad**2:.2f} it is "
            f"{gt * t_grad**2:.3f}.</p>"
        )
        + switch
    )


def _kl(m: Moment | None, s: Settings) -> str:
    idea = (
        "<p><b>Forward KL</b>(teacher‖student) = Σ teacher·log(teacher/student) is <i>mass-covering</i>: it "
        "charges most where the teacher gives a word probability that the student does not, so the student "
        "learns to spread over every word the teacher finds plausible. <b>Reverse KL</b>(student‖teacher) = "
        "Σ student·log(student/teacher) is <i>mode-seeking</i>: it charges most where the student puts "
        "probability the teacher does not, and hardly minds a plausible word the student leaves out.</p>"
    )
    setting = (
        f"<p>Your run uses {_DIVERGENCE_WORDS.get(s.divergence, html.escape(s.divergence))} "
        "(distill.divergence). The heat strip under the prompt shows the forward KL at every position.</p>"
    )
    if m is None or m.student_logits is None:
        missing = (
            "<p>There is no student on the bars yet (teacher stage): once distillation starts, this section "
            "computes both divergences between the teacher's and the student's bars.</p>"
            if m is not None
            else "<p>With a prompt shown, this section computes both divergences between the teacher's and the "
            f"student's bars and names the words each charges most for.</p><p>{_muted(GET_THERE)}</p>"
        )
        return idea + setting + missing
    p, q = soften(m.teacher_logits, m.temperature), soften(m.student_logits, m.temperature)
    forward, reverse = float(divergence(p, q)), float(divergence(q, p))
    fwd_terms = p * (np.log(np.clip(p, 1e-12, None)) - np.log(np.clip(q, 1e-12, None)))
    rev_terms = q * (np.log(np.clip(q, 1e-12, None)) - np.log(np.clip(p, 1e-12, None)))
    top_f = np.argsort(-fwd_terms, kind="stable")[:2]
    top_r = np.argsort(-rev_terms, kind="stable")[:2]

    def charged(idx: np.ndarray, terms: np.ndarray) -> str:
        return (
            "; ".join(
                f"{word(m.words[i])} (teacher {percent(p[i])}, student {percent(q[i])}: {terms[i]:+.3f})"
                for i in idx
                if terms[i] > 0
            )
            or "no word in particular"
        )

    rows_idx = list(dict.fromkeys([*np.argsort(-p, kind="stable")[:3], *top_f, *top_r]))
    table = _table(
        ["word", "teacher", "student", "fwd", "rev"],
        [
            [word(m.words[i]), percent(p[i]), percent(q[i]), f"{fwd_terms[i]:+.3f}", f"{rev_terms[i]:+.3f}"]
            for i in rows_idx
        ],
        [_muted("KL (all words)"), "", "", f"{forward:.3f}", f"{reverse:.3f}"],
    )
    return (
        idea
        + f"<p>Between the bars (T = {_t(m.temperature)}): forward KL = <b>{forward:.3f} nats</b>, reverse KL = <b>{reverse:.3f} "
        f"nats</b>. Forward KL charges most for {charged(top_f, fwd_terms)}. Reverse KL charges most for "
        f"{charged(top_r, rev_terms)}.</p>{table}"
        + f"<p>{_muted('fwd: each word’s teacher·log(teacher/student); rev: student·log(student/teacher).')}</p>"
        + setting
    )
