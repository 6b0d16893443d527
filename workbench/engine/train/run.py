"""A run from start to end: ``run(config, on_event, control)``, the engine's one entry point.

It makes (or resumes) the run folder, loads the teacher and the data, runs stage 1 (``teacher``, optional: a
teacher trained here with cross-entropy) and stage 2 (``distill``) through train/stages.py, then measures and
exports the student. It reports only through ``on_event`` (see events.py; train/report.py also writes
events.jsonl) and checks ``control`` between optimizer steps. Under ``torchrun`` (train/parallel.py) only
rank 0 reports and writes files. Every error a user can cause ends as a Failed event, never an exception.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from workbench import paths
from workbench.config.checks import by_importance, derived_layers
from workbench.config.schema import RunConfig, TrainConfig
from workbench.control import Control
from workbench.engine.assemble import (
    check_positions,
    data_tokenizer,
    is_toy,
    toy_language,
)
from workbench.engine.data.blocks import load_blocks
from workbench.engine.data.generated import teacher_cache_key
from workbench.engine.device import pick_device
from workbench.engine.evaluate import (
    Truth,
    generate_pair,
    next_token_latency_ms,
)
from workbench.engine.export import export_student, save_teacher, write_summary_files
from workbench.engine.importance import IMPORTANCE_BLOCKS, LAYERS_FILE, choose_layers, read_layers, write_layers
from workbench.engine.models.build import build_model, make_student
from workbench.engine.models.load import load_pretrained, load_teacher, load_tokenizer
from workbench.engine.models.sizes import bytes_of, count_parameters
from workbench.engine.models.tokenizers import check_tokenizers
from workbench.engine.teacher_cache import teacher_topk_cache, weights_fingerprint
from workbench.engine.train.failures import failed_event, refuse_damaged_latest, remove_what_this_call_made
from workbench.engine.train.parallel import Parallel
from workbench.engine.train.report import Reporter
from workbench.engine.train.stages import Session, StageResult
from workbench.errors import ConfigError, WriteFailed, writing
from workbench.events import (
    Failed,
    Finished,
    Log,
    StageStarted,
)
from workbench.run_folder import (
    RESUME_MISSING_FILE_HINT,
    create_run_dir,
    latest_checkpoint,
    load_run_config,
    make_folder,
    missing_for_resume,
    missing_sentence,
    pinned_paths,
    read_checkpoint_state,
    read_run,
    running_elsewhere,
    write_json,
    write_status,
)


class _CacheProgress:
    """Building the teacher cache, as Log events: one at the start and one per tenth of the blocks."""

    def __init__(self, report: Reporter, label: str):
        self.report, self.label, self.reported = report, label, -1

    def __call__(self, done: int, total: int) -> None:
        tenth = 10 * done // max(total, 1)
        if tenth > self.reported:
            self.reported = tenth
            self.report(Log(f"building the teacher cache ({self.label} blocks): {done:,} of {total:,}"))


def run(
    config: RunConfig,
    on_event: Callable[[Any], None] | None = None,
    control: Control | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
) -> Finished | Failed:
    """Run a configuration to the end (or until stopped). Never raises for errors a user can cause.

    A run refused before any training began (a model or data file that cannot be used, memory, a full disk)
    leaves no run folder behind: the folder this call made is removed again (an empty ``run_dir`` the
    caller gave is emptied, never removed; a resumed run is never touched)."""
    control = control or Control()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its bars would tear the CLI's progress line and say nothing new
    parallel = Parallel.from_env()
    report = Reporter(on_event, parallel)
    path: Path | None = None
    started_in: Path | None = None  # the folder this call writes to; a refused start touches no folder
    made_here: str = ""  # "folder": this call made the run folder; "contents": it filled an empty one given to it
    execution: _Run | None = None
    asked_processes = 1
    previous_status = ""  # a resumed run's status before this call
    try:
        if resume is not None:
            path = Path(resume).expanduser()
            try:
                config = load_run_config(path)
            except ConfigError as err:
                if missing_for_resume(err):  # the run's own files: the fix is to put them back, not to edit the run
                    raise ConfigError(
                        err.field, missing_sentence(f"run {path.name}", err), RESUME_MISSING_FILE_HINT
                    ) from None
                raise
            pid = running_elsewhere(path) if parallel.main else None
            if pid is not None:  # two processes training into one folder would overwrite each other's files
                raise ConfigError(
                    "",
                    f"run {path.name} is still running (process {pid})",
                    f"stop it first (Ctrl-C where it runs, or kill {pid}), then resume it",
                )
            info = read_run(path)
            previous_status = info.status
            exported = info.summary and (path / "student" / "config.json").is_file()
            if info.status == "completed" or (info.status == "unknown" and exported):
                raise ConfigError(
                    "",
                    f"run {path.name} has already completed",
                    "start a new run to train further (its student is in student/)",
                )
            refuse_damaged_latest(path)
            if latest_checkpoint(path) is None and not (path / "teacher" / "config.json").is_file():
                raise ConfigError("", f"run {path.name} has no checkpoint to resume from", "start it again instead")
        else:
            config.validate()
            asked_processes = config.train.processes
            config = pinned_paths(config.copy())
            config.train.processes = parallel.world_size  # config.toml says what ran (a resume runs as many)
            pick_device(
                config.train.device, config.train.precision, local_rank=parallel.local_rank
            )  # no folder for a run that cannot start
            if run_dir is not None:
                path = Path(run_dir)
                if parallel.main and path.is_dir() and any(path.iterdir()):
                    raise ConfigError(
                        "",
                        f"run folder {str(path)!r} is not empty",
                        "give a new folder, or continue that run with --resume",
                    )
                made_here = "contents" if path.is_dir() else "folder"
                parallel.barrier()  # the other processes look only after rank 0 has checked
                make_folder(path, "run_dir")
                if parallel.main:
                    started_in = path
                    with writing("the run's config.toml", path):
                        config.save(path / "config.toml")
            elif parallel.main:
                path = create_run_dir(config)
                made_here = "folder"
            else:
                raise RuntimeError("under torchrun give every process the same run folder (workbench run --run-dir)")
        started_in = path
        report.open(path)
        if parallel.main:
            write_status(path, "running")
        execution = _Run(config, path, report, control, parallel, resuming=resume is not None)
        execution.asked_processes = asked_processes
        result = execution.execute()
    except Exception as err:  # noqa: BLE001 - every error ends as a Failed event; bugs stay loud in error.log
        result = failed_event(err, path, started_in, parallel)
    if (
        isinstance(result, Failed)
        and result.user_error
        and made_here
        and started_in is not None
        and parallel.world_size == 1
        and (execution is None or not execution.training_started)
    ):
        report.close()
        remove_what_this_call_made(started_in, made_here)
        result = dataclasses.replace(result, run_dir="")
        started_in = None
    if started_in is not None and parallel.main:
        status = result.status if isinstance(result, Finished) else "failed"
        if (
            isinstance(result, Failed)
            and result.user_error
            and previous_status
            and (execution is None or not execution.training_started)
        ):
            status = previous_status  # a refused resume changed nothing: the run stays as it was (stopped...)
        try:
            write_status(started_in, status)
        except WriteFailed:
            pass  # the disk refuses even status.json: the caller still gets the result below
    report.last(result)
    report.close()
    parallel.close(ok=isinstance(result, Finished))
    return result


def opening_words(text: str, words: int = 6, chars: int = 40) -> str:
    """The first ``words`` words of ``text`` on its first line (text without spaces, such as Chinese: its
    first ``chars // 3`` characters), for a probe prompt."""
    line = next((line.strip() for line in str(text).splitlines() if line.strip()), "")
    parts = line.split()
    if len(parts) == 1 and len(line) > chars // 3:
        return line[: chars // 3]
    return " ".join(parts[:words])[:chars].strip()


def describe_tokenizer(cfg: RunConfig, tokenizer: Any) -> str:
    """Which tokenizer the run reads and writes with, in words, with its size."""
    size = f"{len(tokenizer):,} tokens"
    if cfg.teacher.source == "train":
        if cfg.data.source == "toy":
            return f"the built-in language's words ({size})"
        return f"byte-level BPE trained on the data ({size})"
    name = getattr(tokenizer, "name_or_path", "") or cfg.teacher.path
    kind = type(tokenizer).__name__.removesuffix("Fast")
    return f"the teacher's {kind} ({size}; {Path(str(name)).name or name})"


DATA_RECORD = "data.json"  # what a file or disk source was when the run started (_Run._check_data_unchanged)


def _what_changed(before: dict[str, Any], now: dict[str, Any]) -> str:
    if before.get("path") != now.get("path"):
        return f"it was {before.get('path')}, now {now.get('path')}"
    if before.get("size") != now.get("size"):
        return f"{before.get('size'):,} bytes then, {now.get('size'):,} now"
    if "files" in before and before.get("files") != now.get("files"):
        return "its files differ"
    if before.get("sha256") != now.get("sha256") or before.get("mtime_ns") != now.get("mtime_ns"):
        return "its content was modified"
    changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    return "its " + ", ".join(changed) + " differ" if changed else "it differs"


class _Run:
    """One execution of a run folder (fresh or resumed)."""

    def __init__(
        self, config: RunConfig, run_dir: Path, report: Reporter, control: Control, parallel: Parallel, resuming: bool
    ):
        self.config = config
        self.run_dir = run_dir
        self.report = report
        self.control = control
        self.parallel = parallel
        self.resuming = resuming
        self.started = time.time()
        self.session: Session | None = None  # made once the device, the tokenizer and the data are known
        self.training_started = False  # until then a failure has changed nothing worth keeping
        self.asked_processes = config.train.processes  # train.processes before run() recorded what runs
        self.kept: dict[str, Any] = {}  # keep = "importance": the layers kept and their scores (for the summary)

    # -- setup ----------------------------------------------------------------
    def execute(self) -> Finished:
        cfg = self.config
        self.report(StageStarted("setup", message="loading models and data"))
        torch.manual_seed(cfg.train.seed)
        self.dev = pick_device(cfg.train.device, cfg.train.precision, local_rank=self.parallel.local_rank)
        self.report(Log(f"device: {self.dev.label}, precision {self.dev.precision}"))
        world = self.parallel.world_size
        if world > 1:
            self.report(
                Log(f"{world} processes, data parallel ({world} x {cfg.train.batch_size} sequences a micro-batch)")
            )
        if self.asked_processes > world:
            self.report(
                Log(
                    f"train.processes is {self.asked_processes} but this run has {world} process(es): the window "
                    "launches train.processes; from a terminal, torchrun --nproc_per_node N decides",
                    level="warning",
                )
            )
        checkpoint = latest_checkpoint(self.run_dir) if self.resuming else None
        teacher_dir = self.run_dir / "teacher"
        self.language = toy_language() if is_toy(cfg) else None

        teacher_done = (teacher_dir / "config.json").is_file()
        self._check_data_unchanged()
        if (
            cfg.teacher.source == "train"
            and not teacher_done
            and checkpoint is not None
            and read_checkpoint_state(checkpoint)["stage"] == "distill"
        ):  # retraining it would start the distillation over and prune the checkpoint that holds its steps
            raise ConfigError(
                "",
                f"run {self.run_dir.name} has a distillation checkpoint ({checkpoint.name}) but the teacher it "
                "trained (teacher/) is gone",
                "put teacher/ back (from a copy of the run), or start a new run",
            )
        if cfg.teacher.source == "train":
            if teacher_done:
                teacher, tokenizer = load_pretrained("local", str(teacher_dir))
            else:
                tokenizer = data_tokenizer(cfg.teacher, cfg.data)
                self._check_student_tokenizer_first(tokenizer)  # before the teacher stage, not after it
                teacher = None
        else:
            self._check_student_tokenizer_first()
            teacher, tokenizer = load_teacher(cfg.teacher, on_warning=self._warn)
            self.report(Log(f"teacher loaded: {count_parameters(teacher):,} parameters"))
        self.tokenizer = tokenizer
        self.tokenizer_description = describe_tokenizer(cfg, tokenizer)
        self.report(Log(f"tokenizer: {self.tokenizer_description}"))
        self.blocks = self._load_data(teacher)
        self._probe_the_datas_own_words()
        eval_blocks = self.blocks.val[: cfg.train.eval_batches * cfg.train.batch_size].long()  # text: int32
        truth = Truth(self.language, len(tokenizer), eval_blocks) if self.language is not None else None
        self.session = Session(
            cfg,
            self.run_dir,
            self.report,
            self.control,
            self.parallel,
            self.dev,
            tokenizer,
            self.blocks,
            eval_blocks,
            truth,
            self.language,
            started=self.started,
        )

        if teacher is None:
            teacher = build_model(
                cfg.teacher.arch,
                len(tokenizer),
                pad_token_id=tokenizer.pad_token_id or 0,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                seed=cfg.train.seed,
            )
            check_positions(cfg, teacher, "teacher")
            resume_from = (
                checkpoint
                if checkpoint is not None and read_checkpoint_state(checkpoint)["stage"] == "teacher"
                else None
            )
            self.training_started = True
            result = self.session.train_stage("teacher", teacher, None, resume_from)
            if result.status != "completed":
                return self._finish(result.status, {"stage": "teacher", "steps": result.step})
            if self.parallel.main:
                save_teacher(teacher, tokenizer, teacher_dir)
                self.report(Log(f"teacher saved to {teacher_dir}"))
            self.parallel.barrier()
            checkpoint = None
        check_positions(cfg, teacher, "teacher")
        self.teacher = teacher.to(self.dev.device)
        self.teacher.eval()
        self.teacher.requires_grad_(False)
        if cfg.distill.teacher_cache == "topk" and cfg.distill.alpha > 0:
            self._teacher_caches()

        student_cfg = self._student_config(eval_blocks)
        student = make_student(student_cfg, teacher, tokenizer, seed=cfg.train.seed)  # from the fp32 weights
        self.session.hidden_layers = self._hidden_layers(student_cfg, teacher)
        if self.dev.frozen_dtype != torch.float32:
            self.teacher.to(self.dev.frozen_dtype)  # frozen: half the memory, and autocast computed in it anyway
            self.report(Log(f"the frozen teacher is kept in {self.dev.precision} (train.precision)"))
        if cfg.student.source == "custom" and student.config.model_type != cfg.student.arch.family:
            self.report(
                Log(
                    f"the custom student is built as a {student.config.model_type} model, the teacher's family "
                    f"(student.arch.family says {cfg.student.arch.family})",
                    level="warning",
                )
            )
        check_positions(cfg, student, "student")
        student_params, teacher_params = count_parameters(student), count_parameters(teacher)
        if student_params >= teacher_params:
            self.report(
                Log(
                    f"the student ({student_params:,} parameters) is not smaller than the teacher ({teacher_params:,})",
                    level="warning",
                )
            )
        resume_from = (
            checkpoint if checkpoint is not None and read_checkpoint_state(checkpoint)["stage"] == "distill" else None
        )
        if self.resuming and resume_from is None:
            self.report(Log("no distillation checkpoint to resume from: the distillation starts at step 0"))
        self.training_started = True
        result = self.session.train_stage("distill", student, self.teacher, resume_from)
        self.student = student
        if result.status != "completed":
            return self._finish(result.status, {"stage": "distill", "steps": result.step, **result.metrics})
        if not self.parallel.main:
            return self._finish("completed", {"steps": result.step})
        summary = self._summarise(result)
        if self.parallel.main:
            self.report(StageStarted("export", message="writing the student"))
            export_student(student, tokenizer, self.run_dir / "student", config=cfg, summary=summary)
            write_summary_files(self.run_dir, summary)
        return self._finish("completed", summary)

    def _teacher_caches(self) -> None:
        """distill.teacher_cache = "topk": the teacher's top-k over the distillation and held-out blocks,
        found in the cache or built now (rank 0 builds; the other processes then find it)."""
        session, k = self.session, self.config.distill.cache_k
        fingerprint = weights_fingerprint(self.teacher)
        if not self.parallel.main:
            self.parallel.barrier()
        caches = []
        for label, blocks in (("training", session.distill_blocks()), ("held-out", session.eval_blocks)):
            with writing("the teacher cache", paths.home() / "cache" / "teacher_topk"):
                cache = teacher_topk_cache(
                    self.teacher,
                    blocks,
                    k,
                    device=self.dev.device,
                    autocast=self.dev.autocast,
                    fingerprint=fingerprint,
                    on_progress=_CacheProgress(self.report, label),
                )
            how = "built" if cache.built else "found"
            self.report(
                Log(
                    f"teacher cache ({label}, top {cache.k}): {how}, {len(blocks):,} blocks, "
                    f"{cache.disk_bytes() / 2**20:,.1f} MiB in {cache.folder}"
                )
            )
            caches.append(cache)
        if self.parallel.main:
            self.parallel.barrier()
        session.teacher_topk, session.eval_topk = caches

    def _student_config(self, eval_blocks: torch.Tensor) -> Any:
        """The student config to build from: with ``keep = "importance"`` the layers this run measured (or,
        resumed, the ones its layers.json recorded) as ``layer_ids``."""
        cfg = self.config
        if not by_importance(cfg.student):
            return cfg.student
        path = self.run_dir / LAYERS_FILE
        if path.is_file():
            data = read_layers(self.run_dir)
            ids, kl = list(data["layer_ids"]), data.get("kl")
            self.report(Log(f"student keeps teacher layers {ids} (chosen by importance, read from {LAYERS_FILE})"))
        else:
            checkpoint = latest_checkpoint(self.run_dir) if self.resuming else None
            if checkpoint is not None and read_checkpoint_state(checkpoint)["stage"] == "distill":
                read_layers(self.run_dir)  # a student is half trained with layers nobody recorded: refuse
            self.report(Log(f"measuring the teacher's layers on {IMPORTANCE_BLOCKS} held-out blocks"))
            ids, importance = choose_layers(cfg.student, self.teacher, eval_blocks.to(self.dev.device))
            kl = importance.kl
            if self.parallel.main:
                write_layers(self.run_dir, ids, importance)
            scores = ", ".join(f"L{i} {v:.3g}" for i, v in enumerate(kl))
            self.report(Log(f"student keeps teacher layers {ids}, chosen by importance (KL when skipped: {scores})"))
        self.kept = {"kept_layers": ids, "kept_by": "importance", "layer_kl": kl}
        return dataclasses.replace(cfg.student, layer_ids=ids)

    def _hidden_layers(self, student_cfg: Any, teacher: torch.nn.Module) -> list[int] | None:
        """distill.hidden_weight > 0: the teacher layer each layer of the derived student was copied from."""
        cfg = self.config
        if not cfg.distill.hidden_weight > 0 or student_cfg.source != "derived":
            return None
        ids = derived_layers(student_cfg, teacher.config.num_hidden_layers)
        self.report(
            Log(
                f"hidden-state matching ({cfg.distill.hidden_loss}, weight {cfg.distill.hidden_weight:g}): "
                f"student layers {list(range(len(ids)))} against teacher layers {ids}"
            )
        )
        return ids

    def _warn(self, message: str) -> None:
        self.report(Log(message, level="warning"))

    def _check_student_tokenizer_first(self, teacher_tok: Any = None) -> None:
        """An existing student must share the teacher's tokenizer: refuse before any weights load
        (``teacher_tok``: the tokenizer of a teacher about to be trained here; else the loaded teacher's)."""
        cfg = self.config
        if cfg.student.source not in ("local", "hub"):
            return
        if teacher_tok is None:
            teacher_tok = data_tokenizer(cfg.teacher, cfg.data)
        student_tok = load_tokenizer(cfg.student.source, cfg.student.path, field="student.path")
        check_tokenizers(teacher_tok, student_tok)

    def _data_log(self, message: str) -> None:
        """A line from the data loaders; theirs that start with ``warning:`` are warnings (the CLI's one
        ``warning:`` line, the window's banner)."""
        if message.startswith("warning: "):
            self.report(Log(message.removeprefix("warning: "), level="warning"))
        else:
            self.report(Log(message))

    def _probe_the_datas_own_words(self) -> None:
        """On data other than the built-in language, probe prompts left at their default (the built-in
        language's "the cat is sitting on the") become the opening words of the data's first two documents:
        a run on one's own text watches the next word of that text. The same documents on a resume."""
        cfg = self.config
        if cfg.data.source == "toy" or cfg.train.probe_prompts != TrainConfig().probe_prompts:
            return
        prompts = [p for p in (opening_words(text) for text in (self.blocks.examples or [])[:2]) if p]
        if prompts:
            cfg.train.probe_prompts = prompts
            self.report(
                Log(
                    f"probe prompts: {', '.join(repr(p) for p in prompts)}, the openings of the data's first "
                    "documents (train.probe_prompts chooses others)"
                )
            )

    def _check_data_unchanged(self) -> None:
        """A run on a file or a dataset folder records what it read (``data.json``: path, size, content hash or
        modification time); a resume refuses data that has changed since. Read with another text, a teacher
        trained here would get a tokenizer trained on that text (it is saved only with the teacher), its ids
        scrambled against the weights; and the blocks, their order and a top-k cache would not be the run's."""
        cfg = self.config
        if cfg.data.source not in ("file", "disk"):
            return
        from workbench.engine.data.sources import open_documents

        identity = json.loads(json.dumps(open_documents(cfg.data).identity, default=str))
        record = self.run_dir / DATA_RECORD
        recorded = None
        if self.resuming and record.is_file():
            try:
                recorded = json.loads(record.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                recorded = None  # unreadable: nothing to compare with, so it is written again
        if recorded is not None:
            if recorded != identity:
                raise ConfigError(
                    "data.path",
                    f"the data of run {self.run_dir.name} has changed since it started ({_what_changed(recorded, identity)})",
                    "put back the data the run started with, or start a new run on this data",
                )
            return
        if self.parallel.main:
            with writing(DATA_RECORD, self.run_dir):
                paths.write_text_atomic(record, json.dumps(identity, indent=1))

    def _load_data(self, teacher: torch.nn.Module | None) -> Any:

        cfg = self.config
        kwargs: dict[str, Any] = {}
        if cfg.data.source == "generated" and teacher is not None:  # RunConfig.errors() refuses a teacher trained here
            kwargs.update(teacher=teacher.to(self.dev.device), teacher_key=teacher_cache_key(cfg.teacher))
        blocks = load_blocks(
            cfg.data,
            self.tokenizer,
            cfg.train.seq_len,
            seed=cfg.train.seed,
            on_log=self._data_log,
            **kwargs,
        )
        return blocks

    # -- the end ----------------------------------------------------------------
    def _summarise(self, result: StageResult) -> dict[str, Any]:
        cfg = self.config
        self.report(StageStarted("evaluate", message="final measurements"))
        summary: dict[str, Any] = {"status": "completed", "steps": result.step, **result.metrics, **self.kept}
        summary["tokenizer"] = self.tokenizer_description
        summary.update({k: v for k, v in self.session.history.items() if k != "elapsed_s"})
        teacher_params = count_parameters(self.teacher)
        student_params = count_parameters(self.student)
        summary.update(
            teacher_params=teacher_params,
            student_params=student_params,
            compression=teacher_params / max(student_params, 1),
            teacher_latency_ms=next_token_latency_ms(self.teacher, self.dev.device),
            student_latency_ms=next_token_latency_ms(self.student, self.dev.device),
            teacher_disk_bytes=bytes_of(self.teacher),
            student_disk_bytes=bytes_of(self.student),
            wall_time_s=time.time() - self.session.started,
            device=self.dev.label,
            precision=self.dev.precision,
        )
        if self.dev.device.type == "cuda":
            summary["peak_gpu_memory_bytes"] = int(torch.cuda.max_memory_allocated(self.dev.device))
        summary["generations"] = []
        for prompt in [p for p in cfg.train.probe_prompts if p.strip()][:3]:
            try:
                texts = generate_pair(
                    prompt,
                    teacher=self.teacher,
                    student=self.student,
                    tokenizer=self.tokenizer,
                    device=self.dev.device,
                    max_new_tokens=20,
                    temperature=0.0 if self.language is None else 1.0,
                    seed=cfg.train.seed,
                )
            except ConfigError:  # a probe prompt that fills the models' positions (its warning came at the probes)
                continue
            summary["generations"].append({"prompt": prompt, **dict(zip(("teacher", "student"), texts))})
        return summary

    def _finish(self, status: str, summary: dict[str, Any]) -> Finished:
        summary = {"status": status, **summary}
        if status != "completed" and self.parallel.main:
            write_json(self.run_dir / "summary.json", summary)
        return Finished(status=status, run_dir=str(self.run_dir), summary=summary)
