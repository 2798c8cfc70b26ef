"""Personal data stays out of what staff read, except through the recorded contact read (DESIGN §7).

The views already mask the phone of a case's contact; free text (a complaint, a unit's note
of a call) may still hold a phone or a name someone typed. Before a case's board row or
history leaves, every string in it is scrubbed: the case's own contact (its phone in any
spacing is masked like the timeline masks it, the citizen's name removed) and anything shaped
like a mainland mobile or landline number (masked). Whoever needs the phone reads it through
``GET /api/v1/cases/{ref}/contact``, which is recorded first. An auditor also sees a citizen
acting in a history by the role alone, and reads reports scrubbed the same way.

An erased contact (its citizen's key deleted) has no phone or name left to scrub by: the
views already show it as erased, and phone-shaped numbers in free text are still masked. A
name the citizen typed into their own complaint is free text, not the contact, and is not
known any more once erased.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from domain.values import Contact, Role
from projections.timeline import mask_phone

REDACTED = "[redacted]"

#: A mainland mobile number (optionally +86), in any grouping of spaces or dashes.
_MOBILE = r"(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d){8}"
#: A landline with its area code: 0311-12345678, (0311) 1234567.
_LANDLINE = r"\(?0\d{2,3}\)?[ -]?\d{7,8}"
_PHONES = re.compile(rf"(?<![0-9A-Za-z])(?:{_MOBILE}|{_LANDLINE})(?![0-9A-Za-z])")


def _masked(found: re.Match[str]) -> str:
    return mask_phone(found.group(0))


class Scrubber:
    """Removes known contacts and anything shaped like a phone from text."""

    def __init__(self, contacts: Iterable[Contact | None] = ()) -> None:
        self.phones: list[re.Pattern[str]] = []
        self.names: list[str] = []
        for contact in contacts:
            if contact is None or contact.phone is None:  # none left, or erased: nothing known to scrub by
                continue
            digits = [ch for ch in contact.phone if ch.isdigit()]
            if len(digits) >= 5:
                self.phones.append(re.compile(r"[ -]?".join(digits)))
            if contact.name:
                self.names.append(contact.name)

    def text(self, value: str) -> str:
        """``value`` with the contacts' phones masked, their names removed, and phone-shaped numbers masked."""
        for pattern in self.phones:
            value = pattern.sub(_masked, value)
        for name in self.names:
            value = value.replace(name, REDACTED)
        return _PHONES.sub(_masked, value)

    def data(self, value: Any) -> Any:
        """JSON-like ``value`` with every string scrubbed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {key: self.data(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value


def redact(data: Any, contacts: Iterable[Contact | None] = ()) -> Any:
    """``data`` (JSON-like) with every string scrubbed of ``contacts`` and of phone-shaped numbers."""
    return Scrubber(contacts).data(data)


def public_actor(actor: str, role: str) -> str:
    """How an event's actor is shown to an auditor: a citizen by their role only."""
    return Role.CITIZEN.value if role == Role.CITIZEN.value else actor
