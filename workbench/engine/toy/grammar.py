"""The grammar of the built-in language, written as a network and compiled to a PFSM.

The grammar is fixed in code and written with two kinds of nodes: *branch* nodes choose
a continuation without emitting, *emit* nodes emit a word. Compiling (:func:`compile_grammar`)
removes the branch nodes (their weighted closures fold into the arcs), which leaves a plain
probabilistic finite-state machine over the emit nodes. Every sentence ends with the word
``.``. Within a sentence the grammar has no loops.

Dependencies that span several words: subject number decides the verb form across a
prepositional phrase or a relative clause that may hold a noun of the other number
("the dogs near the house are", "the cat near the trees is", "the man who likes the
dogs is"); "the cat and the dog" takes "are"; "there is" / "there are" fix the number
of the noun that follows; "a" / "an" look at the next word; the subject's kind (pet,
bird, farm animal, water animal, person) shapes verbs, places and food.

:mod:`workbench.engine.toylang` builds the language on top: sampling, the tokenizer,
exact next-word distributions and the entropy rate.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable

END = "."
VOWELS = "aeiou"


def _zipf(words: str, exponent: float = 1.0) -> list[tuple[str, float]]:
    """Weights for a space-separated list: the k-th word gets 1 / k**exponent (favourites first)."""
    return [(w, 1.0 / (k + 1) ** exponent) for k, w in enumerate(words.split())]


# ---- lexicon -------------------------------------------------------------------------------------
# Animate nouns: singular, plural, kind, weight. "sheep" and "fish" keep their number hidden.
ANIMATE = [
    ("cat", "cats", "pet", 5),
    ("dog", "dogs", "pet", 5),
    ("rabbit", "rabbits", "pet", 1.2),
    ("mouse", "mice", "pet", 1.2),
    ("bird", "birds", "bird", 4),
    ("duck", "ducks", "bird", 1.5),
    ("owl", "owls", "bird", 0.8),
    ("horse", "horses", "farm", 2.5),
    ("cow", "cows", "farm", 1.5),
    ("sheep", "sheep", "farm", 1.5),
    ("fish", "fish", "water", 2),
    ("frog", "frogs", "water", 1.2),
    ("man", "men", "person", 4),
    ("woman", "women", "person", 4),
    ("boy", "boys", "person", 3),
    ("girl", "girls", "person", 3),
    ("child", "children", "person", 2),
    ("teacher", "teachers", "person", 1.2),
]
# Place nouns that also appear in the plural ("over the trees"); other places stay singular.
PLURAL_PLACES = {"tree", "house", "hill", "field"}

# Intransitive verbs: progressive, 3rd singular, plural, place group, adverbs, weight per kind.
INTRANSITIVE = [
    ("sitting", "sits", "sit", "rest", "quietly now together alone", dict(pet=5, bird=2, person=3, farm=0.5)),
    (
        "sleeping",
        "sleeps",
        "sleep",
        "rest",
        "quietly now together alone",
        dict(pet=5, person=2, farm=2, bird=1, water=0.5),
    ),
    ("hiding", "hides", "hide", "rest", "quietly again now together", dict(pet=2, person=1, bird=1, water=1.5)),
    ("playing", "plays", "play", "outdoor", "happily together again alone", dict(pet=3, person=4, water=0.5)),
    ("running", "runs", "run", "outdoor", "fast together again", dict(pet=3, person=2, farm=3)),
    ("walking", "walks", "walk", "outdoor", "slowly together alone", dict(person=4, farm=2, pet=1, bird=0.5)),
    ("flying", "flies", "fly", "sky", "slowly together happily", dict(bird=6)),
    ("swimming", "swims", "swim", "water", "slowly happily fast together", dict(water=6, bird=1.5, person=1, pet=0.3)),
    ("singing", "sings", "sing", "outdoor", "happily again together", dict(bird=4, person=2)),
    ("waiting", "waits", "wait", "outdoor", "quietly again now", dict(person=3, pet=2, farm=0.5)),
]
# Transitive verbs: progressive (or None), 3rd singular, plural, object group, weight per kind.
TRANSITIVE = [
    (None, "sees", "see", "animate", dict(pet=3, bird=3, farm=3, water=2, person=3)),
    ("watching", "watches", "watch", "animate", dict(pet=2, bird=1, farm=1, water=1, person=3)),
    (None, "likes", "like", "liked", dict(pet=2, bird=1, farm=1, water=1, person=3)),
    ("chasing", "chases", "chase", "animate", dict(pet=5, person=1, bird=0.5)),
    ("eating", "eats", "eat", "food", dict(pet=3, bird=3, farm=4, water=3, person=2)),
    ("carrying", "carries", "carry", "thing", dict(person=3, pet=1)),
    ("reading", "reads", "read", "read", dict(person=3)),
    (None, "has", "have", "thing", dict(person=2, pet=0.5)),
    (None, "wants", "want", "thing", dict(pet=1, person=1.5, bird=0.5, farm=0.5)),
]
FOOD = {
    "pet": "fish bone cake",
    "bird": "seed worm apple",
    "farm": "apple carrot",
    "water": "worm seed fish",
    "person": "apple cake fish",
}
OBJECT_GROUPS = {
    "thing": "ball book bag hat stick box",
    "read": "book letter",
    "liked": "dog cat ball cake book bird",
    "with": "hat bag ball book stick",
    "near": "house tree river garden",
    "in": "garden house park tree",
}
# Places for a locative phrase: group -> (prepositions, nouns), favourites first. The nouns do not
# depend on the preposition, which keeps the number of distinct contexts a model must learn small.
PLACES = {
    "rest": ("on under near", "mat sofa bed chair table roof"),
    "outdoor": ("in near", "garden park field house"),
    "sky": ("over near", "tree house hill river field"),
    "water": ("in near", "river lake"),
}
BE_PLACE = {"pet": "rest", "bird": "sky", "farm": "outdoor", "water": "water", "person": "outdoor"}
ADJ_ANIMATE = _zipf("small big old young little black white brown happy lazy hungry", 0.6)
ADJ_THING = _zipf("old big small red green", 0.6)
ADJ_PLACE = _zipf("old big small green", 0.8)
PRED_ADJ = {
    "pet": "hungry happy small lazy",
    "bird": "small happy hungry",
    "farm": "big hungry lazy old",
    "water": "small happy hungry",
    "person": "happy tired hungry",
}
AFTER_ADVERBS = _zipf("today again now", 1.0)
DET_SG = [
    ("the", 8),
    ("this", 0.6),
    ("that", 0.4),
    ("my", 0.5),
    ("his", 0.4),
    ("her", 0.4),
    ("their", 0.3),
    ("every", 0.2),
]
DET_PL = [
    ("the", 8),
    ("these", 0.6),
    ("those", 0.4),
    ("two", 0.8),
    ("three", 0.5),
    ("some", 0.8),
    ("many", 0.4),
    ("their", 0.3),
]
INDEFINITE = 2.5  # weight of "a"/"an" next to DET_SG


def _forms() -> dict[str, tuple[str, str | None, str]]:
    """lemma -> (singular, plural or None, kind) for every noun the grammar uses."""
    forms = {sg: (sg, pl, kind) for sg, pl, kind, _ in ANIMATE}

    def plural(word: str) -> str:
        if word.endswith(("s", "x", "ch", "sh")):
            return word + "es"
        if word.endswith("y") and word[-2] not in VOWELS:
            return word[:-1] + "ies"
        return word + "s"

    places = " ".join(nouns for _, nouns in PLACES.values())
    for word in places.split():
        forms.setdefault(word, (word, plural(word) if word in PLURAL_PLACES else None, "thing"))
    for word in " ".join([*FOOD.values(), *OBJECT_GROUPS.values()]).split():
        forms.setdefault(word, (word, plural(word), "thing"))
    return forms


# ---- grammar network -----------------------------------------------------------------------------
class _Net:
    """A weighted network under construction: branch nodes (no word) and emit nodes (one word)."""

    def __init__(self) -> None:
        self.kind: list[str | None] = []
        self.edges: list[list] = []
        self._memo: dict = {}

    def new(self) -> int:
        self.kind.append(None)
        self.edges.append([])
        return len(self.kind) - 1

    def _set(self, node: int, kind: str, options: Iterable) -> int:
        options = [o for o in options if o[0] > 0]
        if not options:
            raise AssertionError(f"grammar bug: {kind} node {node} has no options")
        self.kind[node], self.edges[node] = kind, options
        return node

    def branch(self, options: Iterable[tuple[float, int]], node: int | None = None) -> int:
        """A node that moves to one of ``(weight, next node)`` without emitting."""
        return self._set(self.new() if node is None else node, "branch", options)

    def emit(self, options: Iterable[tuple[float, str, int]]) -> int:
        """A node that emits one of ``(weight, word, next node)``."""
        return self._set(self.new(), "emit", options)

    def memo(self, key, build: Callable[[], int]) -> int:
        """Build a sub-network once per key, so equal contexts share states (and beliefs merge)."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]


