"""GPU diagnosis of the Mamba2 StateX demo's NaN (2026-11-30, call e).

At the GPU demo's expanded-layer shape (H = 32, P = 16, N = 64, many short packed documents) the forward output
of our SSD kernels was NaN on an H200, while the interpreter and every GPU case with P = 64 were right; the
probe then hit an illegal memory access in the demo's first StateX step. Two parts:

- ``matrix``: y (and the final state) of our kernels against float64 at H = 32, N = 64 for the cases in
  ``MATRIX`` (P, packing, dtype, the chunk-scan kernel's warps, the smallest P tile), the
  allocator filled with NaN before each call (an element never written shows up), each case in its own child
  process with CUDA_LAUNCH_BLOCKING=1 (the first run put every case after an illegal access in one dead
  context). One JSON line per case.
- ``model``: the demo-shaped Mamba2 (random init, layers 1 and 3 expanded to N = 64) on one packed batch of 84
  documents (some of 1-3 tokens), forward + backward under bf16 autocast, each variant in its own child
  process with CUDA_LAUNCH_BLOCKING=1, so an illegal access names its op and does not poison the next variant.

usage: debug_ssd_gpu.py OUT_DIR [matrix,model|fusedmodel]
"""
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "kernels"))

DEMO_CU = [0, 12, 13, 80, 150, 151, 215, 300, 364, 428, 500, 562, 640, 700]
RAW = {"model_type": "mamba2", "head_dim": 16, "expand": 2, "state_size": 16, "n_groups": 1, "conv_kernel": 4,
       "chunk_size": 32, "tie_word_embeddings": True, "hidden_size": 256, "num_hidden_layers": 4,
       "vocab_size": 1024, "kernel_backend": "auto"}


def poison() -> None:
    torch.empty(1 << 28, device="cuda", dtype=torch.float32).fill_(float("nan"))


def matrix_case(P, packed, dtype, warps, min_bp=16) -> dict:
    from kernel_testing import rel_err, ssd_inputs

    from statex_dist.kernels.ssd import triton_ssd
    from statex_dist.kernels.ssd.chunk_torch import chunk_ssd_torch

    H, N, T = 32, 64, 700
    cu = DEMO_CU if packed else None
    ins = [t.cuda() for t in ssd_inputs(1, T, H, P, 1, N, n_states=len(cu) - 1 if cu else 1, strong=True)]
    ins = [t.to(dtype if i in (0, 3, 4) else torch.float32) for i, t in enumerate(ins)]
    cu_t = torch.tensor(cu, device="cuda", dtype=torch.int32) if cu else None
    y_r, ht_r = chunk_ssd_torch(*[t.double() for t in ins[:5]], 64, ins[5].double(), True, cu_t)
    launch = triton_ssd._launch

    def forced(kernel, BP, N, dtype):  # the output kernel at `warps` whatever the tile (bypasses the narrow-tile rule)
        BN, opts = launch(kernel, BP, N, dtype)
        return BN, (dict(opts, num_warps=warps) if warps and kernel == "scan" else opts)

    triton_ssd._launch, triton_ssd.MIN_BLOCK_P = forced, min_bp
    try:
        poison()
        y, ht = triton_ssd.ssd_fwd_triton(*ins[:5], 64, ins[5], True, cu_t)
        torch.cuda.synchronize()
    finally:
        triton_ssd._launch, triton_ssd.MIN_BLOCK_P = launch, 16
    bad = (~torch.isfinite(y.float())).any(-1).any(-1)[0]  # [T]: a token with any non-finite output
    where = bad.nonzero().flatten().tolist()
    return dict(P=P, packed=packed, dtype=str(dtype)[6:], scan_warps=warps or "default", min_bp=min_bp,
                y_err=f"{rel_err(y, y_r):.1e}", ht_err=f"{rel_err(ht, ht_r):.1e}", bad_tokens=len(where),
                first_bad=where[:8], bad_per_head=int((~torch.isfinite(y.float())).any(-1)[0].sum(0).max()))


