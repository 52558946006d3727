"""Sharded checkpoints (DCP or DeepSpeed), their directory policy, and export to Hugging Face directories."""
