"""``statex inspect``: per-layer geometry, parameters and recurrent-state size, against the unexpanded model."""

from __future__ import annotations

import json
from pathlib import Path

from statex_dist.expansion.apply import unexpanded_config
from statex_dist.models.loading import CheckpointError, build_model, family_of, load_config


def count_parameters(model) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def layer_rows(config) -> list[dict]:
    family = family_of(config)
    rows = []
    for idx in range(config.num_hidden_layers):
        if family == "gla":
            heads, dk, dv = config.layer_state_shape(idx)
            rows.append({"layer": idx, "kind": "gla", "heads": heads, "key_dim": dk, "value_dim": dv,
                         "state_elements": heads * dk * dv})
        else:
            heads, p, n = config.layer_state_shape(idx)
            rows.append({"layer": idx, "kind": "mamba2", "heads": heads, "head_dim": p, "d_state": n,
                         "state_elements": heads * p * n})
    return rows


def build_report(config) -> dict:
    """Everything ``statex inspect`` prints, computed on the meta device (no weights needed)."""
    base = unexpanded_config(config)
    params = count_parameters(build_model(config, device="meta"))
    base_params = count_parameters(build_model(base, device="meta"))
    rows, base_rows = layer_rows(config), layer_rows(base)
    for row, b in zip(rows, base_rows):
        row["expanded"] = row["state_elements"] != b["state_elements"]
    state = sum(r["state_elements"] for r in rows)
    base_state = sum(r["state_elements"] for r in base_rows)
    return {
        "family": family_of(config),
        "layers": rows,
        "expanded_layers": [r["layer"] for r in rows if r["expanded"]],
        "statex": config.statex,
        "parameters": params,
        "baseline_parameters": base_params,
        "added_parameters": params - base_params,
        "state_elements": state,
        "baseline_state_elements": base_state,
        "state_ratio": state / base_state,
        "state_bytes_per_sequence": {"bf16": 2 * state, "fp32": 4 * state},
    }


def verify_weights(path: Path, config) -> int:
    """Count the tensors' elements stored in safetensors files and check them against the config."""
    from safetensors import safe_open

    model = build_model(config, device="meta")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    stored = {}
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{path}: no *.safetensors files (use --meta to inspect the config alone)")
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as handle:
                for key in handle.keys():
                    stored[key] = tuple(handle.get_slice(key).get_shape())
        except Exception as e:
            raise CheckpointError(f"{f}: unreadable safetensors file: {e}") from e
    if config.tie_word_embeddings:
        expected.pop("lm_head.weight", None)
        stored.pop("lm_head.weight", None)
    bad = sorted(k for k in set(expected) | set(stored) if expected.get(k) != stored.get(k))
    if bad:
        raise CheckpointError(f"{path}: weights do not match config.json: {bad[:6]}")
    total = 0
    for shape in stored.values():
        n = 1
        for d in shape:
            n *= d
        total += n
    return total


def inspect_checkpoint(path: str | Path, meta: bool = False) -> dict:
    path = Path(path)
    config = load_config(path)
    report = build_report(config)
    report["path"] = str(path)
    if not meta:
        report["stored_parameters"] = verify_weights(path, config)
    return report


def format_report(report: dict) -> str:
    lines = [f"{report.get('path', '')}  ({report['family']})".strip()]
    fam = report["family"]
    header = (f"{'layer':>5} {'heads':>5} {'key':>5} {'value':>6} {'state':>12}  expanded" if fam == "gla"
              else f"{'layer':>5} {'heads':>5} {'hdim':>5} {'d_state':>7} {'state':>12}  expanded")
    lines.append(header)
    for r in report["layers"]:
        dims = (f"{r['key_dim']:>5} {r['value_dim']:>6}" if fam == "gla" else f"{r['head_dim']:>5} {r['d_state']:>7}")
        lines.append(f"{r['layer']:>5} {r['heads']:>5} {dims} {r['state_elements']:>12,}  {'yes' if r['expanded'] else ''}")
    lines += [
        f"expanded layers:   {report['expanded_layers'] or 'none'}",
        f"parameters:        {report['parameters']:,} (unexpanded {report['baseline_parameters']:,}, "
        f"{report['added_parameters']:+,})",
        f"recurrent state:   {report['baseline_state_elements']:,} -> {report['state_elements']:,} elements "
        f"(x{report['state_ratio']:.2f})",
        f"state per sequence: {report['state_bytes_per_sequence']['bf16'] / 2**20:.1f} MiB bf16, "
        f"{report['state_bytes_per_sequence']['fp32'] / 2**20:.1f} MiB fp32",
    ]
    if "stored_parameters" in report:
        lines.append(f"stored tensors:    {report['stored_parameters']:,} elements, match config.json")
    if report.get("statex"):
        lines.append(f"statex record:     {json.dumps(report['statex'])}")
    return "\n".join(lines)
