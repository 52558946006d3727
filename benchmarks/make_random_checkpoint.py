"""Write a randomly initialised model in fla's checkpoint format (what a user's pretrained directory looks like).

No weights can be downloaded on the benchmark machines, so GPU runs start from this instead of
fla-hub/gla-1.3B-100B: same shapes, same keys, same config fields (model_type ``gla`` / ``mamba2``).
``python benchmarks/make_random_checkpoint.py configs/models/gla-1.3b.json OUT_DIR [--dtype bfloat16]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import statex_dist  # noqa: F401
from statex_dist.models.loading import build_model, config_from_dict, save_as_fla


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_json")
    parser.add_argument("out")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    raw = json.loads(Path(args.model_json).read_text())
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model(config_from_dict(dict(raw)), device=device).to(getattr(torch, args.dtype))
    print(save_as_fla(model, args.out))


if __name__ == "__main__":
    main()
