"""The built-in language: sampler, exact next-word distributions, entropy rate, tokenizer."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from workbench.engine.toy.language import SPECIAL_TOKENS, ToyLanguage, get_language

N_SPECIAL = len(SPECIAL_TOKENS)


@pytest.fixture(scope="module")
def lang() -> ToyLanguage:
    return get_language()


@pytest.fixture(scope="module")
def tok(lang):
    return lang.tokenizer()


@pytest.fixture(scope="module")
def corpus(lang) -> list[str]:
    return lang.sample_sentences(20_000, seed=11)


def dist(lang, prefix: str) -> dict[str, float]:
    return lang.next_word_distribution(prefix)


def test_vocabulary_is_large_enough_and_ordered(lang, tok, corpus):
    assert len(lang.words) >= 150
    assert len(set(lang.words)) == len(lang.words)
    assert lang.words[0] == "."
    assert len(tok) == N_SPECIAL + len(lang.words)
    for i, word in enumerate(lang.words):
        assert tok.convert_tokens_to_ids(word) == N_SPECIAL + i
    # Every word of the vocabulary is actually produced by the grammar.
    assert {w for s in corpus for w in s.split()} == set(lang.words)


def test_sampling_is_deterministic_from_the_seed(lang):
    first = lang.sample_sentences(200, seed=7)
    assert first == lang.sample_sentences(200, seed=7)
    assert first != lang.sample_sentences(200, seed=8)
    assert ToyLanguage().sample_sentences(200, seed=7) == first
    for sentence in first:
        words = sentence.split()
        assert words[-1] == "." and words.count(".") == 1
        assert lang.is_possible(words)


def test_exact_statistics_are_in_the_intended_range(lang, corpus):
    rate, length = lang.entropy_rate(), lang.mean_sentence_length()
    assert 1.0 <= rate <= 2.2
    assert 7.0 <= length <= 10.0
    assert lang.sentence_entropy() == pytest.approx(rate * length)
    lengths = np.array([len(s.split()) for s in corpus])
    assert abs(lengths.mean() - length) < 4 * lengths.std() / math.sqrt(len(lengths))


def _chi_square_ok(counts: Counter, probs: dict[str, float]) -> tuple[bool, float, float]:
    """Pearson chi-square of observed counts against probs, cells with < 5 expected pooled; true if
    the statistic is below df + 5 * sqrt(2 df) (about five standard deviations)."""
    n = sum(counts.values())
    if not set(counts) <= set(probs):  # a sampled word the distribution calls impossible
        return False, math.inf, 0
    stat, df, pool_obs, pool_exp = 0.0, -1, 0, 0.0
    for word, p in probs.items():
        expected = n * p
        if expected < 5:
            pool_obs, pool_exp = pool_obs + counts[word], pool_exp + expected
            continue
        stat += (counts[word] - expected) ** 2 / expected
        df += 1
    if pool_exp > 0:
        stat += (pool_obs - pool_exp) ** 2 / pool_exp
        df += 1
    return stat < df + 5 * math.sqrt(2 * max(df, 1)), stat, df


def test_sampled_next_word_frequencies_match_the_exact_distribution(lang, corpus):
    following: dict[str, Counter] = defaultdict(Counter)
    for sentence in corpus:
        words = sentence.split()
        for k in range(len(words)):
            following[" ".join(words[:k])][words[k]] += 1
    # "the sheep" and "the fish" keep their number hidden: their exact distributions need forward filtering.
    prefixes = ["", "the", "a", "there is", "the small", "the dog", "the cats", "the sheep", "the fish", "the cat is"]
    for prefix in prefixes:
        counts = following[prefix]
        assert sum(counts.values()) >= 100, prefix
        ok, stat, df = _chi_square_ok(counts, dist(lang, prefix))
        assert ok, f"after {prefix!r}: chi-square {stat:.1f} with {df} degrees of freedom"


def test_a_wrong_distribution_fails_the_frequency_check(lang, corpus):
    # The check above has teeth: the words after "the", checked against a distribution that is
    # 80% right and 20% the words after "a", are rejected.
    counts = Counter(s.split()[1] for s in corpus if s.startswith("the "))
    the, a = dist(lang, "the"), dist(lang, "a")
    mix = {w: 0.8 * the.get(w, 0) + 0.2 * a.get(w, 0) for w in set(the) | set(a)}
    assert _chi_square_ok(counts, the)[0]
    assert not _chi_square_ok(counts, mix)[0]


def test_distributions_are_normalised_and_put_nothing_on_specials(lang, tok, corpus):
    ids = np.array(tok(" ".join(corpus[:300]))["input_ids"])
    rows = lang.true_next_distributions(ids, tokenizer_vocab_size=len(tok) + 12)
    assert rows.shape == (len(ids), len(tok) + 12) and rows.dtype == np.float64
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(rows[:, :N_SPECIAL] == 0) and np.all(rows[:, len(tok) :] == 0)
    # Every token that actually followed had positive probability.
    assert np.all(rows[np.arange(len(ids) - 1), ids[1:]] > 0)
    # After "." a new sentence starts: the row equals the first-word distribution.
    start = lang.true_next_distributions(tok(".")["input_ids"])[0]
    for p in np.flatnonzero(ids == tok.convert_tokens_to_ids(".")):
        np.testing.assert_allclose(rows[p, : len(tok)], start)
    # A batch gives the same rows as one sequence at a time.
    batch = ids[: 2 * 16].reshape(2, 16)
    np.testing.assert_array_equal(lang.true_next_distributions(batch)[1], lang.true_next_distributions(batch[1]))
    with pytest.raises(ValueError):
        lang.true_next_distributions(ids, tokenizer_vocab_size=10)


def test_number_agreement_reaches_across_phrases_and_clauses(lang):
    for prefix, verb, other in [
        ("the dogs near the house", "are", "is"),
        ("the cat near the trees", "is", "are"),  # the plural noun in between must not attract the verb
        ("the man with the red hat", "likes", "like"),
        ("the man who sees the dogs", "is", "are"),
        ("the girls who see the cat", "are", "is"),
        ("the cat and the dog", "are", "is"),
    ]:
        d = dist(lang, prefix)
        assert lang.is_possible(prefix)
        assert d.get(verb, 0) > 0.02, (prefix, verb)
        assert d.get(other, 0) == 0, (prefix, other)
    # "sheep" is both numbers: both verbs stay possible until the verb decides.
    d = dist(lang, "the sheep near the house")
    assert d["is"] > 0.05 and d["are"] > 0.05
    assert dist(lang, "there are").keys() <= {"two", "three", "some", "many"}
    assert set(dist(lang, "an")) <= {"old", "owl", "apple"}


def test_probe_prompts_have_intuitive_continuations(lang):
    on_the = dist(lang, "the cat is sitting on the")
    assert list(on_the)[0] == "mat" and {"sofa", "bed"} <= set(on_the)
    assert on_the.get("river", 0) == 0
    are = dist(lang, "the dogs near the house are")
    assert list(are)[0] in {"sitting", "sleeping", "playing", "running", "chasing"}
    assert "sleeping" in are and "flying" not in are  # dogs do not fly
    assert list(dist(lang, "the cat eats the"))[0] == "fish"
    assert len([p for p in on_the.values() if p > 0.03]) >= 5  # soft targets carry information


def test_entropy_rate_matches_a_monte_carlo_estimate(lang, tok):
    sentences = lang.sample_sentences(3000, seed=2024)
    ids = np.array(tok(" ".join(sentences))["input_ids"])
    rows = lang.true_next_distributions(ids)
    # -log p of each word; the first word of the stream is predicted from a sentence start.
    first = -math.log(lang.true_next_distributions(tok(".")["input_ids"])[0][ids[0]])
    surprisal = np.concatenate([[first], -np.log(rows[np.arange(len(ids) - 1), ids[1:]])])
    ends = np.flatnonzero(ids == tok.convert_tokens_to_ids("."))
    per_sentence = np.add.reduceat(surprisal, np.r_[0, ends[:-1] + 1])
    lengths = np.diff(np.r_[-1, ends])
    rate = per_sentence.sum() / lengths.sum()
    # Standard error of a ratio estimator.
    se = np.std(per_sentence - rate * lengths) / lengths.mean() / math.sqrt(len(lengths))
    assert abs(rate - lang.entropy_rate()) < 4 * se + 1e-3, (rate, lang.entropy_rate(), se)
    se_h = per_sentence.std() / math.sqrt(len(per_sentence))
    assert abs(per_sentence.mean() - lang.sentence_entropy()) < 4 * se_h


def test_tokenizer_round_trips_through_save_pretrained(lang, tok, tmp_path, corpus):
    assert isinstance(tok, PreTrainedTokenizerFast)
    assert (tok.pad_token_id, tok.unk_token_id) == (0, 1)
    assert (tok.bos_token, tok.eos_token) == ("<bos>", "<eos>")
    assert tok("the cat .")["input_ids"] == [tok.convert_tokens_to_ids(w) for w in ("the", "cat", ".")]
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in corpus[:50]:
        ids = tok(text)["input_ids"]
        assert loaded(text)["input_ids"] == ids
        assert loaded.decode(ids) == text
    assert loaded.get_vocab() == tok.get_vocab()
    assert loaded("The cat is on the mat.")["input_ids"] == tok("the cat is on the mat .")["input_ids"]
    assert loaded("the zebra .")["input_ids"][1] == loaded.unk_token_id


def test_impossible_prefixes_do_not_crash(lang, tok):
    assert lang.is_possible("the cat is sitting on the")
    assert lang.is_possible("the dogs near the house are")
    assert lang.is_possible("the cat is happy . the dogs are")
    assert not lang.is_possible("cat the the")
    assert not lang.is_possible("the zebra")
    assert not lang.is_possible("the dogs near the house is")
    ids = tok("cat the the mat is are . the zebra <pad> sofa")["input_ids"]
    rows = lang.true_next_distributions(ids)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-9)
    # An impossible word restarts as if it began a sentence: "cat the" reads like "the".
    np.testing.assert_allclose(rows[1], lang.true_next_distributions(tok("the")["input_ids"])[0])
    assert dist(lang, "cat the the") == dist(lang, "the")
    assert abs(sum(dist(lang, "mat mat mat").values()) - 1) < 1e-9
    # Ids outside the language (padding, a larger model vocabulary) restart a sentence too.
    rows = lang.true_next_distributions([0, 10_000, -100], tokenizer_vocab_size=len(tok))
    np.testing.assert_allclose(rows, np.tile(lang.true_next_distributions(tok(".")["input_ids"]), (3, 1)))


def test_get_language_is_a_singleton():
    assert get_language() is get_language()


def test_language_survives_pickling(lang):
    # Data loaders may send the language to worker processes.
    import pickle

    copy = pickle.loads(pickle.dumps(lang))
    assert copy.next_word_distribution("the dogs near the house are") == lang.next_word_distribution(
        "the dogs near the house are"
    )
    assert copy.sample_sentences(20, seed=3) == lang.sample_sentences(20, seed=3)
