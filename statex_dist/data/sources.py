"""Document streams for one consumer (rank x worker): MDS by index, WebDataset/HF/raw files by replay.

Every stream returns token arrays (``np.ndarray``) from ``next()`` (None when its epochs are done) and has a
small plain ``state()`` describing the next document, so the packer can snapshot it before each pull.
MDS streams seek in O(1); the others re-read their partition from the epoch start and skip, which is exact
because shuffling is seeded, and costs time proportional to the position inside the epoch.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_right
from typing import Callable, Iterator

import numpy as np

from statex_dist.data.readers import BadSampleError

log = logging.getLogger(__name__)


class MDSStream:
    """Consumer ``c`` of ``C`` over sequence S = prefix ++ [tail, N): takes S[c], S[c + C], ...

    ``prefix`` holds (position, token offset) pairs left over by a resharding (see ``loader.reshard_mds``);
    positions index a seeded per-epoch order (shards permuted, samples permuted within blocks of shards).
    """

    def __init__(self, shards, seed: int, shuffle_buffer: int, epochs: int | None, c: int, C: int):
        self.shards, self.seed, self.shuffle, self.epochs = shards, seed, shuffle_buffer, epochs
        self.st = {"epoch": 0, "k": 0, "prefix": [], "tail": 0, "c": c, "C": C}
        self._order_epoch = -1

    def state(self) -> dict:
        return dict(self.st)

    def restore(self, st: dict) -> None:
        self.st = dict(st)

    def length(self, st: dict | None = None) -> int:
        st = st or self.st
        return len(st["prefix"]) + self.shards.num_samples - st["tail"]

    def item(self, i: int, st: dict | None = None) -> tuple[int, int]:
        st = st or self.st
        n = len(st["prefix"])
        return tuple(st["prefix"][i]) if i < n else (st["tail"] + i - n, 0)

    def _set_order(self, epoch: int) -> None:
        sizes = self.shards.sizes
        rng = np.random.default_rng([self.seed, epoch])
        perm = rng.permutation(len(sizes)) if self.shuffle else np.arange(len(sizes))
        cum = np.concatenate([[0], np.cumsum(sizes[perm])])
        # Blocks of whole shards holding >= shuffle_buffer samples are permuted inside.
        bounds = [0]
        for end in cum[1:]:
            if self.shuffle and end - bounds[-1] >= self.shuffle:
                bounds.append(int(end))
        if bounds[-1] != cum[-1]:
            bounds.append(int(cum[-1]))
        self._perm, self._cum, self._bounds, self._block, self._order_epoch = perm, cum, bounds, (-1, None), epoch

    def position_to_sample(self, pos: int, epoch: int) -> int:
        if self._order_epoch != epoch:
            self._set_order(epoch)
        if self.shuffle:
            b = bisect_right(self._bounds, pos) - 1
            lo, hi = self._bounds[b], self._bounds[b + 1]
            if self._block[0] != b:
                self._block = (b, np.random.default_rng([self.seed, epoch, b]).permutation(hi - lo))
            pos = lo + int(self._block[1][pos - lo])
        j = bisect_right(self._cum, pos) - 1
        return int(self.shards.starts[self._perm[j]]) + pos - int(self._cum[j])

    def next(self) -> np.ndarray | None:
        st = self.st
        while True:
            i = st["c"] + st["k"] * st["C"]
            if i < self.length():
                break
            if self.epochs is not None and st["epoch"] + 1 >= self.epochs:
                return None
            st.update(epoch=st["epoch"] + 1, k=0, prefix=[], tail=0)
            if self.length() <= st["c"]:
                raise ValueError(f"MDS {self.shards.name}: {self.shards.num_samples} samples for {st['C']} consumers; "
                                 "some rank/worker would get nothing (use fewer workers or more data)")
        pos, off = self.item(i)
        st["k"] += 1
        return self.shards.get(self.position_to_sample(pos, st["epoch"]))[1][off:]


def shuffled(items: Iterator, buffer: int, rng: np.random.Generator) -> Iterator:
    """Seeded buffer shuffle: keep ``buffer`` items, emit a random one as each new one arrives."""
    if buffer <= 1:
        yield from items
        return
    buf = []
    for x in items:
        if len(buf) < buffer:
            buf.append(x)
            continue
        j = int(rng.integers(buffer))
        buf[j], x = x, buf[j]
        yield x
    rng.shuffle(buf)
    yield from buf


class ReplayStream:
    """A stream rebuilt from ``make_iter(epoch)``; state = (epoch, documents already returned)."""

    def __init__(self, make_iter: Callable[[int], Iterator[np.ndarray]], epochs: int | None, name: str):
        self.make_iter, self.epochs, self.name = make_iter, epochs, name
        self.st = {"epoch": 0, "k": 0}
        self._it = None

    def state(self) -> dict:
        return dict(self.st)

    def restore(self, st: dict) -> None:
        self.st, self._it = dict(st), None

    def next(self) -> np.ndarray | None:
        while True:
            if self._it is None:
                self._it = self.make_iter(self.st["epoch"])
                for _ in range(self.st["k"]):  # replay to the saved position
                    if next(self._it, None) is None:
                        break
            doc = next(self._it, None)
            if doc is not None:
                self.st["k"] += 1
                return doc
            if self.st["k"] == 0:
                raise ValueError(f"source {self.name} gave this rank/worker no documents; "
                                 "it needs at least one shard/document per consumer (dp ranks x workers)")
            if self.epochs is not None and self.st["epoch"] + 1 >= self.epochs:
                return None
            self.st, self._it = {"epoch": self.st["epoch"] + 1, "k": 0}, None


def read_wds_docs(url: str, on_bad: str = "stop", stats: dict | None = None,
                  expected: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(doc id, tokens) from one WebDataset tar written by ``prepare`` (members ``<id>.u16`` / ``<id>.u32``).

    Python's tar reader stops silently when a file is cut at a header boundary, so the document count is
    checked against the index (``expected``) and local files must be a whole number of 512-byte blocks.
    """
    import webdataset as wds

    stats = stats if stats is not None else {}

    def handler(exn: Exception) -> bool:
        if isinstance(exn, BadSampleError):
            raise exn
        msg = f"WebDataset shard {url} is unreadable ({type(exn).__name__}: {exn})"
        if on_bad == "stop":
            raise BadSampleError(msg + " (set on_bad_sample: skip to skip and count)") from exn
        stats["bad_samples"] = stats.get("bad_samples", 0) + 1
        log.warning("skipping: %s", msg)
        return True

    if os.path.isfile(url) and os.path.getsize(url) % 512:
        handler(ValueError(f"size {os.path.getsize(url)} is not a whole number of tar blocks: truncated"))
        if on_bad == "skip":
            return
    pipe = wds.DataPipeline(wds.SimpleShardList([url]), wds.tarfile_to_samples(handler=handler))
    count = 0
    for sample in pipe:
        key = sample["__key__"]
        ext = "u16" if "u16" in sample else "u32" if "u32" in sample else None
        raw = sample.get(ext) if ext else None
        width = 2 if ext == "u16" else 4
        if raw is None or len(raw) % width:
            handler(ValueError(f"member {key} has no valid .u16/.u32 token payload"))
            continue
        count += 1
        yield int(key) if key.isdigit() else -1, np.frombuffer(raw, dtype="<u2" if width == 2 else "<u4")
    if expected is not None and count != expected:
        handler(ValueError(f"read {count} documents, the index says {expected}: truncated"))


