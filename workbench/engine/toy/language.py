"""The built-in language: a small English-like probabilistic language with exact answers.

It is a probabilistic finite-state machine (PFSM, compiled from the grammar in
:mod:`workbench.engine.toygrammar`). Each hidden state emits one word and moves to a next
state, both drawn from that state's arcs. Several arcs of one state can emit the same word
and lead to different states ("the" may start a singular or a plural noun phrase; "sheep"
and "fish" are both numbers), so the exact next-word distribution of a prefix needs
forward filtering over the belief (a distribution over hidden states).

Every sentence ends with the word ``.``, after which the next sentence starts afresh.
Within a sentence the grammar has no loops, so the set of beliefs that prefixes can reach
is finite; :class:`ToyLanguage` enumerates it (a weighted subset construction), which makes
next-word distributions a table walk and the entropy rate an exact sum (see
:meth:`ToyLanguage.entropy_rate`).
"""

from __future__ import annotations

import functools
import threading
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from workbench.engine.toy.grammar import END, compile_grammar

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")


def _split(text: str) -> list[str]:
    """Words of a typed prompt, the way the tokenizer splits them (lower case, '.' on its own)."""
    return text.lower().replace(END, f" {END} ").split()


class ToyLanguage:
    """The built-in language: sampler, tokenizer, exact next-word distributions and entropy.

    ``words`` is the vocabulary (``.`` first, then alphabetical); in :meth:`tokenizer` the
    word ``words[i]`` has id ``len(SPECIAL_TOKENS) + i``.
    """

    def __init__(self) -> None:
        arcs, start = compile_grammar()
        used = {word for state in arcs for word, _ in state}
        self.words: list[str] = [END] + sorted(used - {END})
        self._index = {w: i for i, w in enumerate(self.words)}
        self._end = self._index[END]
        self.n_states = len(arcs)
        # Per state: parallel lists (word index, next state, cumulative probability) for sampling,
        # and (word index, next state, probability) triples for filtering.
        self._arc_word = [[self._index[w] for (w, _) in a] for a in arcs]
        self._arc_next = [[d for (_, d) in a] for a in arcs]
        self._arc_cum = [np.cumsum(list(a.values())).tolist() for a in arcs]
        self._arcs = [[(self._index[w], d, p) for (w, d), p in a.items()] for a in arcs]
        self._start_states = list(start)
        self._start_cum = np.cumsum(list(start.values())).tolist()
        # The belief automaton, grown on demand: node -> belief, next-word distribution, successors.
        self._beliefs: list[dict[int, float]] = []
        self._node_of: dict[tuple, int] = {}
        self._dist: list[np.ndarray | None] = []
        self._succ: list[dict[int, int] | None] = []
        self._fallbacks: dict[int, int] = {}
        self._start_node = self._node(start)
        self._stats: tuple[float, float] | None = None
        # The automaton grows lazily and the GUI asks from more than one thread.
        self._lock = threading.RLock()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ---- sampling -----------------------------------------------------------------------------
    def sample_sentences(self, n: int, seed: int) -> list[str]:
        """``n`` sentences ("w1 w2 ... .") drawn by walking the hidden states; the same seed gives the same list."""
        rng = np.random.default_rng(seed)
        buffer, pos = rng.random(4096), 0
        out = []
        for _ in range(n):
            words = []
            if pos >= len(buffer):
                buffer, pos = rng.random(4096), 0
            state = self._start_states[min(bisect_right(self._start_cum, buffer[pos]), len(self._start_cum) - 1)]
            pos += 1
            while True:
                if pos >= len(buffer):
                    buffer, pos = rng.random(4096), 0
                cum = self._arc_cum[state]
                k = min(bisect_right(cum, buffer[pos]), len(cum) - 1)
                pos += 1
                word = self._arc_word[state][k]
                words.append(self.words[word])
                if word == self._end:
                    break
                state = self._arc_next[state][k]
            out.append(" ".join(words))
        return out

    # ---- tokenizer ----------------------------------------------------------------------------
    def tokenizer(self):
        """A word-level ``PreTrainedTokenizerFast``: specials ``<pad>`` (0), ``<unk>`` (1), ``<bos>``, ``<eos>``, then ``words``.

        It adds no special tokens when encoding, so ids map one-to-one to words; it lowercases
        and splits punctuation off ("mat." -> "mat ."), and decoding joins words with spaces.
        """
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *self.words])}
        core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
        core.normalizer = normalizers.Lowercase()
        core.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]
        )
        pad, unk, bos, eos = SPECIAL_TOKENS
        return PreTrainedTokenizerFast(
            tokenizer_object=core, pad_token=pad, unk_token=unk, bos_token=bos, eos_token=eos
        )

    # ---- exact distributions ------------------------------------------------------------------
    def _node(self, belief: dict[int, float]) -> int:
        """The automaton node for a belief (beliefs equal to 12 digits share a node)."""
        key = tuple(sorted((s, round(p, 12)) for s, p in belief.items() if p > 1e-15))
        node = self._node_of.get(key)
        if node is None:
            node = self._node_of[key] = len(self._beliefs)
            self._beliefs.append(belief)
            self._dist.append(None)
            self._succ.append(None)
        return node

    def _expand(self, node: int) -> None:
        """Forward filtering from one belief: next-word distribution and the belief after each word."""
        dist = np.zeros(len(self.words))
        mass: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for state, b in self._beliefs[node].items():
            for word, nxt, p in self._arcs[state]:
                dist[word] += b * p
                mass[word][nxt] += b * p
        succ = {}
        for word, nxt in mass.items():
            total = dist[word]
            succ[word] = self._start_node if word == self._end else self._node({s: m / total for s, m in nxt.items()})
        self._dist[node], self._succ[node] = dist / dist.sum(), succ

    def _next(self, node: int) -> tuple[np.ndarray, dict[int, int]]:
        if self._succ[node] is None:
            self._expand(node)
        return self._dist[node], self._succ[node]

    def _fallback(self, word: int) -> int:
        """Where an impossible word leaves the belief: as if it began a sentence, or else the
        states it leads to from a uniform belief over all states."""
        if word not in self._fallbacks:
            nxt = self._next(self._start_node)[1].get(word)
            if nxt is None:
                uniform = self._node({s: 1.0 / self.n_states for s in range(self.n_states)})
                nxt = self._next(uniform)[1][word]
            self._fallbacks[word] = nxt
        return self._fallbacks[word]

    def _advance(self, node: int, word: int | None) -> int:
        """The node after ``word`` (``None``: an unknown or special token, which restarts the sentence)."""
        if word is None:
            return self._start_node
        nxt = self._next(node)[1].get(word)
        return self._fallback(word) if nxt is None else nxt

    def true_next_distributions(self, token_ids, tokenizer_vocab_size: int | None = None) -> np.ndarray:
        """Exact next-token distributions for a token stream that begins at a sentence start.

        Row ``p`` is the distribution of token ``p + 1`` given ``token_ids[:p + 1]`` (float64,
        ``tokenizer_vocab_size`` columns, default the tokenizer's size; special tokens get 0).
        After ``.`` a new sentence starts. An impossible word restarts the belief as if it began
        a sentence (or, if it cannot, from a uniform belief over states); a special or unknown
        id restarts at a sentence start. A 2-D ``[batch, length]`` input gives ``[batch, length, vocab]``.
        """
        ids = np.asarray(token_ids)
        offset = len(SPECIAL_TOKENS)
        size = offset + len(self.words)
        vocab_size = size if tokenizer_vocab_size is None else int(tokenizer_vocab_size)
        if vocab_size < size:
            raise ValueError(f"tokenizer_vocab_size {vocab_size} is smaller than the language's {size} tokens")
        if ids.ndim == 2:
            return (
                np.stack([self.true_next_distributions(row, vocab_size) for row in ids])
                if len(ids)
                else np.zeros((0, ids.shape[1], vocab_size))
            )
        if ids.ndim != 1:
            raise ValueError(f"token_ids must be 1-D or 2-D, got shape {ids.shape}")
        out = np.zeros((len(ids), vocab_size))
        node = self._start_node
        with self._lock:
            for pos, token in enumerate(ids.tolist()):
                node = self._advance(node, token - offset if offset <= token < size else None)
                out[pos, offset:size] = self._next(node)[0]
        return out

    def is_possible(self, words: str | Sequence[str]) -> bool:
        """Whether the grammar can produce these words from a sentence start (several sentences allowed)."""
        words = _split(words) if isinstance(words, str) else list(words)
        node = self._start_node
        with self._lock:
            for w in words:
                node = self._next(node)[1].get(self._index[w]) if w in self._index else None
                if node is None:
                    return False
        return True

    def next_word_distribution(self, prefix: str) -> dict[str, float]:
        """Exact next-word probabilities after a typed prefix that starts a sentence, most likely first."""
        node = self._start_node
        with self._lock:
            for w in _split(prefix):
                node = self._advance(node, self._index.get(w))
            dist = self._next(node)[0]
        return {self.words[i]: float(dist[i]) for i in np.argsort(-dist, kind="stable") if dist[i] > 0}

    # ---- entropy ------------------------------------------------------------------------------
    def _sentence_stats(self) -> tuple[float, float]:
        """(entropy of a sentence in nats, mean sentence length in words, '.' included), exactly.

        Every prefix within a sentence maps to one belief node, so by the chain rule
        H(sentence) = sum over nodes of (expected visits) * H(next word | node) and
        E[length] = sum of expected visits. The within-sentence node graph has no cycles (the
        grammar has none), so the visits follow from one pass in topological order: the start
        node is visited once per sentence and each node passes its visits on to its successors
        in proportion to the next-word probabilities. No sampling is involved.
        """
        with self._lock:
            if self._stats is None:
                self._stats = self._count_sentence_stats()
        return self._stats

    def _count_sentence_stats(self) -> tuple[float, float]:
        nodes, stack, seen = [], [self._start_node], {self._start_node}
        while stack:
            node = stack.pop()
            nodes.append(node)
            for word, nxt in self._next(node)[1].items():
                if word != self._end and nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        indegree = dict.fromkeys(nodes, 0)
        for node in nodes:
            for word, nxt in self._succ[node].items():
                if word != self._end:
                    indegree[nxt] += 1
        visits = dict.fromkeys(nodes, 0.0)
        visits[self._start_node] = 1.0
        ready, entropy, length, done = [self._start_node], 0.0, 0.0, 0
        while ready:
            node = ready.pop()
            done += 1
            dist = self._dist[node]
            p = dist[dist > 0]
            entropy += visits[node] * float(-(p * np.log(p)).sum())
            length += visits[node]
            for word, nxt in self._succ[node].items():
                if word != self._end:
                    visits[nxt] += visits[node] * dist[word]
                    indegree[nxt] -= 1
                    if indegree[nxt] == 0:
                        ready.append(nxt)
        if done != len(nodes):
            raise AssertionError("grammar bug: a sentence can loop")
        return entropy, length

    def sentence_entropy(self) -> float:
        """Exact entropy of one sentence (nats)."""
        return self._sentence_stats()[0]

    def mean_sentence_length(self) -> float:
        """Exact expected number of words in a sentence, '.' included."""
        return self._sentence_stats()[1]

    def entropy_rate(self) -> float:
        """Exact entropy rate of the sentence stream in nats per token: the cross-entropy floor.

        Sentences are independent and '.' ends each one, so the stream's rate is
        ``sentence_entropy() / mean_sentence_length()`` (both exact, see ``_sentence_stats``).
        """
        entropy, length = self._sentence_stats()
        return entropy / length


@functools.lru_cache(maxsize=1)
def get_language() -> ToyLanguage:
    """The built-in language, built once per process."""
    return ToyLanguage()
