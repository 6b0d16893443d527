"""One training stage (the teacher trained here, or distillation) and what it does between optimizer steps:
evaluation, probes, checkpoints, pause and stop.

A :class:`Session` holds what both stages of one execution share (settings, device, data, the reporter, the
run's clock and history); :meth:`Session.train_stage` runs a stage's loop to its end, to a stop request or to
a cancel. The loss is ``alpha * T^2 * D(teacher_T || student_T) + (1 - alpha) * CE``
(engine/losses.py); the teacher stage is the same loop with ``alpha = 0`` and no teacher.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench.config.checks import first_on_policy_step
from workbench.config.schema import RunConfig
from workbench.control import Control
from workbench.engine.checkpoints import restore_checkpoint, save_checkpoint
from workbench.engine.data.batches import BatchIterator
from workbench.engine.data.blocks import TokenBlocks
from workbench.engine.device import Device
from workbench.engine.evaluate import Truth, evaluate, fewest_positions, probe_prompt
from workbench.engine.losses import loss_chunk_positions
from workbench.engine.student_text import probe_generator, sample_student_text
from workbench.engine.teacher_cache import TopKCache
from workbench.engine.toy.language import ToyLanguage
from workbench.engine.train.objective import Batch, Objective
from workbench.engine.train.on_policy import is_on_policy_step, on_policy_batch
from workbench.engine.train.parallel import Forward, Parallel
from workbench.engine.train.report import Reporter
from workbench.engine.train.schedule import adamw, lr_at
from workbench.events import Checkpoint, Eval, Log, Probe, StageStarted, Step


class RunFailed(Exception):
    """Stops the run with a Failed event (message + hint) after keeping the last good checkpoint."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass
