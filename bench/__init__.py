"""Benchmarks: one script per benchmark, each printing its figures and a baseline."""
