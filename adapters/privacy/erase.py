"""Erasing a citizen's personal data: delete the key, then record the erasure on the case.

The order matters. The use case is decided first (who may erase, whether the case has a
contact), without saving anything; then the citizen's key is deleted, which is what makes the
phone and name unreadable; then ``Case.ContactErased`` is recorded (the citizen reference, the
reason and who, no data). If the process stops between the two, the data are already gone and
running the erasure again records it; the key's deletion and the event are each idempotent, so
a second erasure only says it was done before.

A contact stored before contacts were sealed (in clear, in an old event) cannot be erased from
the log without rewriting it, which the tamper-evident log forbids: the erasure is recorded and
every view shows the contact as erased from then on, and :class:`Erased` says ``in_clear`` so the
operator knows the stored event still holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from eventsourcing.utils import get_topic

from adapters.privacy.vault import ErasablePersonalData
from domain import commands as c
from domain.application import Context, PingjingApp
from domain.case import Case
from domain.errors import NotFoundError, RuleViolationError
from domain.ids import check_case_ref
from domain.personal import AlreadyErasedError

#: Case.Opened rows read per query when looking for a citizen's cases.
PAGE = 5000


@dataclass(frozen=True)
class Erased:
    """What erasing one case's contact did."""

    case_ref: str
    citizen_ref: str
    #: The citizen's key was deleted now (False: it was gone already).
    key_deleted: bool
    #: The erasure was recorded now (False: it was on record already).
    recorded: bool
    #: When the erasure is on record.
    erased_at: datetime | None
    #: The contact was stored in clear, before sealing: views erase it, the stored event still holds it.
    in_clear: bool = False


def erasable(app: PingjingApp) -> ErasablePersonalData:
    """The application's personal data, which must be able to erase."""
    personal: Any = app.personal
    if not callable(getattr(personal, "erase", None)):
        raise RuleViolationError(f"{type(personal).__name__} cannot erase personal data")
    return personal  # type: ignore[no-any-return]


def erase_case(app: PingjingApp, ref: str, reason: str, context: Context) -> Erased:
    """Erase the contact of case ``ref``: the key first, then the record (see the module's docstring)."""
    ref = check_case_ref(ref)
    command = c.EraseContact(ref=ref, reason=reason)
    case = app.get_case(ref)
    refused = app.decide(command, context)
    if refused is not None and not isinstance(refused, AlreadyErasedError):
        raise refused
    contact = case.contact
    if contact is None:  # decided above already; for the type checker
        raise RuleViolationError(f"case {ref} has no citizen contact to erase")
    key_deleted = erasable(app).erase(contact.citizen_ref)
    in_clear = stored_in_clear(app, case)
    if isinstance(refused, AlreadyErasedError):
        return Erased(ref, contact.citizen_ref, key_deleted, False, refused.erased_at, in_clear)
    try:
        app.execute(command, context)
    except AlreadyErasedError as error:  # another process recorded it meanwhile
        return Erased(ref, contact.citizen_ref, key_deleted, False, error.erased_at, in_clear)
    return Erased(ref, contact.citizen_ref, key_deleted, True, app.get_case(ref).contact_erased_at, in_clear)


def erase_citizen(app: PingjingApp, citizen_ref: str, reason: str, context: Context) -> tuple[list[Erased], bool]:
    """Erase every case's contact of the citizen; also the citizen's key when no case names it (an orphan).

    Returns what was done per case, and whether a key without a case was deleted.
    """
    refs = cases_of_citizen(app, citizen_ref)
    if not refs:
        if not callable(getattr(app.personal, "erase", None)):
            raise NotFoundError("citizen", citizen_ref)
        orphan = erasable(app).erase(citizen_ref)
        if not orphan:
            raise NotFoundError("citizen", citizen_ref)
        return [], True
    return [erase_case(app, ref, reason, context) for ref in refs], False


def cases_of_citizen(app: PingjingApp, citizen_ref: str) -> list[str]:
    """The references of the cases whose contact is the citizen's, oldest first.

    Reads the stored ``Case.Opened`` rows' citizen references (stored in clear beside the sealed
    data) without opening any contact.
    """
    topic = get_topic(Case.Opened)  # type: ignore[attr-defined]
    found: list[str] = []
    start = 1
    while True:
        rows = app.recorder.select_notifications(start=start, limit=PAGE, topics=[topic])
        for row in rows:
            fields = app.mapper.transcoder.decode(row.state) if _not_plain(row.state) else orjson.loads(row.state)
            if _citizen_of(fields.get("contact")) == citizen_ref:
                found.append(str(fields["ref"]))
        if len(rows) < PAGE:
            return found
        start = rows[-1].id + 1


def stored_in_clear(app: PingjingApp, case: Case) -> bool:
    """True when the case's contact was stored before contacts were sealed (its phone in clear in the log)."""
    first = app.recorder.select_events(case.id, limit=1)
    if not first or _not_plain(first[0].state):
        return False
    contact = orjson.loads(first[0].state).get("contact")
    return isinstance(contact, dict) and isinstance(contact.get("_data_"), dict) and "phone" in contact["_data_"]


def _not_plain(state: bytes) -> bool:
    return not state.startswith(b"{")


def _citizen_of(stored: Any) -> str | None:
    if stored is None:
        return None
    if isinstance(stored, dict) and isinstance(stored.get("_data_"), dict):
        return str(stored["_data_"].get("citizen_ref"))
    return getattr(stored, "citizen_ref", None)
