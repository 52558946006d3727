"""statex_dist: distributed post-training with StateX state expansion for GLA and Mamba2 language models.

``import statex_dist`` registers our model types with Hugging Face's Auto classes (cheap, no I/O), so that
``transformers.AutoModelForCausalLM.from_pretrained`` loads checkpoints written by ``statex expand`` / ``export``.
"""

__version__ = "0.1.0"

from statex_dist import models as _models  # noqa: E402,F401  (registers the Auto classes)
