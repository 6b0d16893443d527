"""Hard-label baselines: the configs (alpha = 0) and the window's baseline commands, a mixin of ``MainWindow``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import Slot

from workbench.config.schema import RunConfig

BASELINE_TIP = (
    "Train the form's configuration with alpha = 0 (hard labels only); when the run selected in the "
    "Runs tab ran this configuration, its teacher is reused and the two runs are overlaid"
)


class BaselinesMixin:
    """Baseline runs of ``MainWindow``; they start through its ``start_run``."""

    @Slot(str)
    def start_baseline(self, path: str) -> bool:
        """Train run ``path``'s configuration with hard labels only and overlay the two."""
        info = self.runs_panel.run_info(path)
        if info is None or info.config is None:
            return False
        cfg = baseline_config_of_run(path, info.config)
        if not self.start_run(cfg):
            return False
        self._baseline_of = path  # when it completes, the banner sets the two students side by side
        self.runs_panel.set_checked(path, True)
        self.log_view.add(f"Baseline of {Path(path).name}: alpha = 0, curves of the distilled run overlaid")
        return True

    @Slot()
    def start_baseline_of_form(self) -> bool:
        """Baseline of the form's configuration. When the run selected in the Runs tab ran exactly this
        configuration, it is that run's baseline (its teacher reused, its curves overlaid)."""
        if not self._valid:
            self.banner.show_message("The configuration is not valid yet.", self._reason)
            return False
        cfg = self.config_panel.config()
        selected = self.runs_panel.selected_path()
        info = self.runs_panel.run_info(selected) if selected else None
        if info is not None and info.config == cfg:
            return self.start_baseline(selected)
        return self.start_run(baseline_config(cfg))

    def _show_what_distillation_bought(self, baseline_summary: dict[str, Any]) -> None:
        """After a baseline of a run completes: the distilled and the hard-label student in numbers."""
        source, self._baseline_of = self._baseline_of, None
        info = self.runs_panel.run_info(source) if source else None
        words = gap_sentence(info.summary if info is not None else None, baseline_summary)
        if words is not None:
            self.banner.show_message(*words, level="ok")
            self.log_view.add(f"{words[0]} {words[1]}")


def gap_sentence(distilled: dict[str, Any] | None, baseline: dict[str, Any]) -> tuple[str, str] | None:
    """What soft targets bought, in one sentence and a hint: the distilled student's KL to the true
    distribution (the built-in language) or, without a known truth, its held-out cross-entropy, beside the
    hard-label baseline's. None when either run lacks the number."""

    def number(summary: dict[str, Any] | None, key: str) -> float | None:
        value = (summary or {}).get(key)
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    hint = "Same teacher, data, seed and steps; only alpha differs. The two runs are overlaid on the charts."
    soft, hard = number(distilled, "kl_true_student"), number(baseline, "kl_true_student")
    if soft is not None and hard is not None and soft > 0:
        if soft < hard:
            gain = f"{hard / soft:.1f}x closer to the truth than the hard-label baseline's {hard:.3f}"
        else:
            gain = f"no closer to the truth than the hard-label baseline's {hard:.3f}"
        return f"Distilled student: KL to the true distribution {soft:.3f}, {gain}.", hint
    soft, hard = number(distilled, "student_ce"), number(baseline, "student_ce")
    if soft is not None and hard is not None:
        change = "lower" if soft < hard else "not lower"
        return (
            f"Distilled student: held-out cross-entropy {soft:.3f}, {change} than the hard-label baseline's {hard:.3f}.",
            hint,
        )
    return None


def baseline_config(cfg: RunConfig) -> RunConfig:
    """The same run on hard labels only: alpha = 0, name suffixed ``-baseline``."""
    out = cfg.copy()
    out.distill.alpha = 0.0
    if not out.name.endswith("-baseline"):
        out.name = f"{out.name}-baseline"
    return out


def baseline_config_of_run(run_dir: str | Path, cfg: RunConfig) -> RunConfig:
    """The baseline of a run folder: hard labels only, and the very teacher that run trained (when it trained one),
    so the two students differ only in alpha and the baseline skips stage 1."""
    out = baseline_config(cfg)
    teacher_dir = Path(run_dir) / "teacher"
    if cfg.teacher.source == "train" and (teacher_dir / "config.json").is_file():
        out.teacher.source = "local"
        out.teacher.path = str(teacher_dir.resolve())
    return out
