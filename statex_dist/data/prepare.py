"""``statex data prepare``: raw text -> tokenized shards (MDS or WebDataset) + ``statex_index.json``.

Documents are cut into parts of ``shard_size`` documents in input order, so a part's content depends only on
the inputs: a re-run skips parts whose ``.done.json`` exists and redoes the rest (idempotent, resumable).
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tarfile
from multiprocessing import get_context
from typing import Iterator

import numpy as np

from statex_dist.data.readers import Doc, expand_paths, iter_documents

log = logging.getLogger(__name__)
META = "statex_index.json"
_TOK = None  # per-process tokenizer (pool initializer)


def _init_worker(tokenizer_dir: str) -> None:
    global _TOK
    from statex_dist.data.tokenizer import load_tokenizer

    _TOK = load_tokenizer(tokenizer_dir)


def token_dtype(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def _part_name(i: int, fmt: str) -> str:
    return f"part-{i:05d}" + (".tar" if fmt == "wds" else "")


def write_wds_part(path: str, docs: list[tuple[int, np.ndarray]]) -> None:
    """One tar: member ``<id>.u16`` / ``<id>.u32`` holds the raw little-endian token ids (WebDataset layout)."""
    with tarfile.open(path, "w") as tar:
        for doc_id, toks in docs:
            data = toks.astype(toks.dtype.newbyteorder("<"), copy=False).tobytes()
            info = tarfile.TarInfo(f"{doc_id:012d}.{'u16' if toks.dtype == np.uint16 else 'u32'}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _write_part(job: tuple) -> dict:
    """Tokenize one part, write it under a temporary name, then publish it atomically."""
    index, docs, out, fmt, dtype, eos_id = job
    texts = [d.text for _, d in docs if d.text.strip()]
    from statex_dist.data.tokenizer import encode_batch

    ids = iter(encode_batch(_TOK, texts))
    rows, empty, tokens = [], [], 0
    for doc_id, d in docs:
        if not d.text.strip():
            empty.append(f"{d.file}:{d.record}")
            continue
        toks = np.asarray(next(ids) + [eos_id], dtype=dtype)
        rows.append((doc_id, toks))
        tokens += len(toks)
    name = _part_name(index, fmt)
    final, tmp = os.path.join(out, name), os.path.join(out, name + ".tmp")
    if fmt == "mds":
        shutil.rmtree(tmp, ignore_errors=True)
        from statex_dist.data.mds import write_part

        write_part(tmp, rows, dtype)
        shutil.rmtree(final, ignore_errors=True)
    else:
        write_wds_part(tmp, rows)
    os.replace(tmp, final)
    stats = {"name": name, "docs": len(rows), "tokens": tokens, "empty_docs": len(empty),
             "empty_examples": empty[:5], "first_id": docs[0][0], "files": sorted({d.file for _, d in docs})}
    with open(os.path.join(out, name + ".done.json.tmp"), "w") as f:
        json.dump(stats, f)
    os.replace(os.path.join(out, name + ".done.json.tmp"), os.path.join(out, name + ".done.json"))
    return stats


def _parts(files: list[str], text_field: str, shard_size: int, on_bad: str, stats: dict) -> Iterator[list]:
    part: list[tuple[int, Doc]] = []
    for doc_id, doc in enumerate(iter_documents(files, text_field, on_bad, stats)):
        part.append((doc_id, doc))
        if len(part) == shard_size:
            yield part
            part = []
    if part:
        yield part


def prepare_corpus(inputs: str | list[str], tokenizer: str, out: str, fmt: str = "mds", text_field: str = "text",
                   shard_size: int = 10000, workers: int = 1, on_bad_sample: str = "stop",
                   progress: bool = True) -> dict:
    """Tokenize ``inputs`` with the local ``tokenizer``, append EOS per document, write shards under ``out``.

    Returns the index written to ``out/statex_index.json`` (parts with document and token counts).
    """
    from statex_dist.data.tokenizer import load_tokenizer

    if fmt not in ("mds", "wds"):
        raise ValueError(f"format must be mds or wds, got {fmt!r}")
    if shard_size < 1:
        raise ValueError(f"shard_size (documents per shard) must be >= 1, got {shard_size}")
    files = expand_paths(inputs)
    tok = load_tokenizer(tokenizer)
    vocab = len(tok)
    settings = {"format": fmt, "tokenizer": os.path.abspath(tokenizer), "vocab_size": vocab,
                "eos_id": tok.eos_token_id, "dtype": token_dtype(vocab), "shard_size": shard_size,
                "text_field": text_field, "inputs": [os.path.abspath(f) for f in files]}
    os.makedirs(out, exist_ok=True)
    settings_file = os.path.join(out, "prepare.json")
    if os.path.exists(settings_file):
        with open(settings_file) as f:
            old = json.load(f)
        if old != settings:
            diff = sorted(k for k in settings if old.get(k) != settings[k])
            raise ValueError(f"{out} was prepared with other settings ({', '.join(diff)} differ); "
                             "use a new --out directory or delete this one")
    else:
        with open(settings_file, "w") as f:
            json.dump(settings, f, indent=1)

    read_stats: dict = {}
    results: list[dict] = []
    jobs = []
    for i, docs in enumerate(_parts(files, text_field, shard_size, on_bad_sample, read_stats)):
        done = os.path.join(out, _part_name(i, fmt) + ".done.json")
        if os.path.exists(done):
            with open(done) as f:
                results.append(json.load(f))
            continue
        jobs.append((i, docs, out, fmt, settings["dtype"], tok.eos_token_id))
    skipped = len(results)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs) + skipped, initial=skipped, desc=f"prepare {fmt}", unit="shard")
    if workers > 1 and len(jobs) > 1:
        with get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(tokenizer,)) as pool:
            for r in pool.imap_unordered(_write_part, jobs):
                results.append(r)
                if bar:
                    bar.update(1)
    else:
        _init_worker(tokenizer)
        for job in jobs:
            results.append(_write_part(job))
            if bar:
                bar.update(1)
    if bar:
        bar.close()
    results.sort(key=lambda r: r["name"])
    for r in results:
        for ex in r.get("empty_examples", []):
            log.warning("empty document skipped: %s", ex)
    if fmt == "mds":
        from statex_dist.data.mds import merge_parts

        merge_parts(out, [r["name"] for r in results])
    index = {**settings, "parts": results, "documents": sum(r["docs"] for r in results),
             "tokens": sum(r["tokens"] for r in results), "empty_docs": sum(r["empty_docs"] for r in results),
             "bad_samples": read_stats.get("bad_samples", 0), "parts_reused": skipped}
    with open(os.path.join(out, META), "w") as f:
        json.dump(index, f, indent=1)
    return index


def inspect_corpus(path: str, tokenizer: str | None = None, sample: int = 0, max_chars: int = 300) -> str:
    """Human summary of a prepared directory: parts, documents, tokens and one decoded document."""
    meta_file = os.path.join(path, META)
    if not os.path.exists(meta_file):
        raise FileNotFoundError(f"{meta_file} not found: is {path} a directory written by `statex data prepare`?")
    with open(meta_file) as f:
        meta = json.load(f)
    lines = [f"{path}: format {meta['format']}, {len(meta['parts'])} shards, {meta['documents']:,} documents, "
             f"{meta['tokens']:,} tokens, vocab {meta['vocab_size']}, eos {meta['eos_id']}, dtype {meta['dtype']}"]
    if meta.get("empty_docs"):
        lines.append(f"  empty documents skipped: {meta['empty_docs']}")
    for p in meta["parts"][:20]:
        lines.append(f"  {p['name']}: {p['docs']:,} docs, {p['tokens']:,} tokens")
    if len(meta["parts"]) > 20:
        lines.append(f"  ... {len(meta['parts']) - 20} more")
    if meta["format"] == "mds":
        from statex_dist.data.mds import MDSShards

        doc_id, toks = MDSShards(path).get(sample)
    else:
        from statex_dist.data.sources import read_wds_docs

        doc_id, toks = next(iter(read_wds_docs(os.path.join(path, meta["parts"][0]["name"]))))  # first document
    from statex_dist.data.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer or meta["tokenizer"])
    text = tok.decode(toks.tolist())
    lines.append(f"sample doc {doc_id} ({len(toks)} tokens): {text[:max_chars]!r}")
    return "\n".join(lines)
