"""The trainer's data loader: sources -> mixture -> packer -> batches, per rank, with exact resume.

Each rank runs ``max(1, num_workers)`` consumers; consumer ``c = rank * W + w`` of ``C = world * W`` reads a
disjoint share of every source. Each batch leaves its worker with that worker's state after the batch, and the
loader keeps the state of the last batch it handed out per worker plus which worker is next (the DataLoader
visits workers round-robin), so ``state_dict()`` describes exactly the batches consumed, never the prefetched.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from statex_dist.data.config import DataConfig, SourceConfig
from statex_dist.data.packing import Packer, collate
from statex_dist.data.sources import MDSStream, MixedStream, ReplayStream, read_wds_docs, shuffled, wds_urls
from statex_dist.data.tokenizer import check_vocab, encode_batch, load_tokenizer

log = logging.getLogger(__name__)
STATE_VERSION = 1


def _tokenized(texts: Iterator[str], tok, eos: int, batch: int = 256) -> Iterator[np.ndarray]:
    """Tokenize on the fly in batches, one EOS per document; empty documents are dropped."""
    buf: list[str] = []
    for text in texts:
        if text and text.strip():
            buf.append(text)
        if len(buf) == batch:
            yield from (np.asarray(ids + [eos], dtype=np.int64) for ids in encode_batch(tok, buf))
            buf = []
    yield from (np.asarray(ids + [eos], dtype=np.int64) for ids in encode_batch(tok, buf))


def _hf_dataset(src: SourceConfig, cfg: DataConfig):
    from datasets import load_dataset

    if os.path.exists(src.path.split(",")[0]) or any(ch in src.path for ch in "*?"):
        from statex_dist.data.readers import expand_paths

        files = expand_paths(src.path)
        builder = src.hf_format or ("parquet" if files[0].endswith(".parquet") else
                                    "text" if files[0].endswith((".txt", ".text")) else "json")
        return load_dataset(builder, data_files=files, split=src.split, streaming=True, cache_dir=cfg.cache_dir)
    # A dataset name: the user asked for it explicitly; streamed, never bulk-downloaded.
    return load_dataset(src.path, split=src.split, streaming=True, cache_dir=cfg.cache_dir)


def build_source_stream(src: SourceConfig, cfg: DataConfig, c: int, C: int, eos: int, lazy: dict):
    """One source's document stream for consumer ``c`` of ``C``."""
    seed = cfg.seed
    if src.kind == "mds":
        from statex_dist.data.mds import MDSShards

        return MDSStream(MDSShards(src.path, src.remote, cfg.cache_dir), seed, cfg.shuffle_buffer, cfg.epochs, c, C)

    def tok():
        if "tok" not in lazy:
            lazy["tok"] = load_tokenizer(cfg.tokenizer)
        return lazy["tok"]

    def buffered(docs: Iterator[np.ndarray], epoch: int) -> Iterator[np.ndarray]:
        return shuffled(docs, cfg.shuffle_buffer, np.random.default_rng([seed, epoch, c, 1]))

    if src.kind == "wds":
        urls = wds_urls(src.path)
        if len(urls) < C:
            raise ValueError(f"WebDataset {src.path}: {len(urls)} shards for {C} consumers (dp ranks x workers); "
                             "prepare with a smaller --shard-size or use fewer workers")

        def make_iter(epoch: int):
            order = np.random.default_rng([seed, epoch]).permutation(len(urls)) if cfg.shuffle_buffer else range(len(urls))
            mine = [urls[i] for i in order][c::C]
            docs = (toks for u, n in mine for _, toks in read_wds_docs(u, cfg.on_bad_sample, expected=n))
            return buffered(docs, epoch)
    elif src.kind == "hf":
        def make_iter(epoch: int):
            from datasets.distributed import split_dataset_by_node

            if "hf" not in lazy:
                lazy["hf"] = split_dataset_by_node(_hf_dataset(src, cfg), rank=c, world_size=C)
            field = "input_ids" if src.tokenized else src.text_field
            # ``iter`` (not ``__iter__``) so HF does not split shards again by DataLoader worker.
            rows = (x for b in lazy["hf"].iter(batch_size=256) for x in _column(b, field, src.path))
            if src.tokenized:
                docs = (np.asarray(x, dtype=np.int64) for x in rows if len(x))
            else:
                docs = _tokenized(rows, tok(), eos)
            return buffered(docs, epoch)
    else:
        from statex_dist.data.readers import expand_paths, iter_documents

        files = expand_paths(src.path)

        def make_iter(epoch: int):
            fs = [files[i] for i in np.random.default_rng([seed, epoch]).permutation(len(files))] if cfg.shuffle_buffer else files
            field = src.text_field if src.kind == "jsonl" else "text"
            if len(fs) >= C:  # whole files per consumer; otherwise every C-th document
                texts = (d.text for d in iter_documents(fs[c::C], field, cfg.on_bad_sample))
            else:
                texts = (d.text for i, d in enumerate(iter_documents(fs, field, cfg.on_bad_sample)) if i % C == c)
            return buffered(_tokenized(texts, tok(), eos), epoch)
    return ReplayStream(make_iter, cfg.epochs, f"{src.kind}:{src.path}")


