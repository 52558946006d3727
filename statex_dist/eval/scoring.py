"""Batched scoring of :class:`~statex_dist.eval.tasks.Sample` s and per-position losses, for any causal LM.

Exact match is measured teacher-forced: an answer span is correct when, at every token of the span, the
model's argmax given the true prefix is that token. For greedy decoding this is the same event as "the first
``len(answer)`` generated tokens equal the answer's tokens", at the cost of one forward pass for all queries
of a sample (MQAR scores every query of a sequence at once). It differs from free generation only when the
model would produce the same string through another tokenization, which we count as wrong.

Batches are right-padded: in a causal model padding after a sequence cannot change any position before it,
so no attention mask is needed (our recurrent models refuse masks). Samples are sorted by length and grouped
under a token budget, so a 64K-token probe runs alone and 1K probes run many at a time.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch
import torch.nn.functional as F

from statex_dist.eval.tasks import Sample


def length_batches(lengths: list[int], batch_size: int, max_batch_tokens: int) -> Iterator[list[int]]:
    """Indices grouped by similar length: at most ``batch_size`` rows and ``max_batch_tokens`` padded tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batch: list[int] = []
    for i in order:
        longest = max([lengths[j] for j in batch] + [lengths[i]])
        if batch and (len(batch) + 1 > batch_size or longest * (len(batch) + 1) > max_batch_tokens):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def final_hidden(model, input_ids: torch.Tensor) -> tuple[torch.Tensor, callable]:
    """Hidden states before the LM head, and the head; avoids ``[B, T, vocab]`` logits at 64K tokens."""
    backbone = getattr(model, "backbone_module", None)
    if backbone is not None and hasattr(model, "lm_head"):
        return backbone(input_ids=input_ids), model.lm_head
    # Any other causal LM: full logits (fine for short probes and test doubles).
    logits = model(input_ids=input_ids).logits
    return logits, lambda h: h


def _pad(rows: list[list[int]], pad_id: int, device) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out.to(device)


@torch.no_grad()
def score_samples(model, samples: list[Sample], batch_size: int = 8, max_batch_tokens: int = 65536,
                  pad_id: int = 0, progress=None) -> list[list[bool]]:
    """For each sample, whether each of its answer spans is the model's greedy continuation."""
    device = next(model.parameters()).device if any(True for _ in model.parameters()) else "cpu"
    results: list[list[bool] | None] = [None] * len(samples)
    for idx in length_batches([len(s.input_ids) for s in samples], batch_size, max_batch_tokens):
        ids = _pad([samples[i].input_ids for i in idx], pad_id, device)
        hidden, head = final_hidden(model, ids)
        for row, i in enumerate(idx):
            s = samples[i]
            # position p is predicted by the output at p - 1
            pos = torch.tensor([p - 1 for a, b in s.answers for p in range(a, b)], device=device)
            pred = head(hidden[row, pos]).argmax(-1).tolist()
            target = [s.input_ids[p] for a, b in s.answers for p in range(a, b)]
            ok, k = [], 0
            for a, b in s.answers:
                ok.append(pred[k:k + b - a] == target[k:k + b - a])
                k += b - a
            results[i] = ok
        if progress is not None:
            progress.update(len(idx))
    return results  # type: ignore[return-value]


@torch.no_grad()
def token_losses(model, windows: Iterable[list[int]], chunk: int = 4096, progress=None) -> torch.Tensor:
    """Per-position next-token loss ``[num_windows, T - 1]`` (fp32), one window at a time."""
    rows = []
    for w in windows:
        device = next(model.parameters()).device
        ids = torch.tensor([w], dtype=torch.long, device=device)
        hidden, head = final_hidden(model, ids)
        losses = []
        for s in range(0, ids.shape[1] - 1, chunk):
            e = min(s + chunk, ids.shape[1] - 1)
            logits = head(hidden[0, s:e]).float()
            losses.append(F.cross_entropy(logits, ids[0, s + 1:e + 1], reduction="none"))
        rows.append(torch.cat(losses).cpu())
        if progress is not None:
            progress.update(1)
    return torch.stack(rows)


def position_buckets(seq_len: int) -> list[tuple[int, int]]:
    """Power-of-two position ranges ``[0, 2), [2, 4), ... `` covering ``seq_len`` predicted positions."""
    out, lo = [], 0
    hi = 2
    while lo < seq_len:
        out.append((lo, min(hi, seq_len)))
        lo, hi = hi, hi * 2
    return out
