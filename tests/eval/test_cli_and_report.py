"""``statex eval`` end to end on a saved tiny checkpoint, and the Markdown/PNG outputs."""

from __future__ import annotations

import json

import pytest

from statex_dist.cli import main
from statex_dist.eval.report import groups_from_results, markdown_tables, write_outputs
from statex_dist.models.loading import copy_tokenizer_files
from tests.conftest import tiny_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tokenizer_dir, tokenizer):
    out = tmp_path_factory.mktemp("ckpt") / "gla-tiny"
    tiny_model("gla", vocab_size=len(tokenizer), kernel_backend="torch").save_pretrained(out)
    copy_tokenizer_files(tokenizer_dir, out)
    return out


def test_statex_eval_cli_writes_json_markdown_pngs(checkpoint, tmp_path, capsys):
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text("\n".join(json.dumps({"text": " The baker carried a jar of honey." * 20}) for _ in range(4)))
    out = tmp_path / "res" / "results.json"
    rc = main(["eval", "--model", str(checkpoint), str(checkpoint), "--labels", "base,statex",
               "--tasks", "passkey,niah,mqar,ppl", "--lengths", "128,256", "--depths", "0,1", "--samples", "2",
               "--mqar-pairs", "2,8", "--mqar-keys", "64", "--mqar-values", "16", "--ppl-data", str(heldout),
               "--ppl-windows", "2", "--out", str(out), "--no-progress", "--device", "cpu"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| base |" in printed and "MQAR" in printed
    results = json.loads(out.read_text())
    assert [r["label"] for r in results] == ["base", "statex"]
    r = results[0]
    assert {c["length"] for c in r["tasks"]["passkey"]["cells"]} == {128, 256}
    assert [c["pairs"] for c in r["tasks"]["mqar"]["cells"]] == [2, 8]
    assert r["tasks"]["ppl"]["seq_len"] == 256 and r["tasks"]["ppl"]["windows"] >= 1
    assert r["model"]["state_elements"] > 0
    assert "| statex |" in (out.parent / "results.md").read_text()
    for name in ("results_haystack.png", "results_mqar.png", "results_ppl.png"):
        assert (out.parent / name).stat().st_size > 1000
    # re-plot from the JSON alone
    rc = main(["eval", "--results", str(out), "--out", str(tmp_path / "again")])
    assert rc == 0 and (tmp_path / "again" / "results_mqar.png").is_file()


def test_tables_show_spread_over_seeds(tmp_path):
    def fake(label, acc):
        return {"label": label, "tasks": {"mqar": {"cells": [{"pairs": 4, "accuracy": acc}], "accuracy": acc,
                                                   "chance": 0.1}}}
    results = [fake("LPT", 0.2), fake("LPT", 0.4), fake("StateX", 0.5), fake("StateX", 0.7)]
    md = markdown_tables(groups_from_results(results))
    assert "| LPT | 30.0 ± 14.1 |" in md and "mean ± std over 2 runs" in md
    written = write_outputs(results, tmp_path)
    assert written["mqar"].is_file() and "haystack" not in written