def _column(batch: dict, field: str, path: str) -> list:
    if field not in batch:
        raise KeyError(f"HF dataset {path}: no column {field!r} (columns: {', '.join(batch)}); set text_field, "
                       "or tokenized: false for raw text")
    return batch[field]


def consumer_batches(cfg: DataConfig, c: int, C: int, state: dict | None, pad_id: int, vocab_size: int | None):
    """Yield (batch, state after the batch) for one consumer, forever or until its epochs are done."""
    lazy: dict = {}
    streams = [build_source_stream(s, cfg, c, C, pad_id, lazy) for s in cfg.sources]
    stream = streams[0] if len(streams) == 1 else MixedStream(streams, [s.weight for s in cfg.sources], cfg.seed, c)
    packer = Packer(stream, cfg.seq_len, cfg.packing, pad_id)
    if state is not None:
        packer.restore(state["packer"])
    B, T = cfg.micro_batch_size, cfg.seq_len
    rows = np.empty((B, T + 1), dtype=np.int64)
    while True:
        fills = []
        for b in range(B):
            f = packer.next_row(rows[b])
            if f is None:
                break
            fills.append(f)
        if not fills:
            return
        for b in range(len(fills), B):  # the data ended mid-batch: fully ignored rows keep shapes fixed
            rows[b] = pad_id
            fills.append((0, [0], False))
        if vocab_size is not None and int(rows.max()) >= vocab_size:
            raise ValueError(f"token id {int(rows.max())} >= model vocab_size {vocab_size} in sources "
                             f"{[s.path or s.remote for s in cfg.sources]}: the corpus was tokenized for another model")
        yield collate(rows, fills, cfg.reset_state_at_docs), {"packer": packer.state()}


class _RankDataset(IterableDataset):
    def __init__(self, cfg, rank, world, states, rotation, pad_id, vocab_size):
        self.cfg, self.rank, self.world, self.states = cfg, rank, world, states
        self.rotation, self.pad_id, self.vocab_size = rotation, pad_id, vocab_size

    def __iter__(self):
        W = self.cfg.consumers_per_rank
        info = get_worker_info()
        # Physical worker i plays logical worker (i + rotation): resumes continue the round-robin in order.
        w = ((info.id if info else 0) + self.rotation) % W
        c, C = self.rank * W + w, self.world * W
        for batch, st in consumer_batches(self.cfg, c, C, self.states[w], self.pad_id, self.vocab_size):
            # One tensor per batch across the worker pipe (each tensor costs a shared-memory segment).
            cu = batch.get("cu_seqlens")
            yield {"ids": torch.stack([batch["input_ids"], batch["labels"]]), "_worker": w, "_state": json.dumps(st),
                   "_cu": None if cu is None else cu.tolist()}


