"""Every source kind feeds the loader; every kind of bad input fails (or is skipped) with the file named."""

from __future__ import annotations

import json
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import make_docs, write_jsonl
from statex_dist.config.io import ConfigError, from_dict
from statex_dist.data import DataConfig, SourceConfig, build_dataloader
from statex_dist.data.readers import BadSampleError
from test_loader import doc_ids, drain


def pad_cfg(src: SourceConfig, tokenizer=None, **kw):
    kw = {"seq_len": 512, "micro_batch_size": 2, "packing": "pad", "reset_state_at_docs": True, "epochs": 1,
          "shuffle_buffer": 4, "num_workers": 0, **kw}
    return DataConfig(sources=[src], tokenizer=tokenizer, **kw)


@pytest.mark.parametrize("kind", ["hf-jsonl", "hf-parquet-tokenized", "jsonl", "text"])
def test_on_the_fly_and_hf_sources_exactly_once(tmp_path, corpus, tokenizer_dir, kind):
    from statex_dist.data.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    docs = corpus["docs"]
    if kind == "hf-jsonl":
        src = SourceConfig(kind="hf", path=corpus["dir"] + "/*.jsonl", tokenized=False)
    elif kind == "hf-parquet-tokenized":
        ids = [tok(d, add_special_tokens=False)["input_ids"] + [0] for d in docs]
        for i in range(4):  # four files so HF can give each consumer whole shards
            pq.write_table(pa.table({"input_ids": ids[i::4]}), tmp_path / f"p{i}.parquet")
        src = SourceConfig(kind="hf", path=str(tmp_path / "*.parquet"))
    elif kind == "jsonl":
        src = SourceConfig(kind="jsonl", path=",".join(corpus["files"]))
    else:
        (tmp_path / "t.txt").write_text("\n".join(docs) + "\n")
        src = SourceConfig(kind="text", path=str(tmp_path / "t.txt"))
    cfg = pad_cfg(src, tokenizer_dir, num_workers=2, cache_dir=str(tmp_path / "cache"))
    assert sorted(doc_ids(drain(cfg, world=2), tok)) == list(range(len(docs)))


def test_remote_mds_downloads_into_cache(prepared, tmp_path, tokenizer_dir):
    from statex_dist.data.tokenizer import load_tokenizer

    cache = tmp_path / "cache"
    cfg = pad_cfg(SourceConfig(kind="mds", path=str(cache), remote=prepared["mds"]))
    assert sorted(doc_ids(drain(cfg), load_tokenizer(tokenizer_dir))) == list(range(120))
    assert os.path.exists(cache / "index.json") and os.path.exists(cache / "part-00000" / "shard.00000.mds")


def test_missing_and_truncated_mds_shard_named(prepared, tmp_path):
    bad = tmp_path / "mds"
    shutil.copytree(prepared["mds"], bad)
    shard = bad / "part-00003" / "shard.00000.mds"
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) - 10)
    with pytest.raises(ValueError, match=r"part-00003/shard.00000.mds is truncated"):
        drain(pad_cfg(SourceConfig(kind="mds", path=str(bad))))
    os.remove(shard)
    with pytest.raises(FileNotFoundError, match=r"part-00003/shard.00000.mds is missing"):
        drain(pad_cfg(SourceConfig(kind="mds", path=str(bad))))