class StageResult:
    status: str  # completed | stopped | cancelled
    step: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Session:
    """What the stages of one execution of a run folder share."""

    config: RunConfig
    run_dir: Path
    report: Reporter
    control: Control
    parallel: Parallel
    dev: Device
    tokenizer: Any
    blocks: TokenBlocks
    eval_blocks: Any
    truth: Truth | None = None  # the built-in language's exact distributions for the eval blocks
    language: ToyLanguage | None = None
    started: float = field(default_factory=time.time)  # wall clock of the run, moved back on resume
    history: dict[str, Any] = field(default_factory=dict)  # kept in checkpoints: elapsed time, "before" metrics
    probe_vocab_cache: dict[int, list[str]] = field(default_factory=dict)
    long_probe_prompts: set[str] = field(default_factory=set)  # left out of the probes (and said once)
    teacher_topk: TopKCache | None = None  # distill.teacher_cache = "topk": the cache of distill_blocks()
    eval_topk: TopKCache | None = None  # ... and of eval_blocks
    teacher_eval: dict[str, float] | None = None  # with eval_topk: the teacher-only metrics, measured once
    hidden_layers: list[int] | None = None  # distill.hidden_weight > 0: the teacher layer of each student layer

    def distill_blocks(self):
        """The training blocks the distillation stage reads (the first distill.transfer_blocks of them)."""
        transfer = self.config.distill.transfer_blocks
        return self.blocks.train[:transfer] if 0 < transfer < len(self.blocks.train) else self.blocks.train

    def train_stage(
        self, stage: str, model: torch.nn.Module, teacher: torch.nn.Module | None, checkpoint: Path | None
    ) -> StageResult:

        tr, dist_cfg = self.config.train, self.config.distill
        distilling = stage == "distill"
        total = tr.max_steps if distilling else tr.teacher_steps
        peak_lr = tr.lr if distilling else tr.teacher_lr
        warmup = min(tr.warmup_steps, total)
        if total and tr.warmup_steps >= total and checkpoint is None:
            self.report(
                Log(
                    f"train.warmup_steps ({tr.warmup_steps}) is not below the {stage} stage's {total} steps: "
                    "the learning rate only rises and never decays",
                    level="warning",
                )
            )
        alpha = dist_cfg.alpha if distilling else 0.0
        device = self.dev.device
        objective = Objective(
            dist_cfg,
            alpha=alpha,
            teacher=teacher,
            autocast=self.dev.autocast,
            chunk_positions=loss_chunk_positions(
                model.get_input_embeddings().weight.shape[0], dist_cfg.chunk_positions, device
            ),
            teacher_topk=self.teacher_topk if distilling else None,
            hidden_layers=self.hidden_layers if distilling else None,
            compile=tr.compile,
        )
        # distill.on_policy: the steps on the student's own samples use the soft term alone (train/on_policy.py),
        # plus the hidden-state matching term when it is on (over the same positions: those predicting a sample).
        # distill.on_policy_divergence may give them a divergence of their own.
        on_policy_settings = (
            dist_cfg
            if dist_cfg.on_policy_divergence == "same"
            else dataclasses.replace(dist_cfg, divergence=dist_cfg.on_policy_divergence)
        )
        on_policy_objective = (
            Objective(
                on_policy_settings,
                alpha=1.0,
                teacher=teacher,
                autocast=self.dev.autocast,
                chunk_positions=objective.chunk_positions,
                hidden_layers=self.hidden_layers,
                compile=tr.compile,
                sequence_weight=dist_cfg.on_policy_sequence_weight,
            )
            if distilling and dist_cfg.on_policy > 0 and teacher is not None and alpha > 0
            else None
        )
        # distill.on_policy_start: the steps before this one are all off-policy (a warm start)
        first_on_policy = first_on_policy_step(dist_cfg.on_policy_start, total) if on_policy_objective else 0
        model.to(device)
        model.train()
        optimizer = adamw(model, tr.weight_decay, peak_lr, device)
        world = self.parallel.world_size
        train_blocks = self.distill_blocks() if distilling else self.blocks.train
        if len(train_blocks) < len(self.blocks.train):
            self.report(
                Log(
                    f"distillation reads {len(train_blocks):,} of the {len(self.blocks.train):,} training blocks "
                    "(distill.transfer_blocks)"
                )
            )
        iterator = BatchIterator(train_blocks, tr.batch_size * world, seed=tr.seed + (1 if distilling else 0))
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

            trainable = DistributedDataParallel(
                Forward(model), device_ids=[device.index] if device.type == "cuda" else None
            )
        self.report(StageStarted(stage, total_steps=total))
        if first_on_policy > 0 and step < first_on_policy:
            self.report(
                Log(
                    f"on-policy steps begin at step {first_on_policy + 1} of {total} "
                    f"(distill.on_policy_start = {dist_cfg.on_policy_start:g}); the steps before are off-policy"
                )
            )
        if on_policy_objective is not None and on_policy_objective.sequence_weight:
            self.report(
                Log(
                    f"on-policy steps add the sequence-level term (distill.on_policy_sequence_weight = "
                    f"{on_policy_objective.sequence_weight:g}) to {on_policy_settings.divergence} on the samples"
                )
            )
        if step == 0:  # the starting point: the untrained teacher, the student before distillation
            self.evaluate(stage, 0, model, teacher)
            self.probe(stage, 0, model, teacher)

        rank_slice = slice(self.parallel.rank * tr.batch_size, (self.parallel.rank + 1) * tr.batch_size)
        tokens_per_step = tr.batch_size * world * tr.grad_accum * tr.seq_len
        on_policy_tokens_per_step = (
            tr.batch_size * world * tr.grad_accum * (dist_cfg.on_policy_prompt_tokens + dist_cfg.on_policy_new_tokens)
        )
        window_generate_s = 0.0  # seconds the student spent writing on-policy samples in the log window
        window_start, window_tokens = time.perf_counter(), 0
        stage_start = time.perf_counter()
        stage_start_step = step
        sums = torch.zeros(4, device=device)  # loss, kd, ce, hidden summed over the log window
        window_steps = 0
        last_metrics: dict[str, float] = {}
        while step < total:
            paused_from = time.perf_counter()
            if self._wait_while_paused() if world == 1 else self._all_stopping(device):
                return self._stop(stage, step, model, optimizer, iterator)
            paused_s = time.perf_counter() - paused_from
            if paused_s > 0.01:  # time spent paused is not training time: tokens/s and the ETA leave it out
                window_start += paused_s
                stage_start += paused_s
            lr = lr_at(step, total, warmup, peak_lr, tr.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            on_policy = on_policy_objective is not None and is_on_policy_step(
                dist_cfg.on_policy, tr.seed, step, first_on_policy
            )
            step_objective = on_policy_objective if on_policy else objective
            batches = []
            for micro in range(tr.grad_accum):
                index = iterator.next_indices()[rank_slice]
                batches.append(Batch.of_blocks(train_blocks[index].long(), index))
                if on_policy:
                    generate_from = time.perf_counter()
                    batches[-1] = on_policy_batch(
                        model,
                        batches[-1].ids.to(device),
                        dist_cfg,
                        seed=tr.seed,
                        step=step,
                        micro=micro,
                        rank=self.parallel.rank,
                        autocast=self.dev.autocast,
                    )
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    window_generate_s += time.perf_counter() - generate_from
            # The step's valid tokens as a tensor on the device: counting them makes no host sync.
            n_valid = torch.stack([b.valid_tokens().to(device, non_blocking=True) for b in batches]).sum()
            n_valid = self.parallel.all_sum(n_valid.float()) if world > 1 else n_valid
            for micro, batch in enumerate(batches):
                batch = batch.to(device)
                sync_context = (
                    trainable.no_sync() if world > 1 and micro < len(batches) - 1 else contextlib.nullcontext()
                )
                with sync_context:
                    parts = step_objective(trainable, batch, n_valid)
                    # DDP averages gradients over processes; the loss is already divided by the global token count.
                    (parts.loss * world).backward()
                kd_term = parts.kd.detach() if alpha > 0 else torch.zeros((), device=device)
                hidden_term = parts.hidden if parts.hidden is not None else torch.zeros((), device=device)
                # Every term is already divided by the step's valid tokens (n_valid): summing them over the
                # micro-batches gives the step's means (a share n_tokens / n_valid on top would shrink kd and ce).
                # the on-policy sequence-level term's value means nothing (only its gradient does): not logged
                logged = parts.loss.detach() - parts.surrogate if parts.surrogate is not None else parts.loss.detach()
                sums += torch.stack([logged, kd_term, parts.ce.detach(), hidden_term])
            clip = tr.grad_clip if tr.grad_clip > 0 else float("inf")
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            window_steps += 1
            window_tokens += on_policy_tokens_per_step if on_policy else tokens_per_step

            if step % tr.log_interval == 0 or step == total:
                # The step's one host sync (every process logs at the same steps): each process summed its
                # share of the step's means, so the shares are added up first.
                means = self.parallel.all_sum(sums.clone()) / window_steps
                *values, norm = torch.cat([means, grad_norm.detach().float().reshape(1).to(device)]).tolist()
                if not math.isfinite(values[0]) or not math.isfinite(norm):
                    raise RunFailed(
                        f"The {stage} loss became {values[0]} at step {step}.",
                        "lower the learning rate or the temperature, or use fp32; the last good checkpoint is kept",
                    )
                now = time.perf_counter()
                rate = window_tokens / max(now - window_start, 1e-9)
                per_step = (now - stage_start) / max(step - stage_start_step, 1)
                kd = values[1] if alpha > 0 else float("nan")
                self.report(
                    Step(
                        stage=stage,
                        step=step,
                        total_steps=total,
                        loss=values[0],
                        kd=kd,
                        ce=values[2],
                        lr=lr,
                        grad_norm=norm,
                        tokens_per_s=rate,
                        elapsed_s=time.time() - self.started,
                        eta_s=per_step * (total - step),
                        memory_bytes=memory_in_use(device),
                        generate_s=window_generate_s,
                        hidden=values[3] if objective.hidden_layers is not None else float("nan"),
                    )
                )
                sums.zero_()
                window_steps, window_start, window_tokens, window_generate_s = 0, now, 0, 0.0
            upkeep_from = time.perf_counter()
            if step % tr.eval_interval == 0 or step == total:
                last_metrics = self.evaluate(stage, step, model, teacher)
            if step % tr.probe_interval == 0 or step == total:
                self.probe(stage, step, model, teacher)
            save_now = self.control.save_now.is_set()
            if save_now or (tr.checkpoint_interval and step % tr.checkpoint_interval == 0 and step < total):
                self.control.save_now.clear()
                if window_steps and not bool(torch.isfinite(sums).all()):
                    raise RunFailed(
                        f"The {stage} loss became non-finite before step {step}.",
                        "lower the learning rate or the temperature, or use fp32; the last good checkpoint is kept",
                    )
                self.checkpoint(stage, step, model, optimizer, iterator)
            # tokens/s is the training's own rate: evaluations, probes and checkpoints are left out of it (the
            # ETA keeps them, since the steps ahead will have theirs too)
            window_start += time.perf_counter() - upkeep_from
            if world == 1 and self.control.stopping and step < total:
                return self._stop(stage, step, model, optimizer, iterator)
        return StageResult("completed", step, last_metrics)

    def _all_stopping(self, device: torch.device) -> bool:
        """Under torchrun: whether any process was told to stop (or cancel), asked of all of them before each
        step, so that all stop at the same step. A signal (torchrun forwards SIGINT / SIGTERM to every process)
        reaches them at slightly different times; a process that stopped alone would wait in the checkpoint's
        barrier while the others wait in the next step's all-reduce."""
        stop, cancel = self.parallel.any_of([self.control.stop.is_set(), self.control.cancel.is_set()], device)
        if cancel and not self.control.cancel.is_set():
            self.control.request_cancel()
        elif stop and not self.control.stop.is_set():
            self.control.request_stop()
        return stop or cancel

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

    def _stop(self, stage: str, step: int, model, optimizer, iterator) -> StageResult:
        if self.control.cancel.is_set():
            return StageResult("cancelled", step)
        self.checkpoint(stage, step, model, optimizer, iterator)
        return StageResult("stopped", step)

    def checkpoint(self, stage: str, step: int, model, optimizer, iterator) -> None:
        self.history["elapsed_s"] = time.time() - self.started
        if self.parallel.main:
            path = save_checkpoint(
                self.run_dir,
                stage=stage,
                step=step,
                model=model,
                optimizer=optimizer,
                state={"data": iterator.state(), "history": self.history},
            )
            self.report(Checkpoint(stage=stage, step=step, path=str(path)))
        self.parallel.barrier()

    def evaluate(self, stage: str, step: int, model, teacher) -> dict[str, float]:
        if not self.parallel.main:
            return {}
        distilling = stage == "distill"
        if distilling and self.eval_topk is not None:
            metrics = self._evaluate_with_cache(model, teacher)
        else:
            metrics = self._evaluate(model if distilling else None, teacher if distilling else model)
        if distilling and step == 0 and "student_ppl_before" not in self.history:
            self.history["student_ppl_before"] = metrics["student_ppl"]
            self.history["kl_teacher_student_before"] = metrics["kl_teacher_student"]
        if self.language is not None:
            metrics["entropy_rate"] = self.language.entropy_rate()
        self.report(Eval(stage=stage, step=step, metrics=metrics))
        return metrics

    def _evaluate(self, student, teacher, teacher_topk: TopKCache | None = None) -> dict[str, float]:
        return evaluate(
            student=student,
            teacher=teacher,
            blocks=self.eval_blocks,
            batch_size=self.config.train.batch_size,
            device=self.dev.device,
            autocast=self.dev.autocast,
            truth=self.truth,
            teacher_topk=teacher_topk,
        )

    def _evaluate_with_cache(self, model, teacher) -> dict[str, float]:
        """distill.teacher_cache = "topk": the teacher's own metrics once, the comparisons from the cache."""
        if self.teacher_eval is None:
            self.teacher_eval = self._evaluate(None, teacher)
        return {**self.teacher_eval, **self._evaluate(model, None, self.eval_topk)}

    def _prompts_that_fit(self, prompts: list[str], *models) -> list[str]:
        """The probe prompts no longer than the models' positions; each one left out is one warning."""
        limit = fewest_positions(*models)
        if limit is None:
            return prompts
        fit = []
        for prompt in prompts:
            n = len(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])
            if n <= limit:
                fit.append(prompt)
            elif prompt not in self.long_probe_prompts:
                self.long_probe_prompts.add(prompt)
                shown = prompt if len(prompt) <= 40 else prompt[:37] + "..."
                self.report(
                    Log(
                        f"the probe prompt {shown!r} is {n} tokens, more than the models' {limit} positions: "
                        "it is left out of the probes",
                        level="warning",
                    )
                )
        return fit

    def probe(self, stage: str, step: int, model, teacher) -> None:
        prompts = [p for p in self.config.train.probe_prompts if p.strip()]
        if not prompts or not self.parallel.main:
            return
        distilling = stage == "distill"
        probe_teacher = teacher if distilling else model
        probe_student = model if distilling else None
        prompts = self._prompts_that_fit(prompts, probe_teacher, probe_student)
        if not prompts:
            return
        results = []
        for prompt in prompts:
            results.append(
                probe_prompt(
                    prompt,
                    teacher=probe_teacher,
                    student=probe_student,
                    tokenizer=self.tokenizer,
                    device=self.dev.device,
                    truth=self.truth,
                    autocast=self.dev.autocast,
                    vocab_tokens_cache=self.probe_vocab_cache,
                )
            )
        samples = []
        if distilling and self.config.train.probe_samples > 0:
            for index, prompt in enumerate(prompts):
                samples.append(
                    sample_student_text(
                        prompt,
                        teacher=teacher,
                        student=model,
                        tokenizer=self.tokenizer,
                        device=self.dev.device,
                        generator=probe_generator(self.dev.device, self.config.train.seed, index),
                        count=self.config.train.probe_samples,
                        language=self.truth.language if self.truth is not None else None,
                        autocast=self.dev.autocast,
                        seed=self.config.train.seed,
                    )
                )
        self.report(
            Probe(
                stage=stage,
                step=step,
                temperature=self.config.distill.temperature,
                prompts=results,
                samples=samples,
            )
        )


def memory_in_use(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0
