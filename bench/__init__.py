"""Benchmarks (``make bench``): figures measured beside their baselines in the same run."""
