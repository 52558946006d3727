"""``statex data prepare|inspect``: argparse wiring only; the work is in ``prepare.py``."""

from __future__ import annotations

import argparse
import logging
import sys


def _prepare(args: argparse.Namespace) -> int:
    from statex_dist.data.prepare import prepare_corpus

    index = prepare_corpus(args.input, args.tokenizer, args.out, fmt=args.format, text_field=args.text_field,
                           shard_size=args.shard_size, workers=args.workers, on_bad_sample=args.on_bad_sample,
                           progress=not args.quiet)
    print(f"{args.out}: {len(index['parts'])} shards, {index['documents']:,} documents, {index['tokens']:,} tokens"
          f" ({index['parts_reused']} shards reused, {index['empty_docs']} empty documents skipped)")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from statex_dist.data.prepare import inspect_corpus

    print(inspect_corpus(args.dir, tokenizer=args.tokenizer, sample=args.sample))
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``data`` (with ``prepare`` and ``inspect``) to an argparse sub-parser set."""
    data = subparsers.add_parser("data", help="prepare and inspect tokenized corpora")
    sub = data.add_subparsers(dest="data_command", required=True)
    p = sub.add_parser("prepare", help="tokenize jsonl / jsonl.zst / parquet / txt into MDS or WebDataset shards")
    p.add_argument("--input", required=True, help="files, globs or directories, comma-separated")
    p.add_argument("--tokenizer", required=True, help="local tokenizer directory (the model's own)")
    p.add_argument("--out", required=True, help="output directory (re-running resumes it)")
    p.add_argument("--format", choices=["mds", "wds"], default="mds")
    p.add_argument("--text-field", default="text", help="JSON field / parquet column with the text")
    p.add_argument("--shard-size", type=int, default=10000, help="documents per shard")
    p.add_argument("--workers", type=int, default=1, help="tokenizer processes")
    p.add_argument("--on-bad-sample", choices=["skip", "stop"], default="stop")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_prepare)
    i = sub.add_parser("inspect", help="shards, documents, tokens and a decoded sample of a prepared directory")
    i.add_argument("dir")
    i.add_argument("--tokenizer", default=None, help="tokenizer directory (default: the one used to prepare)")
    i.add_argument("--sample", type=int, default=0, help="which document to decode")
    i.set_defaults(func=_inspect)
    return data


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m statex_dist.data.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] != "data":
        argv = ["data"] + argv  # allow `python -m statex_dist.data.cli prepare ...`
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