class _Grammar:
    """Writes the fixed grammar into a :class:`_Net`; ``start`` is the sentence-start node."""

    def __init__(self) -> None:
        self.net = _Net()
        self.forms = _forms()
        self.start = self.net.new()
        net = self.net
        self.end = net.emit([(1.0, END, self.start)])
        subject = self.noun_phrase(ANIMATE_LEMMAS, self.subject_continuation, DET_SG, DET_PL, ADJ_ANIMATE, 0.4, 0.25)
        net.branch([(0.88, subject), (0.07, self.there()), (0.05, self.fronted_adverb(subject))], node=self.start)

    # noun phrases
    def noun_phrase(
        self, lemmas, exit: Callable[[str, str], int], det_sg, det_pl, adjectives, plural_prob, adj_prob
    ) -> int:
        """det (agreeing in number; "a"/"an" by the next sound) + up to two adjectives + noun -> exit(number, kind).

        "a" and "an" are drawn with the probability that the rest of the phrase starts with a
        consonant or a vowel, so the phrase distribution is the same as without the article rule.
        """
        net, forms = self.net, self.forms
        nouns = {"sg": [(w, lem) for lem, w in lemmas], "pl": [(w, lem) for lem, w in lemmas if forms[lem][1]]}
        if not nouns["pl"] or not det_pl:
            plural_prob = 0.0
        adj_total = sum(w for _, w in adjectives) or 1.0

        def fits(word: str, sound: str | None) -> bool:
            return sound is None or (word[0] in VOWELS) == (sound == "vowel")

        def word(lemma: str, number: str) -> str:
            return forms[lemma][0 if number == "sg" else 1]

        @functools.cache
        def noun_state(number: str, sound: str | None) -> int:
            return net.emit(
                [
                    (w, word(lem, number), exit(number, forms[lem][2]))
                    for w, lem in nouns[number]
                    if fits(word(lem, number), sound)
                ]
            )

        @functools.cache
        def second_adjective(number: str) -> int:
            adjs = net.emit([(w, a, noun_state(number, None)) for a, w in adjectives])
            return net.branch([(0.15, adjs), (0.85, noun_state(number, None))])

        def masses(number: str, sound: str | None) -> tuple[float, float]:
            noun_total = sum(w for w, _ in nouns[number])
            adj = adj_prob * sum(w for a, w in adjectives if fits(a, sound)) / adj_total
            noun = (1 - adj_prob) * sum(w for w, lem in nouns[number] if fits(word(lem, number), sound)) / noun_total
            return adj, noun

        def after_det(number: str, sound: str | None = None) -> int:
            adj, noun = masses(number, sound)
            options = [(noun, noun_state(number, sound))] if noun > 0 else []
            if adj > 0:
                adjs = [(w, a, second_adjective(number)) for a, w in adjectives if fits(a, sound)]
                options.append((adj, net.emit(adjs)))
            return net.branch(options)

        options = []
        if plural_prob < 1:
            sg = [(w, d, after_det("sg")) for d, w in det_sg]
            for article, sound in (("a", "consonant"), ("an", "vowel")):
                share = sum(masses("sg", sound))
                if share > 0:
                    sg.append((INDEFINITE * share, article, after_det("sg", sound)))
            options.append((1 - plural_prob, net.emit(sg)))
        if plural_prob > 0:
            options.append((plural_prob, net.emit([(w, d, after_det("pl")) for d, w in det_pl])))
        return net.branch(options)

    def thing_phrase(self, key, nouns: str, exit: int, adjectives=ADJ_THING, plural_prob=0.0, adj_prob=0.2) -> int:
        """A noun phrase whose number and kind do not matter afterwards (objects, places)."""
        det_sg = [("the", 8), ("my", 0.4), ("his", 0.3), ("her", 0.3), ("their", 0.2)]
        det_pl = [("the", 8), ("some", 0.8), ("two", 0.6), ("these", 0.3)]
        return self.net.memo(
            ("np", key, exit),
            lambda: self.noun_phrase(
                [(lem, w) for lem, w in _zipf(nouns, 0.9)],
                lambda n, k: exit,
                det_sg,
                det_pl,
                adjectives,
                plural_prob,
                adj_prob,
            ),
        )

    def place(self, group: str, exit: int) -> int:
        """A locative phrase: preposition + place noun phrase (the nouns depend on the group)."""

        def build() -> int:
            preps, nouns = PLACES[group]
            phrase = self.thing_phrase(("place", group), nouns, exit, ADJ_PLACE, 0.06, 0.15)
            return self.net.emit([(w, prep, phrase) for prep, w in _zipf(preps, 1.0)])

        return self.net.memo(("place", group, exit), build)

    # clauses
    def subject_continuation(self, number: str, kind: str) -> int:
        """After the subject noun: a verb phrase, maybe after a modifier that hides the subject's number."""

        def build() -> int:
            net, vp = self.net, self.verb_phrase(number, kind)
            mod = net.emit(
                [
                    (
                        w,
                        prep,
                        self.thing_phrase(("mod", prep), OBJECT_GROUPS[prep], vp, ADJ_THING, 0.35 * (prep != "with")),
                    )
                    for prep, w in _zipf("near with in", 0.8)
                ]
            )
            rel_words = [(2.0, "who")] if kind == "person" else []
            rel = net.emit([(w, r, self.transitive(number, kind, vp)) for w, r in rel_words + [(1.0, "that")]])
            conj = net.emit(
                [
                    (
                        1.0,
                        "and",
                        net.memo(
                            ("conj",),
                            lambda: self.noun_phrase(
                                ANIMATE_LEMMAS,
                                lambda n, k: self.verb_phrase("pl", k),
                                DET_SG,
                                DET_PL,
                                ADJ_ANIMATE,
                                0.3,
                                0.1,
                            ),
                        ),
                    )
                ]
            )
            return net.branch([(0.67, vp), (0.18, mod), (0.09, rel), (0.06, conj)])

        return self.net.memo(("subj", number, kind), build)

    def be(self, number: str) -> str:
        return "is" if number == "sg" else "are"

    def verb_phrase(self, number: str, kind: str) -> int:
        def build() -> int:
            net, be = self.net, self.be(number)
            form = 1 if number == "sg" else 2
            progressive = [(ws.get(kind, 0), prog, self.after_verb(prog, number)) for prog, *_, ws in INTRANSITIVE]
            progressive += [
                (0.6 * ws.get(kind, 0), prog, self.obj(group, kind, self.after_object()))
                for prog, _, _, group, ws in TRANSITIVE
                if prog
            ]
            present = [(0.5 * v[-1].get(kind, 0), v[form], self.after_verb(v[0], number)) for v in INTRANSITIVE]
            predicate = [(w, a, self.end) for a, w in _zipf(PRED_ADJ[kind], 0.8)]
            very = net.emit([(1.0, "very", net.emit(predicate))])
            return net.branch(
                [
                    (
                        0.40,
                        net.emit(
                            [
                                (0.45, be, net.emit(progressive)),
                                (0.12, be, net.branch([(0.8, net.emit(predicate)), (0.2, very)])),
                                (0.10, be, self.place(BE_PLACE[kind], self.after_place())),
                            ]
                        ),
                    ),
                    (0.33, self.transitive(number, kind, self.after_object())),
                    (0.14, net.emit(present)),
                ]
            )

        return self.net.memo(("vp", number, kind), build)

    def transitive(self, number: str, kind: str, exit: int) -> int:
        """A present-tense transitive verb agreeing with the subject, then its object, then exit."""
        form = 1 if number == "sg" else 2
        return self.net.emit([(ws.get(kind, 0), v[form], self.obj(group, kind, exit)) for *v, group, ws in TRANSITIVE])

    def obj(self, group: str, kind: str, exit: int) -> int:
        if group == "food":
            return self.thing_phrase(("food", kind), FOOD[kind], exit)
        if group == "animate":
            return self.thing_phrase(("animate",), ANIMATE_WORDS, exit, ADJ_ANIMATE, 0.35)
        return self.thing_phrase((group,), OBJECT_GROUPS[group], exit, plural_prob=0.3 * (group == "liked"))

    def after_object(self) -> int:
        def build() -> int:
            adverbs = self.net.emit([(w, a, self.end) for a, w in AFTER_ADVERBS])
            return self.net.branch([(0.7, self.end), (0.1, adverbs), (0.2, self.place("outdoor", self.after_place()))])

        return self.net.memo(("after_object",), build)

    def after_verb(self, prog: str, number: str) -> int:
        """After an intransitive verb: end, a place, or an adverb ("together" only in the plural)."""

        def build() -> int:
            verb = next(v for v in INTRANSITIVE if v[0] == prog)
            skip = "alone" if number == "pl" else "together"
            adverbs = [(w, a, self.end) for a, w in _zipf(verb[4], 0.8) if a != skip]
            return self.net.branch(
                [(0.3, self.end), (0.5, self.place(verb[3], self.after_place())), (0.2, self.net.emit(adverbs))]
            )

        return self.net.memo(("after_verb", prog, number), build)

    def after_place(self) -> int:
        def build() -> int:
            adverbs = self.net.emit([(w, a, self.end) for a, w in AFTER_ADVERBS])
            return self.net.branch([(0.85, self.end), (0.15, adverbs)])

        return self.net.memo(("after_place",), build)

    def there(self) -> int:
        """ "there is a cat on the mat ." / "there are two birds over the tree ."."""
        net = self.net

        def exit(number: str, kind: str) -> int:
            return self.place(BE_PLACE[kind], self.after_place())

        sg = self.noun_phrase(ANIMATE_LEMMAS, exit, [], [], ADJ_ANIMATE, 0.0, 0.25)
        pl = self.noun_phrase(
            ANIMATE_LEMMAS, exit, [], [("two", 2), ("three", 1), ("some", 2), ("many", 1)], ADJ_ANIMATE, 1.0, 0.25
        )
        return net.emit([(1.0, "there", net.emit([(0.6, "is", sg), (0.4, "are", pl)]))])

    def fronted_adverb(self, subject: int) -> int:
        return self.net.emit([(w, a, subject) for a, w in _zipf("today now sometimes", 1.0)])


