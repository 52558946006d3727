"""``statex train`` and ``statex export``: thin wrappers over ``train.api`` and ``checkpoint.export``."""

from __future__ import annotations

import argparse
import sys


def cmd_train(args: argparse.Namespace) -> int:
    from statex_dist.config.io import ConfigError, to_dict

    try:
        if args.check or args.print_run_dir:
            import yaml

            from statex_dist.train.config import load_train_config

            cfg = load_train_config(args.config, args.overrides)
            print(cfg.run_dir if args.print_run_dir else yaml.safe_dump(to_dict(cfg), sort_keys=False), end="\n")
            return 0
        from statex_dist.train.api import main

        return main(args.config, args.overrides)
    except ConfigError as e:
        print(f"statex train: config error: {e}", file=sys.stderr)
        return 2


def cmd_export(args: argparse.Namespace) -> int:
    from statex_dist.checkpoint.export import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.out, overwrite=args.overwrite)
    print(out)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="post-train an (expanded) GLA / Mamba2 model: one CPU, one GPU, a node or many nodes",
        description="Launch under torchrun / the deepspeed launcher / slurm/post_train.sh for several processes. "
                    "Exit code 75 = checkpointed on SIGUSR1/SIGTERM/STOP file; run again to resume.",
    )
    p.add_argument("--config", help="training YAML (configs/*.yaml)")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. optim.lr=1e-4 steps=100")
    p.add_argument("--check", action="store_true", help="validate the config, print it resolved, start nothing")
    p.add_argument("--print-run-dir", action="store_true", help="print the run directory (for launch scripts)")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("export", help="checkpoint (or run directory) -> Hugging Face directory")
    p.add_argument("checkpoint", help="RUN_DIR, RUN_DIR/checkpoints or RUN_DIR/checkpoints/step_XXXXXXXX")
    p.add_argument("--out", required=True, help="output directory (written atomically)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_export)
