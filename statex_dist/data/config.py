"""Data-layer config: which sources, how rows are packed, how the loader runs.

Only types that ``statex_dist.config.io.from_dict`` understands (nested dataclasses, Literal, Optional, lists),
so a YAML ``data:`` section maps onto :class:`DataConfig` strictly. Cross-field rules live in ``__post_init__``
and say how to fix the problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

SourceKind = Literal["mds", "wds", "hf", "jsonl", "text"]


@dataclass
class SourceConfig:
    """One source of documents; several are mixed by ``weight``."""

    kind: SourceKind = "mds"
    """mds: directory written by ``statex data prepare --format mds`` (or any MDS with an ``input_ids`` column);
    wds: WebDataset tar shards; hf: Hugging Face ``datasets`` (local files or a dataset name, always streamed);
    jsonl / text: raw local files tokenized on the fly."""
    path: str = ""
    """mds: local directory (the cache when ``remote`` is set); wds: directory holding ``statex_index.json``, a
    glob, or a brace URL webdataset can open; hf: files/glob or a dataset name; jsonl/text: files or globs,
    comma-separated."""
    remote: Optional[str] = None
    """mds only: remote root (s3://, gs://, ... or another directory) downloaded on demand into ``path``."""
    weight: float = 1.0
    """Relative share of documents drawn from this source when several are mixed."""
    text_field: str = "text"
    """Field holding the text (jsonl, hf with ``tokenized: false``)."""
    tokenized: bool = True
    """hf only: records already carry ``input_ids``; otherwise ``text_field`` is tokenized on the fly."""
    hf_format: Optional[Literal["json", "parquet", "text"]] = None
    """hf only: builder for local files (guessed from the extension when null); unused for dataset names."""
    split: str = "train"
    """hf only: which split."""

    def __post_init__(self) -> None:
        if not self.path and not (self.kind == "mds" and self.remote):
            raise ValueError(f"a {self.kind} source needs `path` (a directory, files or a URL)")
        if self.weight <= 0:
            raise ValueError(f"source {self.path!r}: weight must be > 0 (got {self.weight}); drop the source instead")
        if self.remote is not None and self.kind != "mds":
            raise ValueError(f"source {self.path!r}: `remote` is only for kind mds; put the URL in `path` for {self.kind}")


@dataclass
class DataConfig:
    """What the trainer's data loader produces per data-parallel rank."""

    sources: list[SourceConfig] = field(default_factory=list)
    """Document sources, mixed by weight."""
    seq_len: int = 4096
    """Tokens per row (T). The paper post-trains at 65536."""
    micro_batch_size: int = 1
    """Rows per rank per micro-step (B)."""
    reset_state_at_docs: bool = False
    """True: emit ``cu_seqlens`` so the recurrent state resets at each document. False: the paper's behaviour,
    documents packed with EOS and no reset."""
    packing: Literal["concat", "pad"] = "concat"
    """concat: one continuous token stream cut into rows (no padding until the data ends). pad: each row starts
    at a document start; a document that does not fit goes to the next row, the rest is padding (ignored by
    the loss); documents longer than a row are split."""
    shuffle_buffer: int = 10000
    """Documents in the seeded shuffle window (MDS: samples per shuffled block; streams: buffer). 0 = in order."""
    seed: int = 0
    """Seeds shuffling and mixing; same seed + same state = same batches."""
    epochs: Optional[int] = None
    """Passes over each source; null = repeat forever (the trainer stops by step count)."""
    num_workers: int = 1
    """DataLoader worker processes per rank (0 = in the main process)."""
    prefetch_factor: int = 4
    """Batches each worker prepares ahead (ignored with num_workers 0)."""
    on_bad_sample: Literal["skip", "stop"] = "stop"
    """An unreadable sample or shard member: skip it and count (a warning names the file), or stop with an error."""
    tokenizer: Optional[str] = None
    """Local tokenizer directory, needed for raw sources (jsonl, text, hf with tokenized false)."""
    eos_id: Optional[int] = None
    """EOS id appended by on-the-fly tokenization and used as padding id; null = from the tokenizer or index."""
    cache_dir: Optional[str] = None
    """Where remote MDS shards and HF dataset files are cached; null = next to ``path`` / the HF default."""
    timeout_s: float = 600.0
    """A worker that produces nothing for this long is an error, never a silent hang."""

    def __post_init__(self) -> None:
        if self.seq_len < 2:
            raise ValueError(f"seq_len must be >= 2 (got {self.seq_len})")
        if self.micro_batch_size < 1:
            raise ValueError(f"micro_batch_size must be >= 1 (got {self.micro_batch_size})")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0 (got {self.num_workers})")
        if self.shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be >= 0 (got {self.shuffle_buffer}); use 0 for no shuffling")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1 or null for endless (got {self.epochs})")
        raw = [s for s in self.sources if s.kind in ("jsonl", "text") or (s.kind == "hf" and not s.tokenized)]
        if raw and not self.tokenizer:
            raise ValueError(
                f"source {raw[0].path!r} ({raw[0].kind}) is tokenized on the fly: set data.tokenizer to a local "
                "tokenizer directory, or prepare the corpus first with `statex data prepare`"
            )

    @property
    def consumers_per_rank(self) -> int:
        """Independent readers per rank: one per worker, or one for the main process."""
        return max(1, self.num_workers)
