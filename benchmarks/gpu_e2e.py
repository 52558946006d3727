"""GPU end-to-end checks and timings at the 1.3B shapes (one H200). Writes Markdown tables to --out.

Parts (``--parts``, comma separated):
  logits  fla's GLAForCausalLM / Mamba2ForCausalLM vs ours on the same weights (foundation contract)
  fused   our models with fla's fused norm / SwiGLU ops (the CUDA default) vs our PyTorch modules, same weights
  speed   GLA-1.3B training step, B=4 x T=4096, fused AdamW, bf16 autocast over fp32 params (or --recipe fsdp-bf16):
          stock fla (original), ours (original), ours (StateX: layers 0, 6, 12, 18 merged), each also with kept
          chunk states (ours-saved); plus the Mamba2-1.3B step at equal tokens (original, StateX; each also with
          kept chunk states: ours-mamba2-saved)
  profile torch.profiler over one training step of GLA-1.3B (original, StateX) and Mamba2-1.3B (ours), stock fla:
          top CUDA kernels by time
  long    64K context: GLA-1.3B StateX and Mamba2-1.3B StateX (d_state 512 in 4 layers), one 65,536-token
          sequence per step with activation checkpointing
Weights are random (no Hub): speed and memory do not depend on their values.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import time
from pathlib import Path

import torch
from torch.utils.checkpoint import checkpoint

import statex_dist  # noqa: F401
from statex_dist.expansion import ExpansionPlan, expanded_config
from statex_dist.models.common import set_fused_ops
from statex_dist.models.loading import build_model, config_from_dict
from statex_dist.train.collector import GarbageCollection

REPO = Path(__file__).resolve().parents[1]


TINY = False  # --tiny: the same code on tiny shapes on CPU (a dry run before spending GPU time)
DEVICE = "cuda"
# speed part's precision recipe: "autocast" (fp32 weights, bf16 autocast: a plain PyTorch loop) or "fsdp-bf16"
# (each block and the model fully_shard-ed at world size 1 with bf16 weights gathered, fp32 reduce and master
# weights, no autocast: the trainer's mixed_bf16, torchtitan's and flame's recipe), for ours and stock fla alike
RECIPE = "autocast"
GC_INTERVAL = 0  # --gc-interval: Python's gc as the trainer's gc_interval (0: automatic collection, as a plain loop)


def shipped(name: str, **overrides):
    if TINY:
        name = name.replace("1.3b", "tiny")
    raw = json.loads((REPO / "configs" / "models" / f"{name}.json").read_text())
    raw.update(overrides)
    return config_from_dict(raw)


def six_n(model) -> int:
    """Parameters that do matmul work per token: all but the input embedding (kept when tied to the head)."""
    emb = model.get_input_embeddings().weight
    total = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    return total if emb is model.lm_head.weight else total - emb.numel()


def linear_attn_flops_per_token(config) -> float:
    """reference.md section 8: GLA 6*H*[C*(dk+dv) + 2*dk*dv], C=64; Mamba2 6*[G*C*N + H*(C*P + 2*N*P)], C=256."""
    total = 0.0
    for i in range(config.num_hidden_layers):
        if "gla" in config.model_type:
            h, dk, dv = config.layer_state_shape(i)
            total += 6 * h * (64 * (dk + dv) + 2 * dk * dv)
        else:
            h, p, n = config.layer_state_shape(i)
            total += 6 * (config.n_groups * 256 * n + h * (256 * p + 2 * n * p))
    return total


def enable_block_checkpointing(model) -> None:
    """Checkpoint every block (recompute in backward): what the trainer's `activation_checkpointing: full` does."""
    for block in model.backbone_module.layers:
        fwd = block.forward
        block.forward = lambda *a, _f=fwd, **k: checkpoint(_f, *a, use_reentrant=False, **k)


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if DEVICE == "cuda" else float("nan")


def shard_bf16(model) -> None:
    """RECIPE fsdp-bf16: the trainer's FSDP2 wrapping (``apply_fsdp``, mixed_bf16) at world size 1 over
    ``model.model.layers`` (ours and fla's models both keep their blocks there); the process group is made on
    first use."""
    import torch.distributed as dist

    from statex_dist.parallel.fsdp import apply_fsdp, build_mesh

    if not dist.is_initialized():
        dist.init_process_group("nccl" if DEVICE == "cuda" else "gloo", init_method="tcp://127.0.0.1:29533",
                                rank=0, world_size=1)
    apply_fsdp(model, build_mesh(1, DEVICE, None), "mixed_bf16", cpu_offload=False, layers=model.model.layers)


