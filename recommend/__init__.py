"""Recommendation models (algorithms/), their offline evaluation, training and serving."""
