"""``statex eval``: load an exported checkpoint, run the chosen probes, return one JSON-able result dict.

The runner needs no trainer: a model directory (base, LPT or StateX export, fla or statex layout) plus a
tokenizer directory (the model's own by default) is enough. Every probe is batched and shows a progress bar.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from statex_dist.eval import tasks as T
from statex_dist.eval.scoring import position_buckets, score_samples, token_losses

ALL_TASKS = ("passkey", "niah", "mqar", "ppl")


def parse_lengths(spec: str | list[int]) -> list[int]:
    """``1k,4k,16k`` -> ``[1024, 4096, 16384]``; plain integers are token counts."""
    if isinstance(spec, list):
        return [int(x) for x in spec]
    out = []
    for part in str(spec).split(","):
        part = part.strip().lower()
        if not part:
            continue
        mult = 1024 if part.endswith("k") else 1
        try:
            out.append(int(float(part.rstrip("k")) * mult))
        except ValueError as e:
            raise ValueError(f"length {part!r}: expected an integer or NUMk (e.g. 4k)") from e
    if not out or min(out) < 16:
        raise ValueError(f"lengths {spec!r}: need at least one length of 16 tokens or more")
    return out


def _floats(spec) -> list[float]:
    return [float(x) for x in spec.split(",")] if isinstance(spec, str) else [float(x) for x in spec]


def _ints(spec) -> list[int]:
    return [int(x) for x in spec.split(",")] if isinstance(spec, str) else [int(x) for x in spec]


@dataclass
class EvalConfig:
    """What ``statex eval`` measures; every field is a CLI flag of the same name."""

    tasks: list[str] = field(default_factory=lambda: ["passkey", "niah", "mqar"])
    """Any of passkey, niah, mqar, ppl (and lm_eval:<task>,... to forward to lm-evaluation-harness)."""
    lengths: list[int] = field(default_factory=lambda: [1024, 4096])
    """Prompt lengths in tokens for passkey and niah (and the window of ppl: the largest one)."""
    depths: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    """Needle depths as fractions of the haystack (0 = start, 1 = just before the question)."""
    samples: int = 10
    """Samples per (length, depth) cell and per MQAR pair count."""
    mqar_pairs: list[int] = field(default_factory=lambda: [4, 8, 16, 32, 64])
    """Numbers of key-value pairs for MQAR."""
    mqar_queries: int | None = None
    """Queries per MQAR sequence (None = every pair is queried)."""
    mqar_keys: int = 128
    """Size of the MQAR key pool (pseudo-words)."""
    mqar_values: int = 128
    """Size of the MQAR value pool (integers 0..N-1); chance accuracy is 1/N."""
    ppl_data: str | None = None
    """Held-out data for ppl: a directory from ``statex data prepare``, or .jsonl / .txt files."""
    ppl_windows: int = 8
    """Windows of max(lengths) tokens for ppl."""
    lm_eval_include: str | None = None
    """A folder of extra lm_eval task YAMLs (e.g. local SWDE/FDA copies)."""
    lm_eval_limit: float | None = None
    """lm_eval: documents per task (an int) or a fraction; None = all."""
    lm_eval_fewshot: int | None = None
    batch_size: int = 8
    max_batch_tokens: int = 65536
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in ALL_TASKS and not t.startswith("lm_eval:")]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; choose from {ALL_TASKS} or lm_eval:<task>[,<task>]")
        if "ppl" in self.tasks and not self.ppl_data:
            raise ValueError("task ppl needs --ppl-data (a prepared directory or .jsonl/.txt files)")
        if any(not 0.0 <= d <= 1.0 for d in self.depths):
            raise ValueError(f"depths must lie in [0, 1], got {self.depths}")
        if self.samples < 1:
            raise ValueError("samples must be >= 1")


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="seq", disable=not enabled, leave=False)


def eval_haystack(model, tok: T.TokenCache, task: str, cfg: EvalConfig, pad_id: int) -> dict:
    """passkey / niah: accuracy per (length, depth) cell, per length, and overall."""
    gen = T.TASKS[task]
    samples: list[T.Sample] = []
    for length in cfg.lengths:
        for depth in cfg.depths:
            samples += gen(tok, length, depth, cfg.samples, seed=cfg.seed)
    with _bar(len(samples), task, cfg.progress) as bar:
        ok = score_samples(model, samples, cfg.batch_size, cfg.max_batch_tokens, pad_id, bar)
    cells = []
    for length in cfg.lengths:
        for depth in cfg.depths:
            hits = [o[0] for s, o in zip(samples, ok) if s.meta["length"] == length and s.meta["depth"] == depth]
            cells.append({"length": length, "depth": depth, "accuracy": sum(hits) / len(hits), "n": len(hits)})
    by_length = {str(L): _mean([c["accuracy"] for c in cells if c["length"] == L]) for L in cfg.lengths}
    return {"cells": cells, "by_length": by_length, "accuracy": _mean([c["accuracy"] for c in cells]), "chance": 0.0}


def eval_mqar(model, tok: T.TokenCache, cfg: EvalConfig, pad_id: int) -> dict:
    """MQAR: accuracy over all queries, per number of pairs."""
    vocab = T.MQARVocab(num_keys=cfg.mqar_keys, num_values=cfg.mqar_values)
    samples: list[T.Sample] = []
    for pairs in cfg.mqar_pairs:
        samples += T.mqar_samples(tok, pairs, cfg.samples, seed=cfg.seed, num_queries=cfg.mqar_queries, vocab=vocab)
    with _bar(len(samples), "mqar", cfg.progress) as bar:
        ok = score_samples(model, samples, cfg.batch_size, cfg.max_batch_tokens, pad_id, bar)
    cells = []
    for pairs in cfg.mqar_pairs:
        hits = [h for s, o in zip(samples, ok) if s.meta["pairs"] == pairs for h in o]
        seqs = [all(o) for s, o in zip(samples, ok) if s.meta["pairs"] == pairs]
        cells.append({"pairs": pairs, "accuracy": sum(hits) / len(hits), "queries": len(hits),
                      "sequence_accuracy": sum(seqs) / len(seqs), "n": len(seqs)})
    return {"cells": cells, "accuracy": _mean([c["accuracy"] for c in cells]), "chance": 1.0 / cfg.mqar_values,
            "keys": cfg.mqar_keys, "values": cfg.mqar_values}


def read_token_stream(path: str, tokenizer, limit: int) -> list[int]:
    """Up to ``limit`` tokens of held-out documents, EOS-separated (prepared shards or raw text files)."""
    p = Path(path)
    stream: list[int] = []
    if p.is_dir() and (p / "statex_index.json").is_file():
        meta = json.loads((p / "statex_index.json").read_text())
        if meta["format"] == "mds":
            from statex_dist.data.mds import MDSShards

            shards = MDSShards(str(p))
            i = 0
            while len(stream) < limit and i < meta["documents"]:
                stream += shards.get(i)[1].tolist()
                i += 1
        else:
            from statex_dist.data.sources import read_wds_docs

            for part in meta["parts"]:
                for _, toks in read_wds_docs(str(p / part["name"])):
                    stream += toks.tolist()
                    if len(stream) >= limit:
                        return stream[:limit]
        return stream[:limit]
    from statex_dist.data.readers import expand_paths, iter_documents

    eos = tokenizer.eos_token_id
    for doc in iter_documents(expand_paths(path), "text"):
        stream += tokenizer(doc.text, add_special_tokens=False)["input_ids"] + [eos]
        if len(stream) >= limit:
            break
    return stream[:limit]


def eval_ppl(model, tokenizer, cfg: EvalConfig) -> dict:
    """Loss by position on packed held-out windows: falling loss at later positions = the context is used."""
    seq_len = max(cfg.lengths)
    stream = read_token_stream(cfg.ppl_data, tokenizer, seq_len * cfg.ppl_windows)
    windows = [stream[i:i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)]
    if not windows:
        raise ValueError(f"{cfg.ppl_data}: fewer than {seq_len} tokens of held-out data; lower --lengths")
    with _bar(len(windows), "ppl", cfg.progress) as bar:
        losses = token_losses(model, windows, progress=bar)
    buckets = []
    for lo, hi in position_buckets(losses.shape[1]):
        loss = float(losses[:, lo:hi].mean())
        buckets.append({"start": lo + 1, "end": hi + 1, "loss": loss, "ppl": math.exp(min(loss, 50.0))})
    mean = float(losses.mean())
    return {"buckets": buckets, "loss": mean, "ppl": math.exp(min(mean, 50.0)), "seq_len": seq_len,
            "windows": len(windows)}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def model_summary(model) -> dict:
    out = {"parameters": sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())}
    try:
        from statex_dist.expansion.report import build_report

        rep = build_report(model.config)
        out.update(state_elements=rep["state_elements"], expanded_layers=rep["expanded_layers"],
                   family=rep["family"])
    except Exception:  # a foreign model: parameters only
        pass
    return out


def run_eval(model, tokenizer, cfg: EvalConfig, label: str | None = None) -> dict:
    """Run ``cfg.tasks`` on an in-memory model; returns the result dict (see docs/evaluation.md)."""
    model.eval()
    tok = T.TokenCache(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    result = {"label": label, "settings": asdict(cfg), "model": model_summary(model), "tasks": {}}
    start = time.time()
    torch.manual_seed(cfg.seed)
    for task in cfg.tasks:
        t0 = time.time()
        if task in T.HAYSTACK_TASKS:
            out = eval_haystack(model, tok, task, cfg, pad_id)
        elif task == "mqar":
            out = eval_mqar(model, tok, cfg, pad_id)
        elif task == "ppl":
            out = eval_ppl(model, tokenizer, cfg)
        else:
            from statex_dist.eval.harness import run_lm_eval

            limit = cfg.lm_eval_limit
            out = run_lm_eval(model, tokenizer, task.split(":", 1)[1].split(","), batch_size=cfg.batch_size,
                              limit=int(limit) if limit is not None and limit >= 1 else limit,
                              num_fewshot=cfg.lm_eval_fewshot, include_path=cfg.lm_eval_include)
            task = "lm_eval"
        out["seconds"] = round(time.time() - t0, 2)
        result["tasks"][task] = out
    result["seconds"] = round(time.time() - start, 2)
    return result


def load_for_eval(model_dir: str, tokenizer_dir: str | None = None, dtype: str = "float32", device: str = "cpu"):
    """Our model class for ``model_dir`` and its tokenizer (``tokenizer_dir`` or the model directory)."""
    from statex_dist.data.tokenizer import load_tokenizer
    from statex_dist.models.loading import load_pretrained

    model = load_pretrained(model_dir, dtype=getattr(torch, dtype), device=device)
    tokenizer = load_tokenizer(tokenizer_dir or model_dir)
    return model, tokenizer


def evaluate_dir(model_dir: str, cfg: EvalConfig, tokenizer_dir: str | None = None, label: str | None = None) -> dict:
    model, tokenizer = load_for_eval(model_dir, tokenizer_dir, cfg.dtype, cfg.device)
    result = run_eval(model, tokenizer, cfg, label=label or Path(model_dir).name)
    result["model"]["path"] = str(model_dir)
    return result
