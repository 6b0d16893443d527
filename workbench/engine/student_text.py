"""The student's own text under the teacher's eye: sampled continuations, scored token by token.

:func:`sample_student_text` continues a prompt with the student (a batch of continuations sampled together,
with its KV cache and without grad, from a generator of its own: the global RNG that training draws from is
never touched), then runs the teacher and the student once over the whole batch to score every sampled
token: the teacher's log-probability of it and KL(teacher || student) at that position. On the built-in
language each token also gets its exact probability (0: the language forbids it there), and the batch's
complete sentences are judged by the grammar (:func:`count_grammatical`, which ``scripts/bench_on_policy.py``
uses too). :func:`judge_written` goes further for the benchmarks (``scripts/bench_quality.py``): the exact
true NLL of every token of the complete sentences a model wrote, and their grammatical rate;
:func:`judge_model` samples a model's continuations of many prompts and judges them so, with KL(teacher ||
model) on the written tokens.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from workbench.events import StudentText

PROBE_NEW_TOKENS = 24
"""Tokens the student writes after each probe prompt."""
END_WORD = "."


def complete_sentences(words: Iterable[str], end: str = END_WORD) -> list[list[str]]:
    """The sentences of a word stream that are complete (closed by ``end``); an unfinished tail is dropped."""
    sentences: list[list[str]] = []
    sentence: list[str] = []
    for word in words:
        sentence.append(word)
        if word == end:
            sentences.append(sentence)
            sentence = []
    return sentences


def count_grammatical(language: Any, rows: Iterable[Sequence[str]], end: str = END_WORD) -> tuple[int, int]:
    """(grammatical, complete sentences) over word rows: each complete sentence is judged on its own from a
    sentence start by ``language.is_possible`` (non-zero probability under the language)."""
    good = total = 0
    for row in rows:
        for sentence in complete_sentences(row, end):
            total += 1
            good += bool(language.is_possible(sentence))
    return good, total


SMOOTHING = 1e-3
"""Share of uniform mass mixed into the true distribution by :func:`judge_written`, so that a word the
language forbids costs a large but finite NLL (about 12 nats on the built-in language) instead of infinity."""


def judge_written(language: Any, prompt_ids: Sequence[int], written_ids: Sequence[int], vocab_size: int) -> dict:
    """How true one continuation is on the built-in language: ``written_ids`` written after ``prompt_ids``
    (which should end a sentence: the written text is judged from a sentence start).

    Only the complete sentences written count (the words up to the last ``.``, split by
    :func:`complete_sentences`). Each of their tokens gets its true probability given everything before it
    (``language.true_next_distributions``), smoothed as ``(1 - SMOOTHING) * p + SMOOTHING / vocab_size``; each
    sentence is judged by the grammar as :func:`count_grammatical` does. Returns sums, to be pooled over
    continuations by :func:`pooled_judgement`: ``tokens``, ``nll`` (nats), ``impossible`` (tokens of true
    probability 0), ``sentences`` and ``grammatical``."""
    from workbench.engine.toy.language import SPECIAL_TOKENS

    offset = len(SPECIAL_TOKENS)
    ids = [int(i) for i in prompt_ids] + [int(i) for i in written_ids]
    truth = language.true_next_distributions(np.asarray(ids), vocab_size)
    start = len(prompt_ids)
    # per written token: its smoothed true NLL and whether the language forbids it
    probs = [float(truth[pos - 1, ids[pos]]) for pos in range(start, len(ids))]
    words = [language.words[t - offset] if 0 <= t - offset < len(language.words) else "<special>" for t in ids[start:]]
    sentences = complete_sentences(words)
    counted = sum(len(sentence) for sentence in sentences)  # the tokens of the complete sentences
    grammatical, total = count_grammatical(language, [words])
    return {
        "tokens": counted,
        "nll": sum(-math.log((1 - SMOOTHING) * p + SMOOTHING / vocab_size) for p in probs[:counted]),
        "impossible": sum(p == 0.0 for p in probs[:counted]),
        "sentences": total,
        "grammatical": grammatical,
    }


def pooled_judgement(parts: Sequence[dict], entropy_rate: float) -> dict:
    """Per-token and per-sentence figures from :func:`judge_written` sums: ``sample_nll`` (nats per token) and
    its gap to the language's entropy rate (about 0 for text drawn from the language itself), the
    grammatical rate, the share of impossible tokens and the counts."""
    total = {k: sum(p[k] for p in parts) for k in parts[0]}
    tokens = max(total["tokens"], 1)
    return {
        "sample_nll": total["nll"] / tokens,
        "sample_nll_gap": float(total["nll"] / tokens - entropy_rate),
        "grammatical_rate": total["grammatical"] / max(total["sentences"], 1),
        "impossible_token_rate": total["impossible"] / tokens,
        "sample_sentences": total["sentences"],
        "sample_tokens": total["tokens"],
    }


@torch.no_grad()
def judge_model(
    model: torch.nn.Module,
    teacher: torch.nn.Module,
    language: Any,
    prompts: Sequence[Sequence[int]],
    new_tokens: int,
    seed: int,
    vocab: int,
) -> dict:
    """A model's own text on the built-in language: it continues every prompt (token ids, each ending a
    sentence) by ``new_tokens`` tokens sampled at T = 1 without top-p (``on_policy.sample_continuations``, one
    generator seeded by ``seed``); the text is judged by :func:`judge_written` and pooled
    (:func:`pooled_judgement`), plus ``sample_kl_teacher_student``: KL(teacher || model) per position that
    predicts a written token (left out when ``model`` is ``teacher``). Leaves both models in eval mode."""
    from workbench.engine.train.on_policy import sample_continuations

    model.eval()
    teacher.eval()
    parts, kl_sum, kl_count = [], 0.0, 0
    for length, rows in sample_continuations(model, [list(p) for p in prompts], new_tokens, seed):
        for row in rows:
            parts.append(judge_written(language, row[:length], row[length:], vocab))
        if model is not teacher:
            inputs = torch.tensor(rows)[:, :-1]
            lt = torch.log_softmax(teacher(inputs).logits.float(), -1)[:, length - 1 :]
            ls = torch.log_softmax(model(inputs).logits.float(), -1)[:, length - 1 :]
            kl_sum += float((lt.exp() * (lt - ls)).sum())
            kl_count += lt.shape[0] * lt.shape[1]
    found = pooled_judgement(parts, language.entropy_rate())
    if kl_count:
        found["sample_kl_teacher_student"] = kl_sum / kl_count
    return found


def probe_generator(device: torch.device, seed: int, index: int) -> torch.Generator:
    """The generator of probe prompt ``index``'s samples: the same at every probe of a run (so the replay
    compares the models, not the draws), and apart from the training RNG."""
    generator = torch.Generator(device=device)
    generator.manual_seed((int(seed) * 1_000_003 + 7_919 * (int(index) + 1)) % (2**63 - 1))
    return generator


@torch.no_grad()
def sample_student_text(
    prompt: str,
    *,
    teacher: torch.nn.Module,
    student: torch.nn.Module,
    tokenizer: Any,
    device: torch.device,
    generator: torch.Generator,
    count: int = 8,
    new_tokens: int = PROBE_NEW_TOKENS,
    language: Any = None,
    autocast: Callable[[], Any] = contextlib.nullcontext,
    seed: int = 0,
) -> StudentText:
    """``count`` continuations of ``prompt`` by the student (T = 1, no top-p), the first scored token by token
    (see :class:`~workbench.events.StudentText`); with ``language`` the batch's complete sentences are
    judged. The prompt's own words count towards the first sentence written, so a sentence begun by the
    prompt is judged whole; sentences wholly inside the prompt are not counted."""
    from workbench.engine.train.on_policy import generate

    ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    if not ids:
        ids = [tokenizer.eos_token_id or 0]
    limit = getattr(getattr(student, "config", None), "max_position_embeddings", None)
    if isinstance(limit, int) and limit > len(ids):
        new_tokens = min(new_tokens, limit - len(ids))  # the sample must fit the student's positions
    prompts = torch.tensor([ids] * max(1, int(count)), device=device)
    out = generate(
        student,
        prompts,
        new_tokens=new_tokens,
        temperature=1.0,
        top_p=1.0,
        generator=generator,
        autocast=autocast,
    )
    first = out[:1]
    p = len(ids)
    t_logp = _log_probs(teacher, first, autocast)[0, p - 1 : -1]
    s_logp = _log_probs(student, first, autocast)[0, p - 1 : -1]
    vocab = min(t_logp.shape[-1], s_logp.shape[-1])
    t_logp, s_logp = t_logp[:, :vocab], s_logp[:, :vocab]
    sampled = first[0, p:]
    teacher_logprob = t_logp.gather(-1, sampled.clamp_max(vocab - 1)[:, None]).squeeze(-1)
    kl = torch.where(t_logp > -math.inf, t_logp.exp() * (t_logp - s_logp.clamp_min(-1e4)), torch.zeros_like(t_logp))
    true_prob: list[float] = []
    forbidden: list[bool] = []
    good = total = 0
    if language is not None:
        truth = language.true_next_distributions(first[0].tolist(), len(tokenizer))
        true_prob = [round(float(truth[p - 1 + i, token]), 6) for i, token in enumerate(sampled.tolist())]
        forbidden = [value == 0.0 for value in true_prob]
        prompt_sentences = len(complete_sentences(tokenizer.convert_ids_to_tokens(ids)))
        rows = []
        for row in out.tolist():
            words = tokenizer.convert_ids_to_tokens(row)
            # Drop the sentences the prompt closed itself: only what the student wrote is judged.
            cut = 0
            for _ in range(prompt_sentences):
                cut = words.index(END_WORD, cut) + 1
            rows.append(words[cut:])
        good, total = count_grammatical(language, rows)
    return StudentText(
        prompt=prompt,
        tokens=[tokenizer.decode([i]) for i in sampled.tolist()],
        teacher_logprob=[round(v, 4) if math.isfinite(v) else v for v in teacher_logprob.cpu().tolist()],
        kl=[round(v, 5) for v in kl.sum(-1).clamp_min(0).cpu().tolist()],
        true_prob=true_prob,
        forbidden=forbidden,
        grammatical=good,
        sentences=total,
        seed=seed,
    )


def _log_probs(model: torch.nn.Module, ids: torch.Tensor, autocast: Callable[[], Any]) -> torch.Tensor:
    was = model.training
    model.eval()
    try:
        with autocast():
            logits = model(input_ids=ids, use_cache=False).logits.float()
    finally:
        model.train(was)
    return F.log_softmax(logits, dim=-1)
