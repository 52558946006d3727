"""Where does the StateX Mamba2 demo's NaN come from? (GPU run of 2026-11-30: post-training the StateX arm of
configs/demo/gpu-mamba2.json gave a NaN loss from step 0; the LPT arm trained on the same data.)

Every mixer stage is checked for non-finite values (fla's fused conv, the SSD inputs and output, the gated norm),
in three settings, most informative first:
  1. ``trainer``: the demo's own StateX post-training config (``<demo>/mamba2-seed0/post-statex/resolved.yaml``)
     for one step through the real trainer (meta build, expansion inside the weight loader, real packed batch);
     the first batch is kept for 2;
  2. ``memory``: the same base checkpoint expanded in memory (``expand_model``) on that same batch, with the
     fused conv on/off, the SSD on triton/torch, bf16/fp32;
  3. without a demo: the demo's model shape pre-trained here for 150 steps on random tokens.

usage: debug_mamba2_nan.py OUT.json [DEMO_MODEL_DIR]   (e.g. ``<demo>/mamba2-seed0``: holds export-base and
post-statex/resolved.yaml)"""
import json
import sys
import time
from pathlib import Path

import torch

import statex_dist.models.mamba2 as M
from statex_dist.expansion import ExpansionPlan
from statex_dist.expansion.apply import expand_model
from statex_dist.models.loading import build_model, config_from_dict, load_pretrained

RAW = {"model_type": "mamba2", "head_dim": 16, "expand": 2, "state_size": 16, "n_groups": 1, "conv_kernel": 4,
       "chunk_size": 32, "tie_word_embeddings": True, "hidden_size": 256, "num_hidden_layers": 4,
       "vocab_size": 1024, "kernel_backend": "auto"}
first_bad: list[str] = []
real_ssd, real_use_fused = M.ssd_attention, M.use_fused


def _note(what: str, t) -> None:
    if not first_bad and t is not None and not torch.isfinite(t).all():
        first_bad.append(what)


def _stats(t) -> str:
    t = t.float()
    return f"absmax {t.abs().max().item():.3g}"


def checked_ssd(x, dt, A, B, C, **kw):
    for n, t in (("x", x), ("dt", dt), ("A", A), ("B", B), ("C", C), ("D", kw.get("D"))):
        _note(f"ssd input {n}", t)
    y, s = real_ssd(x, dt, A, B, C, **kw)
    _note(f"ssd output (N={B.shape[-1]}, P={x.shape[-1]}, cu_seqlens {'yes' if kw.get('cu_seqlens') is not None else 'no'}, "
          f"dt max {dt.max().item():.3g}, A min {A.min().item():.3g}, x {_stats(x)}, B {_stats(B)}, C {_stats(C)})", y)
    return y, s


def checked_use_fused(enabled, x, name):
    fn = real_use_fused(enabled, x, name)
    if fn is None:
        return None

    def run(inp, *args, **kw):
        _note(f"fused {name} input", inp)
        out = fn(inp, *args, **kw)
        _note(f"fused {name} output (input {_stats(inp)}, weight {_stats(args[0])})",
              out[0] if isinstance(out, tuple) else out)
        return out
    return run


M.ssd_attention, M.use_fused = checked_ssd, checked_use_fused
DEV = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: a dry run of this script
BATCH: dict = {}


def through_trainer(resolved: Path, work: Path) -> dict:
    """One step of the demo's StateX post-training through the real trainer; keeps the first batch."""
    from statex_dist.train.api import train
    from statex_dist.train.config import load_train_config
    from statex_dist.train.trainer import Trainer

    real_forward = Trainer._forward

    def forward(self, batch):
        BATCH.setdefault("batch", {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()})
        return real_forward(self, batch)

    Trainer._forward = forward
    cfg = load_train_config(resolved, [f"run_dir={work}", "steps=1", "max_bad_steps=1", "checkpoint.save_at_end=false",
                                       "checkpoint.interval=0", "logging.progress_bar=false"])
    first_bad.clear()
    t0 = time.time()
    try:
        train(cfg)
        err = ""
    except Exception as e:  # noqa: BLE001
        err = repr(e)[-400:]
    finally:
        Trainer._forward = real_forward
    b = BATCH.get("batch", {})
    cu = b.get("cu_seqlens")
    return dict(setting="trainer", seconds=round(time.time() - t0, 1), first_bad=first_bad[0] if first_bad else "",
                error=err, segments=None if cu is None else len(cu) - 1,
                shortest=None if cu is None else int((cu[1:] - cu[:-1]).min()))


