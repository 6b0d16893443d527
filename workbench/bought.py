"""What distillation bought: a finished run's teacher, distilled student and (when there is one) hard-label
baseline side by side, and the differences in plain words.

Ground floor (no torch, no Qt): everything here is read from the run folders' ``summary.json`` files and the
sizes of their saved model folders. The window's card (``gui/runs/bought_card.py``) and ``workbench runs bought``
both show what :func:`build_card` returns. A value that was not measured is ``None`` here, "–" on screen, and
left out of the sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config.presets import diff_configs
from workbench.run_folder import RunInfo, list_runs, read_run

MISSING = "–"
COLUMNS = ("teacher", "distilled", "baseline")
COLUMN_TITLES = {"teacher": "Teacher", "distilled": "Distilled student", "baseline": "Hard-label student"}
WEIGHT_SUFFIXES = (".safetensors", ".bin")

# (row key, label, how the number is written)
ROWS = (
    ("params", "Parameters", "count"),
    ("disk_bytes", "Size on disk", "bytes"),
    ("latency_ms", "Next-token latency", "ms"),
    ("speedup", "Speed-up vs teacher", "times"),
    ("ce", "Held-out cross-entropy", "nats"),
    ("ppl", "Perplexity", "ppl"),
    ("kl_teacher", "KL to the teacher", "nats"),
    ("kl_true", "KL to the truth", "nats"),
    ("top1", "Top-1 agreement with teacher", "percent"),
)
# The rows on which the card marks the better student (lower is better but for agreement). Not the sizes and
# speeds: both students have the same architecture, so their latencies differ only by measurement noise.
COMPARED = {"ce", "ppl", "kl_teacher", "kl_true", "top1"}
LOWER_IS_BETTER = {"ce", "ppl", "kl_teacher", "kl_true"}


@dataclass
class Card:
    """The side-by-side numbers (``values[row][column]``, None when not measured) and the sentence."""

    run_name: str
    run_path: str
    baseline_name: str | None
    baseline_path: str | None
    values: dict[str, dict[str, float | None]]
    sentence: str
    notes: list[str] = field(default_factory=list)
    distilled: bool = True  # False for a run with alpha = 0: its student learnt from hard labels only

    def title(self, column: str) -> str:
        if column == "distilled" and not self.distilled:
            return "Student (hard labels)"
        return COLUMN_TITLES[column]

    @property
    def columns(self) -> tuple[str, ...]:
        return COLUMNS if self.baseline_path is not None else COLUMNS[:2]

    def cell(self, row: str, column: str) -> str:
        kind = next(k for key, _, k in ROWS if key == row)
        return format_value(self.values[row].get(column), kind)

    def rows(self) -> list[tuple[str, str, list[str]]]:
        """(row key, label, the cells of :attr:`columns`)."""
        return [(key, label, [self.cell(key, c) for c in self.columns]) for key, label, _ in ROWS]

    def better(self, row: str) -> str | None:
        """Which student is better on ``row`` ("distilled" / "baseline"), None without both or on a tie."""
        if self.baseline_path is None or row not in COMPARED:
            return None
        soft, hard = self.values[row].get("distilled"), self.values[row].get("baseline")
        if soft is None or hard is None or soft == hard:
            return None
        lower = row in LOWER_IS_BETTER
        return "distilled" if (soft < hard) == lower else "baseline"

    def text(self) -> str:
        """The card as plain text (for the clipboard and the terminal)."""
        title = f"What distillation bought: {self.run_name}"
        lines = [title]
        if self.baseline_name:
            lines.append(f"hard-label baseline: {self.baseline_name}")
        lines.append("")
        heads = [self.title(c) for c in self.columns]
        table = [(label, cells) for _, label, cells in self.rows()]
        width = max(len(label) for label, _ in table)
        widths = [max(len(h), *(len(cells[i]) for _, cells in table)) for i, h in enumerate(heads)]
        lines.append(" " * width + "".join(f"  {h:>{w}}" for h, w in zip(heads, widths)))
        for label, cells in table:
            lines.append(f"{label:<{width}}" + "".join(f"  {c:>{w}}" for c, w in zip(cells, widths)))
        lines += ["", self.sentence]
        lines += self.notes
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """For ``--json``: the numbers (null when not measured), the sentence and which runs they come from."""
        return {
            "run": self.run_path,
            "baseline": self.baseline_path,
            "columns": list(self.columns),
            "distilled": self.distilled,
            "rows": {key: {c: self.values[key].get(c) for c in self.columns} for key, _, _ in ROWS},
            "sentence": self.sentence,
            "notes": list(self.notes),
        }


# -- numbers ----------------------------------------------------------------------


def number(summary: dict[str, Any] | None, key: str) -> float | None:
    """A finite number from a summary, else None (missing, null, NaN, text)."""
    value = (summary or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def weights_size(folder: Path) -> float | None:
    """Bytes of the weight files of a saved model folder (``model.safetensors``, shards); None without one."""
    try:
        files = [p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
        return float(sum(p.stat().st_size for p in files)) if files else None
    except OSError:
        return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def _model_column(summary: dict[str, Any], prefix: str, folder: Path | None) -> dict[str, float | None]:
    """One model's numbers from a run summary: ``prefix`` is "teacher" or "student"."""
    disk = weights_size(folder) if folder is not None else None
    if disk is None:
        disk = number(summary, f"{prefix}_disk_bytes")  # the weights' bytes as trained (no saved folder)
    teacher_latency = number(summary, "teacher_latency_ms")
    latency = number(summary, f"{prefix}_latency_ms")
    ce = number(summary, f"{prefix}_ce")
    ppl = number(summary, f"{prefix}_ppl")
    if ppl is None and ce is not None:
        ppl = math.exp(min(ce, 50.0))
    student = prefix == "student"
    return {
        "params": number(summary, f"{prefix}_params"),
        "disk_bytes": disk,
        "latency_ms": latency,
        "speedup": _ratio(teacher_latency, latency) if student else (1.0 if latency is not None else None),
        "ce": ce,
        "ppl": ppl,
        "kl_teacher": number(summary, "kl_teacher_student") if student else None,
        "kl_true": number(summary, f"kl_true_{prefix}"),
        "top1": number(summary, "top1_agreement") if student else None,
    }


