"""Synthetic recall probes: passkey retrieval, single-needle key-value NIAH and multi-query associative recall.

Every generator works at the token level of the model's own tokenizer: text pieces (filler sentences, the
needle, the question, each answer) are tokenized once and concatenated, so a probe of 65,536 tokens costs a
few list joins, and the token count of every sample is exact rather than estimated. A sample is scored by
:mod:`statex_dist.eval.scoring`: each answer span must be the model's argmax continuation token by token.

All text (filler grammar, needle and question wording) is written for this project. Randomness comes from one
``random.Random(seed)`` per (task, cell), so a cell's samples do not change when other cells are added.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from typing import Callable

# ---------------------------------------------------------------------------------------------------------
# samples
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    """One scored sequence: ``input_ids`` holds the prompt and every answer; ``answers`` are ``[start, end)``
    token spans inside it that the model must predict (position p is predicted from the logits at p - 1)."""

    input_ids: list[int]
    answers: list[tuple[int, int]]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for start, end in self.answers:
            if not 1 <= start < end <= len(self.input_ids):
                raise ValueError(f"answer span {(start, end)} outside a sequence of {len(self.input_ids)} tokens")


class TokenCache:
    """Tokenize text pieces once; ``piece(" text")`` returns its ids (no special tokens)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._cache: dict[str, list[int]] = {}

    def __call__(self, text: str) -> list[int]:
        ids = self._cache.get(text)
        if ids is None:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(self._cache) < 200_000:
                self._cache[text] = ids
        return ids


# ---------------------------------------------------------------------------------------------------------
# vocabularies and filler (our own wording)
# ---------------------------------------------------------------------------------------------------------

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]  # 70


def pseudo_words(n: int, syllables: int = 2) -> list[str]:
    """``n`` distinct pronounceable nonsense words of ``syllables`` syllables, in a fixed (seeded) order."""
    total = len(SYLLABLES) ** syllables
    if n > total:
        raise ValueError(f"asked for {n} words of {syllables} syllables; only {total} exist")
    rng = random.Random(f"words-{syllables}")
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        w = "".join(rng.choice(SYLLABLES) for _ in range(syllables))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


_SUBJECTS = ["the old miller", "a young teacher", "the harbour pilot", "my neighbour", "the baker", "a tired clerk",
             "the gardener", "our captain", "the village doctor", "a travelling merchant", "the night guard",
             "the weaver", "an old fisherman", "the librarian", "a quiet student", "the mayor"]
_VERBS = ["carried", "painted", "repaired", "counted", "found", "sold", "described", "buried", "cleaned",
          "borrowed", "measured", "forgot", "delivered", "planted", "weighed", "wrapped"]
_OBJECTS = ["a basket of apples", "the wooden gate", "seven copper pots", "a map of the coast", "the broken clock",
            "two sacks of flour", "the blue boat", "a letter from the city", "the church bell", "a box of nails",
            "the long ladder", "three lanterns", "an iron kettle", "the spare sail", "a jar of honey", "the red cart"]
_TAILS = ["before the rain came", "after the market closed", "while the river rose", "at the end of the week",
          "without saying a word", "near the north bridge", "in the early morning", "for the spring fair",
          "as the bells rang", "under a grey sky", "on the way home", "just after noon"]


def filler_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct plain sentences from a small grammar, each starting with a space."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        s = f" {rng.choice(_SUBJECTS).capitalize()} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TAILS)}."
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def random_number(rng: random.Random, digits: int) -> str:
    return str(rng.randrange(10 ** (digits - 1), 10 ** digits))


def _fill(tok: TokenCache, rng: random.Random, sentences: list[str], budget: int) -> list[list[int]]:
    """Filler sentences (as token lists) until ``budget`` tokens are used; the last one is cut to fit."""
    pieces, used = [], 0
    while used < budget:
        ids = tok(rng.choice(sentences))
        pieces.append(ids[: budget - used])
        used += len(pieces[-1])
    return pieces


def _haystack_sample(tok, rng, sentences, length, depth, intro, needle, question, answer, meta) -> Sample:
    """Filler around ``needle`` at ``depth`` (0 = first, 1 = last) so prompt + answer has ``length`` tokens."""
    intro_ids, needle_ids, question_ids, answer_ids = tok(intro), tok(needle), tok(question), tok(answer)
    budget = length - len(intro_ids) - len(needle_ids) - len(question_ids) - len(answer_ids)
    if budget < 0:
        raise ValueError(f"length {length} is too short for the task's fixed text ({length - budget} tokens)")
    pieces = _fill(tok, rng, sentences, budget)
    at = round(depth * len(pieces))
    ids = intro_ids + [t for p in pieces[:at] for t in p] + needle_ids + [t for p in pieces[at:] for t in p]
    ids += question_ids
    start = len(ids)
    ids += answer_ids
    return Sample(ids, [(start, len(ids))], {**meta, "length": length, "depth": depth, "answer": answer.strip()})


# ---------------------------------------------------------------------------------------------------------
# the tasks
# ---------------------------------------------------------------------------------------------------------


