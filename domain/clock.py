"""Time and identity sources, injected so that tests and the demo decide them."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Protocol

# Crockford's base32 without I, L, O, U: readable over the phone.
_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class Clock(Protocol):
    """Tells the current time; always timezone-aware."""

    def now(self) -> datetime:
        """The current moment."""
        ...


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> datetime:
        """The current moment in UTC."""
        return datetime.now(UTC)


class IdSource(Protocol):
    """Makes new aggregate ids and case reference tokens."""

    def new_id(self) -> uuid.UUID:
        """A fresh, unique aggregate id."""
        ...

    def new_token(self, length: int) -> str:
        """A fresh random token of ``length`` characters from the reference alphabet."""
        ...


class RandomIdSource:
    """Ids from the operating system's randomness."""

    def new_id(self) -> uuid.UUID:
        """A random UUID4."""
        return uuid.uuid4()

    def new_token(self, length: int) -> str:
        """A random token, e.g. the tail of a case reference."""
        return token_from_int(secrets.randbits(5 * length), length)


def token_from_int(value: int, length: int) -> str:
    """Spell ``value`` in the reference alphabet, left-padded to ``length``."""
    chars = []
    for _ in range(length):
        value, digit = divmod(value, len(_REF_ALPHABET))
        chars.append(_REF_ALPHABET[digit])
    return "".join(reversed(chars))
