"""Benchmarks (``make bench``): figures measured beside their baselines in the same run."""

from __future__ import annotations

import os

#: The PostgreSQL database the benchmarks make their schemas in (and drop them from afterwards).
POSTGRES_URL = os.environ.get("PINGJING_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def num(value: float | None, digits: int = 0) -> str:
    """A figure as the bench prints it: thousands separated, two decimals below 100 (unless ``digits``)."""
    if value is None:
        return "-"
    if digits == 0 and abs(value) < 100:
        digits = 2
    return f"{value:,.{digits}f}"
