"""Hugging Face configs for our GLA and Mamba2 models.

fla builds every layer from one global config; StateX needs per-layer geometry (a few layers with merged
heads or a larger d_state). Both configs therefore keep fla's global fields, under fla's names, and add:

* ``layer_overrides``: ``{"<layer index>": {"num_heads": 1}}`` (GLA) or ``{"<idx>": {"state_size": 512}}``
  (Mamba2). JSON object keys are strings, so indices are stored as strings.
* ``statex``: the record of the expansion that produced the checkpoint (layers, mode, seed, source), so a
  directory alone says what it is.
* ``kernel_backend``: which token-mixer kernels to use (``auto``, ``triton``, ``fla``, ``torch``).
* ``kernel_save_states``: our Triton kernels keep the forward's chunk states for the backward instead of
  recomputing them (``ops.gla_attention``'s and ``ops.ssd_attention``'s ``save_states``): GLA-1.3B about 24 KiB
  more activation memory per token per layer in bf16 for two fewer kernels per layer in backward; Mamba2-1.3B
  16 KiB per token per layer at d_state 128 (64 KiB at 512) for one fewer.

A config dict written by fla (``model_type`` ``gla`` / ``mamba2``) is accepted as is.
"""

from __future__ import annotations

import math
from typing import Any

from transformers import PretrainedConfig

KERNEL_BACKENDS = ("auto", "triton", "fla", "torch")


def _check_overrides(overrides: dict | None, allowed: set[str], num_layers: int) -> dict[str, dict[str, Any]]:
    clean: dict[str, dict[str, Any]] = {}
    for key, value in (overrides or {}).items():
        idx = int(key)
        if not 0 <= idx < num_layers:
            raise ValueError(f"layer_overrides: layer {idx} is out of range (the model has {num_layers} layers)")
        if not isinstance(value, dict) or not set(value) <= allowed:
            raise ValueError(f"layer_overrides[{idx}]: only {sorted(allowed)} may be overridden, got {value!r}")
        clean[str(idx)] = dict(value)
    return clean


class StateXGLAConfig(PretrainedConfig):
    """fla's ``GLAConfig`` fields plus per-layer head counts (see module docstring)."""

    model_type = "statex_gla"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(
        self,
        hidden_size: int = 2048,
        expand_k: float = 0.5,
        expand_v: float = 1.0,
        hidden_ratio: int | None = 4,
        intermediate_size: int | None = None,
        num_hidden_layers: int = 24,
        num_heads: int = 4,
        num_kv_heads: int | None = None,
        feature_map: str | None = None,
        attn_mode: str = "chunk",
        use_short_conv: bool = False,
        conv_size: int = 4,
        use_output_gate: bool = True,
        clamp_min: float | None = None,
        hidden_act: str = "swish",
        max_position_embeddings: int = 2048,
        elementwise_affine: bool | None = True,
        norm_eps: float = 1e-6,
        gate_logit_normalizer: int = 16,
        gate_low_rank_dim: int = 16,
        use_gk: bool = True,
        use_gv: bool = False,
        attn: dict | None = None,
        use_cache: bool = True,
        pad_token_id: int | None = None,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        tie_word_embeddings: bool = False,
        initializer_range: float = 0.02,
        fuse_norm: bool = True,
        fuse_swiglu: bool = True,
        fuse_cross_entropy: bool = True,
        vocab_size: int = 32000,
        layer_overrides: dict | None = None,
        statex: dict | None = None,
        kernel_backend: str = "auto",
        kernel_save_states: bool = False,
        **kwargs,
    ):
        # Features of fla's GLA that no released GLA checkpoint uses and that we do not implement: refuse them
        # loudly instead of silently building a different network.
        unsupported = {
            "use_short_conv": use_short_conv,
            "feature_map": feature_map is not None,
            "num_kv_heads": num_kv_heads not in (None, num_heads),
            "attn (hybrid softmax layers)": attn is not None,
            "use_gv": use_gv,
            "use_gk=False": not use_gk,
            "attnres_block_size": kwargs.pop("attnres_block_size", None) is not None,
        }
        bad = [name for name, flag in unsupported.items() if flag]
        if bad:
            raise ValueError(f"GLA config uses features statex_dist does not implement: {', '.join(bad)}")
        if kernel_backend not in KERNEL_BACKENDS:
            raise ValueError(f"kernel_backend must be one of {KERNEL_BACKENDS}, got {kernel_backend!r}")
        for name in ("fuse_linear_cross_entropy", "use_l2warp"):
            kwargs.pop(name, None)
        self.hidden_size = hidden_size
        self.expand_k = expand_k
        self.expand_v = expand_v
        self.hidden_ratio = hidden_ratio
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.feature_map = feature_map
        self.attn_mode = attn_mode
        self.use_short_conv = use_short_conv
        self.conv_size = conv_size
        self.use_output_gate = use_output_gate
        self.clamp_min = clamp_min
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.elementwise_affine = elementwise_affine
        self.norm_eps = norm_eps
        self.gate_logit_normalizer = gate_logit_normalizer
        self.gate_low_rank_dim = gate_low_rank_dim
        self.use_gk = use_gk
        self.use_gv = use_gv
        self.attn = attn
        self.use_cache = use_cache
        self.initializer_range = initializer_range
        self.fuse_norm = fuse_norm
        self.fuse_swiglu = fuse_swiglu
        self.fuse_cross_entropy = fuse_cross_entropy
        self.vocab_size = vocab_size
        self.kernel_backend = kernel_backend
        self.kernel_save_states = bool(kernel_save_states)
        self.statex = statex
        self.layer_overrides = _check_overrides(layer_overrides, {"num_heads"}, num_hidden_layers)
        for idx in range(num_hidden_layers):
            heads = self.layer_num_heads(idx)
            if self.key_dim % heads or self.value_dim % heads:
                raise ValueError(
                    f"layer {idx}: {heads} heads do not divide key dim {self.key_dim} and value dim {self.value_dim}"
                )
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )

    @property
    def key_dim(self) -> int:
        return round(self.hidden_size * self.expand_k)

    @property
    def value_dim(self) -> int:
        return round(self.hidden_size * self.expand_v)

    @property
    def mlp_intermediate_size(self) -> int:
        if self.intermediate_size is not None:
            return self.intermediate_size
        # fla's rule: 2/3 * hidden * ratio, rounded up to a multiple of 256.
        size = int(self.hidden_size * self.hidden_ratio * 2 / 3)
        return 256 * math.ceil(size / 256)

    def layer_num_heads(self, idx: int) -> int:
        return int(self.layer_overrides.get(str(idx), {}).get("num_heads", self.num_heads))

    def layer_state_shape(self, idx: int) -> tuple[int, int, int]:
        """(heads, key dim per head, value dim per head) of layer ``idx``'s recurrent state."""
        h = self.layer_num_heads(idx)
        return h, self.key_dim // h, self.value_dim // h


