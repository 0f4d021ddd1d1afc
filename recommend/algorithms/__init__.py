"""Numerical recommendation models: numpy/scipy/scikit-learn only, no Django."""
