"""CPU speed of the pure-PyTorch model path: forward+backward of a small GLA and Mamba2.

The foundation's bar: a 2-layer, 256-wide model runs a 2x512-token forward+backward well under a second
on 2 cores. Prints a Markdown table; run: `python benchmarks/cpu_model.py`.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

import statex_dist  # noqa: F401
from statex_dist.models.loading import build_model, config_from_dict

SHAPES = {
    "gla": dict(model_type="gla", hidden_size=256, num_hidden_layers=2, num_heads=4, vocab_size=4096),
    "gla-statex": dict(model_type="gla", hidden_size=256, num_hidden_layers=2, num_heads=4, vocab_size=4096,
                       layer_overrides={"0": {"num_heads": 1}}),
    "mamba2": dict(model_type="mamba2", hidden_size=256, num_hidden_layers=2, head_dim=64, state_size=64,
                   chunk_size=64, vocab_size=4096),
    "mamba2-statex": dict(model_type="mamba2", hidden_size=256, num_hidden_layers=2, head_dim=64, state_size=64,
                          chunk_size=64, vocab_size=4096, layer_overrides={"0": {"state_size": 256}}),
}


def time_step(model, ids, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        model(ids, labels=ids).loss.backward()
        times.append(time.perf_counter() - t0)
    return min(times[1:])  # first call warms up allocator and kernels


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"CPU: {platform.processor() or platform.machine()}, threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"| model (2 layers, hidden 256) | B x T | fwd+bwd (s) | tokens/s |")
    print("|---|---|---|---|")
    for name, raw in SHAPES.items():
        model = build_model(config_from_dict(dict(raw)), device="cpu").train()
        ids = torch.randint(0, 4096, (args.batch, args.seq))
        sec = time_step(model, ids, args.repeats)
        print(f"| {name} | {args.batch} x {args.seq} | {sec:.3f} | {args.batch * args.seq / sec:,.0f} |")


if __name__ == "__main__":
    main()