def run(expand: bool, fused: bool, backend: str, dtype, base: dict) -> dict:
    torch.manual_seed(0)
    m = build_model(base["config"], device="cpu")
    m.load_state_dict(base["state"])
    if expand:
        m = expand_model(m, ExpansionPlan(layers="1,3", mamba2_state_size=64))
    m = m.to(DEV).train()
    for mod in m.modules():
        if isinstance(getattr(mod, "fused", None), bool) and isinstance(mod, M.Mamba2Mixer):
            mod.fused = fused
        if hasattr(mod, "kernel_backend"):
            mod.kernel_backend = backend
    if "batch" in BATCH:
        b = BATCH["batch"]
        kw = dict(input_ids=b["input_ids"].to(DEV), shift_labels=b["labels"].to(DEV),
                  cu_seqlens=b["cu_seqlens"].to(DEV) if b.get("cu_seqlens") is not None else None)
    else:
        ids = torch.randint(0, RAW["vocab_size"], (1, 16 * 512), device=DEV)
        cu = torch.tensor([0, 300, 301, 2000, 5000, 8192], dtype=torch.int32, device=DEV)
        kw = dict(input_ids=ids, labels=ids, cu_seqlens=cu)
    first_bad.clear()
    with torch.autocast(DEV, dtype=dtype, enabled=dtype != torch.float32):
        out = m(**kw)
    out.loss.backward()
    bad_grads = [n for n, p in m.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    return dict(setting="memory", expand=expand, fused_conv=fused, backend=backend, dtype=str(dtype)[6:],
                loss=round(out.loss.item(), 4), first_bad=first_bad[0] if first_bad else "", bad_grads=bad_grads[:3])


def pretrained() -> dict:
    """A base model trained for 150 steps (bf16 autocast, our CUDA path) on random token streams."""
    torch.manual_seed(0)
    m = build_model(config_from_dict(RAW), device="cpu").cuda().train()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    for _ in range(150):
        ids = torch.randint(0, 1024, (16, 512), device="cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = m(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
    print("pretrain loss", loss.item(), flush=True)
    return {"config": m.config, "state": {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}}


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "nan_debug.json"
    rows = []

    def emit(row):
        rows.append(row)
        print(json.dumps(row), flush=True)
        json.dump(rows, open(out, "w"), indent=1)  # after every row: a call cut at its limit keeps what ran

    if len(sys.argv) > 2:
        demo = Path(sys.argv[2])
        emit(through_trainer(demo / "post-statex" / "resolved.yaml", Path("/tmp/nan_probe_run")))
        m = load_pretrained(demo / "export-base", dtype=torch.float32)
        base = {"config": m.config, "state": m.state_dict()}
    else:
        base = pretrained()
    combos = [(True, True, "triton", torch.bfloat16), (True, False, "triton", torch.bfloat16),
              (True, True, "torch", torch.bfloat16), (True, False, "torch", torch.float32),
              (False, True, "triton", torch.bfloat16), (True, True, "triton", torch.float32)]
    for expand, fused, backend, dtype in combos:
        try:
            emit(run(expand, fused, backend, dtype, base))
        except Exception as e:  # noqa: BLE001
            emit(dict(setting="memory", expand=expand, fused_conv=fused, backend=backend, error=repr(e)[:300]))


if __name__ == "__main__":
    main()
