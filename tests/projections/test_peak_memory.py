"""A process's peak memory is its own, not that of the process it was started from."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

from projections.parallel import peak_rss_mb

_REPORT = "import json; from projections.parallel import peak_rss_mb; print(json.dumps(peak_rss_mb()))"


def test_a_program_started_by_a_large_one_reports_its_own_peak() -> None:
    # A parent that grows to about 300 MB, then runs a small program in its place (exec).
    parent = (
        "import os, sys; ballast = bytearray(300 * 1024 * 1024); ballast[::4096] = b'x' * len(ballast[::4096]); "
        f"os.execv(sys.executable, [sys.executable, '-c', {_REPORT!r}])"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter running our own code
        [sys.executable, "-c", parent], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out) < 150, "the small program reported its parent's peak"


def test_this_process_reports_at_least_what_it_holds_now() -> None:
    assert peak_rss_mb() > 10
    assert peak_rss_mb() <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + 1
