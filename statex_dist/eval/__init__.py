"""Evaluation: recall probes (passkey, NIAH-single, MQAR), loss by position, an lm-evaluation-harness adapter,
and the Markdown/PNG reports. ``statex eval`` is :func:`statex_dist.eval.runner.evaluate_dir` plus
:func:`statex_dist.eval.report.write_outputs`."""
