"""scripts/bench_quality.py's judge of a student's own samples: the true per-token NLL of the sentences it
wrote (gap to the entropy rate) and their grammatical rate, against hand-computed cases."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_quality.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_quality"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


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


def test_judge_samples_counts_whole_sentences_with_their_true_nll():
    bench = _bench()
    dot, a, b = 4, 5, 6
    vocab = 7
    # prompt "a .", then "a a ." (grammatical), "a b ." (not), and "a a" with no end (left out)
    found = bench.judge_samples(_TwoWords(), [a, dot], [a, a, dot, a, b, dot, a, a], vocab)
    eps = bench.SMOOTHING

    def cost(p):
        return -math.log((1 - eps) * p + eps / vocab)

    assert found["sentences"] == 2 and found["grammatical"] == 1
    assert found["tokens"] == 6 and found["impossible"] == 1
    expected = 2 * cost(0.75) + cost(0.25) + cost(0.75) + cost(0.0) + cost(0.25)
    assert found["nll"] == pytest.approx(expected)
    pooled = bench.pooled([found], entropy_rate=1.0)
    assert pooled["grammatical_rate"] == 0.5 and pooled["sample_nll_gap"] == pytest.approx(expected / 6 - 1.0)


def test_judge_samples_on_the_built_in_language_matches_its_next_word_distributions():
    from workbench.engine.toy.language import get_language

    bench = _bench()
    language = get_language()
    tokenizer = language.tokenizer()
    prompt, first, second = language.sample_sentences(3, seed=5)
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    found = bench.judge_samples(language, ids(prompt), ids(f"{first} {second} the"), len(tokenizer))
    expected = 0.0
    for sentence in (first, second):  # each starts afresh after the '.' before it
        words = sentence.split()
        for i, word in enumerate(words):
            p = language.next_word_distribution(" ".join(words[:i]))[word]
            expected -= math.log((1 - bench.SMOOTHING) * p + bench.SMOOTHING / len(tokenizer))
    assert found["sentences"] == 2 and found["grammatical"] == 2 and found["impossible"] == 0
    assert found["tokens"] == len(first.split()) + len(second.split())
    assert found["nll"] == pytest.approx(expected, rel=1e-6)


def test_text_drawn_from_the_language_has_a_gap_near_zero():
    from workbench.engine.toy.language import get_language

    bench = _bench()
    language = get_language()
    tokenizer = language.tokenizer()
    prompts = bench.sample_prompts(language, tokenizer, 400, 16)
    found = bench.judge_language(language, tokenizer, prompts, 48, len(tokenizer))
    assert found["grammatical_rate"] == 1.0 and found["impossible_token_rate"] == 0.0
    assert abs(found["sample_nll_gap"]) < 0.05
