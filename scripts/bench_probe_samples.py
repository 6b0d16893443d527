"""What the student's sampled text (train.probe_samples) adds to one probe, on a preset's model shapes.

Builds the preset's teacher and student (untrained: the time of a forward pass does not depend on the weights)
on the built-in language and times, for the preset's probe prompts, the probe as it was (next-word logits of
both models, ``probe_prompt``) and the samples it now adds (``sample_student_text``: ``--samples``
continuations per prompt, scored by the teacher, judged by the language). Each is repeated; the median, the
fastest and the slowest repeat are reported, with the training time between two probes for scale
(``probe_interval`` steps of the preset at the measured step time, when ``--step-s`` is given).

    python scripts/bench_probe_samples.py [--preset toy] [--samples 16] [--repeats 7] [--device cpu] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _timed(fn, repeats: int) -> dict:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="toy")
    parser.add_argument("--samples", type=int, default=16, help="continuations per prompt (train.probe_samples)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from workbench.config.presets import load_config
    from workbench.engine.evaluate import Truth, probe_prompt
    from workbench.engine.models.build import build_model
    from workbench.engine.student_text import probe_generator, sample_student_text
    from workbench.engine.toy.language import get_language

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.preset)
    device = torch.device(args.device)
    language = get_language()
    tokenizer = language.tokenizer()
    vocab = len(tokenizer)
    teacher = build_model(cfg.teacher.arch, vocab, seed=1).to(device).eval()
    student = build_model(cfg.student.arch, vocab, seed=2).to(device).eval()
    truth = Truth(language, vocab)
    prompts = [p for p in cfg.train.probe_prompts if p.strip()]
    cache: dict = {}

    def probe() -> None:
        for prompt in prompts:
            probe_prompt(
                prompt, teacher=teacher, student=student, tokenizer=tokenizer, device=device, truth=truth,
                vocab_tokens_cache=cache,
            )  # fmt: skip

    def samples() -> None:
        for index, prompt in enumerate(prompts):
            sample_student_text(
                prompt, teacher=teacher, student=student, tokenizer=tokenizer, device=device,
                generator=probe_generator(device, 0, index), count=args.samples, language=language,
            )  # fmt: skip

    report = {
        "preset": args.preset,
        "device": str(device),
        "prompts": len(prompts),
        "samples_per_prompt": args.samples,
        "repeats": args.repeats,
        "probe": _timed(probe, args.repeats),
        "samples": _timed(samples, args.repeats),
    }
    report["added_fraction"] = report["samples"]["median_s"] / report["probe"]["median_s"]
    if args.json:
        print(json.dumps(report, indent=2))
        return
    p, s = report["probe"], report["samples"]
    print(
        f"{args.preset} on {device}: probe {1000 * p['median_s']:.1f} ms (min {1000 * p['min_s']:.1f}, "
        f"max {1000 * p['max_s']:.1f}); samples add {1000 * s['median_s']:.1f} ms (min {1000 * s['min_s']:.1f}, "
        f"max {1000 * s['max_s']:.1f}) for {len(prompts)} prompts x {args.samples} continuations"
    )


if __name__ == "__main__":
    main()
