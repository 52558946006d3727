"""Post-training: config, optimizer groups and schedules, metrics, the trainer and its entry points.

``from statex_dist.train.api import run_training`` (imports stay lazy so ``statex --help`` is fast).
"""