def test_corrupt_wds_shard_stop_or_skip(prepared, tmp_path, tokenizer_dir):
    from statex_dist.data.tokenizer import load_tokenizer

    bad = tmp_path / "wds"
    shutil.copytree(prepared["wds"], bad)
    tar = bad / "part-00002.tar"
    whole = tar.read_bytes()
    tar.write_bytes(whole[:2048])  # cut after two members: tarfile itself would stop silently
    with pytest.raises(BadSampleError, match="part-00002.tar.*read 2 documents, the index says 15"):
        drain(pad_cfg(SourceConfig(kind="wds", path=str(bad)), shuffle_buffer=0))
    tar.write_bytes(whole[:1500])  # cut mid-block
    got = doc_ids(drain(pad_cfg(SourceConfig(kind="wds", path=str(bad)), on_bad_sample="skip")),
                  load_tokenizer(tokenizer_dir))
    lost = set(range(30, 45)) - set(got)
    assert sorted(set(got) | lost) == list(range(120)) and 0 < len(lost) <= 15
    os.remove(tar)
    with pytest.raises(FileNotFoundError, match="part-00002.tar is missing"):
        drain(pad_cfg(SourceConfig(kind="wds", path=str(bad))))


def test_wrong_text_field_named(tmp_path, corpus, tokenizer_dir):
    from statex_dist.data.prepare import prepare_corpus

    with pytest.raises(KeyError, match=r"a.jsonl, record 0: no field 'content'.*'id', 'text'"):
        prepare_corpus(corpus["files"], tokenizer_dir, str(tmp_path / "o"), text_field="content", progress=False)
    cfg = pad_cfg(SourceConfig(kind="jsonl", path=corpus["files"][0], text_field="body"), tokenizer_dir)
    with pytest.raises(KeyError, match="no field 'body'"):
        drain(cfg)


def test_corrupt_json_line_and_empty_document(tmp_path, tokenizer_dir, caplog):
    from statex_dist.data.prepare import prepare_corpus

    path = write_jsonl(tmp_path / "x.jsonl", make_docs(5) + ["   "])
    with open(path, "a") as f:
        f.write('{"text": "unterminated\n')
    with pytest.raises(BadSampleError, match=r"x.jsonl, record 6: invalid JSON"):
        prepare_corpus(path, tokenizer_dir, str(tmp_path / "a"), progress=False)
    idx = prepare_corpus(path, tokenizer_dir, str(tmp_path / "b"), on_bad_sample="skip", progress=False)
    assert idx["documents"] == 5 and idx["empty_docs"] == 1 and idx["bad_samples"] == 1
    assert "x.jsonl:5" in caplog.text  # the empty document is reported by file and record


def test_vocab_that_does_not_fit_the_model(prepared, tokenizer_dir):
    with pytest.raises(ValueError, match=r"statex_index.json.*300 ids but the model's vocab_size is 100"):
        build_dataloader(pad_cfg(SourceConfig(kind="mds", path=prepared["mds"])), dp_rank=0, dp_world=1, vocab_size=100)
    cfg = pad_cfg(SourceConfig(kind="jsonl", path=prepared["mds"] + "/../x.jsonl"), tokenizer_dir)
    with pytest.raises(ValueError, match=r"tokenizer .*300 ids"):
        build_dataloader(cfg, dp_rank=0, dp_world=1, vocab_size=256)


def test_config_from_yaml_dict_and_fix_messages():
    cfg = from_dict(DataConfig, {"sources": [{"kind": "mds", "path": "/data/slimpajama", "weight": 2}],
                                 "seq_len": 65536, "reset_state_at_docs": True, "num_workers": 2})
    assert cfg.sources[0].weight == 2.0 and cfg.consumers_per_rank == 2
    with pytest.raises(ConfigError, match="data.tokenizer"):
        from_dict(DataConfig, {"sources": [{"kind": "jsonl", "path": "x.jsonl"}]})
    with pytest.raises(ConfigError, match="weight must be > 0"):
        from_dict(DataConfig, {"sources": [{"kind": "mds", "path": "x", "weight": 0}]})
    with pytest.raises(ConfigError, match="on_bad_sample"):
        from_dict(DataConfig, {"on_bad_sample": "ignore"})
    with pytest.raises(ValueError, match="data.sources is empty"):
        build_dataloader(DataConfig(), dp_rank=0, dp_world=1)
    assert json.dumps(DataConfig().__dict__, default=str)
