"""Citizens' personal data, sealed per citizen: the port contacts are stored through (DESIGN §7).

A contact's phone and name are personal data. They are sealed before they are stored, with
a key that belongs to one citizen reference, and opened again when the event is read back.
Erasing that key leaves every event where it is (the log is never rewritten: it is
tamper-evident, and its stored bytes are what the audit hashes) and makes the data
unreadable wherever those events are read: the aggregates, every projection rebuilt, an
export, a restored backup.

How keys are made, wrapped and kept is infrastructure (``adapters.privacy``: AES-256-GCM,
a key table beside the events); the domain only needs :class:`PersonalData`. The
transcoding of :class:`~domain.values.Contact` (:mod:`domain.transcodings`) seals on
write and opens on read; the application asks for the keys of a batch's new citizens
before it saves the batch (:meth:`PersonalData.prepare`), so that a key is durable before
the first event that needs it.

:class:`InMemoryPersonalData` serves the memory store and unit tests: nothing is kept on
disk there, so it keeps the plaintext itself, per citizen, and forgets it on erasure.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from domain.errors import NotFoundError, RuleViolationError


class PersonalData(Protocol):
    """Seals and opens citizens' personal data, each citizen with a key of their own."""

    def prepare(self, citizen_refs: Collection[str]) -> None:
        """Make sure each of these citizens has a key, durably, before events sealed with it are saved.

        Called with every new contact of a batch, before the batch's transaction; an
        implementation makes the missing keys in one go.
        """
        ...

    def seal(self, citizen_ref: str, plaintext: bytes) -> str:
        """``plaintext`` sealed with the citizen's key (made first when missing), as text to store."""
        ...

    def open(self, citizen_ref: str, sealed: str) -> bytes | None:
        """The plaintext of ``sealed``, or None when the citizen's key was erased.

        Never None for any other reason: a key that cannot be unwrapped (a wrong or missing
        master key) or sealed data that do not authenticate raise, so a configuration
        mistake is never mistaken for an erasure.
        """
        ...


class InMemoryPersonalData:
    """Personal data held in this process only, per citizen: for the memory store and unit tests.

    The sealed text is an opaque token; the plaintext stays here, never in the event. Erasing
    a citizen forgets their data, so their events read as erased from then on, exactly as
    with the keys of a database store.
    """

    def __init__(self) -> None:
        self._data: dict[str, dict[str, bytes]] = {}
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()

    def prepare(self, citizen_refs: Collection[str]) -> None:
        """Nothing to make durable: the data live as long as the process."""

    def seal(self, citizen_ref: str, plaintext: bytes) -> str:
        """Keep ``plaintext`` and hand out a token for it."""
        with self._lock:
            token = f"mem.{next(self._tokens)}"
            self._data.setdefault(citizen_ref, {})[token] = bytes(plaintext)
        return token

    def open(self, citizen_ref: str, sealed: str) -> bytes | None:
        """The plaintext kept for ``sealed``; None once the citizen was erased (or never sealed here)."""
        with self._lock:
            return self._data.get(citizen_ref, {}).get(sealed)

    def erase(self, citizen_ref: str) -> bool:
        """Forget everything of the citizen; False when there was nothing (erased before)."""
        with self._lock:
            return self._data.pop(citizen_ref, None) is not None


class ContactErasedError(NotFoundError):
    """A case's contact was erased: its phone and name cannot be read or used any more."""

    def __init__(self, ref: str) -> None:
        super().__init__("erased contact of case", ref)
        self.args = (f"the citizen's personal data of case {ref} were erased: the phone and name are gone for good",)


class AlreadyErasedError(RuleViolationError):
    """The erasure of a case's contact is already on record."""

    def __init__(self, ref: str, erased_at: datetime) -> None:
        self.ref = ref
        self.erased_at = erased_at
        super().__init__(f"the contact of case {ref} was already erased at {erased_at.isoformat(timespec='seconds')}")
