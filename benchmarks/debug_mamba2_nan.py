"""Where does the StateX Mamba2 demo's NaN come from? (GPU run of 2026-11-30: post-training the StateX arm of
configs/demo/gpu-mamba2.json gave a NaN loss from step 0; the LPT arm trained.) Builds the demo's model shape,
expands layers 1 and 3 to d_state 64 (reinit), and runs one forward/backward under bf16 autocast with the
fused conv on/off and the SSD on triton/torch, reporting the first mixer stage whose output is not finite.

usage: debug_mamba2_nan.py OUT.json [BASE_CHECKPOINT]   (a checkpoint of the demo's base model, e.g. its
``export-base``; without one, the base is pre-trained here for 150 steps on random tokens)"""
import itertools
import json
import sys

import torch

import statex_dist.models.mamba2 as M
from statex_dist.expansion import ExpansionPlan
from statex_dist.expansion.apply import expand_model
from statex_dist.models.loading import build_model, config_from_dict, load_pretrained

RAW = {"model_type": "mamba2", "head_dim": 16, "expand": 2, "state_size": 16, "n_groups": 1, "conv_kernel": 4,
       "chunk_size": 32, "tie_word_embeddings": True, "hidden_size": 256, "num_hidden_layers": 4,
       "vocab_size": 1024, "kernel_backend": "auto"}
first_bad: list[str] = []
real_ssd = M.ssd_attention


def checked_ssd(x, dt, A, B, C, **kw):
    for n, t in (("x", x), ("dt", dt), ("A", A), ("B", B), ("C", C)):
        if not torch.isfinite(t).all() and not first_bad:
            first_bad.append(f"ssd input {n}")
    y, s = real_ssd(x, dt, A, B, C, **kw)
    if not torch.isfinite(y).all() and not first_bad:
        first_bad.append(f"ssd output (N={B.shape[-1]}, dt max {dt.max().item():.3g}, A min {A.min().item():.3g})")
    return y, s


M.ssd_attention = checked_ssd


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


def from_checkpoint(path: str) -> dict:
    m = load_pretrained(path, dtype=torch.float32)
    RAW["vocab_size"] = m.config.vocab_size
    return {"config": m.config, "state": m.state_dict()}


BASE: dict = {}


def run(expand: bool, fused: bool, backend: str, packed: bool, dtype) -> dict:
    torch.manual_seed(0)
    m = build_model(BASE["config"], device="cpu")
    m.load_state_dict(BASE["state"])
    if expand:
        m = expand_model(m, ExpansionPlan(layers="1,3", mamba2_state_size=64))
    m = m.cuda().train()
    for mod in m.modules():
        if isinstance(getattr(mod, "fused", None), bool) and isinstance(mod, M.Mamba2Mixer):
            mod.fused = fused
        if hasattr(mod, "kernel_backend"):
            mod.kernel_backend = backend
    vocab = RAW["vocab_size"]
    ids = torch.randint(0, vocab, (16 if not packed else 1, 512 if not packed else 16 * 512), device="cuda")
    kw = {}
    if packed:
        kw["cu_seqlens"] = torch.tensor([0, 300, 301, 2000, 5000, 8192], dtype=torch.int32, device="cuda")
    first_bad.clear()
    with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        out = m(input_ids=ids, labels=ids, **kw)
    out.loss.backward()
    bad_grads = [n for n, p in m.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    return dict(expand=expand, fused_conv=fused, backend=backend, packed=packed, dtype=str(dtype)[6:],
                loss=round(out.loss.item(), 4), first_bad=first_bad[0] if first_bad else "",
                bad_grads=bad_grads[:3])


if __name__ == "__main__":
    BASE.update(from_checkpoint(sys.argv[2]) if len(sys.argv) > 2 else pretrained())
    rows = []
    for expand, fused, backend, packed, dtype in itertools.product(
            (True, False), (True, False), ("triton", "torch"), (False, True), (torch.bfloat16, torch.float32)):
        if not expand and (not fused or backend == "torch" or dtype == torch.float32):
            continue
        try:
            rows.append(run(expand, fused, backend, packed, dtype))
        except Exception as e:  # noqa: BLE001
            rows.append(dict(expand=expand, fused_conv=fused, backend=backend, packed=packed, error=repr(e)[:200]))
        print(json.dumps(rows[-1]), flush=True)
    out = sys.argv[1] if len(sys.argv) > 1 else "nan_debug.json"
    json.dump(rows, open(out, "w"), indent=1)