def build_card(run: RunInfo, baseline: RunInfo | None = None) -> Card:
    """The card of a finished run, beside its hard-label baseline when given."""
    summary = run.summary or {}
    columns = {
        "teacher": _model_column(summary, "teacher", _folder(run.path, "teacher")),
        "distilled": _model_column(summary, "student", _folder(run.path, "student")),
    }
    if baseline is not None:
        columns["baseline"] = _model_column(baseline.summary or {}, "student", _folder(baseline.path, "student"))
    values = {key: {c: columns[c][key] for c in columns} for key, _, _ in ROWS}
    notes = []
    if baseline is not None and number(run.summary, "steps") != number(baseline.summary, "steps"):
        notes.append(
            f"Note: the two students trained for different numbers of steps "
            f"({format_value(number(run.summary, 'steps'), 'count')} and "
            f"{format_value(number(baseline.summary, 'steps'), 'count')})."
        )
    card = Card(
        run_name=Path(run.path).name,
        run_path=str(run.path),
        baseline_name=Path(baseline.path).name if baseline is not None else None,
        baseline_path=str(baseline.path) if baseline is not None else None,
        values=values,
        sentence="",
        notes=notes,
        distilled=run.config is None or run.config.distill.alpha > 0,
    )
    card.sentence = sentence(card)
    return card


def _folder(run_dir: Path, name: str) -> Path | None:
    folder = Path(run_dir) / name
    return folder if folder.is_dir() else None


# -- the sentence -----------------------------------------------------------------------


def _times(x: float) -> str:
    return f"{x:.1f}x" if x < 100 else f"{x:.0f}x"


def sentence(card: Card) -> str:
    """The differences in plain words, from the numbers on the card; unmeasured ones are left out."""
    v = card.values
    subject = "The distilled student" if card.distilled else "The student (trained on hard labels only)"
    vs_teacher = []
    smaller = _ratio(v["params"]["teacher"], v["params"]["distilled"])
    if smaller is not None:
        vs_teacher.append(f"{_times(smaller)} smaller" if smaller >= 1 else f"{_times(1 / smaller)} larger")
    faster = v["speedup"]["distilled"]
    if faster is not None:
        vs_teacher.append(f"{_times(faster)} faster" if faster >= 1 else f"{_times(1 / faster)} slower")
    parts = []
    if vs_teacher:
        parts.append(f"{' and '.join(vs_teacher)} than the teacher")
    if card.baseline_path is not None:
        gain = _gain_over_baseline(v)
        if gain:
            parts.append(f"{gain} than the same student trained on hard labels")
    if not parts:
        return "Not enough was measured to compare the models (the run may not have finished)."
    if len(parts) == 2:
        # "smaller and faster than the teacher, and 48% closer ... than the same student trained on hard labels"
        text = f"{subject} is {parts[0]}, and {parts[1]}."
    else:
        text = f"{subject} is {parts[0]}."
    agreement = v["top1"]["distilled"]
    if agreement is not None:
        hard = v["top1"].get("baseline")
        also = f" (hard labels: {hard:.0%})" if hard is not None else ""
        text += f" It picks the teacher's most likely next word {agreement:.0%} of the time{also}."
    return text


def _percent(x: float) -> str:
    """48%, and 1.2% for small changes (so a real gain never reads as 0% or 1%)."""
    return f"{x:.0%}" if x >= 0.095 else f"{x:.1%}"


