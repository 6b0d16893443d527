"""The student's own text at each probe (train.probe_samples): sampled tokens scored by the teacher, the language's
verdict per token and per sentence, old events without samples, and no change to what training computes."""

from __future__ import annotations

import contextlib
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.engine.test_train import tiny_config
from tests.helpers_models import tiny_model
from workbench.engine.student_text import (
    SMOOTHING,
    complete_sentences,
    count_grammatical,
    judge_written,
    pooled_judgement,
    probe_generator,
    sample_student_text,
)
from workbench.engine.toy.language import get_language
from workbench.engine.train.on_policy import generate
from workbench.engine.train.run import run
from workbench.events import Probe, event_from_dict, read_events, to_json

TIMING_KEYS = {"wall_time_s", "tokens_per_s", "teacher_latency_ms", "student_latency_ms"}


@pytest.fixture(scope="module")
def toy():
    language = get_language()
    tokenizer = language.tokenizer()
    return language, tokenizer, tiny_model(tokenizer, seed=1), tiny_model(tokenizer, seed=2, layers=1)


def _sample(toy, prompt="the cat is sitting on the", count=24, seed=3):
    language, tokenizer, teacher, student = toy
    return sample_student_text(
        prompt,
        teacher=teacher,
        student=student,
        tokenizer=tokenizer,
        device=torch.device("cpu"),
        generator=probe_generator(torch.device("cpu"), seed, 0),
        count=count,
        new_tokens=20,
        language=language,
    )


def test_teacher_logprobs_kl_and_true_probs_of_the_sampled_tokens_match_a_recomputation(toy):
    language, tokenizer, teacher, student = toy
    sample = _sample(toy)
    prompt_ids = tokenizer("the cat is sitting on the")["input_ids"]
    sampled = tokenizer.convert_tokens_to_ids([t.strip() for t in sample.tokens])
    assert len(sampled) == 20 and len(sample.teacher_logprob) == len(sample.kl) == len(sample.true_prob) == 20
    ids = prompt_ids + sampled
    with torch.no_grad():
        t = F.log_softmax(teacher(torch.tensor([ids])).logits[0], -1)
        s = F.log_softmax(student(torch.tensor([ids])).logits[0], -1)
    truth = language.true_next_distributions(ids, len(tokenizer))
    for i, token in enumerate(sampled):
        at = len(prompt_ids) - 1 + i
        assert sample.teacher_logprob[i] == pytest.approx(float(t[at, token]), abs=1e-3)
        assert sample.kl[i] == pytest.approx(float((t[at].exp() * (t[at] - s[at])).sum()), abs=1e-3)
        assert sample.true_prob[i] == pytest.approx(float(truth[at, token]), abs=1e-6)
        assert sample.forbidden[i] == (truth[at, token] == 0)
    assert any(sample.forbidden), "an untrained student writes words the language forbids"


@pytest.mark.parametrize("prompt", ["the dog is sleeping .", "the cat is sitting on the"])
def test_the_grammatical_count_is_is_possible_over_the_same_sentences(toy, prompt):
    language, tokenizer, _, student = toy
    sample = _sample(toy, prompt=prompt, count=24)
    # The same draws again, judged here sentence by sentence with is_possible. A sentence the prompt begins
    # is judged whole (the prompt's words and the student's); one the prompt closes is not the student's.
    prompt_ids = tokenizer(prompt)["input_ids"]
    out = generate(
        student,
        torch.tensor([prompt_ids] * 24),
        new_tokens=20,
        temperature=1.0,
        top_p=1.0,
        generator=probe_generator(torch.device("cpu"), 3, 0),
        autocast=contextlib.nullcontext,
    )
    good = total = 0
    for row in out.tolist():
        words = tokenizer.convert_ids_to_tokens(row)
        if prompt.endswith("."):
            words = words[len(prompt_ids) :]
        sentence = []
        for word in words:
            sentence.append(word)
            if word == ".":
                total += 1
                good += language.is_possible(sentence)
                sentence = []
    assert total > 0
    assert (sample.grammatical, sample.sentences) == (good, total)
    assert count_grammatical(language, [["the", "dog", "is", "sleeping", "."], ["dog", "the", "."]]) == (1, 2)
    assert complete_sentences(["a", ".", "b"]) == [["a", "."]]


def test_samples_are_the_same_at_every_probe_with_the_same_models(toy):
    first, again = _sample(toy), _sample(toy)
    assert first == again
    assert _sample(toy, seed=4).tokens != first.tokens


def test_probe_events_carry_samples_through_events_jsonl_and_old_events_still_load(toy):
    sample = _sample(toy)
    probe = Probe(stage="distill", step=5, temperature=2.0, prompts=[], samples=[sample])
    back = event_from_dict(json.loads(to_json(probe)))
    assert back.samples[0].tokens == sample.tokens
    assert back.samples[0].forbidden == sample.forbidden
    assert back.grammatical() == (sample.grammatical, sample.sentences)
    old = {"kind": "probe", "stage": "distill", "step": 5, "temperature": 2.0, "prompts": []}
    assert event_from_dict(old).samples == [] and event_from_dict(old).grammatical() == (0, 0)
    with_inf = dict(json.loads(to_json(probe)))
    with_inf["samples"][0]["teacher_logprob"][0] = None  # -inf (a token the teacher cannot produce) is null
    assert event_from_dict(with_inf).samples[0].teacher_logprob[0] == -math.inf


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probe-samples")
    # With dropout, training draws from the global RNG at every step: sampling from it would change the run.
    dropout = {"teacher.arch.dropout": "0.1"}
    with_samples = run(tiny_config(tmp / "on", **dropout, **{"train.probe_samples": "8"}), lambda e: None)
    without = run(tiny_config(tmp / "off", **dropout, **{"train.probe_samples": "0"}), lambda e: None)
    return with_samples, without


