"""StateX: grow the recurrent state of chosen layers of a pre-trained GLA / Mamba2 model."""

from statex_dist.expansion.apply import expand_checkpoint, expand_model, expanded_config, plan_on_meta
from statex_dist.expansion.plan import ExpansionError, ExpansionPlan, parse_layers

__all__ = [
    "ExpansionError", "ExpansionPlan", "expand_checkpoint", "expand_model", "expanded_config", "parse_layers",
    "plan_on_meta",
]
