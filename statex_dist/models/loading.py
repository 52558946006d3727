"""Read fla / Hugging Face checkpoint directories into our models; convert mamba_ssm checkpoints.

Loading is strict: a missing, unexpected or mis-shaped tensor is an error that names the keys, never a
silently re-initialised weight.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from statex_dist.models.configuration import StateXGLAConfig, StateXMamba2Config
from statex_dist.models.gla import StateXGLAForCausalLM
from statex_dist.models.mamba2 import StateXMamba2ForCausalLM

FAMILIES = {
    "gla": (StateXGLAConfig, StateXGLAForCausalLM),
    "statex_gla": (StateXGLAConfig, StateXGLAForCausalLM),
    "mamba2": (StateXMamba2Config, StateXMamba2ForCausalLM),
    "statex_mamba2": (StateXMamba2Config, StateXMamba2ForCausalLM),
}
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
    "vocab.json", "merges.txt", "added_tokens.json", "generation_config.json",
)


class CheckpointError(ValueError):
    """A checkpoint directory is missing, unreadable or does not match the model it claims to be."""


def read_config_dict(path: str | Path) -> dict:
    cfg_path = Path(path) / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{path}: no config.json (expected a Hugging Face / fla checkpoint directory)")
    try:
        return json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{cfg_path} is not valid JSON: {e}") from e


def is_mamba_ssm_config(raw: dict) -> bool:
    return "d_model" in raw and "n_layer" in raw


def family_of(config) -> str:
    """'gla' or 'mamba2' for a config object or a raw config dict."""
    model_type = config.get("model_type") if isinstance(config, dict) else config.model_type
    if model_type not in FAMILIES:
        raise CheckpointError(f"model_type {model_type!r} is not supported; expected one of {sorted(FAMILIES)}")
    return "gla" if "gla" in model_type else "mamba2"


def config_from_dict(raw: dict):
    """Our config class for a raw config dict (fla's or ours); the model_type becomes ours."""
    if is_mamba_ssm_config(raw):
        raise CheckpointError(
            "this is a mamba_ssm checkpoint (d_model/n_layer/ssm_cfg); convert it first with "
            "`statex convert-mamba-ssm IN_DIR OUT_DIR`"
        )
    config_cls, _ = FAMILIES[raw["model_type"]] if raw.get("model_type") in FAMILIES else (None, None)
    if config_cls is None:
        raise CheckpointError(
            f"model_type {raw.get('model_type')!r} is not supported; expected one of {sorted(FAMILIES)}"
        )
    fields = {k: v for k, v in raw.items() if k not in ("model_type", "architectures", "transformers_version")}
    return config_cls(**fields)


def load_config(path: str | Path):
    return config_from_dict(read_config_dict(path))


def model_class_for(config):
    return FAMILIES[config.model_type][1]


def build_model(config, device: str | torch.device = "meta", dtype: torch.dtype | None = None):
    """Construct a model from a config without loading weights (``meta`` = no memory at all)."""
    cls = model_class_for(config)
    with torch.device(device):
        model = cls(config)
    return model.to(dtype) if dtype is not None else model


def load_pretrained(path: str | Path, dtype: torch.dtype | None = None, device: str | torch.device = "cpu"):
    """Load an fla / statex checkpoint directory into our model class, strictly."""
    path = Path(path)
    config = load_config(path)
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise CheckpointError(f"{path}: no weight files (*.safetensors or *.bin)")
    cls = model_class_for(config)
    try:
        model, info = cls.from_pretrained(
            path, config=config, dtype=dtype or torch.float32, output_loading_info=True
        )
    except Exception as e:  # safetensors, pickle and transformers raise many types for unreadable files
        raise CheckpointError(f"{path}: could not load weights (missing, truncated or corrupt file?): {e}") from e
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        detail = "; ".join(f"{k}: {sorted(map(str, v))[:8]}" for k, v in problems.items())
        raise CheckpointError(f"{path}: weights do not match the config ({detail})")
    return model.to(device)


def save_as_fla(model, out: str | Path) -> Path:
    """``save_pretrained`` under fla's model_type (``gla`` / ``mamba2``): the layout of a user's fla checkpoint.

    Tests and GPU benchmarks start from such directories because no pretrained weights can be downloaded.
    """
    out = Path(out)
    model.save_pretrained(out)
    cfg = json.loads((out / "config.json").read_text())
    cfg["model_type"] = family_of(model.config)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    return out


def copy_tokenizer_files(src: str | Path, dst: str | Path) -> list[str]:
    copied = []
    for name in TOKENIZER_FILES:
        if (Path(src) / name).is_file():
            shutil.copy2(Path(src) / name, Path(dst) / name)
            copied.append(name)
    return copied


def convert_mamba_ssm(src: str | Path, dst: str | Path) -> Path:
    """mamba_ssm layout (``backbone.embedding``, ``d_model``, ``n_layer``, ``ssm_cfg``, tied head) -> fla/HF."""
    src, dst = Path(src), Path(dst)
    raw = read_config_dict(src)
    if not is_mamba_ssm_config(raw):
        raise CheckpointError(f"{src}: config.json has no d_model/n_layer: not a mamba_ssm checkpoint")
    ssm = raw.get("ssm_cfg") or {}
    if ssm.get("layer", "Mamba2") != "Mamba2":
        raise CheckpointError(f"{src}: ssm_cfg.layer is {ssm.get('layer')!r}; only Mamba2 is supported")
    vocab = raw["vocab_size"]
    multiple = raw.get("pad_vocab_size_multiple", 1)
    vocab += (-vocab) % multiple
    weights = _read_weights(src)
    state = {}
    for key, value in weights.items():
        state[key.replace("backbone.embedding.", "backbone.embeddings.")] = value
    tied = raw.get("tie_embeddings", True)
    if tied:
        state.pop("lm_head.weight", None)
    config = StateXMamba2Config(
        hidden_size=raw["d_model"], num_hidden_layers=raw["n_layer"], vocab_size=vocab,
        state_size=ssm.get("d_state", 128), head_dim=ssm.get("headdim", 64), expand=ssm.get("expand", 2),
        n_groups=ssm.get("ngroups", 1), conv_kernel=ssm.get("d_conv", 4), chunk_size=ssm.get("chunk_size", 256),
        use_bias=ssm.get("bias", False), use_conv_bias=ssm.get("conv_bias", True),
        D_has_hdim=ssm.get("D_has_hdim", False), norm_eps=raw.get("norm_epsilon", 1e-5),
        residual_in_fp32=raw.get("residual_in_fp32", True), tie_word_embeddings=tied,
        statex={"converted_from": "mamba_ssm", "source": str(src)},
    )
    config.model_type = "mamba2"
    model = build_model(config)
    expected = {k: v.shape for k, v in model.state_dict().items() if not (tied and k == "lm_head.weight")}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    bad_shapes = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    if missing or unexpected or bad_shapes:
        raise CheckpointError(
            f"{src}: cannot map to Mamba2 (missing {missing[:5]}, unexpected {unexpected[:5]}, shapes {bad_shapes[:5]})"
        )
    dst.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(dst / "model.safetensors"), metadata={"format": "pt"})
    cfg = config.to_dict()
    cfg["model_type"] = "mamba2"
    (dst / "config.json").write_text(json.dumps(cfg, indent=2))
    copy_tokenizer_files(src, dst)
    return dst


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(path.glob("*.safetensors"))
    out: dict[str, torch.Tensor] = {}
    try:
        if files:
            for f in files:
                out.update(load_file(str(f)))
        elif (path / "pytorch_model.bin").is_file():
            out = torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
        else:
            raise CheckpointError(f"{path}: no weight files (*.safetensors or pytorch_model.bin)")
    except CheckpointError:
        raise
    except Exception as e:  # safetensors / pickle raise many types for corrupt files
        raise CheckpointError(f"{path}: weights are unreadable or corrupt: {e}") from e
    return out
