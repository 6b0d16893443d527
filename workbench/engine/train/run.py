"""The training loop for both stages: ``run(config, on_event, control)``.

Stage 1 (``teacher``, optional) trains the teacher from scratch with
cross-entropy; stage 2 (``distill``) trains the student on
``alpha * T^2 * D(teacher_T || student_T) + (1 - alpha) * CE``. The loop
reports only through ``on_event`` (see events.py) and checks ``control``
between optimizer steps. Under ``torchrun`` each process trains on its slice
of every batch (data parallel, gradients all-reduced by DDP); only rank 0
reports and writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from workbench.config.schema import RunConfig
from workbench.control import Control
from workbench.engine.assemble import (
    check_positions,
    data_tokenizer,
    is_toy,
    toy_language,
)
from workbench.engine.checkpoints import restore_checkpoint, save_checkpoint
from workbench.engine.data.blocks import BatchIterator, load_blocks
from workbench.engine.data.generated import teacher_cache_key
from workbench.engine.device import pick_device
from workbench.engine.evaluate import (
    Truth,
    evaluate,
    generate_pair,
    next_token_latency_ms,
    probe_prompt,
)
from workbench.engine.export import export_student, save_teacher, write_summary_files
from workbench.engine.losses import count_valid_tokens, distill_loss
from workbench.engine.models.build import build_model, make_student
from workbench.engine.models.load import load_pretrained, load_teacher, load_tokenizer
from workbench.engine.models.sizes import count_parameters
from workbench.engine.models.tokenizers import check_tokenizers
from workbench.errors import ConfigError, one_line
from workbench.events import (
    Checkpoint,
    Eval,
    Failed,
    Finished,
    Log,
    Probe,
    StageStarted,
    Step,
)
from workbench.run_folder import (
    EventLog,
    create_run_dir,
    latest_checkpoint,
    load_run_config,
    make_folder,
    read_checkpoint_state,
    read_run,
    write_json,
    write_status,
)

LOSS_CHUNK_ELEMENTS = 2**22
"""Most logits (positions x vocabulary) the loss handles per chunk: about 16 MB per fp32 temporary,
small enough to stay in cache (at vocabulary 49152 chunks of ~85 positions run the loss 2x faster
than chunks of 1024, see scripts/bench_speed.py) and to keep its memory flat."""


def loss_chunk_positions(vocab_size: int, configured: int) -> int:
    """Positions per loss chunk: ``distill.chunk_positions``, capped by LOSS_CHUNK_ELEMENTS."""
    return max(1, min(configured, LOSS_CHUNK_ELEMENTS // max(vocab_size, 1)))


class RunFailed(Exception):
    """Stops the run with a Failed event (message + hint) after keeping the last good checkpoint."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass
