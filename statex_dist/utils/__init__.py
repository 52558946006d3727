"""Small helpers shared across components."""