class StatexDataLoader:
    """Iterable of batch dicts with ``state_dict()`` / ``load_state_dict()`` (plain, tensor-free dicts)."""

    def __init__(self, cfg: DataConfig, dp_rank: int, dp_world: int, pad_id: int, vocab_size: int | None):
        if not 0 <= dp_rank < dp_world:
            raise ValueError(f"dp_rank {dp_rank} not in [0, {dp_world})")
        self.cfg, self.dp_rank, self.dp_world = cfg, dp_rank, dp_world
        self.pad_id, self.vocab_size = pad_id, vocab_size
        self.W = cfg.consumers_per_rank
        self._states: list[dict | None] = [None] * self.W
        self._next = 0

    def __iter__(self):
        ds = _RankDataset(self.cfg, self.dp_rank, self.dp_world, list(self._states), self._next,
                          self.pad_id, self.vocab_size)
        if self.cfg.num_workers == 0:
            it = iter(ds)
        else:
            it = iter(DataLoader(ds, batch_size=None, num_workers=self.cfg.num_workers,
                                 prefetch_factor=self.cfg.prefetch_factor, timeout=self.cfg.timeout_s,
                                 multiprocessing_context="fork"))
        for item in it:
            w = int(item["_worker"])
            self._states[w] = json.loads(item["_state"])
            self._next = (w + 1) % self.W
            batch = {"input_ids": item["ids"][0], "labels": item["ids"][1]}
            if item["_cu"] is not None:
                batch["cu_seqlens"] = torch.tensor(item["_cu"], dtype=torch.int32)
            yield batch

    def _fingerprint(self) -> dict:
        c = self.cfg
        return {"seq_len": c.seq_len, "packing": c.packing, "seed": c.seed, "shuffle_buffer": c.shuffle_buffer,
                "sources": [[s.kind, s.path, s.remote, s.weight] for s in c.sources]}

    def state_dict(self) -> dict:
        return {"version": STATE_VERSION, "dp_rank": self.dp_rank, "dp_world": self.dp_world,
                "num_workers": self.W, "config": self._fingerprint(), "next_worker": self._next,
                "workers": json.loads(json.dumps(self._states))}

    def load_state_dict(self, sd: dict) -> None:
        """Resume. ``sd`` is this rank's saved state, or ``{"ranks": [state of every old rank]}`` to reshard."""
        from statex_dist.data.reshard import reshard_states

        ranks = sd["ranks"] if "ranks" in sd else None
        one = ranks[0] if ranks else sd
        if one.get("version") != STATE_VERSION:
            raise ValueError(f"data loader state version {one.get('version')} is not {STATE_VERSION}")
        saved, now = one["config"], self._fingerprint()
        diff = [k for k in now if json.dumps(saved.get(k)) != json.dumps(now[k])]
        if diff:
            raise ValueError(f"data loader state was saved with other data settings ({', '.join(diff)}: "
                             f"{[saved.get(k) for k in diff]} -> {[now[k] for k in diff]}); restore them to resume")
        same = one["dp_world"] == self.dp_world and one["num_workers"] == self.W
        if same:
            mine = ranks[self.dp_rank] if ranks else sd
            if mine["dp_rank"] != self.dp_rank:
                raise ValueError(f"state of dp rank {mine['dp_rank']} loaded on rank {self.dp_rank}")
            self._states, self._next = list(mine["workers"]), mine["next_worker"]
            return
        if ranks is None:
            raise ValueError(
                f"data loader state was saved with dp_world={one['dp_world']} x num_workers={one['num_workers']}, "
                f"now dp_world={self.dp_world} x num_workers={self.W}: pass the states of all "
                f"{one['dp_world']} old ranks as load_state_dict({{'ranks': [...]}}) (MDS sources only)")
        self._states = reshard_states(self.cfg, ranks, self.dp_rank, self.dp_world, self.W)
        self._next = 0


def _resolve_pad_and_vocab(cfg: DataConfig, vocab_size: int | None) -> int:
    """EOS/pad id from config, prepared index or tokenizer; check every known vocabulary against the model."""
    eos = cfg.eos_id
    if cfg.tokenizer:
        tok = load_tokenizer(cfg.tokenizer)
        check_vocab(len(tok), vocab_size, f"tokenizer {cfg.tokenizer}")
        eos = tok.eos_token_id if eos is None else eos
    for s in cfg.sources:
        meta_dir = s.path if s.kind in ("mds", "wds") and s.path and os.path.isdir(s.path) else None
        meta_file = os.path.join(meta_dir, "statex_index.json") if meta_dir else None
        if s.kind == "mds" and s.remote and not (meta_file and os.path.exists(meta_file)):
            from statex_dist.data.mds import MDSShards

            meta = MDSShards(s.path, s.remote, cfg.cache_dir).meta
        elif meta_file and os.path.exists(meta_file):
            with open(meta_file) as f:
                meta = json.load(f)
        else:
            continue
        if "vocab_size" in meta:
            check_vocab(meta["vocab_size"], vocab_size, f"corpus {meta_file or s.remote} (tokenizer {meta.get('tokenizer')})")
        eos = meta.get("eos_id") if eos is None else eos
    if eos is None:
        raise ValueError("cannot tell the EOS/padding id: set data.eos_id or data.tokenizer")
    return int(eos)


def build_dataloader(cfg: DataConfig, *, dp_rank: int, dp_world: int, vocab_size: int | None = None) -> StatexDataLoader:
    """The loader for one data-parallel rank; ``vocab_size`` makes it refuse ids the model cannot embed."""
    if not cfg.sources:
        raise ValueError("data.sources is empty: add at least one source (kind + path)")
    pad_id = _resolve_pad_and_vocab(cfg, vocab_size)
    return StatexDataLoader(cfg, dp_rank, dp_world, pad_id, vocab_size)
