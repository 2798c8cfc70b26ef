"""Shared fixtures of the adapter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """The CLI configures structlog for the process; put it back after each test."""
    yield
    structlog.reset_defaults()
