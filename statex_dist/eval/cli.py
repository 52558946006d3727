"""``statex eval`` and ``statex demo``: thin wrappers over :mod:`statex_dist.eval.runner` and :mod:`statex_dist.demo`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_eval(args: argparse.Namespace) -> int:
    from statex_dist.eval.report import load_results, markdown_tables, groups_from_results, write_outputs
    from statex_dist.eval.runner import EvalConfig, evaluate_dir, parse_lengths

    results = load_results(args.results) if args.results else []
    if args.model:
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
        # lm_eval:a,b is one entry: re-join what the comma split tore apart
        merged: list[str] = []
        for t in tasks:
            if merged and merged[-1].startswith("lm_eval:") and t not in ("passkey", "niah", "mqar", "ppl"):
                merged[-1] += "," + t
            else:
                merged.append(t)
        cfg = EvalConfig(
            tasks=merged, lengths=parse_lengths(args.lengths), depths=[float(x) for x in args.depths.split(",")],
            samples=args.samples, mqar_pairs=[int(x) for x in args.mqar_pairs.split(",")],
            mqar_queries=args.mqar_queries, mqar_keys=args.mqar_keys, mqar_values=args.mqar_values,
            ppl_data=args.ppl_data, ppl_windows=args.ppl_windows, lm_eval_include=args.lm_eval_include,
            lm_eval_limit=args.lm_eval_limit, lm_eval_fewshot=args.lm_eval_fewshot, batch_size=args.batch_size,
            max_batch_tokens=args.max_batch_tokens, seed=args.seed, dtype=args.dtype, device=args.device,
            progress=not args.no_progress,
        )
        labels = args.labels.split(",") if args.labels else [Path(m).name for m in args.model]
        if len(labels) != len(args.model):
            raise SystemExit(f"--labels gives {len(labels)} names for {len(args.model)} models")
        for model_dir, label in zip(args.model, labels):
            results.append(evaluate_dir(model_dir, cfg, tokenizer_dir=args.tokenizer, label=label))
    if not results:
        raise SystemExit("statex eval: give --model DIR (one or more) or --results FILE.json to re-plot")
    print(markdown_tables(groups_from_results(results)))
    if args.out:
        for kind, path in write_outputs(results, args.out).items():
            print(f"wrote {kind}: {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from statex_dist.demo import DemoConfig, combine_runs, run_demo

    if args.combine:
        combine_runs(args.combine, args.out)
        return 0
    try:
        cfg = DemoConfig.preset("quick" if args.quick else "default")
        if args.config:
            cfg = cfg.updated(json.loads(Path(args.config).read_text()))
        if args.set:
            cfg = cfg.updated(parse_settings(args.set))
        cfg.resolved_device()  # device cuda on a machine without a GPU: say so now, not deep inside the trainer
    except (ValueError, RuntimeError) as e:
        raise SystemExit(f"statex demo: error: {e}") from None
    cfg.out = args.out
    cfg.seeds = [int(s) for s in args.seeds.split(",")]
    if args.family:
        cfg.families = args.family.split(",")
    if args.steps_scale != 1.0:
        cfg.scale_steps(args.steps_scale)
    run_demo(cfg, overwrite=args.overwrite)
    return 0


def parse_settings(items: list[str]) -> dict:
    """``["device=cpu", "pretrain_steps=20", "eval_pairs=[4,8]"]`` -> a dict; each value is read as JSON when it
    parses (numbers, lists, true/false/null), else taken as a plain string."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE (e.g. --set device=cpu pretrain_steps=20)")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def register(sub) -> None:
    p = sub.add_parser("eval", help="recall probes (passkey, NIAH, MQAR), loss by position, lm-eval tasks",
                       description="Evaluate one or more checkpoints; prints Markdown tables and writes JSON/PNGs.")
    p.add_argument("--model", nargs="+", help="checkpoint directories (exported, fla or statex layout)")
    p.add_argument("--labels", help="comma-separated names for the models (default: directory names)")
    p.add_argument("--tokenizer", help="tokenizer directory (default: each model directory)")
    p.add_argument("--tasks", default="passkey,niah,mqar",
                   help="passkey,niah,mqar,ppl and/or lm_eval:TASK[,TASK] (default: passkey,niah,mqar)")
    p.add_argument("--lengths", default="1k,4k", help="prompt lengths, e.g. 1k,4k,16k,64k (default 1k,4k)")
    p.add_argument("--depths", default="0,0.25,0.5,0.75,1", help="needle depths in [0, 1]")
    p.add_argument("--samples", type=int, default=10, help="samples per cell / per MQAR pair count (default 10)")
    p.add_argument("--mqar-pairs", default="4,8,16,32,64", help="MQAR numbers of key-value pairs")
    p.add_argument("--mqar-queries", type=int, default=None, help="queries per MQAR sequence (default: all pairs)")
    p.add_argument("--mqar-keys", type=int, default=128, help="MQAR key pool size (default 128)")
    p.add_argument("--mqar-values", type=int, default=128, help="MQAR value pool size; chance = 1/N (default 128)")
    p.add_argument("--ppl-data", help="held-out data for ppl: prepared directory or .jsonl/.txt files")
    p.add_argument("--ppl-windows", type=int, default=8, help="windows of max(lengths) tokens for ppl")
    p.add_argument("--lm-eval-include", help="folder of extra lm_eval task YAMLs (local datasets)")
    p.add_argument("--lm-eval-limit", type=float, help="lm_eval: documents per task (int) or fraction")
    p.add_argument("--lm-eval-fewshot", type=int, help="lm_eval: number of few-shot examples")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-batch-tokens", type=int, default=65536, help="padded tokens per forward pass")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--results", nargs="+", help="re-plot / compare earlier results JSON files (with or without --model)")
    p.add_argument("--out", help="results.json path or a directory (writes .json, .md and PNGs)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="the whole pipeline on a laptop CPU: data, tokenizer, pre-train, LPT vs StateX, eval",
                       description="Generate data, train a tiny Mamba2 (or GLA) whose state is too small, post-train LPT and "
                                   "StateX arms with the same data/steps/seed, evaluate both, write a report.")
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument("--quick", action="store_true", help="a one-minute smoke run (tests use it); numbers mean little")
    p.add_argument("--config", help="JSON of DemoConfig fields over the preset (see configs/demo/)")
    p.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE",
                   help="DemoConfig fields over --config, values as JSON or plain strings "
                        "(e.g. --set device=cpu precision=fp32 pretrain_steps=20 eval_pairs=[4,16])")
    p.add_argument("--seeds", default="0", help="comma-separated seeds; each repeats pre-training and both arms")
    p.add_argument("--family", help="mamba2 (default) and/or gla, comma-separated")
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply every step count (longer = clearer)")
    p.add_argument("--overwrite", action="store_true", help="start over if --out exists")
    p.add_argument("--combine", nargs="+", metavar="RUN_DIR",
                   help="pool finished demo runs (e.g. one seed per process) into one report in --out")
    p.set_defaults(func=cmd_demo)


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # pragma: no cover
        return False


if __name__ == "__main__":  # pragma: no cover
    from statex_dist.cli import main

    sys.exit(main(["eval", *sys.argv[1:]]))
