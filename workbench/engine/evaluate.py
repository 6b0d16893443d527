"""Held-out metrics and next-word comparisons of teacher and student.

All metrics use one alignment rule: the logits at position t are scored
against token t+1 of the same block. On the built-in language the exact
next-word distribution is known for every position, so the true KL of each
model to the data distribution can be reported, as can the floor any model's
cross-entropy can reach on the very same held-out tokens (``entropy_floor``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from workbench.engine.teacher_cache import cached_kl_metrics
from workbench.errors import ConfigError
from workbench.events import ProbePrompt

EVAL_LOGITS_PER_BATCH = 2**27
"""Most logits (rows x positions x vocabulary) one evaluation batch computes at once: each of its few fp32
``[rows, L, V]`` tensors is then at most 512 MB. A batch of the training's size can be far more (8 x 1024
positions at vocabulary 151936 is 5 GB a tensor, about 30 GB in all), so the rows go through in smaller
batches; the sums are the same."""
FULL_VOCAB_LIMIT = 8192
"""Probe events carry the whole vocabulary up to this size; above it, the union of both models' top tokens."""
PROBE_TOP = 64


class Truth:
    """Exact next-word distributions of the built-in language, for typed prompts and (optionally) fixed blocks."""

    def __init__(self, language: Any, vocab_size: int, blocks: torch.Tensor | None = None):
        self.language = language
        self.vocab_size = vocab_size
        self.probs: torch.Tensor | None = None  # [N, L, V] for ``blocks``
        if blocks is not None:
            rows = [language.true_next_distributions(b.tolist(), vocab_size) for b in blocks]
            self.probs = torch.tensor(np.stack(rows), dtype=torch.float32)

    def for_prompt(self, token_ids: list[int]) -> np.ndarray:
        return self.language.true_next_distributions(token_ids, self.vocab_size)


def _vocab_size(model: torch.nn.Module | None) -> int:
    if model is None:
        return 1
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(getattr(getattr(model, "config", None), "vocab_size", 1) or 1)


def _model_logits(model: torch.nn.Module, ids: torch.Tensor, autocast: Callable[[], Any]) -> torch.Tensor:
    with autocast():
        return model(input_ids=ids, use_cache=False).logits.float()


