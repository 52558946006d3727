"""Shared fixtures: a generated corpus, a tokenizer trained on it, prepared MDS/WDS directories."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

WORDS = ("state recurrent gate memory token linear attention expand layer model decay head value key "
         "query chunk train rank worker shard stream pack resume epoch").split()


def make_docs(n: int, seed: int = 0, min_words: int = 3, max_words: int = 60) -> list[str]:
    """Documents tagged with their index ("doc 17 ...") so tests can identify them after decoding."""
    rng = random.Random(seed)
    return [f"doc {i} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words)))
            for i in range(n)]


def write_jsonl(path, docs: list[str], field: str = "text") -> str:
    with open(path, "w") as f:
        for i, d in enumerate(docs):
            f.write(json.dumps({field: d, "id": i}) + "\n")
    return str(path)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    from statex_dist.data.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tok")
    return str(train_tokenizer(make_docs(300, seed=1) + [" ".join(WORDS)] * 5, vocab_size=300, out_dir=out))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Two jsonl files, 120 documents in all."""
    d = tmp_path_factory.mktemp("corpus")
    docs = make_docs(120)
    write_jsonl(d / "a.jsonl", docs[:70])
    write_jsonl(d / "b.jsonl", docs[70:])
    return {"dir": str(d), "docs": docs, "files": [str(d / "a.jsonl"), str(d / "b.jsonl")]}


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, corpus, tokenizer_dir):
    from statex_dist.data.prepare import prepare_corpus

    root = tmp_path_factory.mktemp("prepared")
    out = {}
    for fmt in ("mds", "wds"):
        out[fmt] = str(root / fmt)
        prepare_corpus(corpus["dir"], tokenizer_dir, out[fmt], fmt=fmt, shard_size=15, progress=False)
    return out


def write_unique_mds(root, num_docs: int, parts: int = 4, seed: int = 0, min_len: int = 1, max_len: int = 40,
                     first_token: int = 1):
    """MDS corpus whose tokens are unique across the corpus (EOS = 0 ends each doc): token-level accounting."""
    from statex_dist.data.mds import merge_parts, write_part

    rng = np.random.default_rng(seed)
    lens = rng.integers(min_len, max_len + 1, num_docs)
    docs, nxt = [], first_token
    for n in lens:
        docs.append(np.concatenate([np.arange(nxt, nxt + n), [0]]).astype(np.uint32))
        nxt += n
    names = []
    for p, chunk in enumerate(np.array_split(np.arange(num_docs), parts)):
        names.append(f"part-{p:05d}")
        write_part(str(root / names[-1]), [(int(i), docs[i]) for i in chunk], "uint32")
    merge_parts(str(root), names)
    return docs
