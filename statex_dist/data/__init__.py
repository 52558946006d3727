"""Data layer: prepare tokenized shards, stream and pack them into the trainer's batches, resume exactly.

Public entry points: :class:`DataConfig`, :func:`build_dataloader`, :func:`prepare_corpus`,
:func:`train_tokenizer`, :func:`load_tokenizer`. Imports are lazy so ``import statex_dist.data`` stays cheap.
"""

from statex_dist.data.config import DataConfig, SourceConfig

__all__ = ["DataConfig", "SourceConfig", "build_dataloader", "prepare_corpus", "train_tokenizer", "load_tokenizer"]


def __getattr__(name: str):
    if name == "build_dataloader":
        from statex_dist.data.loader import build_dataloader

        return build_dataloader
    if name == "prepare_corpus":
        from statex_dist.data.prepare import prepare_corpus

        return prepare_corpus
    if name in ("train_tokenizer", "load_tokenizer"):
        from statex_dist.data import tokenizer

        return getattr(tokenizer, name)
    raise AttributeError(name)
