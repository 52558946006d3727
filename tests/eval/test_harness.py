"""lm-evaluation-harness adapter: each request type against a direct computation, and one end-to-end task."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import tiny_model

lm_eval = pytest.importorskip("lm_eval")
from lm_eval.api.instance import Instance  # noqa: E402

from statex_dist.eval.harness import StateXLM, metrics_from_results, register, run_lm_eval  # noqa: E402


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_model("gla", vocab_size=len(tokenizer), kernel_backend="torch")


def _req(kind, args, i=0):
    return Instance(request_type=kind, doc={}, arguments=args, idx=i)


@torch.no_grad()
def _direct_logprob(model, ids: list[int], n: int) -> float:
    logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    logp = F.log_softmax(logits[:-1], -1)
    tgt = torch.tensor(ids[1:])
    return float(logp[torch.arange(len(ids) - 1), tgt][-n:].sum())


def test_loglikelihood_matches_direct_forward(model, tokenizer):
    lm = StateXLM(model=model, tokenizer=tokenizer, batch_size=3)
    pairs = [(" The baker carried", " a jar of honey"), (" bako 12 kivi 7 ?", " bako"), ("", " The mayor")]
    got = lm.loglikelihood([_req("loglikelihood", p, i) for i, p in enumerate(pairs)])
    for (ctx, cont), (lp, greedy) in zip(pairs, got):
        c = tokenizer(ctx, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
        x = tokenizer(cont, add_special_tokens=False)["input_ids"]
        assert lp == pytest.approx(_direct_logprob(model, c + x, len(x)), abs=1e-4)
        assert isinstance(greedy, bool)


def test_loglikelihood_rolling_and_generate(model, tokenizer):
    lm = StateXLM(model=model, tokenizer=tokenizer)
    text = " The gardener planted three lanterns after the market closed."
    (lp,) = lm.loglikelihood_rolling([_req("loglikelihood_rolling", (text,))])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert lp == pytest.approx(_direct_logprob(model, [tokenizer.eos_token_id] + ids, len(ids)), abs=1e-4)
    (gen,) = lm.generate_until([_req("generate_until", (" The baker", {"until": ["."], "max_gen_toks": 6}))])
    expect = model.greedy_generate(torch.tensor([tokenizer(" The baker", add_special_tokens=False)["input_ids"]]), 6,
                                   eos_token_id=tokenizer.eos_token_id)[0].tolist()
    text = tokenizer.decode([t for t in expect if t != tokenizer.eos_token_id])
    assert gen == text.split(".")[0]


def test_simple_evaluate_on_a_local_task(model, tokenizer, tmp_path):
    """A two-choice task from a local jsonl file through lm_eval's own evaluator (no network)."""
    data = tmp_path / "toy.jsonl"
    rows = [{"q": f" The baker carried a jar of honey{i}", "choices": [" yes", " no"], "label": i % 2} for i in range(6)]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "toy.yaml").write_text(
        "task: statex_toy\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{q}}'\n"
        "doc_to_choice: '{{choices}}'\ndoc_to_target: label\nmetric_list:\n  - metric: acc\n"
    )
    out = run_lm_eval(model, tokenizer, ["statex_toy"], include_path=str(tmp_path), include_defaults=False)
    acc = out["metrics"]["statex_toy"]["acc"]
    assert 0.0 <= acc <= 1.0


def test_register_and_metrics():
    register()
    from lm_eval.api.registry import get_model

    assert get_model("statex") is StateXLM
    res = {"results": {"t": {"acc,none": 0.5, "acc_stderr,none": 0.1, "alias": "t"}}}
    assert metrics_from_results(res) == {"t": {"acc": 0.5}}


@pytest.mark.slow  # indexes all of lm_eval's built-in task YAMLs (about a minute and a half)
def test_statex_eval_forwards_to_lm_eval(model, tokenizer, tokenizer_dir, tmp_path):
    """`statex eval --tasks mqar,lm_eval:TASK` runs both and reports the harness metrics."""
    from statex_dist.cli import main
    from statex_dist.models.loading import copy_tokenizer_files

    ckpt = tmp_path / "ckpt"
    model.save_pretrained(ckpt)
    copy_tokenizer_files(tokenizer_dir, ckpt)
    data = tmp_path / "toy.jsonl"
    data.write_text("\n".join(json.dumps({"q": f" The mayor found a box of nails{i}", "choices": [" a", " b"],
                                          "label": i % 2}) for i in range(4)))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "toy.yaml").write_text(
        f"task: statex_toy2\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{q}}'\ndoc_to_choice: '{{choices}}'\n"
        "doc_to_target: label\nmetric_list:\n  - metric: acc\n")
    out = tmp_path / "r.json"
    assert main(["eval", "--model", str(ckpt), "--tasks", "mqar,lm_eval:statex_toy2", "--mqar-pairs", "2",
                 "--samples", "2", "--mqar-keys", "64", "--mqar-values", "16", "--lm-eval-include",
                 str(tmp_path / "tasks"), "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    res = json.loads(out.read_text())
    assert "acc" in res["tasks"]["lm_eval"]["metrics"]["statex_toy2"]
    assert "mqar" in res["tasks"]
