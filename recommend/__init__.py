"""Recommendation models, serving and experiments (built in later issues)."""