class Parallel:
    """The process group when launched by torchrun (world_size 1 otherwise)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int | None = None

    @classmethod
    def from_env(cls) -> "Parallel":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
        return cls(rank=dist.get_rank(), world_size=world, local_rank=local)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, value: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(value)
        return value

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self, ok: bool) -> None:
        """After a run that ended normally, wait for every process (rank 0 exports and measures last), then
        leave the group: a process that exits while the others still use the group is aborted.

        After a failure, return at once: the other processes may be inside a different collective (a
        barrier here would wait for them forever); this one exits with an error and torchrun stops
        the rest."""
        if self.world_size > 1 and ok:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.barrier()
                dist.destroy_process_group()


class _Reporter:
    """Sends events to the caller and to events.jsonl: all of them from rank 0; from the other
    ranks only their own failure, named by rank (under torchrun each process meets its errors
    alone, and the one that failed is the one that knows why)."""

    def __init__(self, on_event: Callable[[Any], None] | None, parallel: "Parallel"):
        self.on_event = on_event
        self.enabled = parallel.main
        self.rank = parallel.rank
        self.log: EventLog | None = None

    def open(self, run_dir: Path) -> None:
        if self.enabled:
            self.log = EventLog(run_dir)

    def __call__(self, event: Any) -> None:
        if not self.enabled:
            if isinstance(event, Failed) and self.on_event is not None:
                self.on_event(dataclasses.replace(event, message=f"process {self.rank}: {event.message}"))
            return
        if self.log is not None:
            self.log.write(event)
        if self.on_event is not None:
            self.on_event(event)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


def run(config: RunConfig, on_event: Callable[[Any], None] | None = None, control: Control | None = None, *,
        run_dir: str | Path | None = None, resume: str | Path | None = None) -> Finished | Failed:
    """Run a configuration to the end (or until stopped). Never raises for errors a user can cause."""
    control = control or Control()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its bars would tear the CLI's progress line and say nothing new
    parallel = Parallel.from_env()
    report = _Reporter(on_event, parallel)
    path: Path | None = None
    started_in: Path | None = None  # the folder this call writes to; a refused start touches no folder
    try:
        if resume is not None:
            path = Path(resume).expanduser()
            config = load_run_config(path)
            if read_run(path).status == "completed":
                raise ConfigError("", f"run {path.name} has already completed", "start a new run to train further (its student is in student/)")
            if latest_checkpoint(path) is None and not (path / "teacher" / "config.json").is_file():
                raise ConfigError("", f"run {path.name} has no checkpoint to resume from", "start it again instead")
        else:
            config.validate()
            pick_device(config.train.device, config.train.precision, local_rank=parallel.local_rank)  # no folder for a run that cannot start
            if run_dir is not None:
                path = Path(run_dir)
                if parallel.main and path.is_dir() and any(path.iterdir()):
                    raise ConfigError("", f"run folder {str(path)!r} is not empty", "give a new folder, or continue that run with --resume")
                parallel.barrier()  # the other processes look only after rank 0 has checked
                make_folder(path, "run_dir")
                if parallel.main:
                    config.save(path / "config.toml")
            elif parallel.main:
                path = create_run_dir(config)
            else:
                raise RuntimeError("under torchrun give every process the same run folder (workbench run --run-dir)")
        started_in = path
        report.open(path)
        if parallel.main:
            write_status(path, "running")
        result = _Run(config, path, report, control, parallel, resuming=resume is not None).execute()
    except RunFailed as err:
        result = Failed(err.message, err.hint, str(path or ""), user_error=True)
    except ConfigError as err:
        result = Failed(err.what, err.hint, str(path or ""), user_error=True)
    except torch.OutOfMemoryError:
        result = Failed("The device ran out of memory.", "lower train.batch_size or train.seq_len (raise train.grad_accum to keep the batch), or use bf16", str(path or ""), user_error=True)
    except Exception as err:  # a bug: keep it loud in the record, but the caller (GUI) stays alive
        log_name = "error.log" if parallel.main else f"error-process{parallel.rank}.log"
        if started_in is not None:
            (started_in / log_name).write_text(traceback.format_exc(), encoding="utf-8")
        result = Failed(f"Unexpected error: {type(err).__name__}: {one_line(err)}", f"this is probably a bug; the traceback is in {log_name} in the run folder", str(path or ""))
    if started_in is not None and parallel.main:
        write_status(started_in, result.status if isinstance(result, Finished) else "failed")
    report(result)
    report.close()
    parallel.close(ok=isinstance(result, Finished))
    return result


@dataclass
class _StageResult:
    status: str  # completed | stopped | cancelled
    step: int
    metrics: dict[str, float] = field(default_factory=dict)


class _Run:
    """One execution of a run folder (fresh or resumed)."""

    def __init__(self, config: RunConfig, run_dir: Path, report: _Reporter, control: Control,
                 parallel: Parallel, resuming: bool):
        self.config = config
        self.run_dir = run_dir
        self.report = report
        self.control = control
        self.parallel = parallel
        self.resuming = resuming
        self.started = time.time()
        self.history: dict[str, Any] = {}
        self.probe_vocab_cache: dict[int, list[str]] = {}

    # -- setup ----------------------------------------------------------------
    def execute(self) -> Finished:
        cfg = self.config
        self.report(StageStarted("setup", message="loading models and data"))
        torch.manual_seed(cfg.train.seed)
        self.dev = pick_device(cfg.train.device, cfg.train.precision, local_rank=self.parallel.local_rank)
        self.report(Log(f"device: {self.dev.label}, precision {self.dev.precision}"))
        checkpoint = latest_checkpoint(self.run_dir) if self.resuming else None
        teacher_dir = self.run_dir / "teacher"
        self.language = toy_language() if is_toy(cfg) else None

        teacher_done = (teacher_dir / "config.json").is_file()
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
        self.blocks = self._load_data(teacher)
        self.truth = None
        if self.language is not None:
            self.eval_blocks = self.blocks.val[: cfg.train.eval_batches * cfg.train.batch_size]
            self.truth = Truth(self.language, len(tokenizer), self.eval_blocks)
        else:
            self.eval_blocks = self.blocks.val[: cfg.train.eval_batches * cfg.train.batch_size]

        if teacher is None:
            teacher = build_model(cfg.teacher.arch, len(tokenizer), pad_token_id=tokenizer.pad_token_id or 0,
                                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                         seed=cfg.train.seed)
            check_positions(cfg, teacher, "teacher")
            resume_from = checkpoint if checkpoint is not None and read_checkpoint_state(checkpoint)["stage"] == "teacher" else None
            result = self._train_stage("teacher", teacher, None, resume_from)
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

        student = make_student(cfg.student, teacher, tokenizer, seed=cfg.train.seed)
        if cfg.student.source == "custom" and student.config.model_type != cfg.student.arch.family:
            self.report(Log(f"the custom student is built as a {student.config.model_type} model, the teacher's family "
                            f"(student.arch.family says {cfg.student.arch.family})", level="warning"))
        check_positions(cfg, student, "student")
        student_params, teacher_params = count_parameters(student), count_parameters(teacher)
        if student_params >= teacher_params:
            self.report(Log(f"the student ({student_params:,} parameters) is not smaller than the teacher ({teacher_params:,})", level="warning"))
        resume_from = checkpoint if checkpoint is not None and read_checkpoint_state(checkpoint)["stage"] == "distill" else None
        result = self._train_stage("distill", student, self.teacher, resume_from)
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

    def _load_data(self, teacher: torch.nn.Module | None) -> Any:

        cfg = self.config
        kwargs: dict[str, Any] = {}
        if cfg.data.source == "generated" and teacher is not None:  # RunConfig.errors() refuses a teacher trained here
            kwargs.update(teacher=teacher.to(self.dev.device), teacher_key=teacher_cache_key(cfg.teacher))
        blocks = load_blocks(cfg.data, self.tokenizer, cfg.train.seq_len, seed=cfg.train.seed,
                                  on_log=lambda message: self.report(Log(message)), **kwargs)
        return blocks

    # -- the loop ---------------------------------------------------------------
    def _train_stage(self, stage: str, model: torch.nn.Module, teacher: torch.nn.Module | None,
                     checkpoint: Path | None) -> _StageResult:

        tr, dist_cfg = self.config.train, self.config.distill
        distilling = stage == "distill"
        total = tr.max_steps if distilling else tr.teacher_steps
        peak_lr = tr.lr if distilling else tr.teacher_lr
        warmup = min(tr.warmup_steps, total)
        if total and tr.warmup_steps >= total and checkpoint is None:
            self.report(Log(f"train.warmup_steps ({tr.warmup_steps}) is not below the {stage} stage's {total} steps: "
                            "the learning rate only rises and never decays", level="warning"))
        alpha = dist_cfg.alpha if distilling else 0.0
        device = self.dev.device
        chunk = loss_chunk_positions(model.get_input_embeddings().weight.shape[0], dist_cfg.chunk_positions)
        model.to(device)
        model.train()
        optimizer = torch.optim.AdamW(_param_groups(model, tr.weight_decay), lr=peak_lr, betas=(0.9, 0.95),
                                      foreach=device.type != "cpu" or None)
        world = self.parallel.world_size
        iterator = BatchIterator(self.blocks.train, tr.batch_size * world, seed=tr.seed + (1 if distilling else 0))
        step = 0
        if checkpoint is not None:
            state = restore_checkpoint(checkpoint, model, optimizer)
            step = int(state["step"])
            iterator.load_state(state["data"])
            self.history.update(state.get("history", {}))
            # Time already spent before the interruption counts in the run's wall time.
            self.started = time.time() - float(self.history.get("elapsed_s", 0.0))
            self.report(Log(f"resumed the {stage} stage at step {step}"))
        trainable = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            trainable = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        self.report(StageStarted(stage, total_steps=total))
        if step == 0:  # the starting point: the untrained teacher, the student before distillation
            self._evaluate(stage, 0, model, teacher)
            self._probe(stage, 0, model, teacher)

        rank_slice = slice(self.parallel.rank * tr.batch_size, (self.parallel.rank + 1) * tr.batch_size)
        tokens_per_step = tr.batch_size * world * tr.grad_accum * tr.seq_len
        window_start, window_tokens = time.perf_counter(), 0
        stage_start = time.perf_counter()
        stage_start_step = step
        sums = torch.zeros(3, device=device)  # loss, kd, ce summed over the log window
        window_steps = 0
        last_metrics: dict[str, float] = {}
        while step < total:
            if self._wait_while_paused():
                return self._stop(stage, step, model, optimizer, iterator)
            lr = _lr_at(step, total, warmup, peak_lr, tr.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batches = [iterator.next_batch()[rank_slice] for _ in range(tr.grad_accum)]
            n_valid = torch.tensor(float(sum(count_valid_tokens(b) for b in batches)), device=device)
            n_valid = int(self.parallel.all_sum(n_valid).item()) if world > 1 else int(n_valid.item())
            for micro, ids in enumerate(batches):
                ids = ids.to(device, non_blocking=True)
                sync_context = trainable.no_sync() if world > 1 and micro < len(batches) - 1 else contextlib.nullcontext()
                with sync_context:
                    teacher_logits = None
                    if teacher is not None and alpha > 0:
                        with torch.no_grad(), self.dev.autocast():
                            teacher_logits = teacher(input_ids=ids, use_cache=False).logits
                    with self.dev.autocast():
                        student_logits = trainable(input_ids=ids, use_cache=False).logits
                    parts = distill_loss(
                        student_logits, teacher_logits, ids, temperature=dist_cfg.temperature, alpha=alpha,
                        divergence=dist_cfg.divergence, beta=dist_cfg.beta, skew=dist_cfg.skew,
                        t_squared=dist_cfg.t_squared, num_valid_tokens=n_valid, chunk_positions=chunk)
                    # DDP averages gradients over processes; the loss is already divided by the global token count.
                    (parts.loss * world).backward()
                share = parts.n_tokens / n_valid
                kd_term = parts.kd.detach() if alpha > 0 else torch.zeros((), device=device)
                sums += torch.stack([parts.loss.detach(), kd_term * share, parts.ce.detach() * share])
            clip = tr.grad_clip if tr.grad_clip > 0 else float("inf")
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            window_steps += 1
            window_tokens += tokens_per_step

            if step % tr.log_interval == 0 or step == total:
                values = (sums / window_steps).tolist()
                norm = float(grad_norm)
                if not math.isfinite(values[0]) or not math.isfinite(norm):
                    raise RunFailed(f"The {stage} loss became {values[0]} at step {step}.",
                                    "lower the learning rate or the temperature, or use fp32; the last good checkpoint is kept")
                now = time.perf_counter()
                rate = window_tokens / max(now - window_start, 1e-9)
                per_step = (now - stage_start) / max(step - stage_start_step, 1)
                kd = values[1] if alpha > 0 else float("nan")
                self.report(Step(stage=stage, step=step, total_steps=total, loss=values[0], kd=kd, ce=values[2],
                                 lr=lr, grad_norm=norm, tokens_per_s=rate, elapsed_s=time.time() - self.started,
                                 eta_s=per_step * (total - step), memory_bytes=_memory_in_use(device)))
                sums.zero_()
                window_steps, window_start, window_tokens = 0, now, 0
            if step % tr.eval_interval == 0 or step == total:
                last_metrics = self._evaluate(stage, step, model, teacher)
            if step % tr.probe_interval == 0 or step == total:
                self._probe(stage, step, model, teacher)
            save_now = self.control.save_now.is_set()
            if save_now or (tr.checkpoint_interval and step % tr.checkpoint_interval == 0 and step < total):
                self.control.save_now.clear()
                if window_steps and not bool(torch.isfinite(sums).all()):
                    raise RunFailed(f"The {stage} loss became non-finite before step {step}.",
                                    "lower the learning rate or the temperature, or use fp32; the last good checkpoint is kept")
                self._checkpoint(stage, step, model, optimizer, iterator)
            if self.control.stopping and step < total:
                return self._stop(stage, step, model, optimizer, iterator)
        return _StageResult("completed", step, last_metrics)

    def _wait_while_paused(self) -> bool:
        """Blocks while paused; True when the run should stop."""
        paused = False
        while self.control.pause.is_set() and not self.control.stopping:
            if not paused:
                self.report(Log("paused"))
                paused = True
            time.sleep(0.05)
        if paused and not self.control.stopping:
            self.report(Log("resumed"))
        return self.control.stopping

    def _stop(self, stage: str, step: int, model, optimizer, iterator) -> _StageResult:
        if self.control.cancel.is_set():
            return _StageResult("cancelled", step)
        self._checkpoint(stage, step, model, optimizer, iterator)
        return _StageResult("stopped", step)

    def _checkpoint(self, stage: str, step: int, model, optimizer, iterator) -> None:
        self.history["elapsed_s"] = time.time() - self.started
        if self.parallel.main:
            path = save_checkpoint(self.run_dir, stage=stage, step=step, model=model, optimizer=optimizer,
                                        state={"data": iterator.state(), "history": self.history})
            self.report(Checkpoint(stage=stage, step=step, path=str(path)))
        self.parallel.barrier()

    def _evaluate(self, stage: str, step: int, model, teacher) -> dict[str, float]:
        if not self.parallel.main:
            return {}
        distilling = stage == "distill"
        metrics = evaluate(student=model if distilling else None, teacher=teacher if distilling else model,
                                  blocks=self.eval_blocks, batch_size=self.config.train.batch_size,
                                  device=self.dev.device, autocast=self.dev.autocast, truth=self.truth)
        if distilling and step == 0 and "student_ppl_before" not in self.history:
            self.history["student_ppl_before"] = metrics["student_ppl"]
            self.history["kl_teacher_student_before"] = metrics["kl_teacher_student"]
        if self.language is not None:
            metrics["entropy_rate"] = self.language.entropy_rate()
        self.report(Eval(stage=stage, step=step, metrics=metrics))
        return metrics

    def _probe(self, stage: str, step: int, model, teacher) -> None:
        prompts = [p for p in self.config.train.probe_prompts if p.strip()]
        if not prompts or not self.parallel.main:
            return
        distilling = stage == "distill"
        probe_teacher = teacher if distilling else model
        probe_student = model if distilling else None
        results = []
        for prompt in prompts:
            results.append(probe_prompt(prompt, teacher=probe_teacher, student=probe_student,
                                               tokenizer=self.tokenizer, device=self.dev.device,
                                               truth=self.truth, autocast=self.dev.autocast,
                                               vocab_tokens_cache=self.probe_vocab_cache))
        self.report(Probe(stage=stage, step=step, temperature=self.config.distill.temperature, prompts=results))

    # -- the end ----------------------------------------------------------------
    def _summarise(self, result: _StageResult) -> dict[str, Any]:
        cfg = self.config
        self.report(StageStarted("evaluate", message="final measurements"))
        summary: dict[str, Any] = {"status": "completed", "steps": result.step, **result.metrics}
        summary.update({k: v for k, v in self.history.items() if k != "elapsed_s"})
        teacher_params = count_parameters(self.teacher)
        student_params = count_parameters(self.student)
        summary.update(
            teacher_params=teacher_params,
            student_params=student_params,
            compression=teacher_params / max(student_params, 1),
            teacher_latency_ms=next_token_latency_ms(self.teacher, self.dev.device),
            student_latency_ms=next_token_latency_ms(self.student, self.dev.device),
            teacher_disk_bytes=_bytes_of(self.teacher),
            student_disk_bytes=_bytes_of(self.student),
            wall_time_s=time.time() - self.started,
            device=self.dev.label,
            precision=self.dev.precision,
        )
        if self.dev.device.type == "cuda":
            summary["peak_gpu_memory_bytes"] = int(torch.cuda.max_memory_allocated(self.dev.device))
        prompts = [p for p in cfg.train.probe_prompts if p.strip()][:3]
        summary["generations"] = [
            {"prompt": p, **dict(zip(("teacher", "student"), generate_pair(
                p, teacher=self.teacher, student=self.student, tokenizer=self.tokenizer, device=self.dev.device,
                max_new_tokens=20, temperature=0.0 if self.language is None else 1.0, seed=cfg.train.seed)))}
            for p in prompts
        ]
        return summary

    def _finish(self, status: str, summary: dict[str, Any]) -> Finished:
        summary = {"status": status, **summary}
        if status != "completed" and self.parallel.main:
            write_json(self.run_dir / "summary.json", summary)
        return Finished(status=status, run_dir=str(self.run_dir), summary=summary)


# -- helpers ------------------------------------------------------------------

def _lr_at(step: int, total: int, warmup: int, peak: float, min_ratio: float) -> float:
    """Linear warm-up to ``peak``, then cosine decay to ``min_ratio * peak`` at ``total``."""
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases, norms and embeddings' 1-D parameters."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _memory_in_use(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _bytes_of(model: torch.nn.Module) -> int:
    seen, total = set(), 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    return total