def test_probe_sampling_does_not_change_what_training_computes(runs):
    with_samples, without = runs
    assert with_samples.status == without.status == "completed"
    a = {k: v for k, v in with_samples.summary.items() if k not in TIMING_KEYS and not k.endswith("_s")}
    b = {k: v for k, v in without.summary.items() if k not in TIMING_KEYS and not k.endswith("_s")}
    assert a == b


def test_a_run_records_the_students_text_at_each_distillation_probe(runs):
    with_samples, without = runs
    probes = [e for e in read_events(f"{with_samples.run_dir}/events.jsonl") if e.kind == "probe"]
    distill = [p for p in probes if p.stage == "distill"]
    assert distill and all(len(p.samples) == 1 for p in distill)
    assert all(p.samples == [] for p in probes if p.stage == "teacher")
    sample = distill[-1].samples[0]
    assert sample.prompt == "the cat is sitting on the" and len(sample.tokens) > 0
    assert len(sample.true_prob) == len(sample.tokens), "on the built-in language each token has its truth"
    quiet = [e for e in read_events(f"{without.run_dir}/events.jsonl") if e.kind == "probe"]
    assert all(p.samples == [] for p in quiet)


class _TwoWords:
    """A language of the 4 special tokens, then '.', 'a', 'b': every sentence is 'a' repeated, then '.';
    at every position p('a') = 0.75, p('.') = 0.25 and 'b' is impossible."""

    words = [".", "a", "b"]

    def true_next_distributions(self, ids, vocab_size):
        out = np.zeros((len(ids), vocab_size))
        out[:, 4], out[:, 5] = 0.25, 0.75
        return out

    def is_possible(self, words):
        return "b" not in words and "<special>" not in words


def test_judge_written_counts_whole_sentences_with_their_true_nll():
    dot, a, b = 4, 5, 6
    vocab = 7
    # prompt "a .", then "a a ." (grammatical), "a b ." (not), and "a a" with no end (left out)
    found = judge_written(_TwoWords(), [a, dot], [a, a, dot, a, b, dot, a, a], vocab)
    eps = SMOOTHING

    def cost(p):
        return -math.log((1 - eps) * p + eps / vocab)

    assert found["sentences"] == 2 and found["grammatical"] == 1
    assert found["tokens"] == 6 and found["impossible"] == 1
    expected = 2 * cost(0.75) + cost(0.25) + cost(0.75) + cost(0.0) + cost(0.25)
    assert found["nll"] == pytest.approx(expected)
    pooled = pooled_judgement([found], entropy_rate=1.0)
    assert pooled["grammatical_rate"] == 0.5 and pooled["sample_nll_gap"] == pytest.approx(expected / 6 - 1.0)


def test_judge_written_on_the_built_in_language_matches_its_next_word_distributions():
    language = get_language()
    tokenizer = language.tokenizer()
    prompt, first, second = language.sample_sentences(3, seed=5)
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    found = judge_written(language, ids(prompt), ids(f"{first} {second} the"), len(tokenizer))
    expected = 0.0
    for sentence in (first, second):  # each starts afresh after the '.' before it
        words = sentence.split()
        for i, word in enumerate(words):
            p = language.next_word_distribution(" ".join(words[:i]))[word]
            expected -= math.log((1 - SMOOTHING) * p + SMOOTHING / len(tokenizer))
    assert found["sentences"] == 2 and found["grammatical"] == 2 and found["impossible"] == 0
    assert found["tokens"] == len(first.split()) + len(second.split())
    assert found["nll"] == pytest.approx(expected, rel=1e-6)


def test_judge_model_pools_the_judged_continuations_and_scores_them_against_the_teacher(toy):
    import copy

    from workbench.engine.student_text import judge_model
    from workbench.engine.train.on_policy import sample_continuations

    language, tokenizer, teacher, student = toy
    vocab = len(tokenizer)
    prompts = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in language.sample_sentences(6, seed=11)]
    found = judge_model(student, teacher, language, prompts, 12, seed=3, vocab=vocab)
    parts = [
        judge_written(language, row[:length], row[length:], vocab)
        for length, rows in sample_continuations(student, prompts, 12, 3)
        for row in rows
    ]
    expected = pooled_judgement(parts, language.entropy_rate())
    assert {k: found[k] for k in expected} == expected, "the same draws, judged and pooled"
    assert found["sample_kl_teacher_student"] > 0
    assert judge_model(student, teacher, language, prompts, 12, seed=3, vocab=vocab) == found
    twin = copy.deepcopy(student)
    assert judge_model(student, twin, language, prompts, 12, seed=3, vocab=vocab)["sample_kl_teacher_student"] == (
        pytest.approx(0.0, abs=1e-6)
    )
    assert "sample_kl_teacher_student" not in judge_model(teacher, teacher, language, prompts, 12, seed=3, vocab=vocab)