def time_training(model, batch: int, seq: int, steps: int, warmup: int, vocab: int):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=DEVICE == "cuda")
    autocast = RECIPE == "autocast"
    ids = torch.randint(0, vocab, (batch, seq), device=DEVICE)
    if DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, gc_ms = [], []
    with GarbageCollection(GC_INTERVAL) as collector:  # as the trainer's gc_interval; 0 = Python's automatic gc
        for i in range(warmup + steps):
            sync()
            t0 = time.perf_counter()
            with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=autocast):
                out = model(input_ids=ids, labels=ids)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            collector.after_step(i + 1)
            sync()
            times.append(time.perf_counter() - t0)
            gc_ms.append(collector.take_ms())
    timed, timed_gc = times[warmup:], gc_ms[warmup:]
    step = sum(timed) / steps
    return {"step_s": step, "first_step_s": times[0], "tokens_per_s": batch * seq / step,
            "median_tokens_per_s": batch * seq / statistics.median(timed), "step_range_s": (min(timed), max(timed)),
            "gc_ms": (sum(timed_gc), timed_gc[timed.index(max(timed))]),
            "peak_gib": peak_gib(), "loss": float(out.loss.detach())}


class Report(list):
    """Lines of the Markdown report, written to disk on every append (a killed run keeps what it measured)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = Path(path)

    def append(self, line: str) -> None:
        super().append(line)
        print(line, flush=True)
        self.path.write_text("\n".join(self))


def free(*objs):
    for o in objs:
        del o
    gc.collect()
    if DEVICE == "cuda":
        torch.cuda.empty_cache()


LOGIT_DTYPES = ("float32", "bfloat16")
LOGIT_MODELS = ("gla", "mamba2")
LOGIT_SEQ = 2048
# --speed-variants: kinds (ours, ours-saved, ours-mamba2, ours-mamba2-saved, fla, fla-mamba2); empty = all
SPEED_VARIANTS: tuple[str, ...] = ()
SPEED_SHAPE = (4, 4096)  # --speed-shape BxT (a smaller one for fla's Mamba2 torch fallback, which OOMs at 4x4096)
LONG_MODELS: tuple[str, ...] = ("gla", "mamba2")
# the StateX models every part times: GLA-1.3B with layers 0, 6, 12, 18 merged (the paper's 4 of 24), Mamba2-1.3B
# with 4 of 48 layers at d_state 512
GLA_STATEX = ExpansionPlan(layers="every:6")
MAMBA2_STATEX = ExpansionPlan(layers="every:12", mamba2_state_size=512)


def part_logits(out: list[str]) -> None:
    from fla.models import GLAConfig, GLAForCausalLM, Mamba2Config, Mamba2ForCausalLM

    out.append("## Logits: fla vs statex_dist on the same weights\n")
    out.append("| model | dtype | max abs diff | rel. RMS diff | max |logit| |")
    out.append("|---|---|---|---|---|")
    cases = [
        ("GLA (hidden 2048, 4 layers, 4 heads)", "gla-1.3b", GLAConfig, GLAForCausalLM, dict(num_hidden_layers=4)),
        ("Mamba2 (hidden 2048, 4 layers, d_state 128)", "mamba2-1.3b", Mamba2Config, Mamba2ForCausalLM,
         dict(num_hidden_layers=4)),
    ]
    for label, name, cfg_cls, model_cls, over in cases:
        if name.split("-")[0] not in LOGIT_MODELS:
            continue
        raw = json.loads((REPO / "configs" / "models" / f"{name}.json").read_text())
        raw.update(over)
        raw.pop("model_type")
        torch.manual_seed(0)
        theirs = model_cls(cfg_cls(**raw)).to(DEVICE).eval()
        ours = build_model(shipped(name, **over), device=DEVICE).eval()
        missing = ours.load_state_dict(theirs.state_dict(), strict=True)
        ids = torch.randint(0, raw["vocab_size"] - 1, (2, LOGIT_SEQ if not TINY else 64), device=DEVICE)
        for dtype in (getattr(torch, d) for d in LOGIT_DTYPES):
            with torch.no_grad():
                a = theirs.to(dtype)(input_ids=ids).logits.float()
                b = ours.to(dtype)(input_ids=ids).logits.float()
            diff = (a - b)
            rel = (diff.pow(2).mean().sqrt() / a.pow(2).mean().sqrt()).item()
            out.append(f"| {label} | {str(dtype).split('.')[-1]} | {diff.abs().max().item():.3e} | {rel:.3e} | "
                       f"{a.abs().max().item():.2f} |")
        free(theirs, ours, missing)
    out.append("")


def part_fused(out: list[str]) -> None:
    """fla's fused norm / SwiGLU ops (CUDA default) against our PyTorch versions on the same weights."""
    out.append("## Fused (fla Triton norms, SwiGLU) vs PyTorch modules, same weights, bf16 autocast\n")
    out.append("| model | loss fused | loss torch | logits rel. RMS diff | grads rel. L2 diff (max over params) |")
    out.append("|---|---|---|---|---|")
    T = 2048 if not TINY else 64
    for name in ("gla-1.3b", "mamba2-1.3b"):
        over = dict(num_hidden_layers=4)
        torch.manual_seed(0)
        fused = build_model(shipped(name, **over), device=DEVICE).train()
        plain = set_fused_ops(copy.deepcopy(fused), False)
        ids = torch.randint(0, fused.config.vocab_size - 1, (2, T), device=DEVICE)
        res = []
        for m in (fused, plain):
            with torch.autocast(DEVICE, dtype=torch.bfloat16):
                o = m(input_ids=ids, labels=ids)
            o.loss.backward()
            res.append((o.loss.item(), o.logits.float(), {n: p.grad.float() for n, p in m.named_parameters()}))
        (la, xa, ga), (lb, xb, gb) = res
        rel = ((xa - xb).pow(2).mean().sqrt() / xb.pow(2).mean().sqrt()).item()
        gmax = max(((ga[n] - gb[n]).norm() / gb[n].norm().clamp_min(1e-30)).item() for n in gb)
        out.append(f"| {name} (4 layers) | {la:.5f} | {lb:.5f} | {rel:.2e} | {gmax:.2e} |")
        free(fused, plain)
    out.append("")


