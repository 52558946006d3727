"""Loader contract: batch layout, exactly-once over ranks x workers, packing modes, exact resume, resharding."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
import torch

from conftest import write_unique_mds
from statex_dist.data import DataConfig, SourceConfig, build_dataloader


def cfg_for(kind, path, **kw):
    kw.setdefault("shuffle_buffer", 8)
    kw.setdefault("num_workers", 0)
    return DataConfig(sources=[SourceConfig(kind=kind, path=str(path))], **kw)


def drain(cfg, world=1, vocab_size=None):
    return [b for r in range(world) for b in build_dataloader(cfg, dp_rank=r, dp_world=world, vocab_size=vocab_size)]


def doc_ids(batches, tok):
    """Decode every cu_seqlens segment (one whole document in pad mode) and read its "doc N" tag."""
    ids = []
    for b in batches:
        flat, cu = b["input_ids"].reshape(-1), b["cu_seqlens"].tolist()
        for s, e in zip(cu[:-1], cu[1:]):
            m = re.match(r"doc (\d+) ", tok.decode(flat[s:e].tolist()))
            if m:
                ids.append(int(m.group(1)))
    return ids


def real_tokens(batches):
    """Non-EOS tokens that were inputs (every stream token is an input exactly once in concat mode)."""
    out = Counter()
    for b in batches:
        t = b["input_ids"].reshape(-1)
        out.update(t[t != 0].tolist())
    return out


def test_batch_contract(prepared):
    cfg = cfg_for("mds", prepared["mds"], seq_len=32, micro_batch_size=3, reset_state_at_docs=True)
    b = next(iter(build_dataloader(cfg, dp_rank=0, dp_world=1, vocab_size=300)))
    assert b["input_ids"].shape == b["labels"].shape == (3, 32) and b["input_ids"].dtype == torch.long
    # Shifted labels: the target of position t is the input at t + 1 (and the look-ahead token at the end).
    assert torch.equal(b["labels"][:, :-1], b["input_ids"][:, 1:])
    cu = b["cu_seqlens"]
    assert cu.dtype == torch.int32 and cu[0] == 0 and cu[-1] == 96 and bool((cu[1:] > cu[:-1]).all())
    assert {0, 32, 64} <= set(cu.tolist())
    flat = b["input_ids"].reshape(-1)
    for s in cu[1:-1].tolist():  # every boundary that is not a row start follows an EOS
        assert s % 32 == 0 or flat[s - 1] == 0
    cfg = cfg_for("mds", prepared["mds"], seq_len=32, reset_state_at_docs=False)
    assert "cu_seqlens" not in next(iter(build_dataloader(cfg, dp_rank=0, dp_world=1)))


@pytest.mark.parametrize("kind", ["mds", "wds"])
def test_exactly_once_2_ranks_x_2_workers(prepared, corpus, tokenizer_dir, kind):
    from statex_dist.data.tokenizer import load_tokenizer

    cfg = cfg_for(kind, prepared[kind], seq_len=512, micro_batch_size=2, packing="pad",
                  reset_state_at_docs=True, num_workers=2, epochs=1)
    ids = doc_ids(drain(cfg, world=2), load_tokenizer(tokenizer_dir))
    assert sorted(ids) == list(range(len(corpus["docs"])))


def test_exactly_once_tokens_concat(tmp_path):
    docs = write_unique_mds(tmp_path, 300, parts=5)
    cfg = cfg_for("mds", tmp_path, seq_len=64, micro_batch_size=2, num_workers=2, epochs=1, eos_id=0)
    got = real_tokens(drain(cfg, world=2))
    want = Counter(int(t) for d in docs for t in d if t)
    assert got == want


def test_pad_mode_splits_overlong_and_ignores_padding(tmp_path):
    docs = write_unique_mds(tmp_path, 20, parts=1, min_len=1, max_len=50)
    cfg = cfg_for("mds", tmp_path, seq_len=16, micro_batch_size=1, packing="pad", reset_state_at_docs=True,
                  shuffle_buffer=0, epochs=1, eos_id=0)
    batches = drain(cfg)
    assert real_tokens(batches) == Counter(int(t) for d in docs for t in d if t)
    pads = 0
    for b in batches:
        x, y = b["input_ids"][0], b["labels"][0]
        valid = y != -100
        # Every valid label is the next input; padding (and the token before it) is never a target.
        assert all(int(y[t]) == int(x[t + 1]) for t in range(15) if valid[t])
        filled = int(b["cu_seqlens"][-2]) if len(b["cu_seqlens"]) > 2 and not valid[-1] else 16
        if filled < 16:
            assert (x[filled:] == 0).all() and not valid[filled - 1:].any()
            pads += 16 - filled
    assert pads > 0
    long_doc = max(docs, key=len)
    assert len(long_doc) > 16  # the corpus has a document longer than a row, and it was split, not dropped


def test_concat_crosses_documents_without_reset(tmp_path):
    docs = write_unique_mds(tmp_path, 30, parts=1, min_len=3, max_len=9)
    cfg = cfg_for("mds", tmp_path, seq_len=32, shuffle_buffer=0, epochs=1, eos_id=0)
    b = next(iter(build_dataloader(cfg, dp_rank=0, dp_world=1)))
    stream = np.concatenate(docs)
    assert b["input_ids"][0].tolist() == stream[:32].tolist()
    assert b["labels"][0].tolist() == stream[1:33].tolist()


@pytest.mark.parametrize("kind", ["mds", "wds", "jsonl"])
def test_resume_same_next_batch_with_workers(prepared, corpus, tokenizer_dir, kind):
    path = corpus["dir"] if kind == "jsonl" else prepared[kind]
    cfg = cfg_for(kind, path, seq_len=48, micro_batch_size=2, num_workers=2, reset_state_at_docs=True,
                  tokenizer=tokenizer_dir)
    dl = build_dataloader(cfg, dp_rank=1, dp_world=2)
    it = iter(dl)
    for _ in range(5):
        next(it)
    sd = dl.state_dict()
    expected = [next(it) for _ in range(3)]
    fresh = build_dataloader(cfg, dp_rank=1, dp_world=2)
    fresh.load_state_dict(sd)
    it2 = iter(fresh)
    for e in expected:
        got = next(it2)
        for k in e:
            assert torch.equal(got[k], e[k]), k


def test_resume_across_epochs(tmp_path):
    write_unique_mds(tmp_path, 40, parts=2)
    cfg = cfg_for("mds", tmp_path, seq_len=40, micro_batch_size=1, num_workers=1, eos_id=0)
    dl = build_dataloader(cfg, dp_rank=0, dp_world=1)
    it = iter(dl)
    for _ in range(30):  # several epochs of ~11 rows
        next(it)
    sd = dl.state_dict()
    assert sd["workers"][0]["packer"]["doc"]["epoch"] >= 1
    want = next(it)
    dl2 = build_dataloader(cfg, dp_rank=0, dp_world=1)
    dl2.load_state_dict(sd)
    assert torch.equal(next(iter(dl2))["input_ids"], want["input_ids"])


@pytest.mark.parametrize("new_world,new_workers", [(1, 1), (3, 1), (1, 0)])
def test_reshard_mds_exactly_once(tmp_path, new_world, new_workers):
    docs = write_unique_mds(tmp_path, 200, parts=4)
    base = dict(seq_len=32, micro_batch_size=2, epochs=1, eos_id=0)
    old_cfg = cfg_for("mds", tmp_path, num_workers=2, **base)
    seen, states = Counter(), []
    for r in range(2):
        dl = build_dataloader(old_cfg, dp_rank=r, dp_world=2)
        it = iter(dl)
        seen += real_tokens([next(it) for _ in range(3 + r)])
        states.append(dl.state_dict())
    new_cfg = cfg_for("mds", tmp_path, num_workers=new_workers, **base)
    with pytest.raises(ValueError, match="pass the states of all 2 old ranks"):
        build_dataloader(new_cfg, dp_rank=0, dp_world=new_world).load_state_dict(states[0])
    for r in range(new_world):
        dl = build_dataloader(new_cfg, dp_rank=r, dp_world=new_world)
        dl.load_state_dict({"ranks": states})
        seen += real_tokens(list(dl))
    assert seen == Counter(int(t) for d in docs for t in d if t)


def test_reshard_refused_for_streams(prepared):
    cfg = cfg_for("wds", prepared["wds"], seq_len=32, num_workers=1)
    dl = build_dataloader(cfg, dp_rank=0, dp_world=2)
    next(iter(dl))
    states = [dl.state_dict(), build_dataloader(cfg, dp_rank=1, dp_world=2).state_dict()]
    with pytest.raises(ValueError, match="only a single MDS source"):
        build_dataloader(cfg, dp_rank=0, dp_world=1).load_state_dict({"ranks": states})


def test_mixing_weights(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_unique_mds(a, 400, parts=2, min_len=4, max_len=4)
    write_unique_mds(b, 400, parts=2, min_len=4, max_len=4, first_token=100_000)
    cfg = DataConfig(sources=[SourceConfig(kind="mds", path=str(a), weight=3.0),
                              SourceConfig(kind="mds", path=str(b), weight=1.0)],
                     seq_len=50, micro_batch_size=2, num_workers=0, eos_id=0, seed=3)
    it = iter(build_dataloader(cfg, dp_rank=0, dp_world=1))
    x = torch.cat([next(it)["input_ids"].reshape(-1) for _ in range(40)])  # 4000 tokens = 800 documents
    from_a, from_b = int(((x > 0) & (x < 100_000)).sum()), int((x >= 100_000).sum())
    assert abs(from_a / (from_a + from_b) - 0.75) < 0.05