def passkey_samples(tokenizer, length: int, depth: float, n: int, seed: int = 0, digits: int = 5) -> list[Sample]:
    """A number hidden in filler at ``depth``; the prompt ends asking for it, the answer is the number."""
    tok = tokenizer if isinstance(tokenizer, TokenCache) else TokenCache(tokenizer)
    rng = random.Random(f"passkey-{length}-{depth}-{seed}")
    sentences = filler_sentences(256, seed=seed)
    out = []
    for _ in range(n):
        key = random_number(rng, digits)
        out.append(_haystack_sample(
            tok, rng, sentences, length, depth,
            intro=" A pass key is hidden somewhere in the story below. Find it and keep it in mind.",
            needle=f" Listen carefully: the pass key is {key}. Say it back later: {key}.",
            question=" What was the pass key? The pass key is",
            answer=f" {key}", meta={"task": "passkey"},
        ))
    return out


def niah_samples(tokenizer, length: int, depth: float, n: int, seed: int = 0, digits: int = 6) -> list[Sample]:
    """Single needle, key-value style: one named code hidden in filler; the question names the key."""
    tok = tokenizer if isinstance(tokenizer, TokenCache) else TokenCache(tokenizer)
    rng = random.Random(f"niah-{length}-{depth}-{seed}")
    sentences = filler_sentences(256, seed=seed + 1)
    names = pseudo_words(2000, syllables=3)
    out = []
    for _ in range(n):
        name, value = rng.choice(names), random_number(rng, digits)
        out.append(_haystack_sample(
            tok, rng, sentences, length, depth,
            intro=" Somewhere in the notes below a secret code is written down for a name.",
            needle=f" Note: the secret code of {name} is {value}.",
            question=f" Which secret code belongs to {name}? The secret code of {name} is",
            answer=f" {value}", meta={"task": "niah"},
        ))
    return out


@dataclass
class MQARVocab:
    """Keys are pseudo-words, values are integers; both pools are fixed and ordered."""

    num_keys: int = 128
    num_values: int = 128
    key_syllables: int = 2

    def keys(self) -> list[str]:
        return list(_pseudo_words_cached(self.num_keys, self.key_syllables))

    def values(self) -> list[str]:
        return [str(i) for i in range(self.num_values)]


@functools.lru_cache(maxsize=16)
def _pseudo_words_cached(n: int, syllables: int) -> tuple[str, ...]:
    # drawn for every MQAR sequence: cached, since building 512 words per draw dominated corpus generation
    return tuple(pseudo_words(n, syllables))


MQAR_SEPARATOR = " ?"


def mqar_text(pairs: list[tuple[str, str]], queries: list[tuple[str, str]]) -> str:
    """The text layout of one MQAR sequence: ``k1 v1 k2 v2 ... ? kq vq ...`` (also used for training data)."""
    return "".join(f" {k} {v}" for k, v in pairs) + MQAR_SEPARATOR + "".join(f" {k} {v}" for k, v in queries)


def draw_mqar(rng: random.Random, vocab: MQARVocab, num_pairs: int, num_queries: int | None = None):
    """Distinct keys with random values; queries are a random subset (all pairs when ``num_queries`` is None)."""
    keys, values = vocab.keys(), vocab.values()
    if num_pairs > len(keys):
        raise ValueError(f"MQAR with {num_pairs} pairs needs at least that many keys (vocab has {len(keys)})")
    chosen = rng.sample(keys, num_pairs)
    pairs = [(k, rng.choice(values)) for k in chosen]
    q = num_pairs if num_queries is None else min(num_queries, num_pairs)
    queries = rng.sample(pairs, q)
    return pairs, queries


def mqar_samples(tokenizer, num_pairs: int, n: int, seed: int = 0, num_queries: int | None = None,
                 vocab: MQARVocab | None = None) -> list[Sample]:
    """Multi-query associative recall: after all pairs, each queried key must be followed by its value."""
    tok = tokenizer if isinstance(tokenizer, TokenCache) else TokenCache(tokenizer)
    vocab = vocab or MQARVocab()
    rng = random.Random(f"mqar-{num_pairs}-{seed}")
    out = []
    for _ in range(n):
        pairs, queries = draw_mqar(rng, vocab, num_pairs, num_queries)
        ids: list[int] = []
        for k, v in pairs:
            ids += tok(f" {k}") + tok(f" {v}")
        ids += tok(MQAR_SEPARATOR)
        spans = []
        for k, v in queries:
            ids += tok(f" {k}")
            start = len(ids)
            ids += tok(f" {v}")
            spans.append((start, len(ids)))
        out.append(Sample(ids, spans, {"task": "mqar", "pairs": num_pairs, "length": len(ids),
                                       "chance": 1.0 / vocab.num_values}))
    return out


TASKS: dict[str, Callable] = {"passkey": passkey_samples, "niah": niah_samples, "mqar": mqar_samples}
HAYSTACK_TASKS = ("passkey", "niah")
