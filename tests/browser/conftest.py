"""Real Chromium for page tests, driven by Playwright with the system browser.

Skipped with the reason when Chromium or Playwright is missing, unless
``PINGJING_REQUIRE_BROWSER=1`` (CI), where a missing browser fails the run instead.
Screenshots go to ``PINGJING_ARTIFACTS`` (default ``var/test-artifacts``) and are kept.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("PINGJING_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("PINGJING_REQUIRE_BROWSER") == "1"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium fonts-noto-cjk)"
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    reason = _missing()
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(f"PINGJING_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    sync_playwright = importlib.import_module("playwright.sync_api").sync_playwright
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots are kept after the run."""
    path = Path(os.environ.get("PINGJING_ARTIFACTS", "var/test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path
