"""Chunk-aligned layout shared by the pure-PyTorch chunked kernels.

A batch ``[B, T, ...]`` (or one packed row ``[1, total, ...]`` with ``cu_seqlens``) is padded so that every
sequence starts on a chunk boundary and fills whole chunks. Padded positions carry zero keys/values and zero
log decay, so they change neither the outputs of real positions nor the state carried out of a sequence.
The inter-chunk state scan then walks chunks in order and resets the state where a sequence starts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


def gla_state_stride(K: int, V: int) -> int:
    """Tokens between the states the Triton GLA kernels store (their chunk size): large states less often,
    for transient memory and bandwidth. Here (no triton import) so shape functions can use it."""
    return 64 if K * V <= 256 * 512 else 256


def interpreting() -> bool:
    """True under Triton's CPU interpreter (``TRITON_INTERPRET=1``): it dots in fp32, so every buffer is fp32."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def chunk_state_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype of the chunk-start states the Triton GLA and SSD kernels store: bf16 for bf16 inputs (the dtype of
    the matmuls they enter), fp32 for fp16 (its range is too narrow for a state) and fp32 inputs and under the
    interpreter."""
    return torch.bfloat16 if dtype == torch.bfloat16 and not interpreting() else torch.float32


def chunk_capacity(B: int, T: int, CH: int, n_seqs: int | None = None) -> int:
    """Rows of the Triton kernels' per-chunk buffers: exact for ``B`` rows of ``T`` tokens; for one packed row of
    ``n_seqs`` sequences an upper bound from static sizes (each sequence adds at most one partial chunk), so the
    custom ops' fake tensors can be shaped without reading ``cu_seqlens``."""
    return B * -(-T // CH) if n_seqs is None else (B * T) // CH + n_seqs


def gla_forward_buffers(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor | None, CH: int,
                        scores: bool = True, states: bool = True) -> list[torch.Tensor]:
    """Empty buffers the Triton GLA forward fills, shaped from static sizes only: the chunk scores ``A``
    (``scores``), then (``states``) the fp32 in-chunk cumulative log decay ``gc`` per token and its chunk total
    ``gl``, the decayed ``q`` and ``k``, and the chunk-start states ``h``. The same call shapes the real buffers
    and the custom op's fake ones, so they cannot disagree."""
    B, T, H, K = q.shape
    R, V = B * T, v.shape[-1]
    NC = chunk_capacity(B, T, CH, None if cu_seqlens is None else cu_seqlens.shape[0] - 1)
    out = [q.new_empty(R, H, CH, dtype=gla_score_dtype(q.dtype))] if scores else []
    if states:
        out += [q.new_empty(R, H, K, dtype=torch.float32), q.new_empty(NC, H, K, dtype=torch.float32),
                q.new_empty(R, H, K), k.new_empty(R, H, K),
                q.new_empty(NC, H, K, V, dtype=chunk_state_dtype(q.dtype))]
    return out


def ssd_state_buffer(x: torch.Tensor, cu_seqlens: torch.Tensor | None, N: int, L: int) -> torch.Tensor:
    """Empty ``[capacity, H, P, N]`` buffer for the chunk-entry states the Triton SSD forward keeps for the
    backward (``L``-token chunks), shaped from static sizes only: the real buffer and the custom op's fake one."""
    b, T, H, P = x.shape
    cap = chunk_capacity(b, T, L, None if cu_seqlens is None else cu_seqlens.shape[0] - 1)
    return x.new_empty(cap, H, P, N, dtype=chunk_state_dtype(x.dtype))


def gla_score_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype of the chunk scores the Triton GLA forward keeps for the backward: that of the matmuls they enter
    (the input dtype for 16-bit inputs, so storing them rounded loses nothing; fp32 for fp32 inputs and under the
    Triton interpreter, which dots in fp32)."""
    return torch.float32 if dtype == torch.float32 or interpreting() else dtype


@dataclass
class ChunkLayout:
    """Where each token lives in the padded, chunk-aligned tensor.

    rows: leading dim of the padded tensor (B, or 1 when packed).
    num_chunks: chunks per row after padding.
    num_seqs: number of sequences (B, or len(cu_seqlens) - 1).
    index: for packed input, destination position of each real token in the padded row; None otherwise.
    seq_chunks: for packed input, (first_chunk, num_chunks) per sequence; None otherwise.
    """

    T: int
    chunk_size: int
    rows: int
    num_chunks: int
    num_seqs: int
    index: torch.Tensor | None = None
    seq_chunks: list[tuple[int, int]] | None = None

    @classmethod
    def build(cls, B: int, T: int, chunk_size: int, cu_seqlens: torch.Tensor | None, device) -> "ChunkLayout":
        C = chunk_size
        if cu_seqlens is None:
            return cls(T=T, chunk_size=C, rows=B, num_chunks=-(-T // C), num_seqs=B)
        if B != 1:
            raise ValueError(f"cu_seqlens requires batch size 1 (flatten the batch first), got B={B}")
        offsets = [int(x) for x in cu_seqlens.tolist()]
        if offsets[0] != 0 or offsets[-1] != T or any(b < a for a, b in zip(offsets, offsets[1:])):
            raise ValueError(f"cu_seqlens must rise from 0 to T={T}, got {offsets[:4]}...{offsets[-2:]}")
        lengths = [b - a for a, b in zip(offsets, offsets[1:])]
        chunks = [-(-n // C) for n in lengths]
        seq_chunks, starts, first = [], [], 0
        for n in chunks:
            seq_chunks.append((first, n))
            starts.append(first * C)
            first += n
        # destination of token t of sequence i: starts[i] + (t - offsets[i])
        seq_id = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths, dtype=torch.long))
        shift = torch.tensor([s - o for s, o in zip(starts, offsets[:-1])], dtype=torch.long)
        index = (torch.arange(T) + shift[seq_id]).to(device)
        return cls(T=T, chunk_size=C, rows=1, num_chunks=first, num_seqs=len(lengths), index=index,
                   seq_chunks=seq_chunks)

    @property
    def padded_len(self) -> int:
        return self.num_chunks * self.chunk_size

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """[rows, T, ...] -> [rows, num_chunks * chunk_size, ...] with zeros in the gaps."""
        Tp = self.padded_len
        if self.index is None:
            if Tp == self.T:
                return x
            return torch.nn.functional.pad(x, (0, 0) * (x.dim() - 2) + (0, Tp - self.T))
        out = x.new_zeros(1, Tp, *x.shape[2:])
        return out.index_copy(1, self.index, x)

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        if self.index is None:
            return x[:, : self.T]
        return x.index_select(1, self.index)


def scan_chunk_states(
    U: torch.Tensor,
    decay: torch.Tensor,
    layout: ChunkLayout,
    initial_state: torch.Tensor | None,
    output_final_state: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Walk chunks in order: S_in[n] = state before chunk n; S <- decay[n] * S + U[n].

    U: [rows, H, N, X, Y] state increment of each chunk (already decayed to the chunk end).
    decay: [rows, H, N, X or 1, Y or 1] total decay factor of each chunk.
    initial_state: [num_seqs, H, X, Y] or None. Returns (S_in [rows, H, N, X, Y], final [num_seqs, H, X, Y]).
    """
    rows, H, N, X, Y = U.shape
    zero = U.new_zeros(rows if layout.seq_chunks is None else 1, H, X, Y)
    states = []
    finals = []
    if layout.seq_chunks is None:
        S = zero if initial_state is None else initial_state.to(U.dtype)
        for n in range(N):
            states.append(S)
            S = decay[:, :, n] * S + U[:, :, n]
        finals = S
    else:
        for i, (first, count) in enumerate(layout.seq_chunks):
            S = zero if initial_state is None else initial_state[i : i + 1].to(U.dtype)
            for n in range(first, first + count):
                states.append(S)
                S = decay[:, :, n] * S + U[:, :, n]
            finals.append(S)
        finals = torch.cat(finals, 0)
    S_in = torch.stack(states, 2) if states else U.new_zeros(rows, H, 0, X, Y)
    return S_in, (finals if output_final_state else None)