def stock_fla(kind: str):
    """Stock fla's model ("fla": GLAForCausalLM, "fla-mamba2": Mamba2ForCausalLM) at our shipped 1.3B shape on
    DEVICE, and our config of that shape (for the FLOP counts)."""
    from fla.models import GLAConfig, GLAForCausalLM, Mamba2Config, Mamba2ForCausalLM

    name, cfg_cls, model_cls = (("gla-1.3b", GLAConfig, GLAForCausalLM) if kind == "fla" else
                                ("mamba2-1.3b", Mamba2Config, Mamba2ForCausalLM))
    raw = json.loads((REPO / "configs" / "models" / f"{name}.json").read_text())
    raw.pop("model_type")
    with torch.device(DEVICE):
        return model_cls(cfg_cls(**raw)), shipped(name)


def kept(cfg):
    """The same model with kernel_save_states (the Triton kernels' chunk states kept from forward to backward)."""
    cfg = copy.deepcopy(cfg)
    cfg.kernel_save_states = True
    return cfg


def part_speed(out: list[str], steps: int, warmup: int, rounds: int = 1) -> None:
    """Training-step speed of every variant, ``rounds`` times over: every second round runs the list backwards, so
    a drift of the GPU's speed during the call (1-2% between variants of one round, tenth and eleventh rounds)
    falls on both sides of each ratio. Ratios are taken within a round, then averaged; each also from the median
    step (single slow steps inside a run, up to 8% under the FSDP2 recipe in the twelfth round, move the mean)."""
    B, T = SPEED_SHAPE if not TINY else (2, 128)
    recipe = ("bf16 autocast, fp32 params" if RECIPE == "autocast" else
              "FSDP2 at world size 1, bf16 params gathered, fp32 reduce and master weights, no autocast")
    out.append(f"## Training step (GLA-1.3B, Mamba2-1.3B), B={B} x T={T}, {recipe}, fused AdamW\n")
    gc_mode = f"a full collection every {GC_INTERVAL} steps" if GC_INTERVAL else "automatic"
    out.append(f"Python gc: {gc_mode} (--gc-interval). GC ms: time collecting in the timed steps, in all of them / "
               "in the slowest one.\n")
    out.append("| round | variant | tokens/s | step (ms) | median step (ms) | fastest-slowest step (ms) | GC ms "
               "| first step (s) | peak GiB | 6N-MFU | linear-attn MFU |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    base_cfg = shipped("gla-1.3b")
    statex_cfg = expanded_config(base_cfg, GLA_STATEX)
    mamba2_sx_cfg = expanded_config(shipped("mamba2-1.3b"), MAMBA2_STATEX)

    variants = [  # (key of the ratios below, label, kind, config)
        ("ours", "statex_dist, original", "ours", base_cfg),
        ("sx", "statex_dist, StateX (0,6,12,18 merged)", "ours", statex_cfg),
        ("ours_kept", "statex_dist, original, chunk states kept for backward", "ours-saved", kept(base_cfg)),
        ("sx_kept", "statex_dist, StateX, chunk states kept for backward", "ours-saved", kept(statex_cfg)),
        ("mamba2", "statex_dist, Mamba2-1.3B (original)", "ours-mamba2", shipped("mamba2-1.3b")),
        ("mamba2_sx", "statex_dist, Mamba2-1.3B StateX (4 layers d_state 512)", "ours-mamba2", mamba2_sx_cfg),
        ("mamba2_kept", "statex_dist, Mamba2-1.3B (original), chunk states kept for backward", "ours-mamba2-saved",
         kept(shipped("mamba2-1.3b"))),
        ("mamba2_sx_kept", "statex_dist, Mamba2-1.3B StateX, chunk states kept for backward", "ours-mamba2-saved",
         kept(mamba2_sx_cfg)),
        # last in round 1: fla's first call autotunes for minutes; a killed run keeps the rows above
        ("fla", "stock fla GLAForCausalLM (original)", "fla", None),
        ("fla_mamba2", "stock fla Mamba2ForCausalLM (original; torch fallback, no mamba_ssm)", "fla-mamba2", None),
    ]
    variants = [v for v in variants if not SPEED_VARIANTS or v[2] in SPEED_VARIANTS or v[1] in SPEED_VARIANTS]
    variants = [v for v in variants if not (TINY and v[2].startswith("fla"))]  # fla's models need CUDA
    tps = [{} for _ in range(rounds)]  # per round: key -> tokens/s (mean step)
    tps_median = [{} for _ in range(rounds)]  # per round: key -> tokens/s at the median step
    for rnd in range(rounds):
        for key, label, kind, cfg in variants if rnd % 2 == 0 else variants[::-1]:
            torch.manual_seed(0)
            if kind.startswith("fla"):
                model, flop_cfg = stock_fla(kind)
            else:
                model = build_model(cfg, device=DEVICE)
                flop_cfg = cfg
            model.train()
            try:
                if RECIPE == "fsdp-bf16":
                    shard_bf16(model)
                r = time_training(model, B, T, steps, warmup, flop_cfg.vocab_size)
            except Exception as e:  # report and go on: one failing variant must not cost the whole GPU call
                out.append(f"| {rnd + 1} | {label} | failed: {type(e).__name__}: {str(e)[:120]} | | | | | | | | |")
                free(model)
                continue
            n = six_n(model)
            mfu6 = 6 * n * r["tokens_per_s"] / 790e12
            mfu_lin = (6 * n + linear_attn_flops_per_token(flop_cfg)) * r["tokens_per_s"] / 790e12
            tps[rnd][key], tps_median[rnd][key] = r["tokens_per_s"], r["median_tokens_per_s"]
            lo, hi = r["step_range_s"]
            median_ms = 1000 * B * T / r["median_tokens_per_s"]
            out.append(f"| {rnd + 1} | {label} | {r['tokens_per_s']:,.0f} | {1000 * r['step_s']:.0f} | "
                       f"{median_ms:.0f} | {1000 * lo:.0f}-{1000 * hi:.0f} | "
                       f"{r['gc_ms'][0]:.1f} / {r['gc_ms'][1]:.1f} | {r['first_step_s']:.1f} | "
                       f"{r['peak_gib']:.1f} | {100 * mfu6:.1f}% | {100 * mfu_lin:.1f}% |")
            free(model)
    out.append("")
    for title, num, den in (("StateX / original (ours, GLA)", "sx", "ours"),
                            ("ours original / stock fla (GLA)", "ours", "fla"),
                            ("states kept / recomputed (ours original)", "ours_kept", "ours"),
                            ("states kept / recomputed (ours StateX)", "sx_kept", "sx"),
                            ("StateX / original, states kept", "sx_kept", "ours_kept"),
                            ("ours original, states kept / stock fla", "ours_kept", "fla"),
                            ("Mamba2 StateX / original (ours)", "mamba2_sx", "mamba2"),
                            ("Mamba2 states kept / recomputed (original)", "mamba2_kept", "mamba2"),
                            ("Mamba2 states kept / recomputed (StateX)", "mamba2_sx_kept", "mamba2_sx"),
                            ("Mamba2 step time / GLA step time (ours, originals)", "ours", "mamba2"),
                            ("ours Mamba2 / stock fla Mamba2 torch fallback", "mamba2", "fla_mamba2")):
        line = []
        for table in (tps, tps_median):
            ratios = [t[num] / t[den] for t in table if num in t and den in t]
            if ratios:
                each = f" (rounds: {', '.join(f'{x:.3f}' for x in ratios)})" if len(ratios) > 1 else ""
                line.append(f"{sum(ratios) / len(ratios):.3f}{each}")
        if line:
            out.append(f"{title}: {line[0]}; from median steps {line[1]}")
    out.append("MFU against 790 TFLOP/s (measured bf16 matmul peak); 6N excludes the input embedding.\n")


PROFILE_MODELS: tuple[str, ...] = ("gla", "mamba2")


def part_profile(out: list[str], top: int = 30) -> None:
    """Where a training step's GPU time goes: the kernels (and the ops that launched them) with the most self CUDA
    time over one step, and the step's GPU busy / idle split."""
    from torch.profiler import ProfilerActivity, profile

    from statex_dist.train.profiling import headline, summarize

    B, T = (4, 4096) if not TINY else (2, 128)
    for name, kind in (("gla-1.3b", "gla"), ("gla-1.3b StateX (0,6,12,18 merged)", "gla-statex"),
                       ("mamba2-1.3b", "mamba2"), ("stock fla GLAForCausalLM (gla-1.3b)", "fla")):
        if kind not in PROFILE_MODELS or (kind == "fla" and TINY):  # fla's models need CUDA for a forward
            continue
        torch.manual_seed(0)
        if kind == "fla":
            model, cfg = stock_fla(kind)
        else:
            cfg = shipped(name.split()[0])
            if kind == "gla-statex":
                cfg = expanded_config(cfg, GLA_STATEX)
            model = build_model(cfg, device=DEVICE)
        model.train()
        time_training(model, B, T, 1, 2, cfg.vocab_size)  # compile, autotune, optimizer state
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if DEVICE == "cuda" else [])
        with profile(activities=acts) as prof:
            time_training(model, B, T, 1, 0, cfg.vocab_size)
        summary = summarize(prof, 1, on_device=DEVICE == "cuda", top=top)
        out.append(f"## Profile: {name}, one training step B={B} x T={T}\n")
        out.append(headline(summary) + ".\n")
        out.append("| kernel / op | kind | calls | self ms | share of the total |")
        out.append("|---|---|---|---|---|")
        for r in summary["top"]:
            share = 100 * r["self_ms_per_step"] / max(summary["self_ms_per_step"], 1e-9)
            out.append(f"| `{r['name'][:90]}` | {r['kind']} | {r['calls_per_step']:g} | {r['self_ms_per_step']:.1f} | "
                       f"{share:.1f}% |")
        out.append("")
        free(model)


