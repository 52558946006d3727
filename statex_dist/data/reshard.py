"""Resume an MDS loader on a different number of consumers (dp ranks x workers) without losing a token.

Old consumer c of C owned items S[c], S[c + C], ... of the epoch sequence S and is about to read item i_c at
token offset o_c. Every item below min(i_c) is done; between min(i_c) and max(i_c) an item is done iff its
owner has passed it. The unfinished items there (with offsets) become the new ``prefix``, the rest of S
follows, and the new consumers split that sequence round-robin. Streams that cannot seek (WebDataset, HF,
raw files) cannot do this: their order depends on which consumer read which shard.
"""

from __future__ import annotations

from statex_dist.data.config import DataConfig


def _old_consumers(ranks: list[dict]) -> tuple[list[dict], int]:
    world, W = ranks[0]["dp_world"], ranks[0]["num_workers"]
    if len(ranks) != world or sorted(r["dp_rank"] for r in ranks) != list(range(world)):
        raise ValueError(f"resharding needs the states of all {world} old ranks, got ranks "
                         f"{sorted(r['dp_rank'] for r in ranks)}")
    C = world * W
    out = [None] * C
    for r in ranks:
        for w, st in enumerate(r["workers"]):
            c = r["dp_rank"] * W + w
            if st is None:
                st = {"packer": {"doc": {"epoch": 0, "k": 0, "prefix": [], "tail": 0, "c": c, "C": C}, "offset": 0}}
            out[c] = st["packer"]
    return out, C


def reshard_states(cfg: DataConfig, ranks: list[dict], new_rank: int, new_world: int, new_W: int) -> list[dict]:
    """Worker states for ``new_rank`` of ``new_world`` (``new_W`` workers each) from all old ranks' states."""
    if len(cfg.sources) != 1 or cfg.sources[0].kind != "mds":
        kinds = ", ".join(s.kind for s in cfg.sources)
        raise ValueError(
            f"cannot change dp_world or num_workers on resume with sources [{kinds}]: only a single MDS source "
            f"can be resharded (its samples are addressable). Resume with dp_world={ranks[0]['dp_world']} and "
            f"num_workers={ranks[0]['num_workers']}, or start a new epoch without loading the data state")
    from statex_dist.data.mds import MDSShards

    src = cfg.sources[0]
    n = MDSShards(src.path, src.remote, cfg.cache_dir).num_samples
    olds, C = _old_consumers(ranks)
    docs = [p["doc"] for p in olds]
    if len({(d["epoch"], d["tail"], len(d["prefix"])) for d in docs}) != 1:
        raise ValueError("cannot reshard while ranks/workers are in different epochs (some finished their share "
                         "of the epoch); resume with the old dp_world and num_workers for a few more steps")
    prefix, tail, epoch = docs[0]["prefix"], docs[0]["tail"], docs[0]["epoch"]
    length = len(prefix) + n - tail

    def item(i: int) -> list[int]:
        return list(prefix[i]) if i < len(prefix) else [tail + i - len(prefix), 0]

    nxt = [d["c"] + d["k"] * C for d in docs]  # per old consumer: the item it reads next
    lo, hi = min(nxt), max(nxt)
    new_prefix = []
    for i in range(lo, min(hi + 1, length)):
        owner = i % C
        if i < nxt[owner]:
            continue  # its owner already read it
        pos, off = item(i)
        if i == nxt[owner]:
            off += olds[owner]["offset"]
        new_prefix.append([pos, off])
    if hi + 1 < len(prefix):
        new_prefix += [list(p) for p in prefix[hi + 1:]]
        new_tail = tail
    else:
        new_tail = min(n, tail + max(0, hi + 1 - len(prefix)))
    new_C = new_world * new_W
    return [{"packer": {"doc": {"epoch": epoch, "k": 0, "prefix": new_prefix, "tail": new_tail,
                                "c": new_rank * new_W + w, "C": new_C}, "offset": 0}} for w in range(new_W)]
