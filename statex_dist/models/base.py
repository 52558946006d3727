"""The part of a recurrent causal LM that GLA and Mamba2 share: embeddings -> blocks -> norm -> head.

Subclasses name the submodules the way fla does (``model.*`` for GLA, ``backbone.*`` for Mamba2) so that
state-dict keys match fla checkpoints exactly; this class only adds forward/loss/generation plumbing.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from statex_dist.models.common import RecurrentCache, causal_lm_loss, flatten_for_varlen


class RecurrentBackbone(nn.Module):
    """Embeddings, a list of blocks and a final norm. ``norm_name`` keeps fla's key (``norm`` / ``norm_f``)."""

    def __init__(self, embeddings: nn.Embedding, layers: nn.ModuleList, norm: nn.Module, norm_name: str):
        super().__init__()
        self.embeddings = embeddings
        self.layers = layers
        self.norm_name = norm_name
        self.add_module(norm_name, norm)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        cache: RecurrentCache | None = None,
    ) -> torch.Tensor:
        x = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        for layer in self.layers:
            x = layer(x, cu_seqlens=cu_seqlens, past_key_values=cache)
        return getattr(self, self.norm_name)(x)


class StateXPreTrainedModel(PreTrainedModel):
    """Shared forward for our causal LMs; subclasses set ``base_model_prefix`` and build the backbone."""

    supports_gradient_checkpointing = True
    _is_stateful = True
    _supports_cache_class = True

    @property
    def backbone_module(self) -> RecurrentBackbone:
        return getattr(self, self.base_model_prefix)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.backbone_module.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.backbone_module.embeddings = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        past_key_values: RecurrentCache | None = None,
        labels: torch.LongTensor | None = None,
        shift_labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        cu_seqlens: torch.Tensor | None = None,
        logits_to_keep: int = 0,
        loss_reduction: str = "mean",
        return_dict: bool | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        if attention_mask is not None and not bool(attention_mask.all()):
            # A recurrent state cannot skip padded positions without varlen bookkeeping; callers pack with
            # cu_seqlens instead (the data layer does), or batch prompts of equal length.
            raise NotImplementedError("padding masks are not supported: pack sequences and pass cu_seqlens")
        ref = input_ids if input_ids is not None else inputs_embeds[..., 0]
        batch, seq_len = ref.shape[:2]
        if cu_seqlens is not None:
            if past_key_values is not None or use_cache:
                raise ValueError("cu_seqlens (packed training) cannot be combined with a generation cache")
            cu_seqlens = cu_seqlens.to(device=ref.device)
            if input_ids is not None:
                input_ids = flatten_for_varlen(input_ids, cu_seqlens)
            else:
                inputs_embeds = inputs_embeds.reshape(1, batch * seq_len, -1)
        use_cache = bool(use_cache) if use_cache is not None else False
        if use_cache and past_key_values is None:
            past_key_values = RecurrentCache()
        hidden = self.backbone_module(
            input_ids=input_ids, inputs_embeds=inputs_embeds, cu_seqlens=cu_seqlens,
            cache=past_key_values if use_cache else None,
        )
        hidden = hidden.reshape(batch, seq_len, -1)
        if use_cache:
            past_key_values.seen_tokens += seq_len
        has_labels = labels is not None or shift_labels is not None
        if not has_labels and logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden)
        loss = None
        if has_labels:
            fused = bool(getattr(self.config, "fuse_cross_entropy", False))
            loss = causal_lm_loss(logits, labels, shift_labels, loss_reduction, fused=fused)
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=past_key_values if use_cache else None)

    def prepare_inputs_for_generation(
        self, input_ids, past_key_values=None, attention_mask=None, inputs_embeds=None, use_cache=True, **kwargs
    ):
        # After the prompt, feed only the tokens the recurrent state has not consumed yet.
        if not isinstance(past_key_values, RecurrentCache):
            past_key_values = None
        if past_key_values is not None and past_key_values.seen_tokens > 0:
            input_ids = input_ids[:, past_key_values.seen_tokens:]
            inputs_embeds = None
        model_inputs = {"past_key_values": past_key_values, "use_cache": use_cache}
        if inputs_embeds is not None and past_key_values is None:
            model_inputs["inputs_embeds"] = inputs_embeds
        else:
            model_inputs["input_ids"] = input_ids
        if kwargs.get("logits_to_keep") is not None:
            model_inputs["logits_to_keep"] = kwargs["logits_to_keep"]
        return model_inputs

    def _prepare_cache_for_generation(self, generation_config, model_kwargs, *args, **kwargs):
        # Our cache holds per-layer recurrent states of different shapes; HF's KV caches do not fit.
        if not isinstance(model_kwargs.get("past_key_values"), RecurrentCache):
            model_kwargs["past_key_values"] = RecurrentCache()

    def _update_model_kwargs_for_generation(self, outputs, model_kwargs, is_encoder_decoder=False, num_new_tokens=1):
        model_kwargs["past_key_values"] = outputs.past_key_values
        if model_kwargs.get("attention_mask") is not None:
            mask = model_kwargs["attention_mask"]
            model_kwargs["attention_mask"] = torch.cat([mask, mask.new_ones(mask.shape[0], num_new_tokens)], dim=-1)
        return model_kwargs

    @torch.no_grad()
    def greedy_generate(self, input_ids: torch.Tensor, max_new_tokens: int, eos_token_id: int | None = None):
        """Greedy decoding with the recurrent cache: prompt once, then one token per step.

        Independent of Hugging Face's generation machinery, which evaluation code uses for speed and
        robustness; returns only the new tokens ``[B, max_new_tokens]`` (EOS-filled after an EOS).
        """
        cache = RecurrentCache()
        out = self(input_ids=input_ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
        tokens = []
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        nxt = out.logits[:, -1].argmax(-1)
        for _ in range(max_new_tokens):
            if eos_token_id is not None:
                nxt = torch.where(done, torch.full_like(nxt, eos_token_id), nxt)
                done |= nxt == eos_token_id
            tokens.append(nxt)
            if eos_token_id is not None and bool(done.all()):
                break
            out = self(input_ids=nxt[:, None], past_key_values=out.past_key_values, use_cache=True)
            nxt = out.logits[:, -1].argmax(-1)
        return torch.stack(tokens, dim=1)
