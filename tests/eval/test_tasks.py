"""Generators: exact lengths, needles where asked, answers recoverable from the prompt, determinism."""

from __future__ import annotations

import pytest

from statex_dist.eval import tasks as T

from tests.eval.doubles import MQAR_VOCAB


@pytest.mark.parametrize("task", ["passkey", "niah"])
@pytest.mark.parametrize("length", [128, 700])
def test_haystack_exact_length_and_answer(tokenizer, task, length):
    samples = T.TASKS[task](tokenizer, length, 0.5, 4, seed=3)
    for s in samples:
        assert len(s.input_ids) == length
        (a, b), = s.answers
        assert b == length  # the answer closes the sequence
        answer = s.meta["answer"]
        assert tokenizer.decode(s.input_ids[a:b]).strip() == answer
        prompt = tokenizer.decode(s.input_ids[:a])
        assert answer in prompt  # the needle carries the answer
        assert prompt.rstrip().endswith(" is")


@pytest.mark.parametrize("task", ["passkey", "niah"])
def test_needle_depth_moves_the_needle(tokenizer, task):
    positions = []
    for depth in (0.0, 0.5, 1.0):
        s = T.TASKS[task](tokenizer, 600, depth, 1, seed=0)[0]
        text = tokenizer.decode(s.input_ids[: s.answers[0][0]])
        positions.append(text.index(s.meta["answer"]) / len(text))
    assert positions[0] < 0.2 < positions[1] < 0.8 < positions[2]


def test_generators_are_deterministic_and_varied(tokenizer):
    a = T.passkey_samples(tokenizer, 256, 0.25, 5, seed=1)
    b = T.passkey_samples(tokenizer, 256, 0.25, 5, seed=1)
    c = T.passkey_samples(tokenizer, 256, 0.25, 5, seed=2)
    assert [s.input_ids for s in a] == [s.input_ids for s in b]
    assert [s.input_ids for s in a] != [s.input_ids for s in c]
    assert len({s.meta["answer"] for s in a}) > 1


def test_too_short_length_is_an_error(tokenizer):
    with pytest.raises(ValueError, match="too short"):
        T.niah_samples(tokenizer, 20, 0.5, 1)


@pytest.mark.parametrize("pairs", [1, 8, 32])
def test_mqar_spans_are_the_queried_values(tokenizer, pairs):
    for s in T.mqar_samples(tokenizer, pairs, 5, seed=0, vocab=MQAR_VOCAB):
        assert len(s.answers) == pairs
        text = tokenizer.decode(s.input_ids)
        context, queries = text.split(T.MQAR_SEPARATOR)
        words = context.split()
        mapping = dict(zip(words[0::2], words[1::2]))
        assert len(mapping) == pairs  # keys are distinct
        for a, b in s.answers:
            key = tokenizer.decode(s.input_ids[a - 1:a]).strip()
            assert mapping[key] == tokenizer.decode(s.input_ids[a:b]).strip()


def test_mqar_queries_subset_and_vocab_limit(tokenizer):
    s = T.mqar_samples(tokenizer, 16, 1, num_queries=4, vocab=MQAR_VOCAB)[0]
    assert len(s.answers) == 4
    with pytest.raises(ValueError, match="needs at least"):
        T.mqar_samples(tokenizer, 65, 1, vocab=MQAR_VOCAB)


def test_pseudo_words_distinct():
    words = T.pseudo_words(500, 2)
    assert len(set(words)) == 500 and all(len(w) == 4 for w in words)


def test_mqar_vocab_keys_are_cached_copies():
    vocab = T.MQARVocab(64, 32)
    keys = vocab.keys()
    assert keys == T.pseudo_words(64, 2)
    keys.clear()  # a caller mutating its list must not change the next draw
    assert vocab.keys() == T.pseudo_words(64, 2)