class StateXMamba2Config(PretrainedConfig):
    """fla's ``Mamba2Config`` fields plus per-layer ``state_size`` (see module docstring)."""

    model_type = "statex_mamba2"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(
        self,
        head_dim: int = 64,
        vocab_size: int = 32000,
        hidden_size: int = 2048,
        state_size: int = 128,
        num_hidden_layers: int = 48,
        norm_eps: float = 1e-5,
        pad_token_id: int = 0,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        expand: int = 2,
        conv_kernel: int = 4,
        n_groups: int = 1,
        use_bias: bool = False,
        use_conv_bias: bool = True,
        conv_init: float | None = None,
        A_init_range: tuple[float, float] | list[float] = (1, 16),
        D_has_hdim: bool = False,
        hidden_act: str = "silu",
        initializer_range: float = 0.02,
        residual_in_fp32: bool = True,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        dt_limit: tuple[float, float] | list[float] = (0.0, float("inf")),
        rescale_prenorm_residual: bool = True,
        use_cache: bool = True,
        rmsnorm: bool = True,
        norm_before_gate: bool = False,
        chunk_size: int = 256,
        fuse_norm: bool = True,
        fuse_cross_entropy: bool = True,
        fuse_conv: bool = True,
        tie_word_embeddings: bool = False,
        layer_overrides: dict | None = None,
        statex: dict | None = None,
        kernel_backend: str = "auto",
        kernel_save_states: bool = False,
        **kwargs,
    ):
        if not rmsnorm or norm_before_gate:
            raise ValueError("statex_dist implements Mamba2 with rmsnorm=True and norm_before_gate=False only")
        if kernel_backend not in KERNEL_BACKENDS:
            raise ValueError(f"kernel_backend must be one of {KERNEL_BACKENDS}, got {kernel_backend!r}")
        if (expand * hidden_size) % head_dim:
            raise ValueError(f"expand * hidden_size ({expand * hidden_size}) must be divisible by head_dim {head_dim}")
        for name in ("fuse_linear_cross_entropy", "use_l2warp", "num_heads"):
            kwargs.pop(name, None)
        self.head_dim = head_dim
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.state_size = state_size
        self.num_hidden_layers = num_hidden_layers
        self.norm_eps = norm_eps
        self.expand = expand
        self.conv_kernel = conv_kernel
        self.n_groups = n_groups
        self.use_bias = use_bias
        self.use_conv_bias = use_conv_bias
        self.conv_init = conv_init
        self.A_init_range = list(A_init_range)
        self.D_has_hdim = D_has_hdim
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        self.residual_in_fp32 = residual_in_fp32
        self.dt_min = dt_min
        self.dt_max = dt_max
        self.dt_init_floor = dt_init_floor
        # transformers writes inf as {"__float__": "Infinity"} in config.json.
        self.dt_limit = [float(v["__float__"]) if isinstance(v, dict) else float(v) for v in dt_limit]
        self.rescale_prenorm_residual = rescale_prenorm_residual
        self.use_cache = use_cache
        self.rmsnorm = rmsnorm
        self.norm_before_gate = norm_before_gate
        self.chunk_size = chunk_size
        self.fuse_norm = fuse_norm
        self.fuse_cross_entropy = fuse_cross_entropy
        self.fuse_conv = fuse_conv  # fla's Triton causal conv + SiLU on CUDA (ours; fla's config has no such key)
        self.num_heads = expand * hidden_size // head_dim
        if self.num_heads % n_groups:
            raise ValueError(f"num_heads ({self.num_heads}) must be divisible by n_groups ({n_groups})")
        self.kernel_backend = kernel_backend
        self.kernel_save_states = bool(kernel_save_states)
        self.statex = statex
        self.layer_overrides = _check_overrides(layer_overrides, {"state_size"}, num_hidden_layers)
        super().__init__(
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )

    @property
    def intermediate_size(self) -> int:
        return self.expand * self.hidden_size

    def layer_state_size(self, idx: int) -> int:
        return int(self.layer_overrides.get(str(idx), {}).get("state_size", self.state_size))

    def layer_state_shape(self, idx: int) -> tuple[int, int, int]:
        """(heads, head_dim, d_state) of layer ``idx``'s recurrent state."""
        return self.num_heads, self.head_dim, self.layer_state_size(idx)
