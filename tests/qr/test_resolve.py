"""A genuine token checked against the QR identities: valid, stale after a rotation, revoked, or unknown."""

from __future__ import annotations

import pytest

from adapters.qr import (
    ForgedToken,
    Keyring,
    QrCodeError,
    QrTarget,
    RevokedCode,
    StaleCode,
    issued_target,
    make_token,
    resolve_token,
)
from domain import commands as c
from domain.errors import NotFoundError, RuleViolationError, ValidationError
from domain.values import OfficerKind, QrSubject
from tests.conftest import ADMIN, County

NAMES = ("100102", "李警官", "PS1", "城关派出所")


def token(ring: Keyring, subject: str, key: str, version: int = 1) -> str:
    """A genuine token for ``subject``/``key`` at ``version``."""
    return make_token(ring, QrSubject(subject), key, version)


def refused(county: County, ring: Keyring, tok: str, error: type[QrCodeError]) -> str:
    """The message ``tok`` is refused with, checking it is ``error`` and names no one."""
    with pytest.raises(error) as caught:
        resolve_token(county.app, ring, tok)
    message = str(caught.value)
    assert all(name not in message for name in NAMES)
    return message


def rotate(county: County, subject: str, key: str) -> None:
    """The administrator rotates a code."""
    county.app.rotate_qr(c.RotateQr.model_validate({"subject": subject, "key": key}), ADMIN)


def revoke(county: County, subject: str, key: str) -> None:
    """The administrator revokes a code."""
    county.app.revoke_qr(c.RevokeQr.model_validate({"subject": subject, "key": key, "reason": "badge lost"}), ADMIN)


def test_a_valid_officer_code_names_the_officer_and_their_unit(issued: County, k1: Keyring) -> None:
    target = resolve_token(issued.app, k1, token(k1, "officer", "100102"))
    assert target == QrTarget(QrSubject.OFFICER, "100102", 1, "PS1", "城关派出所", "李警官", OfficerKind.POLICE)
    assert target.badge == "100102"
    assert target.name == "李警官"


def test_a_valid_unit_code_names_the_unit(issued: County, k1: Keyring) -> None:
    target = resolve_token(issued.app, k1, token(k1, "unit", "PS2"))
    assert (target.subject, target.key, target.unit_name, target.badge, target.name) == (
        QrSubject.UNIT,
        "PS2",
        "青同派出所",
        None,
        "青同派出所",
    )


def test_a_rotated_identity_makes_the_old_code_stale_and_the_new_one_valid(issued: County, k1: Keyring) -> None:
    rotate(issued, "officer", "100102")
    message = refused(issued, k1, token(k1, "officer", "100102", 1), StaleCode)
    assert "This code was replaced; ask for the current one." in message
    assert "此二维码已更换" in message
    assert resolve_token(issued.app, k1, token(k1, "officer", "100102", 2)).version == 2


def test_a_revoked_identity_refuses_its_code_until_issued_again(issued: County, k1: Keyring) -> None:
    revoke(issued, "unit", "PS1")
    message = refused(issued, k1, token(k1, "unit", "PS1", 1), RevokedCode)
    assert "withdrawn" in message
    assert "已停用" in message
    issued.app.issue_qr(c.IssueQr.model_validate({"subject": "unit", "key": "PS1"}), ADMIN)
    refused(issued, k1, token(k1, "unit", "PS1", 1), StaleCode)
    assert resolve_token(issued.app, k1, token(k1, "unit", "PS1", 2)).unit_code == "PS1"


def test_an_older_code_of_a_revoked_identity_says_revoked(issued: County, k1: Keyring) -> None:
    rotate(issued, "officer", "100102")
    revoke(issued, "officer", "100102")
    refused(issued, k1, token(k1, "officer", "100102", 1), RevokedCode)


def test_the_code_of_an_officer_who_left_is_revoked(issued: County, k1: Keyring) -> None:
    issued.app.record_officer_left(c.RecordOfficerLeft(badge="100102", reason="retired"), ADMIN)
    refused(issued, k1, token(k1, "officer", "100102"), RevokedCode)


def test_a_transferred_officer_is_rated_in_their_new_unit(issued: County, k1: Keyring) -> None:
    issued.app.transfer_officer(c.TransferOfficer(badge="100102", unit_code="PS2"), ADMIN)
    assert resolve_token(issued.app, k1, token(k1, "officer", "100102")).unit_code == "PS2"


def test_a_signed_code_of_an_identity_never_issued_names_no_one(issued: County, k1: Keyring) -> None:
    refused(issued, k1, token(k1, "unit", "BUR"), ForgedToken)  # the bureau exists but has no code
    refused(issued, k1, token(k1, "officer", "999999"), ForgedToken)


def test_a_signed_code_of_a_version_never_issued_names_no_one(issued: County, k1: Keyring) -> None:
    refused(issued, k1, token(k1, "officer", "100102", 2), ForgedToken)


def test_staff_get_the_current_code_of_an_officer(issued: County) -> None:
    rotate(issued, "officer", "F10103")
    target = issued_target(issued.app, QrSubject.OFFICER, " f10103 ")
    assert (target.key, target.version, target.officer_kind) == ("F10103", 2, OfficerKind.AUXILIARY)


@pytest.mark.parametrize(
    ("subject", "key", "error", "message"),
    [
        ("officer", "999999", NotFoundError, "unknown officer '999999'"),
        ("unit", "NOPE", NotFoundError, "unknown unit 'NOPE'"),
        ("unit", "BUR", RuleViolationError, "unit BUR has no QR code: none was ever issued"),
        ("officer", "1 2", ValidationError, "'1 2' is not a badge or unit code"),
    ],
)
def test_staff_are_told_why_there_is_no_code_to_print(
    issued: County, subject: str, key: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        issued_target(issued.app, QrSubject(subject), key)


def test_staff_cannot_print_a_revoked_code_or_one_of_an_officer_who_left(issued: County) -> None:
    revoke(issued, "unit", "PS2")
    with pytest.raises(RuleViolationError, match="the QR code of unit PS2 is revoked; issue it again first"):
        issued_target(issued.app, QrSubject.UNIT, "PS2")
    issued.app.record_officer_left(c.RecordOfficerLeft(badge="100102", reason="retired"), ADMIN)
    with pytest.raises(RuleViolationError, match="officer 100102 has left"):
        issued_target(issued.app, QrSubject.OFFICER, "100102")
