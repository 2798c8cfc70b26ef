"""Time and identity sources, injected so that tests and the demo decide them."""

from __future__ import annotations

import os
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


#: Random 128-bit numbers drawn from the operating system, this many at a time: one system call
#: for many ids rather than one for each (every command makes two or three). A child process
#: starts with none (:func:`os.register_at_fork`), so no two processes hand out the same ones.
_POOL_SIZE = 256
_pool: list[int] = []
os.register_at_fork(after_in_child=_pool.clear)

# The version (4) and variant (RFC 4122) bits of a UUID4, as ``uuid.uuid4()`` sets them.
_V4_KEEP = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (4 << 76) | (0x8000 << 48)
_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def random_128() -> int:
    """128 bits from the operating system's randomness (``secrets``), drawn a pool at a time."""
    try:
        return _pool.pop()
    except IndexError:
        data = os.urandom(16 * _POOL_SIZE)
        _pool.extend(int.from_bytes(data[i : i + 16], "big") for i in range(0, len(data), 16))
        return _pool.pop()


def random_uuid4() -> uuid.UUID:
    """``uuid.uuid4()``, from the pool."""
    value = _new(uuid.UUID)
    _set(value, "int", (random_128() & _V4_KEEP) | _V4_SET)
    _set(value, "is_safe", _UNKNOWN)
    return value


class RandomIdSource:
    """Ids from the operating system's randomness."""

    def new_id(self) -> uuid.UUID:
        """A random UUID4."""
        return random_uuid4()

    def new_token(self, length: int) -> str:
        """A random token, e.g. the tail of a case reference."""
        bits = 5 * length
        return token_from_int(random_128() >> (128 - bits) if bits <= 128 else secrets.randbits(bits), length)


def token_from_int(value: int, length: int) -> str:
    """Spell ``value`` in the reference alphabet, left-padded to ``length``."""
    chars = []
    for _ in range(length):
        value, digit = divmod(value, len(_REF_ALPHABET))
        chars.append(_REF_ALPHABET[digit])
    return "".join(reversed(chars))
