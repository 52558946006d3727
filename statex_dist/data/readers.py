"""Raw text inputs: jsonl, jsonl.zst, parquet and plain text, one document per record (per line for text).

Every document carries its file and record number so bad input can be reported by name.
"""

from __future__ import annotations

import glob
import io
import json
import logging
import os
from dataclasses import dataclass
from typing import Iterator

log = logging.getLogger(__name__)
SUFFIXES = (".jsonl", ".json", ".jsonl.zst", ".json.zst", ".parquet", ".txt", ".text")


@dataclass
class Doc:
    text: str
    file: str
    record: int  # 0-based record (line / row) number inside ``file``


class BadSampleError(ValueError):
    """An unreadable record or shard member; the message names the file."""


def expand_paths(spec: str | list[str]) -> list[str]:
    """Comma-separated paths, globs or directories -> sorted existing files; an empty match is an error."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    files: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if os.path.isdir(item):
            found = sorted(
                os.path.join(r, f) for r, _, fs in os.walk(item) for f in fs if f.endswith(SUFFIXES)
            )
        else:
            found = sorted(glob.glob(item)) if any(c in item for c in "*?[") else [item]
        if not found:
            raise FileNotFoundError(f"input {item!r} matches no files (suffixes: {', '.join(SUFFIXES)})")
        for f in found:
            if not os.path.isfile(f):
                raise FileNotFoundError(f"input file {f} does not exist")
        files.extend(found)
    if not files:
        raise FileNotFoundError(f"no input files in {spec!r}")
    return files


def _open_text(path: str):
    if path.endswith(".zst"):
        import zstandard

        raw = open(path, "rb")
        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8")
    return open(path, encoding="utf-8")


def _field(rec: dict, text_field: str, path: str, n: int) -> str:
    if text_field not in rec:
        raise KeyError(
            f"{path}, record {n}: no field {text_field!r} (fields: {', '.join(map(repr, sorted(rec)))}); "
            "pass --text-field / set text_field to the right one"
        )
    value = rec[text_field]
    if not isinstance(value, str):
        raise BadSampleError(f"{path}, record {n}: field {text_field!r} is {type(value).__name__}, not text")
    return value


def iter_file(path: str, text_field: str = "text", on_bad: str = "stop", stats: dict | None = None) -> Iterator[Doc]:
    """Documents of one file. Bad records (invalid JSON, non-text field) follow ``on_bad``; a missing field
    is always an error, since it means the wrong ``text_field`` rather than one damaged record."""
    stats = stats if stats is not None else {}
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as e:
            raise BadSampleError(f"{path}: not a readable parquet file ({e})") from e
        if text_field not in pf.schema_arrow.names:
            raise KeyError(
                f"{path}: no column {text_field!r} (columns: {', '.join(pf.schema_arrow.names)}); "
                "pass --text-field / set text_field to the right one"
            )
        n = 0
        for batch in pf.iter_batches(columns=[text_field], batch_size=4096):
            for value in batch.column(0).to_pylist():
                yield Doc(value or "", path, n)
                n += 1
        return
    is_json = ".json" in os.path.basename(path)
    try:
        with _open_text(path) as f:
            for n, line in enumerate(f):
                if not is_json:
                    yield Doc(line.rstrip("\n"), path, n)
                    continue
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    if not isinstance(rec, dict):
                        raise BadSampleError(f"{path}, record {n}: a JSON object is required, got {type(rec).__name__}")
                    text = _field(rec, text_field, path, n)
                except (json.JSONDecodeError, BadSampleError) as e:
                    msg = e if isinstance(e, BadSampleError) else f"{path}, record {n}: invalid JSON ({e})"
                    if on_bad == "stop":
                        raise BadSampleError(f"{msg} (set on_bad_sample: skip to skip and count)") from e
                    stats["bad_samples"] = stats.get("bad_samples", 0) + 1
                    log.warning("skipping bad record: %s", msg)
                    continue
                yield Doc(text, path, n)
    except (UnicodeDecodeError, OSError) as e:  # truncated .zst, binary junk
        if isinstance(e, FileNotFoundError):
            raise
        msg = f"{path}: unreadable ({type(e).__name__}: {e})"
        if on_bad == "stop":
            raise BadSampleError(msg) from e
        stats["bad_files"] = stats.get("bad_files", 0) + 1
        log.warning("skipping rest of file: %s", msg)


def iter_documents(files: list[str], text_field: str = "text", on_bad: str = "stop", stats: dict | None = None):
    for path in files:
        yield from iter_file(path, text_field, on_bad, stats)
