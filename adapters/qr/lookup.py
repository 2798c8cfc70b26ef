"""Whom a code rates: a token's claim checked against the QR identities, units and officers.

Everything is read from the application's directory (units, officers and QR identities
in memory, caught up with the log), so checking a scanned code costs one query for
what changed since the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.utils import get_topic

from adapters.qr.errors import ForgedToken, RevokedCode, StaleCode
from adapters.qr.keys import Keyring
from adapters.qr.tokens import KEY_PATTERN, QrClaim, verify_token
from domain.application import PingjingApp
from domain.directory import Directory
from domain.errors import NotFoundError, RuleViolationError, ValidationError
from domain.ids import officer_id, qr_identity_id, unit_id
from domain.registry import Officer, QrIdentity, Unit
from domain.values import OfficerKind, QrSubject

_PAGE = 5000


@dataclass(frozen=True)
class QrTarget:
    """Whom a valid code rates: an officer (with their unit) or a unit, at the identity's current version."""

    subject: QrSubject
    key: str
    version: int
    unit_code: str
    unit_name: str
    officer_name: str | None = None
    officer_kind: OfficerKind | None = None

    @property
    def badge(self) -> str | None:
        """The officer's badge number (None for a unit's code)."""
        return self.key if self.subject is QrSubject.OFFICER else None

    @property
    def name(self) -> str:
        """The officer's name, or the unit's."""
        return self.officer_name or self.unit_name


@dataclass(frozen=True)
class UnitSheet:
    """What a unit's printed sheet holds: its own code and each active officer's with a usable code."""

    unit_code: str
    unit_name: str
    unit: QrTarget | None
    officers: tuple[QrTarget, ...]
    #: Active officers of the unit left off the sheet: (badge, why).
    skipped: tuple[tuple[str, str], ...]


def resolve(app: PingjingApp, claim: QrClaim) -> QrTarget:
    """Whom a genuine claim rates now; :class:`StaleCode`, :class:`RevokedCode` or :class:`ForgedToken` if nobody."""
    directory = _directory(app)
    identity = directory.get(qr_identity_id(claim.subject, claim.key))
    # A version we never issued is as unknown as an identity we never issued.
    if not isinstance(identity, QrIdentity) or claim.version > identity.qr_version:
        raise ForgedToken()
    if not identity.active:
        raise RevokedCode()
    if claim.version < identity.qr_version:
        raise StaleCode()
    target = _target(directory, identity)
    if target is None:  # an officer who left keeps no active code; this only guards the rule
        raise RevokedCode()
    return target


def resolve_token(app: PingjingApp, keyring: Keyring, token: str) -> QrTarget:
    """Verify a scanned token and resolve it: the one call a citizen's page needs."""
    return resolve(app, verify_token(keyring, token))


def known_target(app: PingjingApp, claim: QrClaim) -> QrTarget | None:
    """Whom a genuine claim names as the directory last knew it, without asking the store.

    For the busy path of a rating: the rating's own transaction checks the code's version
    again (``SubmitRating.qr_version``), so this only has to name the officer on the page.
    None when the directory does not know the code, or no longer as this version.
    """
    identity = app.directory.get(qr_identity_id(claim.subject, claim.key))
    if not isinstance(identity, QrIdentity) or not identity.active or identity.qr_version != claim.version:
        return None
    return _target(app.directory, identity)