MATRIX = [  # (P, packed, dtype, scan warps (None: the default), smallest P tile)
    (16, True, "bfloat16", 4, 16),     # the configuration that failed on 2026-11-30
    (16, True, "bfloat16", None, 16),  # the default since: 8 warps for tiles under 64
    (16, True, "bfloat16", 4, 64),     # 4 warps on a masked 64-wide tile
    (16, False, "float32", None, 16),
    (64, True, "bfloat16", None, 16),
]


def _child(args: list[str], timeout: int) -> dict | None:
    """Run this script in a child process (an illegal access kills only the child); its last JSON line."""
    env = dict(os.environ, CUDA_LAUNCH_BLOCKING="1")
    p = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True, timeout=timeout)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    return json.loads(line[-1]) if line else dict(rc=p.returncode, stderr_tail=p.stderr[-1500:])


def run_matrix(out: Path) -> None:
    rows = []
    for P, packed, dtype, warps, min_bp in MATRIX:
        spec = f"case:{P}:{int(packed)}:{dtype}:{warps or 0}:{min_bp}"
        row = dict(P=P, packed=packed, dtype=dtype, scan_warps=warps or "default", min_bp=min_bp)
        row.update(_child([str(out), spec], 120) or {})
        rows.append(row)
        print(json.dumps(row), flush=True)
        (out / "ssd_matrix.json").write_text(json.dumps(rows, indent=1))


def model_variant(fused: bool, backend: str) -> dict:
    """One forward + backward of the expanded demo-shaped model on an 84-document packed row."""
    import statex_dist.models.mamba2 as M
    from statex_dist.expansion import ExpansionPlan
    from statex_dist.expansion.apply import expand_model
    from statex_dist.models.loading import build_model, config_from_dict

    torch.manual_seed(0)
    m = expand_model(build_model(config_from_dict(RAW), device="cpu"), ExpansionPlan(layers="1,3", mamba2_state_size=64))
    m = m.cuda().train()
    for mod in m.modules():
        if isinstance(mod, M.Mamba2Mixer):
            mod.fused, mod.kernel_backend = fused, backend
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 150, (83,), generator=g).tolist()
    lengths[:6] = [1, 2, 3, 1, 64, 65]
    total = 16 * 512
    lengths.append(total - sum(lengths))
    assert lengths[-1] > 0
    cu = torch.tensor([0] + torch.tensor(lengths).cumsum(0).tolist(), dtype=torch.int32, device="cuda")
    ids = torch.randint(0, RAW["vocab_size"], (1, total), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = m(input_ids=ids, labels=ids, cu_seqlens=cu)
    out.loss.backward()
    torch.cuda.synchronize()
    bad = [n for n, p in m.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    return dict(fused_conv=fused, backend=backend, segments=len(lengths), loss=out.loss.item(), bad_grads=bad[:4])


def run_models(out: Path, variants=((True, "triton"), (False, "triton"), (True, "torch"))) -> None:
    rows = []
    for fused, backend in variants:
        row = dict(fused_conv=fused, backend=backend)
        row.update(_child([str(out), f"model:{int(fused)}:{backend}"], 240) or {})
        rows.append(row)
        print(json.dumps(row), flush=True)
        (out / "model_variants.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = sys.argv[2] if len(sys.argv) > 2 else "matrix,model"
    if parts.startswith(("model:", "case:")):  # a child of run_models / run_matrix
        kind, *a = parts.split(":")
        try:
            if kind == "model":
                result = model_variant(a[0] == "1", a[1])
            else:
                result = matrix_case(int(a[0]), a[1] == "1", getattr(torch, a[2]), int(a[3]), int(a[4]))
            print(json.dumps(result), flush=True)
        except Exception:  # noqa: BLE001 - the child's traceback is the result
            traceback.print_exc()
            sys.exit(1)
        sys.exit(0)
    if "matrix" in parts:
        run_matrix(out_dir)
    if "fusedmodel" in parts:  # only the variant that failed: fla's conv feeding our SSD kernels
        run_models(out_dir, ((True, "triton"),))
    elif "model" in parts:
        run_models(out_dir)
