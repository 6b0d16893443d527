"""Off-policy vs on-policy distillation on the built-in language: how often the student's own samples are
grammatical.

Three runs of the same small config (a 1-layer student derived from a 2-layer teacher, reverse KL at T = 1,
alpha 0.5), which differ only in ``distill.on_policy`` (0, 0.5, 1); the teacher is trained in the first run
and loaded from its folder by the other two. After each, the student continues held-out sentences by
sampling (T = 1, no top-p) and every complete sentence it writes is judged by the language's grammar
(``ToyLanguage.is_possible``); the teacher's samples are judged the same way for reference.

    python scripts/bench_on_policy.py [--steps 80] [--teacher-steps 600] [--samples 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _config(out: Path, on_policy: float, steps: int, teacher_steps: int, teacher: Path | None):
    from workbench.config.schema import RunConfig

    cfg = RunConfig(name=f"bench-on-policy-{on_policy}", runs_dir=str(out))
    cfg.teacher.arch.layers, cfg.teacher.arch.hidden, cfg.teacher.arch.heads = 2, 64, 2
    cfg.teacher.arch.max_positions = 64
    cfg.student.source, cfg.student.keep_layers = "derived", 1
    t = cfg.train
    t.teacher_steps, t.max_steps, t.batch_size, t.seq_len = teacher_steps, steps, 16, 32
    t.warmup_steps, t.log_interval, t.eval_interval, t.eval_batches = 10, 10, 10_000, 4
    t.probe_interval, t.checkpoint_interval, t.device = 10_000, 0, "cpu"
    t.probe_prompts = []
    cfg.data.toy_sentences = 4000
    d = cfg.distill
    d.divergence, d.temperature, d.alpha = "reverse_kl", 1.0, 0.5
    d.on_policy, d.on_policy_prompt_tokens, d.on_policy_new_tokens = on_policy, 8, 24
    if teacher is not None:  # the first run's teacher, trained once
        cfg.teacher.source, cfg.teacher.path = "local", str(teacher)
    cfg.validate()
    return cfg


def grammatical_rate(model, language, tokenizer, prompts: list[str], new_tokens: int, seed: int) -> dict:
    """Continue each prompt (a whole sentence) by sampling; judge each complete sentence written."""
    from workbench.engine.student_text import count_grammatical
    from workbench.engine.train.on_policy import sample_continuations

    good = total = 0
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    for length, rows in sample_continuations(model, ids, new_tokens, seed):
        written = [tokenizer.convert_ids_to_tokens(row[length:]) for row in rows]
        g, t = count_grammatical(language, written)
        good, total = good + g, total + t
    return {"sentences": total, "grammatical": good, "rate": good / max(total, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80, help="distillation steps per run (default 80)")
    parser.add_argument("--teacher-steps", type=int, default=600, help="teacher steps, first run only (default 600)")
    parser.add_argument("--samples", type=int, default=200, help="held-out sentences continued (default 200)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM

    from workbench.engine.toy.language import get_language
    from workbench.engine.train.run import run

    language = get_language()
    tokenizer = language.tokenizer()
    prompts = language.sample_sentences(args.samples, seed=987_654)
    report: dict = {"steps": args.steps, "samples": args.samples, "runs": {}}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        teacher_dir = None
        for fraction in (0.0, 0.5, 1.0):
            steps: list = []
            t0 = time.time()
            cfg = _config(Path(tmp), fraction, args.steps, args.teacher_steps, teacher_dir)
            result = run(cfg, lambda e, seen=steps: seen.append(e) if e.kind == "step" else None)
            if result.kind != "finished" or result.status != "completed":
                raise SystemExit(f"the run with on_policy = {fraction} failed: {result}")
            folder = Path(result.run_dir)
            student = AutoModelForCausalLM.from_pretrained(folder / "student")
            entry = {
                "student_grammar": grammatical_rate(student, language, tokenizer, prompts, 24, seed=1),
                "kl_teacher_student": result.summary["kl_teacher_student"],
                "kl_true_student": result.summary["kl_true_student"],
                "student_ce": result.summary["student_ce"],
                "student_ppl_before": result.summary["student_ppl_before"],  # the same start in every run
                "generate_s": sum(e.generate_s for e in steps if e.stage == "distill"),
                "run_s": time.time() - t0,
            }
            if teacher_dir is None:
                teacher_dir = folder / "teacher"
                teacher = AutoModelForCausalLM.from_pretrained(teacher_dir)
                report["kl_true_teacher"] = result.summary.get("kl_true_teacher")
                report["teacher_grammar"] = grammatical_rate(teacher, language, tokenizer, prompts, 24, seed=1)
            report["runs"][str(fraction)] = entry
            print(f"  on_policy {fraction}: {entry}", file=sys.stderr, flush=True)
    report["total_s"] = time.time() - started
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"teacher: {report['teacher_grammar']['rate']:.3f} of {report['teacher_grammar']['sentences']} sentences grammatical"
    )
    for fraction, entry in report["runs"].items():
        g = entry["student_grammar"]
        print(
            f"on_policy {fraction}: student {g['rate']:.3f} of {g['sentences']} sentences grammatical, "
            f"KL(teacher||student) {entry['kl_teacher_student']:.4f}, KL(true||student) {entry['kl_true_student']:.4f}, "
            f"generation {entry['generate_s']:.1f} s of {entry['run_s']:.1f} s"
        )
    print(f"total {report['total_s']:.0f} s")


if __name__ == "__main__":
    main()
