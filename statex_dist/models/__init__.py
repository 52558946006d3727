"""GLA and Mamba2 causal LMs that run on CPU and GPU, with fla's state-dict keys and per-layer geometry.

Importing this package registers ``statex_gla`` / ``statex_mamba2`` with the Hugging Face Auto classes, so
``AutoModelForCausalLM.from_pretrained`` rebuilds expanded checkpoints.
"""

from transformers import AutoConfig, AutoModelForCausalLM

from statex_dist.models.configuration import StateXGLAConfig, StateXMamba2Config
from statex_dist.models.gla import StateXGLAForCausalLM
from statex_dist.models.mamba2 import StateXMamba2ForCausalLM

for _config, _model in ((StateXGLAConfig, StateXGLAForCausalLM), (StateXMamba2Config, StateXMamba2ForCausalLM)):
    AutoConfig.register(_config.model_type, _config, exist_ok=True)
    AutoModelForCausalLM.register(_config, _model, exist_ok=True)

__all__ = ["StateXGLAConfig", "StateXMamba2Config", "StateXGLAForCausalLM", "StateXMamba2ForCausalLM"]
