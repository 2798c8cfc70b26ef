"""Signed QR tokens: the round trip, every kind of tampering, and signing-key rotation."""

from __future__ import annotations

import re
import string

import pytest

from adapters.qr import ForgedToken, Keyring, QrClaim, make_token, scan_url, verify_token
from adapters.qr.errors import QrConfigError
from adapters.qr.tokens import token_from_text
from domain.errors import ValidationError
from domain.values import QrSubject
from tests.qr.conftest import keyring, signing_key

URL_SAFE = re.compile(r"^[A-Za-z0-9._~-]+$")
ALPHABET = string.ascii_letters + string.digits + "-_."


def assert_forged(ring: Keyring, token: str, *names: str) -> None:
    """``token`` is refused as forged, and the refusal names none of ``names``."""
    with pytest.raises(ForgedToken) as refused:
        verify_token(ring, token)
    message = str(refused.value)
    assert "not issued by the bureau" in message
    assert "不是本局发放" in message
    for name in names:
        assert name not in message


def test_a_token_round_trips_to_its_claim(k1: Keyring) -> None:
    token = make_token(k1, QrSubject.OFFICER, "130117", 3)
    assert verify_token(k1, token) == QrClaim(QrSubject.OFFICER, "130117", 3, "k1")
    unit = make_token(k1, QrSubject.UNIT, "LSPS02", 1)
    assert verify_token(k1, unit) == QrClaim(QrSubject.UNIT, "LSPS02", 1, "k1")
    longest = make_token(keyring(signing_key("k1234567")), QrSubject.UNIT, "A-" * 16, 999_999_999)
    assert verify_token(keyring(signing_key("k1234567")), longest).key == "A-" * 16


def test_a_token_is_short_url_safe_and_carries_its_key_id(k1: Keyring) -> None:
    token = make_token(k1, QrSubject.OFFICER, "130117", 1)
    assert URL_SAFE.match(token)
    assert len(token) == 35  # "k1." + "o130117" + ".1." + 22 characters of a 128-bit MAC
    assert token.startswith("k1.o130117.1.")


def test_the_same_claim_always_gives_the_same_token(k1: Keyring) -> None:
    assert make_token(k1, QrSubject.UNIT, "PS1", 2) == make_token(k1, QrSubject.UNIT, "PS1", 2)


def test_one_character_changed_anywhere_is_forged(k1: Keyring) -> None:
    ring = keyring(signing_key("k1"), signing_key("k2"))  # a changed key id may name another real key
    token = make_token(ring, QrSubject.OFFICER, "130117", 1)
    for i, original in enumerate(token):
        for replacement in ALPHABET:
            if replacement != original:
                assert_forged(ring, token[:i] + replacement + token[i + 1 :], "130117")


def test_a_truncated_or_extended_token_is_forged(k1: Keyring) -> None:
    token = make_token(k1, QrSubject.OFFICER, "130117", 1)
    for n in range(len(token)):
        assert_forged(k1, token[:n], "130117")
    for extra in ("A", "=", "==", " ", "\n", "/", ".1"):
        assert_forged(k1, token + extra, "130117")
    assert_forged(k1, " " + token, "130117")


def test_a_token_signed_with_another_secret_under_the_same_key_id_is_forged(k1: Keyring) -> None:
    other = keyring(signing_key("k1", seed="someone else"))
    assert_forged(k1, make_token(other, QrSubject.OFFICER, "130117", 1), "130117")


def test_a_token_with_an_unknown_key_id_is_forged(k1: Keyring) -> None:
    stranger = keyring(signing_key("k9"))
    assert_forged(k1, make_token(stranger, QrSubject.UNIT, "LSPS02", 1), "LSPS02")


def test_a_swapped_subject_or_version_is_forged(k1: Keyring) -> None:
    officer = make_token(k1, QrSubject.OFFICER, "130117", 1)
    assert_forged(k1, officer.replace(".o130117.", ".u130117."), "130117")
    assert_forged(k1, officer.replace(".1.", ".2.", 1), "130117")
    unit = make_token(k1, QrSubject.UNIT, "LSPS02", 1)
    mac = officer.rsplit(".", 1)[1]
    assert_forged(k1, f"{unit.rsplit('.', 1)[0]}.{mac}", "LSPS02", "130117")


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "k1",
        "k1...",
        "k1.o130117.1",
        f"K1.o130117.1.{'A' * 22}",
        f"k1.x130117.1.{'A' * 22}",
        f"k1.o130117.0.{'A' * 22}",
        f"k1.o130117.01.{'A' * 22}",
        f"k1.o警号.1.{'A' * 22}",
        f"k1.o130117.1.{'A' * 21}=",
        "A" * 5000,
    ],
)
def test_malformed_tokens_are_forged(k1: Keyring, token: str) -> None:
    assert_forged(k1, token, "130117")


def test_a_code_signed_with_an_old_key_verifies_while_that_key_is_configured() -> None:
    before = keyring(signing_key("k1"))
    old = make_token(before, QrSubject.OFFICER, "130117", 1)
    rotated = keyring(signing_key("k2"), signing_key("k1"))
    assert verify_token(rotated, old).key_id == "k1"
    new = make_token(rotated, QrSubject.OFFICER, "130117", 1)
    assert new.startswith("k2.")
    assert verify_token(rotated, new).key_id == "k2"
    retired = keyring(signing_key("k2"))
    assert_forged(retired, old, "130117")
    assert verify_token(retired, new).key == "130117"


def test_a_token_is_only_made_for_a_real_key_and_version(k1: Keyring) -> None:
    with pytest.raises(ValidationError):
        make_token(k1, QrSubject.OFFICER, "13.0117", 1)
    with pytest.raises(ValidationError):
        make_token(k1, QrSubject.OFFICER, "130117", 0)


def test_the_scan_url_is_the_public_url_and_the_token() -> None:
    assert scan_url("https://pj.lingshou.example/", "k1.o1.1.x") == "https://pj.lingshou.example/s/k1.o1.1.x"
    assert scan_url("http://127.0.0.1:8000", "T") == "http://127.0.0.1:8000/s/T"
    assert scan_url("https://gov.example/pingjing", "T") == "https://gov.example/pingjing/s/T"


@pytest.mark.parametrize("url", ["ftp://x.example", "pj.example", "https://", "https://x.example/?a=1", "https://x y"])
def test_a_public_url_that_cannot_prefix_a_scan_url_is_refused(url: str) -> None:
    with pytest.raises(QrConfigError, match="PINGJING_PUBLIC_URL"):
        scan_url(url, "T")


def test_a_pasted_url_gives_its_token() -> None:
    assert token_from_text(" https://pj.example/s/k1.o1.1.abc \n") == "k1.o1.1.abc"
    assert token_from_text("k1.o1.1.abc") == "k1.o1.1.abc"
