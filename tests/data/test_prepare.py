"""`statex data prepare|inspect`, input formats, idempotent re-runs, tokenizer round trip."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import make_docs, write_jsonl
from statex_dist.data.prepare import inspect_corpus, prepare_corpus
from statex_dist.data.tokenizer import load_tokenizer


def test_tokenizer_is_a_real_hf_tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert tok.eos_token == "</s>" and tok.eos_token_id == 0
    ids = tok("doc 5 state gate", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == "doc 5 state gate"


def test_load_tokenizer_refuses_non_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_tokenizer("fla-hub/gla-1.3B-100B")


@pytest.mark.parametrize("fmt", ["mds", "wds"])
def test_index_counts_and_inspect(prepared, corpus, tokenizer_dir, fmt):
    with open(os.path.join(prepared[fmt], "statex_index.json")) as f:
        index = json.load(f)
    tok = load_tokenizer(tokenizer_dir)
    want = sum(len(tok(d, add_special_tokens=False)["input_ids"]) + 1 for d in corpus["docs"])
    assert index["documents"] == 120 and index["tokens"] == want and len(index["parts"]) == 8
    assert sum(p["tokens"] for p in index["parts"]) == want
    text = inspect_corpus(prepared[fmt])
    assert "120 documents" in text and f"{want:,} tokens" in text and "doc 0 " in text


def test_rerun_is_idempotent_and_resumes(tmp_path, corpus, tokenizer_dir):
    out = str(tmp_path / "mds")
    first = prepare_corpus(corpus["files"], tokenizer_dir, out, shard_size=40, progress=False)
    again = prepare_corpus(corpus["files"], tokenizer_dir, out, shard_size=40, progress=False)
    assert again["parts_reused"] == 3 and again["tokens"] == first["tokens"]
    os.remove(os.path.join(out, "part-00001.done.json"))  # as if the run died while writing part 1
    redo = prepare_corpus(corpus["files"], tokenizer_dir, out, shard_size=40, progress=False)
    assert redo["parts_reused"] == 2 and redo["tokens"] == first["tokens"]
    with pytest.raises(ValueError, match="shard_size"):
        prepare_corpus(corpus["files"], tokenizer_dir, out, shard_size=7, progress=False)


def test_input_formats_and_cli(tmp_path, tokenizer_dir, capsys):
    import zstandard

    from statex_dist.data.cli import main

    docs = make_docs(30, seed=4)
    raw = "".join(json.dumps({"content": d}) + "\n" for d in docs[:10])
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(raw.encode()))
    pq.write_table(pa.table({"content": docs[10:20]}), tmp_path / "b.parquet")
    (tmp_path / "c.txt").write_text("\n".join(docs[20:]) + "\n")
    out = str(tmp_path / "out")
    rc = main(["prepare", "--input", f"{tmp_path}/*.zst,{tmp_path}/b.parquet", "--tokenizer", tokenizer_dir,
               "--out", out, "--format", "wds", "--text-field", "content", "--shard-size", "4", "--quiet"])
    assert rc == 0 and "20 documents" in capsys.readouterr().out
    idx = prepare_corpus(str(tmp_path / "c.txt"), tokenizer_dir, str(tmp_path / "t"), progress=False)
    assert idx["documents"] == 10
    main(["inspect", out])
    assert "doc 0 " in capsys.readouterr().out


def test_parallel_workers_match_serial(tmp_path, corpus, tokenizer_dir):
    serial = prepare_corpus(corpus["dir"], tokenizer_dir, str(tmp_path / "s"), shard_size=30, progress=False)
    par = prepare_corpus(corpus["dir"], tokenizer_dir, str(tmp_path / "p"), shard_size=30, workers=2, progress=False)
    assert [p["tokens"] for p in par["parts"]] == [p["tokens"] for p in serial["parts"]]


def test_write_jsonl_helper_roundtrip(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", ["a", "b"])
    assert [json.loads(line)["text"] for line in open(path)] == ["a", "b"]
