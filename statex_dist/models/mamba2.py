"""Mamba2 LM with fla / HF parameter names, per-layer ``state_size`` and document-aware state resets.

The mixer: ``in_proj`` -> z | xBC | dt; causal depthwise conv over xBC (reset at document starts, unlike
fla's torch path); SSD as scalar-decay linear attention (q=C, k=B, v=x*dt, log decay A*dt); D skip;
gated RMSNorm with z; ``out_proj``. StateX grows ``state_size`` (the B/C width) of chosen layers.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import GenerationMixin
from transformers import initialization as init

from statex_dist.kernels.ops import ssd_attention
from statex_dist.models.base import RecurrentBackbone, StateXPreTrainedModel
from statex_dist.models.common import GatedRMSNorm, RecurrentCache, RMSNorm, use_fused
from statex_dist.models.configuration import StateXMamba2Config


def positions_in_document(cu_seqlens: torch.Tensor, total: int) -> torch.Tensor:
    """Index of each token within its document, ``[total]`` (0 at every document start)."""
    starts = cu_seqlens[:-1].long()
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long()
    doc_start = torch.repeat_interleave(starts, lengths, output_size=total)
    return torch.arange(total, device=cu_seqlens.device) - doc_start


def causal_depthwise_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    cu_seqlens: torch.Tensor | None = None,
    conv_state: torch.Tensor | None = None,
) -> torch.Tensor:
    """Causal depthwise conv over time. x [b, t, c]; weight [c, 1, K]; conv_state [b, c, K-1] (previous inputs).

    With ``cu_seqlens`` (b == 1) taps never reach into the previous document.
    """
    b, t, c = x.shape
    k = weight.shape[-1]
    if cu_seqlens is None:
        xt = x.transpose(1, 2)
        if conv_state is not None:
            xt = torch.cat([conv_state.to(xt.dtype), xt], dim=-1)
            out = F.conv1d(xt, weight, bias, groups=c)
        else:
            out = F.conv1d(xt, weight, bias, padding=k - 1, groups=c)[..., :t]
        return out.transpose(1, 2)
    # Varlen: sum of shifted inputs, each tap masked where it would cross a document start.
    pos = positions_in_document(cu_seqlens, t)
    out = x * weight[:, 0, k - 1]
    for shift in range(1, k):
        shifted = F.pad(x, (0, 0, shift, 0))[:, :t]
        mask = (pos >= shift).to(x.dtype)[None, :, None]
        out = out + shifted * mask * weight[:, 0, k - 1 - shift]
    return out + bias if bias is not None else out


class Mamba2Mixer(nn.Module):
    def __init__(self, config: StateXMamba2Config, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads, self.head_dim, self.state_size = config.layer_state_shape(layer_idx)
        self.n_groups = config.n_groups
        self.intermediate_size = config.intermediate_size
        self.conv_kernel = config.conv_kernel
        self.conv_dim = self.intermediate_size + 2 * self.n_groups * self.state_size
        self.dt_limit = tuple(config.dt_limit)
        self.chunk_size = config.chunk_size
        self.kernel_backend = config.kernel_backend
        self.kernel_save_states = config.kernel_save_states
        self.fused = config.fuse_conv
        self.in_proj = nn.Linear(
            config.hidden_size, self.intermediate_size + self.conv_dim + self.num_heads, bias=config.use_bias
        )
        self.conv1d = nn.Conv1d(
            self.conv_dim, self.conv_dim, config.conv_kernel, groups=self.conv_dim,
            padding=config.conv_kernel - 1, bias=config.use_conv_bias,
        )
        self.dt_bias = nn.Parameter(torch.ones(self.num_heads))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, self.num_heads + 1, dtype=torch.float32)))
        self.D = nn.Parameter(torch.ones(self.intermediate_size if config.D_has_hdim else self.num_heads))
        self.norm = GatedRMSNorm(
            self.intermediate_size, eps=config.norm_eps, norm_before_gate=False,
            group_size=self.intermediate_size // self.n_groups, fused=config.fuse_norm,
        )
        self.out_proj = nn.Linear(self.intermediate_size, config.hidden_size, bias=config.use_bias)
        self.out_proj._is_residual_out = True
        for p in (self.dt_bias, self.A_log, self.D):
            p._no_weight_decay = True

    def forward(
        self, hidden: torch.Tensor, cu_seqlens: torch.Tensor | None = None, cache: RecurrentCache | None = None
    ) -> torch.Tensor:
        b, t, _ = hidden.shape
        gn = self.n_groups * self.state_size
        z, xbc, dt = self.in_proj(hidden).split([self.intermediate_size, self.conv_dim, self.num_heads], dim=-1)
        past = cache.layer(self.layer_idx) if cache is not None else None
        conv_state = past["conv_state"] if past else None
        if cache is not None:
            prev = conv_state if conv_state is not None else xbc.new_zeros(b, self.conv_dim, self.conv_kernel - 1)
            new_conv_state = torch.cat([prev.to(xbc.dtype), xbc.transpose(1, 2)], dim=-1)[..., -(self.conv_kernel - 1):]
        conv = use_fused(self.fused, xbc, "causal_conv1d") if conv_state is None else None
        if conv is not None:  # fla's Triton conv with the SiLU fused, reading xbc in place
            xbc, _ = conv(xbc, self.conv1d.weight.squeeze(1), self.conv1d.bias, activation="silu",
                          cu_seqlens=None if cu_seqlens is None else cu_seqlens.long())
        else:
            xbc = F.silu(causal_depthwise_conv(xbc, self.conv1d.weight, self.conv1d.bias, cu_seqlens, conv_state))
        x, B, C = xbc.split([self.intermediate_size, gn, gn], dim=-1)
        dt = F.softplus(dt.float() + self.dt_bias.float())
        if self.dt_limit != (0.0, float("inf")):
            dt = dt.clamp(*self.dt_limit)
        A = -torch.exp(self.A_log.float())
        x = x.reshape(b, t, self.num_heads, self.head_dim)
        per_head_skip = self.D.numel() == self.num_heads  # the kernels add it (fp32) before rounding y
        y, state = ssd_attention(
            x, dt, A,
            B.reshape(b, t, self.n_groups, self.state_size), C.reshape(b, t, self.n_groups, self.state_size),
            D=self.D if per_head_skip else None,
            chunk_size=self.chunk_size, initial_state=past["recurrent_state"] if past else None,
            output_final_state=cache is not None, cu_seqlens=cu_seqlens, backend=self.kernel_backend,
            save_states=self.kernel_save_states,
        )
        if not per_head_skip:  # D_has_hdim: one skip weight per channel
            y = y.float() + x.float() * self.D.float().view(self.num_heads, -1)
        if cache is not None:
            cache.update(self.layer_idx, recurrent_state=state, conv_state=new_conv_state)
        y = self.norm(y.reshape(b, t, self.intermediate_size), z)
        if not torch.is_autocast_enabled(y.device.type):  # under autocast the linear casts y itself: casting it
            y = y.to(self.out_proj.weight.dtype)  # to the fp32 hidden dtype first cost a [T, d_inner] round trip
        return self.out_proj(y)


class Mamba2Block(nn.Module):
    def __init__(self, config: StateXMamba2Config, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.residual_in_fp32 = config.residual_in_fp32
        self.norm = RMSNorm(config.hidden_size, eps=config.norm_eps, fused=config.fuse_norm)
        self.mixer = Mamba2Mixer(config, layer_idx)

    def forward(self, x, cu_seqlens=None, past_key_values=None):
        residual = x.float() if self.residual_in_fp32 else x
        out = residual + self.mixer(self.norm(x), cu_seqlens=cu_seqlens, cache=past_key_values)
        return out.to(x.dtype)


class StateXMamba2PreTrainedModel(StateXPreTrainedModel):
    config_class = StateXMamba2Config
    base_model_prefix = "backbone"
    _no_split_modules = ["Mamba2Block"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Fresh-model init following Mamba2: log-uniform dt, A in A_init_range, D = 1, scaled out_proj."""
        cfg = self.config
        if isinstance(module, Mamba2Mixer):
            init.copy_(module.A_log, torch.log(torch.empty(module.num_heads).uniform_(*cfg.A_init_range)))
            init.ones_(module.D)
            log_dt = torch.rand(module.num_heads) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min)
            dt = torch.exp(log_dt).clamp(min=cfg.dt_init_floor)
            init.copy_(module.dt_bias, dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        elif isinstance(module, (nn.Linear, nn.Conv1d)):
            if getattr(module, "_is_residual_out", False) and cfg.rescale_prenorm_residual:
                # GPT-2 style: the residual branch's output map scaled by 1/sqrt(num_layers).
                weight = torch.empty_like(module.weight, device="cpu")
                nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
                init.copy_(module.weight, weight / math.sqrt(cfg.num_hidden_layers))
            else:
                init.normal_(module.weight, std=cfg.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=cfg.initializer_range)
        elif isinstance(module, (RMSNorm, GatedRMSNorm)):
            init.ones_(module.weight)


class StateXMamba2ForCausalLM(StateXMamba2PreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "backbone.embeddings.weight"}

    def __init__(self, config: StateXMamba2Config):
        super().__init__(config)
        self.backbone = RecurrentBackbone(
            embeddings=nn.Embedding(config.vocab_size, config.hidden_size),
            layers=nn.ModuleList(Mamba2Block(config, i) for i in range(config.num_hidden_layers)),
            norm=RMSNorm(config.hidden_size, eps=config.norm_eps, fused=config.fuse_norm),
            norm_name="norm_f",
        )
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()
