"""Tokenizers from local directories only: train a small one for tests/demos, load the model's own.

Loading never touches the network: a path that is not a local directory is an error, so a typo cannot turn
into a silent Hub download on a cluster node.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

EOS_TOKEN = "</s>"
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"


def _iter_texts(texts_or_files: Iterable[str] | str | Path) -> Iterable[str]:
    if isinstance(texts_or_files, (str, Path)):
        texts_or_files = [texts_or_files]
    for item in texts_or_files:
        # A short string that names an existing file is read; anything else is training text itself.
        if isinstance(item, Path) or (len(str(item)) < 4096 and "\n" not in str(item) and os.path.isfile(item)):
            from statex_dist.data.readers import iter_documents

            for doc in iter_documents([str(item)], text_field="text"):
                yield doc.text
        else:
            yield str(item)


def train_tokenizer(texts_or_files, vocab_size: int, out_dir: str | Path) -> Path:
    """Train a byte-level BPE tokenizer and save it as an HF tokenizer directory (EOS ``</s>``, id 0).

    Byte-level means any text encodes without unknown tokens, so tiny corpora still give a usable tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    special = [EOS_TOKEN, PAD_TOKEN, UNK_TOKEN]
    tok = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_iter_texts(texts_or_files), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, unk_token=UNK_TOKEN
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir))
    return out_dir


def load_tokenizer(path: str | Path):
    """Load an HF tokenizer from a local directory; refuse anything else (no Hub access, ever)."""
    from transformers import AutoTokenizer

    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(
            f"tokenizer {str(path)!r} is not a local directory; statex never downloads tokenizers. "
            "Point it at the model's directory (with tokenizer.json or tokenizer.model)."
        )
    try:
        tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except Exception as e:  # transformers raises several types here
        raise ValueError(f"tokenizer directory {p} could not be loaded: {e}") from e
    if tok.eos_token_id is None:
        raise ValueError(f"tokenizer in {p} has no EOS token; set eos_token in its tokenizer_config.json")
    return tok


def encode_batch(tok, texts: list[str]) -> list[list[int]]:
    """Token ids without special tokens (EOS is appended by the caller, once per document)."""
    if not texts:
        return []
    return tok(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]


def check_vocab(vocab_size_data: int, vocab_size_model: int | None, what: str) -> None:
    """Fail before training when the data's ids can exceed the model's embedding table."""
    if vocab_size_model is not None and vocab_size_data > vocab_size_model:
        raise ValueError(
            f"{what}: tokenizer vocabulary has {vocab_size_data} ids but the model's vocab_size is "
            f"{vocab_size_model}; use the model's own tokenizer (or re-prepare the corpus with it)"
        )
