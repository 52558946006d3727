"""Publish a directory atomically: write into a hidden sibling, then rename over the destination.

A crash leaves either the old directory or the new one, never a half-written one (readers never see the
temporary name, which starts with a dot and is removed on failure).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_directory(dst: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """``with atomic_directory(out) as tmp: write into tmp`` -> ``out`` appears complete, or not at all."""
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        yield tmp
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
