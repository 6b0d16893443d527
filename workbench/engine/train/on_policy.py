"""On-policy distillation (``distill.on_policy``): some steps train on text the student writes itself.

On a fraction lambda of the distillation steps, each micro-batch's blocks are cut to their first
``on_policy_prompt_tokens`` tokens, the student continues them by sampling ``on_policy_new_tokens`` tokens
(batched, with its KV cache, in eval mode and without grad), and the loss is the divergence between the
teacher and the student on the generated positions only: the prompt's labels are -100. Those batches use
the soft term alone (alpha = 1): the hard-label term on the student's own samples would only teach it to
repeat itself.

``distill.on_policy_start`` warm-starts the student: the first share of the distillation steps
(``workbench.config.checks.first_on_policy_step``) are all off-policy, and from there on each step is on-policy with probability
lambda, by the same draw it would have had without the warm start.

Everything random here derives from ``(train.seed, step)``: whether a step is on-policy
(:func:`is_on_policy_step`) and the samples (:func:`sample_generator`), never the global RNG, so a run
stopped and resumed draws exactly what an uninterrupted one does (on the CPU).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable

import torch
from torch import Tensor

from workbench.config.schema import DistillConfig
from workbench.engine.train.objective import Batch

_CHOICE_STREAM, _SAMPLE_STREAM = 1, 2


def _stream_seed(seed: int, step: int, stream: int, micro: int = 0, rank: int = 0) -> int:
    # One 63-bit seed per (seed, step, stream, micro-batch, rank); seed < 2**32 and step < 2**24 by the schema.
    value = (int(seed) * 1_000_003 + int(step)) * 1_000_033 + stream * 10_007 + micro * 101 + rank
    return value % (2**63 - 1)


def is_on_policy_step(fraction: float, seed: int, step: int, first: int = 0) -> bool:
    """Whether optimizer step ``step`` (0-based) trains on the student's samples: never before ``first``
    (``first_on_policy_step``), and from there a draw < ``fraction`` from a generator seeded by
    ``(seed, step)``, the same draw whatever ``first`` is. ``fraction`` 0 is never (and draws nothing), 1 is
    always."""
    if fraction <= 0 or step < first:
        return False
    if fraction >= 1:
        return True
    generator = torch.Generator().manual_seed(_stream_seed(seed, step, _CHOICE_STREAM))
    return bool(torch.rand((), generator=generator).item() < fraction)


def sample_generator(device: torch.device, seed: int, step: int, micro: int = 0, rank: int = 0) -> torch.Generator:
    """The generator the samples of one micro-batch are drawn with."""
    generator = torch.Generator(device=device)
    generator.manual_seed(_stream_seed(seed, step, _SAMPLE_STREAM, micro, rank))
    return generator


def sample_next(logits: Tensor, temperature: float, top_p: float, generator: torch.Generator) -> Tensor:
    """``[B]`` tokens drawn from ``[B, V]`` logits at ``temperature`` within the nucleus ``top_p``."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the tokens ranked above each one
        sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)  # the top token always stays
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    prompts: Tensor,
    *,
    new_tokens: int,
    temperature: float,
    top_p: float,
    generator: torch.Generator,
    autocast: Callable[[], object],
) -> Tensor:
    """``[B, P + new_tokens]``: the prompts and the student's sampled continuations, all of the same length
    (no stop token: every sequence gets ``new_tokens``). One forward pass over the prompts, then one token at
    a time through the KV cache. The model is put in eval mode and back."""
    was_training = model.training
    model.eval()
    try:
        name = _cache_argument(model)
        # One autocast region for the whole loop: leaving one empties autocast's cache of cast weights, so a
        # region per token would cast every weight to bf16 again for each token.
        with autocast():
            out = model(input_ids=prompts, use_cache=True)
            past, logits = getattr(out, name), out.logits[:, -1]
            pieces = [prompts]
            for i in range(new_tokens):
                token = sample_next(logits, temperature, top_p, generator)
                pieces.append(token[:, None])
                if i == new_tokens - 1:
                    break
                out = model(input_ids=token[:, None], use_cache=True, **{name: past})
                past, logits = getattr(out, name), out.logits[:, -1]
        return torch.cat(pieces, dim=1)
    finally:
        model.train(was_training)


@torch.no_grad()
def sample_continuations(model: torch.nn.Module, prompts: list[list[int]], new_tokens: int, seed: int):
    """Each prompt (token ids, any lengths) continued by ``new_tokens`` tokens sampled at T = 1 without top-p,
    on the CPU from one generator seeded by ``seed``; prompts of one length go through ``generate`` together.
    Yields ``(prompt length, rows)`` per length, shortest first, each row the prompt and its continuation.
    The benchmarks judge models' own text with it."""
    generator = sample_generator(torch.device("cpu"), seed, 0)
    by_length: dict[int, list[list[int]]] = {}
    for row in prompts:
        by_length.setdefault(len(row), []).append(row)
    for length, rows in sorted(by_length.items()):
        out = generate(
            model,
            torch.tensor(rows),
            new_tokens=new_tokens,
            temperature=1.0,
            top_p=1.0,
            generator=generator,
            autocast=contextlib.nullcontext,
        )
        yield length, out.tolist()


def _cache_argument(model: torch.nn.Module) -> str:
    """The name a model's forward takes its KV cache by, and its output returns it by: ``cache`` in
    Transformers 5, ``past_key_values`` before."""
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def prompt_masked_batch(ids: Tensor, prompt_tokens: int) -> Batch:
    """A batch of ``[prompt + generated]`` ids whose targets are the generated tokens only: the labels are
    -100 on the ``prompt_tokens`` prompt positions (the logits at the prompt's last position predict the
    first generated token, which is a target)."""
    labels = ids.clone()
    labels[:, :prompt_tokens] = -100
    return Batch(ids=ids, labels=labels, block_index=None)


def on_policy_batch(
    model: torch.nn.Module,
    blocks: Tensor,
    settings: DistillConfig,
    *,
    seed: int,
    step: int,
    micro: int = 0,
    rank: int = 0,
    autocast: Callable[[], object],
) -> Batch:
    """The on-policy batch made from training ``blocks`` ``[B, L]`` (already on the model's device)."""
    prompts = blocks[:, : settings.on_policy_prompt_tokens]
    ids = generate(
        model,
        prompts,
        new_tokens=settings.on_policy_new_tokens,
        temperature=settings.on_policy_temperature,
        top_p=settings.on_policy_top_p,
        generator=sample_generator(blocks.device, seed, step, micro, rank),
        autocast=autocast,
    )
    return prompt_masked_batch(ids, settings.on_policy_prompt_tokens)
