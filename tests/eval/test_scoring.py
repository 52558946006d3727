"""Scorers: an oracle with perfect recall scores 100%, random models score near chance, padding is harmless."""

from __future__ import annotations

import math

import pytest
import torch

from statex_dist.eval import tasks as T
from statex_dist.eval.runner import EvalConfig, parse_lengths, run_eval
from statex_dist.eval.scoring import length_batches, score_samples, token_losses

from tests.eval.doubles import MQAR_VOCAB, InductionOracle, RandomModel
from tests.conftest import tiny_model


def _cfg(**kw):
    base = dict(tasks=["passkey", "niah", "mqar"], lengths=[128, 400], depths=[0.0, 0.5, 1.0], samples=3,
                mqar_pairs=[2, 8, 24], mqar_keys=MQAR_VOCAB.num_keys, mqar_values=MQAR_VOCAB.num_values,
                batch_size=4, progress=False)
    base.update(kw)
    return EvalConfig(**base)


def test_oracle_scores_100(tokenizer):
    res = run_eval(InductionOracle(len(tokenizer)), tokenizer, _cfg(), label="oracle")
    for task in ("passkey", "niah", "mqar"):
        assert res["tasks"][task]["accuracy"] == 1.0, task
        assert all(c["accuracy"] == 1.0 for c in res["tasks"][task]["cells"])


def test_random_model_near_chance(tokenizer):
    res = run_eval(RandomModel(len(tokenizer)), tokenizer, _cfg(samples=4), label="random")
    assert res["tasks"]["passkey"]["accuracy"] == 0.0
    assert res["tasks"]["niah"]["accuracy"] == 0.0
    assert res["tasks"]["mqar"]["accuracy"] <= 0.05


def test_value_guesser_matches_mqar_chance(tokenizer):
    """A model that guesses a random value scores 1/num_values, the chance level the report prints."""
    values = [tokenizer(f" {v}", add_special_tokens=False)["input_ids"][0] for v in MQAR_VOCAB.values()]
    cfg = _cfg(tasks=["mqar"], mqar_pairs=[32], samples=40)
    res = run_eval(RandomModel(len(tokenizer), choices=values, seed=1), tokenizer, cfg)
    chance = res["tasks"]["mqar"]["chance"]
    n = res["tasks"]["mqar"]["cells"][0]["queries"]
    assert chance == 1 / MQAR_VOCAB.num_values
    assert abs(res["tasks"]["mqar"]["accuracy"] - chance) < 4 * math.sqrt(chance * (1 - chance) / n)


def test_real_model_padding_does_not_change_scores(tokenizer):
    """Right padding in a batch gives the same hidden states as running each sample alone."""
    model = tiny_model("gla", vocab_size=len(tokenizer), kernel_backend="torch")
    samples = T.mqar_samples(tokenizer, 4, 3, vocab=MQAR_VOCAB) + T.mqar_samples(tokenizer, 12, 3, vocab=MQAR_VOCAB)
    together = score_samples(model, samples, batch_size=6)
    alone = [score_samples(model, [s], batch_size=1)[0] for s in samples]
    assert together == alone
    ids = samples[0].input_ids
    padded = torch.tensor([ids + [1] * 10])
    h1 = model.backbone_module(input_ids=torch.tensor([ids]))
    h2 = model.backbone_module(input_ids=padded)[:, : len(ids)]
    torch.testing.assert_close(h1, h2)


def test_token_losses_match_model_loss(tokenizer):
    model = tiny_model("gla", vocab_size=len(tokenizer), kernel_backend="torch")
    ids = T.mqar_samples(tokenizer, 8, 1, vocab=MQAR_VOCAB)[0].input_ids
    losses = token_losses(model, [ids], chunk=7)
    ref = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss
    torch.testing.assert_close(losses.mean(), ref, rtol=1e-5, atol=1e-5)


def test_length_batches_respect_budget():
    lengths = [5, 100, 7, 64, 64, 3]
    batches = list(length_batches(lengths, batch_size=3, max_batch_tokens=130))
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        assert len(b) <= 3 and (len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 130)


def test_parse_lengths():
    assert parse_lengths("1k,4k,512") == [1024, 4096, 512]
    with pytest.raises(ValueError):
        parse_lengths("abc")
