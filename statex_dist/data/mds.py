"""MDS shards through the ``streaming`` package: import it safely, write parts, read samples by global index.

We use streaming's format (``MDSWriter``, ``merge_index``, the shard readers) and its downloaders, but not
``StreamingDataset``: that class takes rank/world from environment variables and shared memory and resumes by
sample count, while our loader needs token-exact resume of packed rows and in-process fake ranks in tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import types
from bisect import bisect_right

import numpy as np

INDEX = "index.json"


def import_streaming():
    """Import ``streaming`` without its torchvision-only image modules.

    ``streaming/__init__.py`` imports ``streaming.vision``, which needs torchvision; PyPI's torchvision does
    not load next to a CPU torch (and breaks transformers with it). We never use the image datasets, so when
    torchvision is missing we register an empty placeholder for ``streaming.vision`` before the import.
    Install path (tested in CI): ``pip install --no-deps streaming-community`` + its small runtime deps,
    see docs/data.md.
    """
    if "streaming" in sys.modules and hasattr(sys.modules["streaming"], "MDSWriter"):
        return sys.modules["streaming"]
    try:
        import torchvision  # noqa: F401
    except Exception:
        placeholder = types.ModuleType("streaming.vision")
        placeholder.__doc__ = "placeholder: statex_dist does not use streaming's image datasets"
        sys.modules.setdefault("streaming.vision", placeholder)
    try:
        import streaming
    except ImportError as e:
        raise ImportError(
            f"MDS needs the `streaming` package ({e}). Install it without its heavy pins: "
            "pip install --no-deps streaming-community==0.14.2 Brotli python-snappy zstd catalogue "
            "(see docs/data.md)"
        ) from e
    return streaming


def write_part(out_dir: str, docs: list[tuple[int, np.ndarray]], dtype: str) -> None:
    """Write one MDS partition (its own ``index.json``) holding ``(doc_id, tokens)`` samples."""
    streaming = import_streaming()
    columns = {"id": "int64", "input_ids": f"ndarray:{dtype}"}
    with streaming.MDSWriter(out=out_dir, columns=columns, size_limit=1 << 28) as w:
        for doc_id, toks in docs:
            w.write({"id": doc_id, "input_ids": toks})


def merge_parts(root: str, part_dirs: list[str]) -> None:
    """Write the root ``index.json`` that lists the shards of every part (streaming's merge)."""
    import_streaming()
    from streaming.base.util import merge_index

    old = os.path.join(root, INDEX)
    if os.path.exists(old):  # a re-run rebuilds it from the parts
        os.remove(old)
    merge_index([os.path.join(root, p, INDEX) for p in part_dirs], root, keep_local=True)


def _is_url(path: str) -> bool:
    return "://" in path


class MDSShards:
    """Random access to the samples of one MDS dataset, local or downloaded on demand into a cache."""

    def __init__(self, path: str, remote: str | None = None, cache_dir: str | None = None, timeout: float = 120.0):
        import_streaming()
        from streaming.base.format import reader_from_json

        if not path:
            key = hashlib.sha1(remote.encode()).hexdigest()[:16]
            path = os.path.join(cache_dir or os.path.expanduser("~/.cache/statex/mds"), key)
        self.local, self.remote, self.timeout = path, remote, timeout
        self.name = remote or path
        index_file = self._fetch(INDEX)
        try:
            with open(index_file) as f:
                obj = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"MDS index {index_file} is unreadable ({e}); re-run `statex data prepare`") from e
        self.shards = [reader_from_json(self.local, None, info) for info in obj["shards"]]
        for info, shard in zip(obj["shards"], self.shards):
            if info.get("compression"):
                raise ValueError(f"{self.name}: shard {info['raw_data']['basename']} is compressed; "
                                 "statex reads uncompressed MDS (token ids barely compress)")
            if "input_ids" not in info.get("column_names", []):
                raise ValueError(f"{self.name}: shards have no `input_ids` column (columns: {info.get('column_names')}); "
                                 "prepare the corpus with `statex data prepare --format mds`")
        self.sizes = np.array([s.samples for s in self.shards], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.num_samples = int(self.starts[-1])
        self._ready: set[int] = set()
        self.meta = self._read_meta()
        if remote is None:
            for i in range(len(self.shards)):
                self._check(i)

    def _read_meta(self) -> dict:
        try:
            meta_file = self._fetch("statex_index.json")
        except (FileNotFoundError, ValueError, OSError):
            return {}
        with open(meta_file) as f:
            return json.load(f)

    def _fetch(self, basename: str) -> str:
        local = os.path.join(self.local, basename)
        if os.path.exists(local) or self.remote is None:
            if not os.path.exists(local):
                raise FileNotFoundError(f"MDS file {local} is missing")
            return local
        from filelock import FileLock
        from streaming.base.storage import CloudDownloader

        os.makedirs(os.path.dirname(local), exist_ok=True)
        url = os.path.join(self.remote, basename)
        with FileLock(local + ".lock"):
            try:
                CloudDownloader.direct_download(url, local, self.timeout)
            except Exception as e:
                raise FileNotFoundError(f"could not download MDS file {url} -> {local}: {e}") from e
        return local

    def _check(self, i: int) -> None:
        """A missing or truncated shard is named before any sample is read from it."""
        shard = self.shards[i]
        basename = shard.raw_data.basename
        path = self._fetch(basename)
        size = os.path.getsize(path)
        if size != shard.raw_data.bytes:
            raise ValueError(
                f"MDS shard {path} is truncated or corrupt: {size} bytes, the index says {shard.raw_data.bytes}; "
                "re-run `statex data prepare` (it redoes unfinished parts)"
            )
        self._ready.add(i)

    def locate(self, idx: int) -> tuple[int, int]:
        shard = bisect_right(self.starts, idx) - 1
        return shard, idx - int(self.starts[shard])

    def get(self, idx: int) -> tuple[int, np.ndarray]:
        """(doc id, token ids) of global sample ``idx``."""
        shard, local = self.locate(idx)
        if shard not in self._ready:
            self._check(shard)
        reader = self.shards[shard]
        try:
            sample = reader.get_item(local)
            return int(sample.get("id", idx)), sample["input_ids"]
        except Exception as e:
            raise ValueError(
                f"MDS shard {os.path.join(self.local, reader.raw_data.basename)}: sample {local} is unreadable ({e})"
            ) from e
