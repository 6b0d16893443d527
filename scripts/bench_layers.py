"""Layers kept by importance vs evenly spaced: how close the derived student is to the teacher at step 0 and after N steps.

Trains a teacher on the built-in language (the toy preset with more layers, a narrower width and fewer steps, through
``workbench.engine.train.run`` with a 1-step distillation), then measures layer importance on the first 8
held-out blocks (as a run with ``student.keep = "importance"`` does) and, for each number of kept layers,
derives a student both ways and reports KL(teacher || student) and the student's cross-entropy on *other*
held-out blocks (not the ones the layers were chosen on), before any distillation.

    python scripts/bench_layers.py [--layers 6] [--hidden 64] [--teacher-steps 120] [--teacher RUN_DIR] [--json]
    python scripts/bench_layers.py --steps 100 --train-keep 2,3 --seeds 3 --json     # also after 100 steps
    python scripts/bench_layers.py --model smollm2 --steps 8 --train-keep 10 --json  # the SmolLM2 GGUF

With ``--steps N``, each student of the ``--train-keep`` counts is then distilled for N steps (both ways with
the same seed, the same batches in the same order, AdamW at ``--lr``, forward KL at T = ``--temperature``
times T^2, soft targets only), and its KL and CE on the same held-out blocks are reported again, per seed
(the seed picks the batches). A short loop in this script, not ``engine.train.run``, so that only the layer
choice differs between the two students.

``--model smollm2``: the teacher is the SmolLM2-135M-Instruct GGUF (``models:`` as in the ``smollm2`` preset;
fetch it with scripts/fetch_smollm2.py), the data the preset's text, cut into ``--seq`` blocks; its held-out
part is small, so the layers are chosen on its first half and the students compared on the second half.
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
    parser.add_argument("--model", choices=("toy", "smollm2"), default="toy")
    parser.add_argument("--seq", type=int, default=64, help="smollm2: block length")
    parser.add_argument("--steps", type=int, default=0, help="distillation steps after step 0 (0: step 0 only)")
    parser.add_argument("--train-keep", default="", help="comma-separated kept-layer counts to distill (default: all)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds of the distillation (batch order)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 on a busy machine)")
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

    torch.set_num_threads(args.threads)
    started = time.time()
    tmp = tempfile.TemporaryDirectory()
    if args.model == "smollm2":
        from workbench.config.presets import load_config
        from workbench.paths import resolve_path

        config = load_config("smollm2", validate=False)
        config.train.seq_len = args.seq
        teacher, tokenizer = load_pretrained("gguf", str(resolve_path(config.teacher.path)), field="")
        teacher_steps = 0
    else:
        run_dir = (
            Path(args.teacher)
            if args.teacher
            else _train_teacher(args.layers, args.hidden, args.teacher_steps, Path(tmp.name))
        )
        config: RunConfig = load_run_config(run_dir)
        teacher, tokenizer = load_pretrained("local", str(run_dir / "teacher"), field="")
        teacher_steps = config.train.teacher_steps
    trained_s = time.time() - started
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    data = load_blocks(config.data, tokenizer, config.train.seq_len, seed=config.train.seed)
    if args.model == "smollm2":
        half = max(1, len(data.val) // 2)
        chosen_on, compared_on = data.val[:half].long(), data.val[half:].long()
    else:
        chosen_on = data.val[:IMPORTANCE_BLOCKS].long()
        compared_on = data.val[IMPORTANCE_BLOCKS : IMPORTANCE_BLOCKS + args.eval_blocks].long()
    train_blocks = data.train.long()
    importance = layer_importance(teacher, chosen_on)
    n_layers = len(importance.kl)

    @torch.no_grad()
    def distance(student) -> tuple[float, float]:
        student.eval()
        kl_sum = ce_sum = 0.0
        count = 0
        for start in range(0, len(compared_on), 16):
            batch = compared_on[start : start + 16]
            t = F.log_softmax(teacher(input_ids=batch, use_cache=False).logits.float(), -1)
            s = F.log_softmax(student(input_ids=batch, use_cache=False).logits.float(), -1)
            kl_sum += float((t.exp() * (t - s)).sum(-1).sum())
            ce_sum += float(-s[:, :-1].gather(-1, batch[:, 1:, None]).sum())
            count += batch.numel()
        return kl_sum / count, ce_sum / (count - len(compared_on))

    def distilled(layers: list[int], seed: int):
        """The derived student after ``args.steps`` soft-target steps on batches that ``seed`` picks."""
        student = derive_student(teacher, layers)
        student.train()
        optimizer = torch.optim.AdamW(student.parameters(), lr=args.lr)
        order = torch.Generator().manual_seed(seed)
        temp = args.temperature
        for _ in range(args.steps):
            batch = train_blocks[torch.randint(0, len(train_blocks), (args.batch,), generator=order)]
            with torch.no_grad():
                t = F.log_softmax(teacher(input_ids=batch, use_cache=False).logits.float() / temp, -1)
            s = F.log_softmax(student(input_ids=batch, use_cache=False).logits.float() / temp, -1)
            loss = (t.exp() * (t - s)).sum(-1).mean() * temp * temp
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return student

    train_keep = [int(k) for k in args.train_keep.split(",") if k] or list(range(1, n_layers))
    keeps = range(1, n_layers) if args.model == "toy" else sorted(set(train_keep))
    rows = []
    for keep in keeps:
        by_importance = keep_by_importance(importance.kl, keep)
        evenly = evenly_spaced(n_layers, keep)
        kl_imp, ce_imp = distance(derive_student(teacher, by_importance))
        kl_even, ce_even = distance(derive_student(teacher, evenly))
        row = {
            "keep": keep,
            "importance_layers": by_importance,
            "evenly_layers": evenly,
            "kl_importance": kl_imp,
            "kl_evenly": kl_even,
            "ce_importance": ce_imp,
            "ce_evenly": ce_even,
        }
        if args.steps and keep in train_keep:
            after = {"importance": [], "evenly": []}
            for seed in range(args.seeds):
                for name, layers in (("importance", by_importance), ("evenly", evenly)):
                    print(
                        f"  {time.time() - started:6.1f} s  keep {keep} {name} seed {seed}", file=sys.stderr, flush=True
                    )
                    after[name].append(distance(distilled(layers, seed)))
            for name in after:
                row[f"kl_{name}_after"] = [kl for kl, _ in after[name]]
                row[f"ce_{name}_after"] = [ce for _, ce in after[name]]
        rows.append(row)
    teacher_ce = distance(teacher)[1]
    found = {
        "teacher_layers": n_layers,
        "model": args.model,
        "teacher_steps": teacher_steps,
        "distill_steps": args.steps,
        "distill": {"seeds": args.seeds, "batch": args.batch, "lr": args.lr, "temperature": args.temperature},
        "train_blocks": len(train_blocks),
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
    for r in rows:
        if "kl_importance_after" in r:
            print(
                f"keep {r['keep']} after {args.steps} steps: KL importance {[round(v, 4) for v in r['kl_importance_after']]}"
                f", evenly {[round(v, 4) for v in r['kl_evenly_after']]}"
            )
    print(f"({found['wall_s']:.0f} s, of which {trained_s:.0f} s training the teacher)")


if __name__ == "__main__":
    main()
