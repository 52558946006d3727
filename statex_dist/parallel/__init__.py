"""Model-agnostic parallelism: process groups, FSDP2 / DeepSpeed / DDP / single engines, sharded materialisation."""