def issued_target(app: PingjingApp, subject: QrSubject, key: str) -> QrTarget:
    """The current code of an officer or unit, for staff printing it; refusals name the badge or code."""
    key = _check_key(key)
    directory = _directory(app)
    what = "officer" if subject is QrSubject.OFFICER else "unit"
    holder = directory.get(officer_id(key) if subject is QrSubject.OFFICER else unit_id(key))
    if not isinstance(holder, Officer | Unit):
        raise NotFoundError(what, key)
    if isinstance(holder, Officer) and holder.left:
        raise RuleViolationError(f"officer {key} has left; their QR code is withdrawn")
    identity = directory.get(qr_identity_id(subject, key))
    if not isinstance(identity, QrIdentity):
        raise RuleViolationError(f"{what} {key} has no QR code: none was ever issued (issue_qr first)")
    if not identity.active:
        raise RuleViolationError(f"the QR code of {what} {key} is revoked; issue it again first (issue_qr)")
    target = _target(directory, identity)
    if target is None:
        raise NotFoundError(what, key)
    return target


def unit_sheet(app: PingjingApp, code: str) -> UnitSheet:
    """The unit's code and those of its active officers (by badge); refuse a unit with none."""
    code = _check_key(code)
    directory = _directory(app)
    unit = directory.get(unit_id(code))
    if not isinstance(unit, Unit):
        raise NotFoundError("unit", code)
    unit_target = _active_target(directory, QrSubject.UNIT, code)
    officers, skipped = [], []
    members = [o for o in map(directory.get, _officer_ids(app)) if isinstance(o, Officer) and _serves(o, unit)]
    for officer in sorted(members, key=lambda o: o.badge):
        target = _active_target(directory, QrSubject.OFFICER, officer.badge)
        if target is not None:
            officers.append(target)
        else:
            issued = isinstance(directory.get(qr_identity_id(QrSubject.OFFICER, officer.badge)), QrIdentity)
            skipped.append((officer.badge, "revoked" if issued else "never issued"))
    if unit_target is None and not officers:
        raise RuleViolationError(f"unit {code} has no active QR code and no officer with one; nothing to print")
    return UnitSheet(code, unit.name, unit_target, tuple(officers), tuple(skipped))


def an_active_officer(app: PingjingApp) -> QrTarget | None:
    """The officer with the lowest badge and a usable code (for pointing someone at a rating page), if any."""
    directory = _directory(app)
    officers = [o for o in map(directory.get, _officer_ids(app)) if isinstance(o, Officer) and not o.left]
    for officer in sorted(officers, key=lambda o: o.badge):
        target = _active_target(directory, QrSubject.OFFICER, officer.badge)
        if target is not None:
            return target
    return None


def _directory(app: PingjingApp) -> Directory:
    app.directory.catch_up()
    return app.directory


def _check_key(key: str) -> str:
    norm = key.strip().upper()
    if not KEY_PATTERN.fullmatch(norm):
        raise ValidationError(f"{key!r} is not a badge or unit code (upper-case letters, digits, '-')")
    return norm


def _active_target(directory: Directory, subject: QrSubject, key: str) -> QrTarget | None:
    identity = directory.get(qr_identity_id(subject, key))
    return _target(directory, identity) if isinstance(identity, QrIdentity) and identity.active else None


def _serves(officer: Officer, unit: Unit) -> bool:
    return not officer.left and officer.unit_id == unit.id


def _target(directory: Directory, identity: QrIdentity) -> QrTarget | None:
    holder = directory.get(identity.subject_id)
    if isinstance(holder, Unit):
        return QrTarget(identity.subject, identity.key, identity.qr_version, holder.code, holder.name)
    if isinstance(holder, Officer) and not holder.left:
        unit = directory.get(holder.unit_id)
        if isinstance(unit, Unit):
            return QrTarget(
                identity.subject, identity.key, identity.qr_version, unit.code, unit.name, holder.name, holder.kind
            )
    return None


def _officer_ids(app: PingjingApp) -> list[UUID]:
    """Every officer ever registered, from their registration events alone (the directory lists nothing)."""
    topic = get_topic(Officer.Registered)  # type: ignore[attr-defined]
    ids: list[UUID] = []
    start = 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=_PAGE, topics=[topic])
        ids.extend(UUID(str(n.originator_id)) for n in page)
        if len(page) < _PAGE:
            return ids
        start = page[-1].id + 1
