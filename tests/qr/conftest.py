"""Fixtures for the QR tests: keyrings, the tiny county with issued codes, a QR environment of their own."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from adapters.qr.keys import Keyring, SigningKey
from domain import commands as c
from tests.conftest import ADMIN, County

#: Every QR code the tiny county is given: both stations and their officers (not the bureau).
ISSUED = (
    ("unit", "PS1"),
    ("unit", "PS2"),
    ("officer", "100101"),
    ("officer", "100102"),
    ("officer", "F10103"),
    ("officer", "100201"),
)


def signing_key(kid: str, seed: str | None = None) -> SigningKey:
    """A deterministic 32-byte key (``seed`` defaults to the key id)."""
    return SigningKey(kid, hashlib.sha256(f"pingjing-test-{seed or kid}".encode()).digest())


def keyring(*keys: SigningKey) -> Keyring:
    """A keyring of ``keys``, the first one active."""
    return Keyring(keys, "test keys")


@pytest.fixture(autouse=True)
def _qr_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No QR setting from the machine: the key file and the images go under the test's own directory."""
    for name in ("PINGJING_QR_KEYS", "PINGJING_PUBLIC_URL", "PINGJING_QR_KEY_FILE", "PINGJING_QR_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PINGJING_QR_KEY_FILE", str(tmp_path / "keys" / "qr-keys.json"))
    monkeypatch.setenv("PINGJING_QR_DIR", str(tmp_path / "qr"))


@pytest.fixture
def k1() -> Keyring:
    """One key, ``k1``."""
    return keyring(signing_key("k1"))


@pytest.fixture
def issued(county: County) -> County:
    """The tiny county (on each store) with a code for both stations and their officers."""
    for subject, key in ISSUED:
        county.app.issue_qr(c.IssueQr.model_validate({"subject": subject, "key": key}), ADMIN)
    return county
