"""Packed tokens/s per rank from local MDS and WebDataset shards (0, 1, 2 workers; 4K and 64K rows).

Run: ``python benchmarks/data.py [--tokens 40e6] [--out benchmarks/results/data_cpu.md]``. The corpus is
synthetic pre-tokenized documents (lengths drawn like web text, mean ~1,000 tokens) written with the same
writers as ``statex data prepare``; the measured loop is the trainer's: iterate the loader, touch each batch.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from statex_dist.data import DataConfig, SourceConfig, build_dataloader  # noqa: E402
from statex_dist.data.mds import merge_parts, write_part  # noqa: E402
from statex_dist.data.prepare import write_wds_part  # noqa: E402


def write_corpus(root: str, total_tokens: int, docs_per_shard: int = 5000, vocab: int = 32000) -> int:
    rng = np.random.default_rng(0)
    lens = np.clip(rng.lognormal(6.5, 1.0, size=int(total_tokens / 900) + 1), 8, 60000).astype(np.int64)
    docs = [(i, rng.integers(1, vocab, n, dtype=np.uint16)) for i, n in enumerate(lens)]
    names = []
    for p, s in enumerate(range(0, len(docs), docs_per_shard)):
        names.append(f"part-{p:05d}")
        write_part(os.path.join(root, "mds", names[-1]), docs[s:s + docs_per_shard], "uint16")
        os.makedirs(os.path.join(root, "wds"), exist_ok=True)
        write_wds_part(os.path.join(root, "wds", names[-1] + ".tar"), docs[s:s + docs_per_shard])
    merge_parts(os.path.join(root, "mds"), names)
    return int(lens.sum())


def measure(kind: str, path: str, workers: int, seq_len: int, budget_tokens: int, reset: bool) -> float:
    cfg = DataConfig(sources=[SourceConfig(kind=kind, path=path)], seq_len=seq_len, micro_batch_size=1,
                     num_workers=workers, eos_id=0, reset_state_at_docs=reset, shuffle_buffer=10000)
    it = iter(build_dataloader(cfg, dp_rank=0, dp_world=1, vocab_size=32000))
    next(it)  # start-up (fork, open shards) is not steady-state throughput
    t0, n = time.perf_counter(), 0
    while n < budget_tokens:
        b = next(it)
        n += int(b["input_ids"].numel())
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=float, default=40e6, help="corpus size")
    ap.add_argument("--budget", type=float, default=8e6, help="tokens timed per cell")
    ap.add_argument("--out", default="benchmarks/results/data_cpu.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        total = write_corpus(root, int(args.tokens))
        rows = []
        for kind in ("mds", "wds"):
            for seq_len in (4096, 65536):
                for workers in (0, 1, 2):
                    tps = measure(kind, os.path.join(root, kind), workers, seq_len, int(args.budget), True)
                    rows.append((kind, seq_len, workers, tps))
                    print(f"{kind:4s} T={seq_len:6d} workers={workers}: {tps:13,.0f} tokens/s", flush=True)
    head = (f"Measured {datetime.date.today()} on {platform.node() or 'host'}: {os.cpu_count()} CPU cores, "
            f"{platform.processor() or platform.machine()}, Python {platform.python_version()}.\n"
            f"Corpus: {total:,} synthetic pre-tokenized tokens (uint16, lognormal document lengths, mean ~1K), "
            f"local disk, shuffle_buffer 10000, cu_seqlens on, micro_batch_size 1, dp_world 1, "
            f"{args.budget:,.0f} tokens timed per cell after one warm-up batch.\n")
    table = ["| source | row length | workers | packed tokens/s per rank |", "|---|---|---|---|"]
    table += [f"| {k} | {t:,} | {w} | {tps:,.0f} |" for k, t, w, tps in rows]
    text = "# Data loader throughput (CPU)\n\n" + head + "\n" + "\n".join(table) + "\n"
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