@torch.no_grad()
def evaluate(
    *,
    student: torch.nn.Module | None,
    teacher: torch.nn.Module | None,
    blocks: torch.Tensor,
    batch_size: int,
    device: torch.device,
    autocast: Callable[[], Any] = contextlib.nullcontext,
    truth: Truth | None = None,
    teacher_topk: Any = None,
) -> dict[str, float]:
    """Held-out metrics over ``blocks`` (already limited to the evaluation set).

    ``teacher_topk`` (a ``teacher_cache.TopKCache`` of exactly these blocks) stands in for the teacher in
    the comparisons: with a student and no teacher, ``kl_teacher_student`` is then the KL over all V
    tokens to the teacher reconstructed from the cache (its exact top-k and tail mass at T=1, the tail
    shaped by the position's low-rank logits: ``teacher_cache.cached_kl_metrics``, an estimate of the full KL,
    not a bound), and the agreements use the teacher's cached argmax.

    Keys: ``teacher_ce``/``teacher_ppl`` when a teacher is given,
    ``student_ce``/``student_ppl`` when a student is given, and with both
    ``kl_teacher_student`` (true KL at T=1, nats per token), ``top1_agreement``
    (student's argmax equals the teacher's) and ``top5_agreement`` (the
    teacher's argmax is in the student's top 5). With ``truth``:
    ``kl_true_teacher``, ``kl_true_student`` and ``entropy_floor``.
    """
    models = {"teacher": teacher, "student": student}
    was_training = {k: m.training for k, m in models.items() if m is not None}
    for m in models.values():
        if m is not None:
            m.eval()
    sums: dict[str, float] = {}
    count = 0

    def add(key: str, value: torch.Tensor) -> None:
        sums[key] = sums.get(key, 0.0) + float(value)

    vocab = _vocab_size(student if student is not None else teacher)
    rows = max(1, min(batch_size, EVAL_LOGITS_PER_BATCH // max(1, blocks.shape[1] * vocab)))
    for start in range(0, len(blocks), rows):
        ids = blocks[start : start + rows].to(device)
        targets = ids[:, 1:]
        n = targets.numel()
        count += n
        logp = {}
        for name, model in models.items():
            if model is None:
                continue
            logits = _model_logits(model, ids, autocast)[:, :-1]
            logp[name] = F.log_softmax(logits, dim=-1)
            add(f"{name}_ce", -logp[name].gather(-1, targets.unsqueeze(-1)).sum())
        if "teacher" in logp and "student" in logp:
            p_t = logp["teacher"].exp()
            add("kl_teacher_student", (p_t * (logp["teacher"] - logp["student"])).sum())
            teacher_top1 = logp["teacher"].argmax(-1)
            student_top5 = logp["student"].topk(min(5, logp["student"].shape[-1]), dim=-1).indices
            add("top1_agreement", (student_top5[..., 0] == teacher_top1).sum())
            add("top5_agreement", (student_top5 == teacher_top1.unsqueeze(-1)).any(-1).sum())
        if teacher_topk is not None and "student" in logp and "teacher" not in logp:
            cached = teacher_topk.lookup(torch.arange(start, start + len(ids)), device)
            for key, value in cached_kl_metrics(logp["student"], cached).items():
                add(key, value)
        if truth is not None and truth.probs is not None:
            p_true = truth.probs[start : start + rows, :-1].to(device)
            log_true = torch.log(p_true.clamp_min(1e-30))
            h = torch.where(p_true > 0, p_true * log_true, torch.zeros_like(p_true)).sum(-1)
            for name, lp in logp.items():
                cross = (p_true * lp.clamp_min(-1e4)).sum(-1)
                add(f"kl_true_{name}", (h - cross).sum())
            add("entropy_floor", -log_true.gather(-1, targets.unsqueeze(-1)).sum())
    for name, model in models.items():
        if model is not None and was_training[name]:
            model.train()
    metrics = {k: v / max(count, 1) for k, v in sums.items()}
    for name in ("teacher", "student"):
        if f"{name}_ce" in metrics:
            metrics[f"{name}_ppl"] = math.exp(min(metrics[f"{name}_ce"], 50.0))
    return metrics


# -- next-word comparison -----------------------------------------------------


def token_texts(tokenizer: Any, ids: list[int]) -> list[str]:
    """Readable text of each token id (a leading space shown as is)."""
    return [tokenizer.decode([i]) for i in ids]


@torch.no_grad()
def probe_prompt(
    prompt: str,
    *,
    teacher: torch.nn.Module,
    student: torch.nn.Module | None,
    tokenizer: Any,
    device: torch.device,
    truth: Truth | None = None,
    autocast: Callable[[], Any] = contextlib.nullcontext,
    vocab_tokens_cache: dict[int, list[str]] | None = None,
) -> ProbePrompt:
    """Teacher and student logits at every position of ``prompt`` (see ProbePrompt)."""
    ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    if not ids:
        ids = [tokenizer.eos_token_id or 0]
    limit = fewest_positions(teacher, student)
    if limit is not None and len(ids) > limit:
        raise ConfigError(
            "",
            f"the prompt is {len(ids)} tokens long, more than the {limit} positions the models were made for",
            f"shorten it to at most {limit} tokens",
        )
    x = torch.tensor([ids], device=device)
    t_logits = _inference_logits(teacher, x, autocast)
    # In the teacher stage there is no student yet: its rows stay empty.
    s_logits = _inference_logits(student, x, autocast) if student is not None else t_logits
    vocab = min(t_logits.shape[-1], s_logits.shape[-1])
    t_logits, s_logits = t_logits[:, :vocab], s_logits[:, :vocab]
    if vocab <= FULL_VOCAB_LIMIT:
        vocab_ids: list[int] = []
        if vocab_tokens_cache is not None and vocab in vocab_tokens_cache:
            vocab_tokens = vocab_tokens_cache[vocab]
        else:
            vocab_tokens = token_texts(tokenizer, list(range(vocab)))
            if vocab_tokens_cache is not None:
                vocab_tokens_cache[vocab] = vocab_tokens
        t_sel, s_sel = t_logits, s_logits
    else:
        top = torch.cat(
            [t_logits.topk(PROBE_TOP, -1).indices.flatten(), s_logits.topk(PROBE_TOP, -1).indices.flatten()]
        )
        if len(ids) > 1:
            top = torch.cat([top, x[0, 1:]])
        vocab_ids = sorted(set(top.tolist()))
        index = torch.tensor(vocab_ids, device=t_logits.device)
        t_sel, s_sel = t_logits[:, index], s_logits[:, index]
        vocab_tokens = token_texts(tokenizer, vocab_ids)
    true_probs: list[list[float]] = []
    unknown = getattr(tokenizer, "unk_token_id", None)
    if truth is not None and (unknown is None or unknown not in ids):  # a word the language lacks: no truth
        probs = truth.for_prompt(ids)
        true_probs = np.round(probs[:, :vocab], 6).tolist() if not vocab_ids else probs[:, vocab_ids].tolist()
    return ProbePrompt(
        prompt=prompt,
        tokens=token_texts(tokenizer, ids),
        teacher_logits=_rounded(t_sel),
        student_logits=_rounded(s_sel) if student is not None else [],
        vocab_ids=vocab_ids,
        vocab_tokens=vocab_tokens,
        true_probs=true_probs,
    )


def fewest_positions(*models: torch.nn.Module | None) -> int | None:
    """The fewest positions any of ``models`` takes (None when none says)."""
    from workbench.engine.models.sizes import max_positions

    limits = []
    for model in models:
        if model is not None:
            try:
                limits.append(max_positions(model))
            except ValueError:
                continue
    return min(limits) if limits else None


def unknown_words(tokenizer: Any, prompt: str) -> list[str]:
    """The words of ``prompt`` that ``tokenizer`` reads as its unknown token (none when it has no such token)."""
    unknown = getattr(tokenizer, "unk_token_id", None)
    if unknown is None:
        return []
    return [word for word in prompt.split() if unknown in tokenizer(word, add_special_tokens=False)["input_ids"]]


def _inference_logits(model: torch.nn.Module, x: torch.Tensor, autocast: Callable[[], Any]) -> torch.Tensor:
    was = model.training
    model.eval()
    logits = _model_logits(model, x, autocast)[0]
    model.train(was)
    return logits


def _rounded(logits: torch.Tensor) -> list[list[float]]:
    # -inf (masked tokens) stays -inf; finite values keep 4 decimals: plenty for bars, small in events.jsonl.
    return [[round(v, 4) if math.isfinite(v) else v for v in row] for row in logits.cpu().tolist()]


@torch.no_grad()
def generate_pair(
    prompt: str,
    *,
    teacher: torch.nn.Module,
    student: torch.nn.Module,
    tokenizer: Any,
    device: torch.device,
    max_new_tokens: int = 30,
    temperature: float = 1.0,
    top_p: float = 0.95,
    seed: int = 0,
) -> tuple[str, str]:
    """Continuations of ``prompt`` by the teacher and the student with the same sampling settings and seed,
    at most as long as the models' positions leave room for (a prompt that fills them is a ConfigError)."""
    encoded = tokenizer(prompt, return_tensors="pt")
    ids = encoded["input_ids"].to(device)
    limit = fewest_positions(teacher, student)
    if limit is not None:
        if ids.shape[1] >= limit:
            raise ConfigError(
                "",
                f"the prompt is {ids.shape[1]} tokens long, which leaves no room in the {limit} positions the models "
                "were made for",
                f"shorten it to at most {limit - 1} tokens",
            )
        max_new_tokens = min(max_new_tokens, limit - ids.shape[1])
    out = []
    for model in (teacher, student):
        torch.manual_seed(seed)
        kwargs = dict(
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        )
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
        else:
            kwargs.update(do_sample=False)
        was = model.training
        model.eval()
        result = model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
        model.train(was)
        out.append(tokenizer.decode(result[0, ids.shape[1] :], skip_special_tokens=True))
    return out[0], out[1]


@torch.no_grad()
def next_token_latency_ms(
    model: torch.nn.Module, device: torch.device, *, prompt_len: int = 32, repeats: int = 10
) -> float:
    """Time of one forward pass predicting the next token after a ``prompt_len``-token prompt.

    The fastest of ``repeats`` passes: on a shared machine the slower ones measure the neighbours, not the model.
    """
    vocab = model.get_input_embeddings().weight.shape[0]
    ids = torch.randint(0, vocab, (1, prompt_len), generator=torch.Generator().manual_seed(0)).to(device)
    was = model.training
    model.eval()
    model(input_ids=ids)  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(input_ids=ids)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    model.train(was)
    return float(min(times))