def _gain_over_baseline(v: dict[str, dict[str, float | None]]) -> str | None:
    """How much better than the baseline ("48% closer to the true distribution"), from KL to the truth; without a truth, from the held-out CE."""
    soft, hard = v["kl_true"]["distilled"], v["kl_true"].get("baseline")
    if soft is not None and hard is not None and hard > 0:
        change = (hard - soft) / hard
        if change >= 0.0005:
            return f"{_percent(change)} closer to the true distribution"
        if change <= -0.0005:
            return f"{_percent(-change)} further from the true distribution"
        return "as close to the true distribution"
    soft, hard = v["ce"]["distilled"], v["ce"].get("baseline")
    if soft is not None and hard is not None:
        diff = hard - soft
        if diff >= 0.0005:
            return f"{diff:.3f} nats lower in held-out cross-entropy"
        if diff <= -0.0005:
            return f"{-diff:.3f} nats higher in held-out cross-entropy"
        return "equal in held-out cross-entropy"
    return None


# -- formatting ---------------------------------------------------------------------------


def format_value(value: float | None, kind: str) -> str:
    """A number as the card writes it; "–" when not measured."""
    if value is None or not math.isfinite(value):
        return MISSING
    if kind == "count":
        for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
            if abs(value) >= size:
                scaled = value / size
                return f"{scaled:.1f}{unit}" if scaled < 100 else f"{scaled:.0f}{unit}"
        return f"{value:.0f}"
    if kind == "bytes":
        for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if value >= size:
                return f"{value / size:.1f} {unit}"
        return f"{value:.0f} B"
    if kind == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"
    if kind == "times":
        return _times(value)
    if kind == "percent":
        return f"{value:.1%}"
    if kind == "ppl":
        return f"{value:.2f}" if value < 1000 else f"{value:.0f}"
    return f"{value:.3f}"


# -- which runs -----------------------------------------------------------------------------


def is_finished(run: RunInfo) -> bool:
    """A run the card can describe: completed, with a summary."""
    return run.status == "completed" and bool(run.summary)


def is_baseline_of(candidate: RunInfo, run: RunInfo) -> bool:
    """Whether ``candidate`` is ``run`` trained on hard labels only: alpha = 0 and otherwise the same config,
    except its name and a teacher that is ``run``'s own saved teacher (what the Baseline button makes)."""
    if candidate.config is None or run.config is None or Path(candidate.path) == Path(run.path):
        return False
    if candidate.config.distill.alpha != 0 or run.config.distill.alpha == 0:
        return False
    allowed = {"name", "distill.alpha", "runs_dir", "teacher.source", "teacher.path"}
    differing = {name for name, _, _ in diff_configs(run.config, candidate.config)}
    if not differing <= allowed:
        return False
    if {"teacher.source", "teacher.path"} & differing:
        own = (Path(run.path) / "teacher").resolve()
        return candidate.config.teacher.source == "local" and Path(candidate.config.teacher.path).resolve() == own
    return True


def find_baseline(run: RunInfo, runs: list[RunInfo] | None = None) -> RunInfo | None:
    """The newest finished hard-label baseline of ``run`` among ``runs`` (default: its runs folder)."""
    if runs is None:
        runs = list_runs(Path(run.path).parent)
    for candidate in runs:  # newest first
        if is_finished(candidate) and is_baseline_of(candidate, run):
            return candidate
    return None


def card_for(run_dir: str | Path, baseline_dir: str | Path | None = None) -> Card:
    """The card of run folder ``run_dir``; its baseline given, or found beside it."""
    run = read_run(run_dir)
    baseline = read_run(baseline_dir) if baseline_dir is not None else find_baseline(run)
    return build_card(run, baseline)


def headlines(card: Card) -> list[tuple[str, str]]:
    """The card's big figures: (figure, what it means), only for what was measured."""
    v = card.values
    out = []
    smaller = _ratio(v["params"]["teacher"], v["params"]["distilled"])
    if smaller is not None and smaller >= 1:
        out.append((_times(smaller), "smaller than the teacher"))
    faster = v["speedup"]["distilled"]
    if faster is not None and faster >= 1:
        out.append((_times(faster), "faster per next token"))
    if card.baseline_path is not None:
        soft, hard = v["kl_true"]["distilled"], v["kl_true"].get("baseline")
        if soft is not None and hard is not None and hard > 0 and soft < hard:
            out.append((_percent((hard - soft) / hard), "closer to the truth than hard labels"))
        elif soft is None or hard is None:
            soft, hard = v["ce"]["distilled"], v["ce"].get("baseline")
            if soft is not None and hard is not None and soft < hard:
                out.append((f"{hard - soft:.3f}", "nats lower CE than hard labels"))
    if len(out) < 3 and v["top1"]["distilled"] is not None:
        out.append((f"{v['top1']['distilled']:.0%}", "top-1 agreement with the teacher"))
    return out
