"""A learnable synthetic corpus (MDS, pre-tokenized) for CPU tests, smoke runs and the demo.

Each document is a run of ``t_{i+1} = t_i + stride (mod span)`` with a random start and one of a few strides,
ended by EOS: a tiny model learns it within a few dozen steps, so "the loss goes down" is a real signal.
``python -m statex_dist.train.synthetic OUT_DIR [--docs N --vocab V --min-len A --max-len B]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

EOS_ID = 2
FIRST_ID = 3  # ids 0-2 are pad/bos/eos in the tiny model configs


def synthetic_docs(num_docs: int, vocab: int, min_len: int, max_len: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    span = vocab - FIRST_ID
    docs = []
    for _ in range(num_docs):
        n = int(rng.integers(min_len, max_len + 1)) - 1  # + EOS
        start, stride = int(rng.integers(span)), int(rng.choice([1, 2, 3, 5, 7]))
        body = (start + stride * np.arange(n)) % span + FIRST_ID
        docs.append(np.concatenate([body, [EOS_ID]]).astype(np.uint32))
    return docs


def write_synthetic_corpus(out: str | Path, num_docs: int = 512, vocab: int = 512, min_len: int = 40,
                           max_len: int = 64, seed: int = 0, parts: int = 4) -> Path:
    """An MDS directory readable by ``data.sources: [{kind: mds, path: OUT}]`` (set ``data.eos_id: 2``)."""
    from statex_dist.data.mds import merge_parts, write_part

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    docs = synthetic_docs(num_docs, vocab, min_len, max_len, seed)
    names = []
    for p, chunk in enumerate(np.array_split(np.arange(num_docs), parts)):
        names.append(f"part-{p:05d}")
        write_part(str(out / names[-1]), [(int(i), docs[i]) for i in chunk], "uint32")
    merge_parts(str(out), names)
    (out / "synthetic.json").write_text(json.dumps({"num_docs": num_docs, "vocab": vocab, "min_len": min_len,
                                                    "max_len": max_len, "seed": seed, "eos_id": EOS_ID}))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--docs", type=int, default=512)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--min-len", type=int, default=40)
    p.add_argument("--max-len", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    print(write_synthetic_corpus(a.out, a.docs, a.vocab, a.min_len, a.max_len, a.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
