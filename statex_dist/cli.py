"""The ``statex`` command line: one sub-command per verb, each a thin wrapper over a library function.

Sub-commands owned by other packages register themselves through a ``register(subparsers)`` function
(``statex_dist.data.cli``, ``statex_dist.train.cli``, ``statex_dist.eval.cli``); a package that is missing its
optional dependencies leaves its verbs out with a note instead of breaking the whole CLI.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from statex_dist.expansion.plan import ExpansionError, ExpansionPlan
from statex_dist.models.loading import CheckpointError

# Packages that add their own verbs: (module, what it adds).
PLUGINS = (
    ("statex_dist.data.cli", "data"),
    ("statex_dist.train.cli", "train, export"),
    ("statex_dist.eval.cli", "eval, demo"),
)


def cmd_expand(args: argparse.Namespace) -> int:
    from statex_dist.expansion.apply import expand_checkpoint
    from statex_dist.expansion.report import format_report, inspect_checkpoint

    plan = ExpansionPlan(
        layers=args.layers, mode=args.mode, gla_heads=args.gla_heads,
        mamba2_state_size=args.mamba2_state_size, seed=args.seed,
    )
    out = expand_checkpoint(args.model, args.out, plan, overwrite=args.overwrite)
    print(format_report(inspect_checkpoint(out)))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from statex_dist.expansion.report import format_report, inspect_checkpoint

    report = inspect_checkpoint(args.dir, meta=args.meta)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def cmd_convert_mamba_ssm(args: argparse.Namespace) -> int:
    from statex_dist.models.loading import convert_mamba_ssm

    print(convert_mamba_ssm(args.src, args.dst))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="statex", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("expand", help="expand the recurrent state of chosen layers of a checkpoint")
    p.add_argument("--model", required=True, help="input checkpoint directory (fla / Hugging Face format)")
    p.add_argument("--out", required=True, help="output directory (written atomically)")
    p.add_argument("--layers", default="every:6", help="every:K | all | 0,6,12,18 (default: every:6)")
    p.add_argument("--mode", default="reinit", choices=["reinit", "inherit", "preserve"])
    p.add_argument("--gla-heads", type=int, default=1, help="GLA: heads of an expanded layer (default 1)")
    p.add_argument("--mamba2-state-size", type=int, default=512, help="Mamba2: d_state of an expanded layer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_expand)

    p = sub.add_parser("inspect", help="per-layer state geometry, parameters and state size of a checkpoint")
    p.add_argument("dir")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--meta", action="store_true", help="read config.json only (no weight files needed)")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("convert-mamba-ssm", help="convert a mamba_ssm Mamba2 checkpoint to the fla/HF layout")
    p.add_argument("src")
    p.add_argument("dst")
    p.set_defaults(func=cmd_convert_mamba_ssm)

    for module_name, verbs in PLUGINS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            if e.name and not e.name.startswith("statex_dist"):
                print(f"note: `statex {verbs}` unavailable ({e.name} is not installed)", file=sys.stderr)
                continue
            if e.name == module_name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ExpansionError, CheckpointError, FileExistsError, FileNotFoundError) as e:
        print(f"statex {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
