"""Pack documents into fixed rows of ``seq_len`` tokens plus one look-ahead token for the shifted labels.

concat: the stream is cut every T tokens and row r holds stream tokens [rT, rT + T]; the last one is only a
label and opens row r + 1, so every token is an input once and a target once. pad: rows start at document
starts; a document that does not fit goes to the next row and the rest of the row is padding (-100 labels).
Documents longer than a row are split in both modes. Document starts inside each row become ``cu_seqlens``.
"""

from __future__ import annotations

import numpy as np
import torch

IGNORE = -100


class Packer:
    """Rows from a document stream, with a state that points at the next row's first token."""

    def __init__(self, stream, seq_len: int, mode: str, pad_id: int):
        self.stream, self.T, self.mode, self.pad_id = stream, seq_len, mode, pad_id
        self.cur: np.ndarray | None = None  # document being consumed
        self.cur_state: dict | None = None  # stream state before ``cur`` was pulled
        self.off = 0
        self.ended = False

    def state(self) -> dict:
        if self.cur is not None and self.off < len(self.cur):
            return {"doc": self.cur_state, "offset": self.off}
        return {"doc": self.stream.state(), "offset": 0}

    def restore(self, st: dict) -> None:
        self.stream.restore(st["doc"])
        self.cur, self.off, self.ended = None, 0, False
        if st["offset"]:
            self._pull()
            self.off = st["offset"]

    def _pull(self) -> bool:
        while True:  # zero-length documents carry no tokens and no boundary
            self.cur_state = self.stream.state()
            self.cur, self.off = self.stream.next(), 0
            if self.cur is None or len(self.cur):
                break
        if self.cur is None:
            self.ended = True
        return self.cur is not None

    def next_row(self, out: np.ndarray) -> tuple[int, list[int], bool] | None:
        """Fill ``out`` (int64 [T + 1]); return (tokens filled, document starts in the row, look-ahead valid)."""
        if self.ended:
            return None
        T, filled, starts = self.T, 0, [0]
        if self.mode == "concat":
            while filled < T + 1:
                held = self.cur is not None and self.off < len(self.cur)
                if not held:
                    if not self._pull():
                        break
                    if 0 < filled < T:
                        starts.append(filled)
                take = min(len(self.cur) - self.off, T + 1 - filled)
                out[filled:filled + take] = self.cur[self.off:self.off + take]
                filled += take
                self.off += take
            if filled == T + 1:
                self.off -= 1  # the look-ahead token opens the next row
                return T, starts, True
        else:
            while filled < T:
                held = self.cur is not None and self.off < len(self.cur)
                if not held and not self._pull():
                    break
                rem = len(self.cur) - self.off
                if rem <= T - filled:
                    if filled:
                        starts.append(filled)
                    out[filled:filled + rem] = self.cur[self.off:]
                    filled += rem
                    self.off += rem
                elif filled == 0:  # overlong document: split, keeping its next token as the look-ahead
                    out[:T + 1] = self.cur[self.off:self.off + T + 1]
                    self.off += T
                    return T, starts, True
                else:
                    break
        if filled <= 1 and self.ended:
            return None
        out[filled:] = self.pad_id
        return filled, starts, False


def collate(rows: np.ndarray, fills: list[tuple[int, list[int], bool]], reset: bool) -> dict:
    """[B, T + 1] int64 tokens + per-row fill info -> the batch contract (input_ids, shifted labels, cu_seqlens)."""
    B, T = rows.shape[0], rows.shape[1] - 1
    t = torch.from_numpy(rows)
    input_ids = t[:, :-1].clone()
    labels = t[:, 1:].clone()
    cu = []
    for b, (filled, starts, lookahead) in enumerate(fills):
        valid = filled if lookahead else filled - 1
        if valid < T:
            labels[b, max(valid, 0):] = IGNORE
        if reset:
            cu.extend(b * T + s for s in starts)
            if filled < T and filled > 0:
                cu.append(b * T + filled)  # padding is its own segment
    batch = {"input_ids": input_ids, "labels": labels}
    if reset:
        cu.append(B * T)
        batch["cu_seqlens"] = torch.tensor(cu, dtype=torch.int32)
    return batch
