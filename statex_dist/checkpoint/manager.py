"""Checkpoint directory policy: atomic publish, a ``latest`` pointer, keep-last-k, validation and fallback.

Layout of ``RUN_DIR/checkpoints``::

    step_00001000/            one complete checkpoint
      COMPLETE                manifest written last: step, world, backend, every file with its size
      train_state.json        step, tokens seen, bad-step counter
      model_config.json       the (expanded) model config: a resume never redoes the surgery
      train_config.yaml       the resolved training config
      dcp/ | ds/              model + optimizer shards (torch.distributed.checkpoint or DeepSpeed)
      rank_00000.pt ...       per-rank state: data-loader position, RNG states
    latest                    name of the newest complete checkpoint
    .tmp-step_00002000/       being written (ignored, removed on the next start)

A checkpoint is published by renaming its temporary directory after every rank has finished writing and the
manifest is on disk, so a crash at any moment leaves either the old or the new checkpoint, never half of one.
On start, candidates are checked newest first (manifest present, every listed file present with its size);
a bad one is reported and skipped for the previous one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)
STEP_RE = re.compile(r"^step_(\d{8})$")
MANIFEST = "COMPLETE"


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def list_checkpoints(root: Path) -> list[Path]:
    """Published checkpoint directories, newest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and STEP_RE.match(p.name)]
    return sorted(found, key=lambda p: int(STEP_RE.match(p.name).group(1)), reverse=True)


def validate(ckpt: Path) -> str | None:
    """None when ``ckpt`` is complete; otherwise a reason."""
    manifest = ckpt / MANIFEST
    if not manifest.is_file():
        return "no COMPLETE manifest (the save did not finish)"
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as e:
        return f"unreadable manifest: {e}"
    for rel, size in meta.get("files", {}).items():
        f = ckpt / rel
        if not f.is_file():
            return f"missing file {rel}"
        if f.stat().st_size != size:
            return f"file {rel} has {f.stat().st_size} bytes, the manifest says {size} (truncated or corrupt)"
    return None


def read_manifest(ckpt: Path) -> dict:
    return json.loads((ckpt / MANIFEST).read_text())


def find_resume_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint; bad ones are reported and skipped."""
    candidates = list_checkpoints(root)
    pointer = root / "latest"
    if pointer.is_file():
        named = root / pointer.read_text().strip()
        if named in candidates:  # normally the newest anyway; prefer it when a newer one is not published
            candidates.remove(named)
            candidates.insert(0, named)
    for ckpt in candidates:
        reason = validate(ckpt)
        if reason is None:
            return ckpt
        log.warning("checkpoint %s is not usable (%s); trying the previous one", ckpt, reason)
        print(f"[statex] checkpoint {ckpt} skipped: {reason}", flush=True)
    return None


def new_temp_dir(root: Path, step: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{step_dir_name(step)}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def publish(tmp: Path, root: Path, step: int, meta: dict, keep_last: int) -> Path:
    """Rank 0, after every rank finished writing into ``tmp``: manifest, rename, ``latest``, prune."""
    files = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
    _atomic_write_text(tmp / MANIFEST, json.dumps({**meta, "step": step, "time": time.time(), "files": files},
                                                  indent=1))
    final = root / step_dir_name(step)
    if final.exists():  # e.g. a signal-triggered save at a step that was already saved
        shutil.rmtree(final)
    os.replace(tmp, final)
    _atomic_write_text(root / "latest", final.name + "\n")
    if keep_last > 0:
        for old in list_checkpoints(root)[keep_last:]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def clean_temp_dirs(root: Path) -> None:
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(".tmp-"):
                shutil.rmtree(p, ignore_errors=True)
