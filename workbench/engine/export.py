"""Writing finished models: the trained teacher, the exported student and its model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from workbench import paths
from workbench.config.schema import RunConfig
from workbench.errors import writing
from workbench.run_folder import CHECKPOINTS, write_json


def _save_pretrained(model: torch.nn.Module, tokenizer: Any, folder: Path) -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its bars would break the CLI's progress line
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def save_teacher(model: torch.nn.Module, tokenizer: Any, target: Path) -> None:
    """The teacher trained in this run, as ``teacher/`` (save_pretrained), written through a temporary folder:
    a killed run or a full disk never leaves half a model, and the teacher stage's checkpoint stays until then."""
    with writing(f"the trained teacher ({target.name}/)", target.parent), paths.atomic_target(target) as tmp:
        _save_pretrained(model, tokenizer, tmp)
    # The teacher folder supersedes the teacher stage's checkpoints.
    for old in (target.parent / CHECKPOINTS).glob("teacher-step-*"):
        shutil.rmtree(old, ignore_errors=True)


def export_student(
    model: torch.nn.Module, tokenizer: Any, target: Path, *, config: RunConfig, summary: dict[str, Any]
) -> None:
    """The student as a save_pretrained folder with a model card; loadable with AutoModelForCausalLM."""
    model = model.to("cpu")
    if getattr(model, "generation_config", None) is not None:
        gen = model.generation_config
        gen.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        gen.eos_token_id = tokenizer.eos_token_id
        gen.bos_token_id = tokenizer.bos_token_id
    with writing(f"the student ({target.name}/)", target.parent), paths.atomic_target(target) as tmp:
        _save_pretrained(model, tokenizer, tmp)
        (tmp / "README.md").write_text(model_card(config, summary), encoding="utf-8")
        (tmp / "workbench_config.toml").write_text(config.to_toml(), encoding="utf-8")


def write_summary_files(run_dir: Path, summary: dict[str, Any]) -> None:
    write_json(run_dir / "summary.json", summary)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def model_card(config: RunConfig, summary: dict[str, Any]) -> str:
    """A README.md for the exported student: what it is, how it was made, how well it does."""
    t, s, d = config.teacher, config.student, config.distill
    teacher_text = "trained from scratch in the workbench" if t.source == "train" else f"{t.source} `{t.path}`"
    if s.source == "derived":
        if s.layer_ids:
            kept = f"layers {s.layer_ids}"
        elif s.keep == "importance" and summary.get("kept_layers"):
            kl = summary.get("layer_kl") or []
            scores = ", ".join(f"L{i} {v:.3g}" for i, v in enumerate(kl))
            kept = (
                f"layers {summary['kept_layers']}, the {s.keep_layers} most important by the KL between the "
                f"teacher and the teacher with that layer skipped" + (f" ({scores})" if scores else "")
            )
        elif s.keep == "importance":
            kept = f"{s.keep_layers} layers chosen by importance"
        else:
            kept = f"{s.keep_layers} evenly spaced layers"
        student_text = f"derived from the teacher, keeping {kept}"
    else:
        student_text = f"{s.source} student"
    data_text = (
        "the built-in toy language" if config.data.source == "toy" else f"{config.data.source} `{config.data.path}`"
    )
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [knowledge-distillation, distillation-workbench]",
        "---",
        "",
        f"# {config.name}: distilled student",
        "",
        f"Made with Distillation Workbench. Teacher: {teacher_text}. Student: {student_text}.",
        f"Data: {data_text}.",
        "",
        "## Objective",
        "",
        f"`loss = alpha * {'T^2 * ' if d.t_squared else ''}D(teacher_T || student_T) + (1 - alpha) * CE` with "
        f"alpha = {d.alpha}, T = {d.temperature}, D = {d.divergence}"
        + (f" (beta = {d.beta})" if d.divergence == "jsd" else "")
        + (f" (skew = {d.skew})" if d.divergence.startswith("skew") else "")
        + f"; {summary.get('steps', '?')} steps.",
        "",
        "## Results (held-out)",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    for key in (
        "teacher_ppl",
        "student_ppl_before",
        "student_ppl",
        "kl_teacher_student",
        "top1_agreement",
        "top5_agreement",
        "kl_true_teacher",
        "kl_true_student",
        "entropy_floor",
        "teacher_params",
        "student_params",
        "compression",
        "teacher_latency_ms",
        "student_latency_ms",
    ):
        if key in summary:
            lines.append(f"| {key} | {_fmt(summary[key])} |")
    for key in ("teacher_disk_bytes", "student_disk_bytes"):
        if key in summary:
            lines.append(f"| {key.replace('_bytes', '_mb')} | {summary[key] / 1e6:.1f} |")
    generations = summary.get("generations") or []
    if generations:
        lines += ["", "## Generations (same prompt, sampling settings and seed)", ""]
        for gen in generations:
            lines += [
                f"- prompt: `{gen['prompt']}`",
                f"  - teacher: {' '.join(gen['teacher'].split())}",
                f"  - student: {' '.join(gen['student'].split())}",
            ]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "model = AutoModelForCausalLM.from_pretrained('PATH_TO_THIS_FOLDER')",
        "tokenizer = AutoTokenizer.from_pretrained('PATH_TO_THIS_FOLDER')",
        "```",
        "",
        "## Configuration",
        "",
        "```toml",
        config.to_toml().rstrip(),
        "```",
        "",
        "Summary as JSON:",
        "",
        "```json",
        json.dumps({k: v for k, v in summary.items() if k != "generations"}, indent=2, default=float),
        "```",
        "",
    ]
    return "\n".join(lines)
