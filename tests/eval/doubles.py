"""Test doubles for the scorers: a perfect-recall oracle and random guessers, behind the causal-LM interface."""

from __future__ import annotations

import random
from types import SimpleNamespace

import torch
import torch.nn as nn

from statex_dist.eval import tasks as T

MQAR_VOCAB = T.MQARVocab(num_keys=64, num_values=16)


class _TokenModel(nn.Module):
    """Base of the test doubles: ``forward(input_ids)`` returns logits from ``next_tokens`` (a [B, T] guess)."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab
        self.dummy = nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(model_type="test-double")

    def next_tokens(self, ids: list[int]) -> list[int]:
        raise NotImplementedError

    def forward(self, input_ids, **kwargs):
        b, t = input_ids.shape
        logits = torch.zeros(b, t, self.vocab)
        for i in range(b):
            guess = self.next_tokens(input_ids[i].tolist())
            logits[i, torch.arange(t), torch.tensor(guess)] = 1.0
        return SimpleNamespace(logits=logits)


class InductionOracle(_TokenModel):
    """Predicts, at every position, the token that followed the longest (then latest) earlier occurrence of
    the current suffix (up to ``max_n`` tokens): a model with perfect, unbounded recall of its context.
    It knows nothing about the tasks, so 100% means each answer is recoverable from the prompt."""

    def __init__(self, vocab: int, max_n: int = 12):
        super().__init__(vocab)
        self.max_n = max_n

    def next_tokens(self, ids):
        seen: list[dict] = [dict() for _ in range(self.max_n + 1)]
        out = []
        for t in range(len(ids)):
            guess = 0
            for n in range(min(self.max_n, t + 1), 0, -1):
                key = tuple(ids[t - n + 1:t + 1])
                if key in seen[n]:
                    guess = ids[seen[n][key]]
                    break
            out.append(guess)
            # register the n-grams that end at t - 1 (their next token, at t, is now known)
            for n in range(1, min(self.max_n, t) + 1):
                seen[n][tuple(ids[t - n:t])] = t
        return out


class RandomModel(_TokenModel):
    """Uniformly random next token over ``choices`` (default: the whole vocabulary)."""

    def __init__(self, vocab: int, choices: list[int] | None = None, seed: int = 0):
        super().__init__(vocab)
        self.choices = choices or list(range(vocab))
        self.rng = random.Random(seed)

    def next_tokens(self, ids):
        return [self.rng.choice(self.choices) for _ in ids]