ANIMATE_LEMMAS = [(sg, w) for sg, _, _, w in ANIMATE]
ANIMATE_WORDS = " ".join(sg for sg, *_ in sorted(ANIMATE, key=lambda a: -a[3]))


def _compile(net: _Net, start: int) -> tuple[list[dict[tuple[str, int], float]], dict[int, float]]:
    """Fold branch nodes into the arcs: returns, per state, {(word, next state): prob} and the start belief.

    States are the emit nodes reachable from the sentence start, numbered in order of discovery.
    """

    @functools.cache
    def closure(node: int) -> tuple[tuple[int, float], ...]:
        if net.kind[node] == "emit":
            return ((node, 1.0),)
        total = sum(w for w, _ in net.edges[node])
        out: dict[int, float] = defaultdict(float)
        for w, child in net.edges[node]:
            for emit_node, p in closure(child):
                out[emit_node] += w / total * p
        return tuple(out.items())

    index: dict[int, int] = {}
    order: list[int] = []

    def state(node: int) -> int:
        if node not in index:
            index[node] = len(order)
            order.append(node)
        return index[node]

    start_belief = {state(n): p for n, p in closure(start)}
    arcs: list[dict[tuple[str, int], float]] = []
    while len(arcs) < len(order):
        node = order[len(arcs)]
        total = sum(w for w, _, _ in net.edges[node])
        out: dict[tuple[str, int], float] = defaultdict(float)
        for w, word, child in net.edges[node]:
            for emit_node, p in closure(child):
                out[word, state(emit_node)] += w / total * p
        arcs.append(dict(out))
    return arcs, start_belief


def compile_grammar() -> tuple[list[dict[tuple[str, int], float]], dict[int, float]]:
    """The built-in grammar as a PFSM: per state {(word, next state): probability}, and the start belief."""
    grammar = _Grammar()
    return _compile(grammar.net, grammar.start)