def part_long(out: list[str], steps: int) -> None:
    T = 65536 if not TINY else 256
    out.append(f"## 64K context: one {T}-token sequence per step, activation checkpointing per block\n")
    out.append("| model | tokens/s | step (s) | peak GiB | free of 139 GiB |")
    out.append("|---|---|---|---|---|")
    gla_statex = expanded_config(shipped("gla-1.3b"), GLA_STATEX)
    cases = [
        ("GLA-1.3B StateX (0,6,12,18 merged)", gla_statex),
        ("GLA-1.3B StateX, chunk states kept for backward", kept(gla_statex)),
        ("Mamba2-1.3B StateX (0,12,24,36 d_state 512)",
         expanded_config(shipped("mamba2-1.3b"), MAMBA2_STATEX)),
    ]
    for label, cfg in cases:
        if not any(m in cfg.model_type for m in LONG_MODELS):
            continue
        torch.manual_seed(0)
        model = build_model(cfg, device=DEVICE).train()
        enable_block_checkpointing(model)
        try:
            r = time_training(model, 1, T, steps, 1, cfg.vocab_size)
            out.append(f"| {label} | {r['tokens_per_s']:,.0f} | {r['step_s']:.2f} | {r['peak_gib']:.1f} | "
                       f"{139 - r['peak_gib']:.1f} |")
        except Exception as e:
            out.append(f"| {label} | failed: {type(e).__name__}: {str(e)[:120]} | | | |")
        free(model)
    out.append("")


