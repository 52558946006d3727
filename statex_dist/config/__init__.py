"""Strict YAML + key=value config loading into typed dataclasses (see io.py)."""
