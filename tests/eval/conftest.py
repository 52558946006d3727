"""Fixtures for the evaluation tests: a small tokenizer trained on the probes' own text, test-double models."""

from __future__ import annotations

import random

import pytest

from statex_dist.eval import tasks as T

from tests.eval.doubles import MQAR_VOCAB


def _training_text() -> list[str]:
    rng = random.Random(0)
    texts = T.filler_sentences(300)
    texts += [T.mqar_text(*T.draw_mqar(rng, MQAR_VOCAB, 32)) for _ in range(200)]
    texts += [f" the secret code of {w} is {rng.randrange(10**5, 10**6)}. the pass key is {rng.randrange(10**4, 10**5)}."
              for w in T.pseudo_words(300, 3)]
    return texts


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    from statex_dist.data.tokenizer import train_tokenizer

    return train_tokenizer(_training_text(), 600, tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    from statex_dist.data.tokenizer import load_tokenizer

    return load_tokenizer(tokenizer_dir)