def main() -> None:
    global TINY, DEVICE, LOGIT_DTYPES, LOGIT_MODELS, LOGIT_SEQ, SPEED_VARIANTS, SPEED_SHAPE, LONG_MODELS, \
        PROFILE_MODELS, RECIPE, GC_INTERVAL
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default="logits,speed,long")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="speed part: run the variants this many times, "
                        "alternating their order, and average the ratios taken within each round")
    parser.add_argument("--out", default="gpu_e2e.md")
    parser.add_argument("--tiny", action="store_true", help="dry run: tiny shapes on CPU")
    parser.add_argument("--logit-dtypes", default="float32,bfloat16")
    parser.add_argument("--logit-models", default="gla,mamba2")
    parser.add_argument("--logit-seq", type=int, default=2048)
    parser.add_argument("--speed-variants", default="",
                        help="comma list of ours, ours-saved (GLA with kernel_save_states), ours-mamba2, "
                        "ours-mamba2-saved, fla, "
                        "fla-mamba2 (default: all)")
    parser.add_argument("--profile-top", type=int, default=30, help="rows of each profile table")
    parser.add_argument("--speed-shape", default="4x4096", help="batch x sequence length of the speed part")
    parser.add_argument("--recipe", choices=("autocast", "fsdp-bf16"), default="autocast",
                        help="precision recipe of the speed part (RECIPE above), the same for every model")
    parser.add_argument("--gc-interval", default="0", help="speed part: Python's gc as the trainer's gc_interval "
                        "(freeze, no automatic collection, a full one every N steps; 0 = automatic); a comma list "
                        "runs the speed part once per value, in that order")
    parser.add_argument("--long-models", default="gla,mamba2")
    parser.add_argument("--profile-models", default="gla,mamba2", help="comma list of gla, gla-statex, mamba2, fla "
                        "(stock fla's GLAForCausalLM)")
    parser.add_argument("--ssd-chunk", type=int, default=None,
                        help="tokens per chunk of our Triton SSD for 16-bit inputs (triton_ssd.CHUNK)")
    args = parser.parse_args()
    if args.ssd_chunk:
        from statex_dist.kernels.ssd import triton_ssd
        triton_ssd.CHUNK = args.ssd_chunk
    LONG_MODELS = tuple(args.long_models.split(","))
    PROFILE_MODELS = tuple(args.profile_models.split(","))
    SPEED_VARIANTS = tuple(v for v in args.speed_variants.split(",") if v)
    SPEED_SHAPE = tuple(int(v) for v in args.speed_shape.lower().split("x"))
    RECIPE = args.recipe
    LOGIT_DTYPES, LOGIT_MODELS = tuple(args.logit_dtypes.split(",")), tuple(args.logit_models.split(","))
    LOGIT_SEQ = args.logit_seq
    TINY, DEVICE = args.tiny, ("cpu" if args.tiny else "cuda")
    device_name = torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU dry run"
    out = Report(args.out)
    out.append(f"# statex_dist GPU end-to-end ({device_name}, torch {torch.__version__})\n")
    if args.ssd_chunk:
        out.append(f"Our Triton SSD at {args.ssd_chunk}-token chunks (--ssd-chunk).\n")
    for part in args.parts.split(","):
        for GC_INTERVAL in (int(v) for v in args.gc_interval.split(",")) if part == "speed" else (0,):
            t0 = time.time()
            {"logits": lambda: part_logits(out), "fused": lambda: part_fused(out),
             "speed": lambda: part_speed(out, args.steps, args.warmup, args.rounds),
             "profile": lambda: part_profile(out, args.profile_top),
             "long": lambda: part_long(out, max(2, args.steps // 2))}[part]()
            out.append(f"_{part}: {time.time() - t0:.0f} s wall_\n")


if __name__ == "__main__":
    main()
