"""Gated Linear Attention LM with fla's parameter names and per-layer head counts.

A StateX-merged layer is the same module with ``num_heads=1``: projections keep their shapes, only the
per-head output norm grows from ``value_dim / heads`` to ``value_dim``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import GenerationMixin
from transformers import initialization as init

from statex_dist.kernels.ops import gla_attention
from statex_dist.models.base import RecurrentBackbone, StateXPreTrainedModel
from statex_dist.models.common import GatedRMSNorm, RecurrentCache, RMSNorm, SwiGLUMLP, use_fused
from statex_dist.models.configuration import StateXGLAConfig

# The GLA layer's own initialisation for its linear maps (xavier-uniform, gain 2^-2.5), which StateX uses
# when it re-initialises a merged mixer.
GLA_XAVIER_GAIN = 2 ** -2.5


class GLAMixer(nn.Module):
    """Token mixer of one GLA layer: ``S_t = diag(a_t) S_{t-1} + k_t^T v_t``, ``o_t = q_t S_t`` per head."""

    def __init__(self, config: StateXGLAConfig, layer_idx: int):
        super().__init__()
        hidden = config.hidden_size
        self.layer_idx = layer_idx
        self.num_heads, self.head_k_dim, self.head_v_dim = config.layer_state_shape(layer_idx)
        self.key_dim, self.value_dim = config.key_dim, config.value_dim
        self.gate_logit_normalizer = config.gate_logit_normalizer
        self.clamp_min = config.clamp_min
        self.fused = config.fuse_norm  # the gate's fused elementwise kernel goes with the fused norms
        self.kernel_backend = config.kernel_backend
        self.kernel_save_states = config.kernel_save_states
        self.q_proj = nn.Linear(hidden, self.key_dim, bias=False)
        self.k_proj = nn.Linear(hidden, self.key_dim, bias=False)
        self.v_proj = nn.Linear(hidden, self.value_dim, bias=False)
        self.use_output_gate = config.use_output_gate
        if self.use_output_gate:
            self.g_proj = nn.Linear(hidden, self.value_dim, bias=False)
        self.gk_proj = nn.Sequential(
            nn.Linear(hidden, config.gate_low_rank_dim, bias=False),
            nn.Linear(config.gate_low_rank_dim, self.key_dim, bias=True),
        )
        self.o_proj = nn.Linear(self.value_dim, hidden, bias=False)
        # fla names the output norm after whether it is fused with the swish gate; keep its keys.
        self.fused_gate_norm = config.fuse_norm and self.use_output_gate and config.hidden_act == "swish"
        if self.fused_gate_norm:
            self.g_norm_swish_gate = GatedRMSNorm(self.head_v_dim, eps=config.norm_eps, fused=config.fuse_norm)
        else:
            if config.hidden_act not in ("swish", "silu"):
                raise ValueError(f"GLA output gate activation {config.hidden_act!r} is not supported")
            self.g_norm = RMSNorm(self.head_v_dim, eps=config.norm_eps, fused=config.fuse_norm)

    @property
    def scale(self) -> float:
        return self.head_k_dim ** -0.5

    def log_decay(self, logits: torch.Tensor) -> torch.Tensor:
        """``logsigmoid(logits) / gate_logit_normalizer`` in the logits' dtype (bf16 under autocast, as fla's GLA),
        computed in fp32 and rounded once (with the default normalizer 16, a power of two, fla's two bf16 steps
        round at the same point). On CUDA this is fla's fused kernel: one pass each way where our earlier fp32 gate
        took three (cast, logsigmoid, divide) plus a cast back in backward: 1.7 ms of a GLA-1.3B step on an H200
        against 3.5 ms and two fp32 copies (2026-11-30, calls ze and zk)."""
        fn = use_fused(self.fused, logits, "logsigmoid")
        if fn is not None:
            gk = fn(logits, self.gate_logit_normalizer)
        else:
            gk = (F.logsigmoid(logits.float()) / self.gate_logit_normalizer).to(logits.dtype)
        return gk if self.clamp_min is None else gk.clamp_min(self.clamp_min)

    def forward(
        self, x: torch.Tensor, cu_seqlens: torch.Tensor | None = None, cache: RecurrentCache | None = None
    ) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.num_heads, self.head_k_dim)
        k = self.k_proj(x).view(b, t, self.num_heads, self.head_k_dim)
        v = self.v_proj(x).view(b, t, self.num_heads, self.head_v_dim)
        gk = self.log_decay(self.gk_proj(x)).view(b, t, self.num_heads, self.head_k_dim)
        past = cache.layer(self.layer_idx) if cache is not None else None
        o, state = gla_attention(
            q, k, v, gk, scale=self.scale,
            initial_state=past["recurrent_state"] if past else None,
            output_final_state=cache is not None, cu_seqlens=cu_seqlens, backend=self.kernel_backend,
            save_states=self.kernel_save_states,
        )
        if cache is not None:
            cache.update(self.layer_idx, recurrent_state=state)
        if self.use_output_gate:
            g = self.g_proj(x).view(b, t, self.num_heads, self.head_v_dim)
            if self.fused_gate_norm:
                o = self.g_norm_swish_gate(o, g)
            else:
                o = self.g_norm(o) * F.silu(g)
        else:
            o = self.g_norm(o)
        return self.o_proj(o.reshape(b, t, self.value_dim))


class GLABlock(nn.Module):
    def __init__(self, config: StateXGLAConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.attn_norm = RMSNorm(config.hidden_size, eps=config.norm_eps, fused=config.fuse_norm)
        self.attn = GLAMixer(config, layer_idx)
        self.mlp_norm = RMSNorm(config.hidden_size, eps=config.norm_eps, fused=config.fuse_norm)
        self.mlp = SwiGLUMLP(config.hidden_size, config.mlp_intermediate_size, fused=config.fuse_swiglu)

    def forward(self, x, cu_seqlens=None, past_key_values=None):
        a = self.attn(self.attn_norm(x), cu_seqlens=cu_seqlens, cache=past_key_values)
        h, x = self.mlp_norm.add_norm(a, x)  # x + a and its norm, one kernel on CUDA
        return x + self.mlp(h)


class StateXGLAPreTrainedModel(StateXPreTrainedModel):
    config_class = StateXGLAConfig
    base_model_prefix = "model"
    _no_split_modules = ["GLABlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Fresh-model init, as fla's GLA: normal(0, initializer_range) for linears and embeddings, norms 1."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, (RMSNorm, GatedRMSNorm)):
            init.ones_(module.weight)


class StateXGLAForCausalLM(StateXGLAPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.embeddings.weight"}

    def __init__(self, config: StateXGLAConfig):
        super().__init__(config)
        self.model = RecurrentBackbone(
            embeddings=nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id),
            layers=nn.ModuleList(GLABlock(config, i) for i in range(config.num_hidden_layers)),
            norm=RMSNorm(config.hidden_size, eps=config.norm_eps, fused=config.fuse_norm),
            norm_name="norm",
        )
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()


def reinit_gla_mixer_(mixer: GLAMixer, generator: torch.Generator | None = None) -> None:
    """Re-initialise a mixer as the GLA layer does: xavier-uniform (gain 2^-2.5), zero bias, norm weight 1."""
    with torch.no_grad():
        for module in mixer.modules():
            if isinstance(module, nn.Linear):
                fan_out, fan_in = module.weight.shape
                bound = GLA_XAVIER_GAIN * math.sqrt(6.0 / (fan_in + fan_out))
                module.weight.uniform_(-bound, bound, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, (RMSNorm, GatedRMSNorm)):
                module.weight.fill_(1.0)
