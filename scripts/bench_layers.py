"""Layers kept by importance vs evenly spaced: how close the derived student is to the teacher at step 0.

Trains a teacher on the built-in language (the toy preset with more layers, a narrower width and fewer steps, through
``workbench.engine.train.run`` with a 1-step distillation), then measures layer importance on the first 8
held-out blocks (as a run with ``student.keep = "importance"`` does) and, for each number of kept layers,
derives a student both ways and reports KL(teacher || student) and the student's cross-entropy on *other*
held-out blocks (not the ones the layers were chosen on), before any distillation.

    python scripts/bench_layers.py [--layers 6] [--hidden 64] [--teacher-steps 120] [--teacher RUN_DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _train_teacher(layers: int, hidden: int, steps: int, out: Path) -> Path:
    from workbench.config.presets import load_config
    from workbench.engine.train.run import run

    cfg = load_config("toy", validate=False)
    cfg.name, cfg.runs_dir = "bench-layers", str(out)
    cfg.teacher.arch.layers, cfg.teacher.arch.hidden = layers, hidden
    cfg.student.source, cfg.student.keep_layers = "derived", 1
    t = cfg.train
    t.teacher_steps, t.max_steps, t.batch_size, t.warmup_steps = steps, 1, 16, 20
    t.eval_interval, t.probe_interval, t.checkpoint_interval, t.eval_batches = 10_000, 10_000, 0, 2
    t.device = "cpu"
    cfg.data.toy_sentences = 10_000
    cfg.validate()
    started = time.time()

    def on_event(event) -> None:  # progress on stderr (stdout is the report)
        if event.kind == "stage" or (event.kind == "step" and event.step % 50 == 0):
            what = event.stage if event.kind == "stage" else f"{event.stage} step {event.step}"
            print(f"  {time.time() - started:6.1f} s  {what}", file=sys.stderr, flush=True)

    result = run(cfg, on_event)
    if result.kind != "finished" or result.status != "completed":
        raise SystemExit(f"the teacher run failed: {result}")
    return Path(result.run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6, help="teacher layers (default 6)")
    parser.add_argument("--hidden", type=int, default=64, help="teacher width (default 64; the toy preset's is 128)")
    parser.add_argument("--teacher-steps", type=int, default=120)
    parser.add_argument("--teacher", help="a finished run folder whose teacher/ to measure instead of training one")
    parser.add_argument("--eval-blocks", type=int, default=64, help="held-out blocks the students are compared on")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from workbench.config.checks import evenly_spaced
    from workbench.config.schema import RunConfig
    from workbench.engine.data.blocks import load_blocks
    from workbench.engine.importance import IMPORTANCE_BLOCKS, keep_by_importance, layer_importance
    from workbench.engine.models.build import derive_student
    from workbench.engine.models.load import load_pretrained
    from workbench.run_folder import load_run_config

    torch.set_num_threads(2)
    started = time.time()
    tmp = tempfile.TemporaryDirectory()
    run_dir = (
        Path(args.teacher)
        if args.teacher
        else _train_teacher(args.layers, args.hidden, args.teacher_steps, Path(tmp.name))
    )
    trained_s = time.time() - started
    config: RunConfig = load_run_config(run_dir)
    teacher, tokenizer = load_pretrained("local", str(run_dir / "teacher"), field="")
    teacher.eval()
    data = load_blocks(config.data, tokenizer, config.train.seq_len, seed=config.train.seed)
    chosen_on = data.val[:IMPORTANCE_BLOCKS].long()
    compared_on = data.val[IMPORTANCE_BLOCKS : IMPORTANCE_BLOCKS + args.eval_blocks].long()
    importance = layer_importance(teacher, chosen_on)
    n_layers = len(importance.kl)

    @torch.no_grad()
    def distance(student) -> tuple[float, float]:
        student.eval()
        kl_sum = ce_sum = 0.0
        count = 0
        for start in range(0, len(compared_on), 16):
            batch = compared_on[start : start + 16]
            t = F.log_softmax(teacher(batch).logits.float(), -1)
            s = F.log_softmax(student(batch).logits.float(), -1)
            kl_sum += float((t.exp() * (t - s)).sum(-1).sum())
            ce_sum += float(-s[:, :-1].gather(-1, batch[:, 1:, None]).sum())
            count += batch.numel()
        return kl_sum / count, ce_sum / (count - len(compared_on))

    rows = []
    for keep in range(1, n_layers):
        by_importance = keep_by_importance(importance.kl, keep)
        evenly = evenly_spaced(n_layers, keep)
        kl_imp, ce_imp = distance(derive_student(teacher, by_importance))
        kl_even, ce_even = distance(derive_student(teacher, evenly))
        rows.append(
            {
                "keep": keep,
                "importance_layers": by_importance,
                "evenly_layers": evenly,
                "kl_importance": kl_imp,
                "kl_evenly": kl_even,
                "ce_importance": ce_imp,
                "ce_evenly": ce_even,
            }
        )
    teacher_ce = distance(teacher)[1]
    found = {
        "teacher_layers": n_layers,
        "teacher_steps": config.train.teacher_steps,
        "teacher_ce": teacher_ce,
        "layer_kl": importance.kl,
        "layer_cosine": importance.cosine,
        "chosen_on_blocks": len(chosen_on),
        "compared_on_blocks": len(compared_on),
        "seq_len": config.train.seq_len,
        "rows": rows,
        "teacher_train_s": trained_s,
        "wall_s": time.time() - started,
    }
    if args.json:
        print(json.dumps(found))
        return
    print(
        f"teacher: {n_layers} layers, {found['teacher_steps']} steps, CE {teacher_ce:.3f}; importance on "
        f"{len(chosen_on)} held-out blocks, students compared on {len(compared_on)} others (step 0)"
    )
    print("KL when skipped: " + ", ".join(f"L{i} {v:.3f}" for i, v in enumerate(importance.kl)))
    print(f"{'keep':>4}  {'importance':<20} {'KL':>7} {'CE':>7}   {'evenly':<20} {'KL':>7} {'CE':>7}")
    for r in rows:
        print(
            f"{r['keep']:>4}  {str(r['importance_layers']):<20} {r['kl_importance']:>7.3f} {r['ce_importance']:>7.3f}"
            f"   {str(r['evenly_layers']):<20} {r['kl_evenly']:>7.3f} {r['ce_evenly']:>7.3f}"
        )
    print(f"({found['wall_s']:.0f} s, of which {trained_s:.0f} s training the teacher)")


if __name__ == "__main__":
    main()
