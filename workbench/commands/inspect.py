"""Looking before and after: ``workbench presets``, ``data`` (what a config reads), ``runs`` (the runs folder)
and ``predict`` (a finished run's teacher, student and truth for a prompt)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from workbench.commands import EXIT_USAGE
from workbench.config.presets import field_help, load_config, preset_description, preset_names
from workbench.config.schema import RunConfig
from workbench.errors import ConfigError, one_line


def cmd_presets(args: argparse.Namespace) -> int:
    for name in preset_names():
        print(f"{name:<12} {preset_description(name)}")
    if args.fields:
        print()
        for dotted in _all_fields(RunConfig()):
            print(f"{dotted:<28} {field_help(dotted)}")
    return 0


def _all_fields(obj: Any, prefix: str = "") -> list[str]:
    import dataclasses

    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.extend(_all_fields(value, f"{prefix}{f.name}."))
        else:
            out.append(f"{prefix}{f.name}")
    return out


def cmd_data(args: argparse.Namespace) -> int:
    """What the run would train on; a config the run would refuse is refused here too."""
    from workbench.engine.assemble import data_tokenizer
    from workbench.engine.data.generated import teacher_cache_key
    from workbench.engine.data.preview import describe
    from workbench.engine.plan import plan_run

    config = load_config(args.config, validate=False)  # checked after --set
    config.apply_overrides(args.overrides)
    config.validate()
    problems = plan_run(config).errors  # sizes, positions, tokenizers: from configs, no weights loaded
    if problems:
        for problem in problems:
            print(f"error: {problem.line}", file=sys.stderr)
        print("hint: `workbench run` refuses this config too; fix the value named above", file=sys.stderr)
        return EXIT_USAGE
    tokenizer = data_tokenizer(config.teacher, config.data)
    print(
        describe(
            config.data,
            tokenizer,
            config.train.seq_len,
            seed=config.train.seed,
            teacher_key=teacher_cache_key(config.teacher),
            on_log=_data_log,
        )
    )
    return 0


def _data_log(message: str) -> None:
    """Tokenization progress and warnings while `workbench data` works, on stderr (the report is stdout)."""
    print(message if message.startswith("warning:") else f"  {message}", file=sys.stderr, flush=True)


def cmd_runs(args: argparse.Namespace) -> int:
    from workbench.run_folder import list_runs
    from workbench.sweep_folder import list_sweeps

    given = args.runs_dir
    runs_dir = given or "runs"
    where = Path(runs_dir).expanduser()
    if (where.exists() and not where.is_dir()) or (given is not None and not where.exists()):
        raise ConfigError(
            "", f"{runs_dir!r} is not a folder", "give the folder that holds the run folders (the config's runs_dir)"
        )
    found = list_runs(runs_dir)
    sweeps = list_sweeps(runs_dir)
    if not found and not sweeps and (where / "config.toml").is_file():  # a run folder itself: list that run
        from workbench.run_folder import read_run

        found = [read_run(where)]
    if not found and not sweeps:
        print(f"no runs in {runs_dir}")
        return 0
    for sweep in sweeps:  # a sweep's cells are run folders inside it: `workbench runs SWEEP_DIR` lists them
        done = sum(c.status == "completed" for c in sweep.cells)
        axes = " x ".join(f"{a.field}({len(a.values)})" for a in sweep.axes)
        print(f"{sweep.path.name:<40} {'sweep ' + sweep.status:<17} {done}/{len(sweep.cells)} cells completed  {axes}")
    for info in found:
        s = info.summary
        metrics = " ".join(
            f"{k}={s[k]:.3g}"
            for k in ("student_ppl", "kl_teacher_student", "top1_agreement")
            if isinstance(s.get(k), float)
        )
        print(f"{info.path.name:<40} {info.status:<11} step {info.last_step:<6} {metrics}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from workbench.engine.evaluate import unknown_words
    from workbench.engine.predictor import Predictor
    from workbench.probabilities import soften

    if args.top_k < 1:
        raise ConfigError("--top-k", f"{args.top_k} must be at least 1", "e.g. --top-k 10")
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise ConfigError(
            "--temperature", f"{args.temperature} must be a number greater than 0", "e.g. --temperature 1"
        )
    if not Path(args.run_dir).is_dir():
        raise ConfigError("", f"{args.run_dir!r} is not a folder", "give a run folder made by `workbench run`")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        predictor = Predictor.from_run(args.run_dir)
        probe = predictor.probe(args.prompt)
    except ConfigError:
        raise
    except (
        OSError,
        RuntimeError,
        ValueError,
        KeyError,
    ) as err:  # files a user damaged or moved: one line, no traceback
        raise ConfigError(
            "",
            f"the models of {Path(args.run_dir).name} could not be used: {one_line(err, 200)}",
            "check that the run finished (or has a distillation checkpoint) and that its files are whole",
        ) from None
    unknown = unknown_words(predictor.tokenizer, args.prompt)
    if unknown:
        language = " (the built-in language's true distribution is not shown)" if predictor.language is not None else ""
        print(
            f"warning: the models do not know {', '.join(repr(w) for w in unknown)}: read as the unknown token{language}",
            file=sys.stderr,
        )
    teacher = soften(np.array(probe.teacher_logits[-1]), args.temperature)
    student = soften(np.array(probe.student_logits[-1]), args.temperature)
    truth = np.array(probe.true_probs[-1]) if probe.true_probs else None
    order = np.argsort(-(teacher + student))[: args.top_k]
    rows = [
        {
            "token": probe.vocab_tokens[i],
            "teacher": float(teacher[i]),
            "student": float(student[i]),
            **({"true": float(truth[i])} if truth is not None else {}),
        }
        for i in order
    ]
    if args.json:
        print(json.dumps({"prompt": args.prompt, "temperature": args.temperature, "rows": rows}))
        return 0
    note = " (the true distribution does not depend on T)" if truth is not None else ""
    print(f'next word after "{args.prompt}" at T = {args.temperature:g}, by teacher + student probability{note}:')
    header = f"  {'token':<16}{'teacher':>9}{'student':>9}" + (f"{'true':>9}" if truth is not None else "")
    print(header)
    for row in rows:
        line = f"  {row['token']!r:<16}{row['teacher']:>9.3f}{row['student']:>9.3f}"
        if truth is not None:
            line += f"{row['true']:>9.3f}"
        print(line)
    return 0


def runs_bought_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench runs bought",
        description="What distillation bought: a finished run's teacher, distilled student and hard-label baseline "
        "side by side (size, speed, held-out CE, KL to the teacher and to the truth, agreement).",
    )
    parser.add_argument("run_dir", metavar="RUN", help="a finished run folder made by `workbench run`")
    parser.add_argument(
        "--baseline",
        metavar="RUN",
        help="its hard-label (alpha = 0) run; default: the newest finished one beside RUN, if any",
    )
    parser.add_argument("--json", action="store_true", help="print the card as one JSON object")
    parser.set_defaults(handler=cmd_runs_bought)
    return parser


def cmd_runs_bought(args: argparse.Namespace) -> int:
    from workbench.bought import build_card, find_baseline

    run = _finished_run(args.run_dir, "")
    if args.baseline and Path(args.baseline).resolve() == Path(args.run_dir).resolve():
        raise ConfigError("--baseline", "the baseline is the run itself", "give the run's hard-label (alpha = 0) run")
    baseline = _finished_run(args.baseline, "--baseline") if args.baseline else find_baseline(run)
    if args.baseline and baseline.config is not None and baseline.config.distill.alpha != 0:
        raise ConfigError(
            "--baseline",
            f"{baseline.path.name} is not a hard-label run (its distill.alpha is {baseline.config.distill.alpha:g})",
            "give the run trained with distill.alpha = 0 (the window's Baseline button makes it)",
        )
    card = build_card(run, baseline)
    print(json.dumps(card.to_dict()) if args.json else card.text())
    return 0


def _finished_run(path: str, field: str) -> Any:
    from workbench.bought import is_finished
    from workbench.run_folder import read_run

    folder = Path(path).expanduser()
    if not (folder / "config.toml").is_file():
        raise ConfigError(
            field, f"{path!r} is not a run folder (it has no config.toml)", "give a folder made by `workbench run`"
        )
    info = read_run(folder)
    if info.status == "completed" and not info.summary:
        raise ConfigError(
            field,
            f"{folder.name} completed but its summary.json is missing or unreadable",
            "the final measurements are in it: restore it from a copy of the run, or run it again",
        )
    if not is_finished(info):
        raise ConfigError(
            field,
            f"{folder.name} has not finished (it is {info.status}); only a completed run has the final measurements",
            "pick a completed run (`workbench runs` lists them), or resume this one with `workbench run --resume`",
        )
    return info