def wds_urls(path: str) -> list[tuple[str, int | None]]:
    """(shard URL, expected documents or None): a prepared directory, a local glob, or a brace pattern."""
    import json

    if os.path.isdir(path):
        meta = os.path.join(path, "statex_index.json")
        if os.path.exists(meta):
            with open(meta) as f:
                parts = [(p["name"], p["docs"]) for p in json.load(f)["parts"]]
        else:
            parts = [(n, None) for n in sorted(os.listdir(path)) if n.endswith(".tar")]
        urls = [(os.path.join(path, n), k) for n, k in parts]
    elif "://" in path or path.startswith("pipe:") or "{" in path:
        import braceexpand

        urls = [(u, None) for u in braceexpand.braceexpand(path)]
    else:
        import glob

        urls = [(u, None) for u in sorted(glob.glob(path)) or [path]]
    for u, _ in urls:
        if "://" not in u and not u.startswith("pipe:") and not os.path.isfile(u):
            raise FileNotFoundError(f"WebDataset shard {u} is missing")
    if not urls:
        raise FileNotFoundError(f"no WebDataset shards found at {path}")
    return urls


class MixedStream:
    """Draws the next document from source j with probability weight_j (seeded; exhausted sources drop out)."""

    BLOCK = 4096

    def __init__(self, streams: list, weights: list[float], seed: int, c: int):
        self.streams, self.seed, self.c = streams, seed, c
        self.p = np.asarray(weights, dtype=np.float64) / sum(weights)
        self.draws, self.done = 0, [False] * len(streams)
        self._block = (-1, None)

    def state(self) -> dict:
        return {"draws": self.draws, "done": list(self.done), "streams": [s.state() for s in self.streams]}

    def restore(self, st: dict) -> None:
        self.draws, self.done = st["draws"], list(st["done"])
        for s, sub in zip(self.streams, st["streams"]):
            s.restore(sub)

    def next(self) -> np.ndarray | None:
        while not all(self.done):
            b = self.draws // self.BLOCK
            if self._block[0] != b:
                u = np.random.default_rng([self.seed, self.c, b, 7]).random(self.BLOCK)
                self._block = (b, u)
            u = self._block[1][self.draws % self.BLOCK]
            self.draws += 1
            p = np.where(self.done, 0.0, self.p)
            j = min(int(np.searchsorted(np.cumsum(p / p.sum()), u, side="right")), len(p) - 1)
            doc = self.streams[j].next()
            if doc is not None:
                return doc
            self.done[j] = True
        return None
