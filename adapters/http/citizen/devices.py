"""Devices, known only by keyed hashes (DESIGN §7).

A citizen's browser gets a random device id in a cookie the first time it opens a rating page.
Only ``HMAC-SHA256(device key, id)`` ever reaches the domain, as the rating's ``device_hash``
and as the id of its :class:`~domain.ratings.DeviceBallot` (one rating per device per officer
or unit per window). Without the key, a stored hash cannot be linked back to a browser, nor to
the hashes another bureau's install keeps. A browser that refuses cookies is known by its
address and user agent instead, hashed the same way, so clearing cookies does not reset the window
for a browser that keeps its address.

The key comes from ``PINGJING_DEVICE_KEY`` (base64, at least 16 random bytes) or the file
``PINGJING_DEVICE_KEY_FILE`` (created with a new random key on first use, mode 0600).
Replacing the key starts every device's window afresh; nothing else depends on it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from starlette.requests import Request

from adapters.qr.keys import decode_secret, encode_secret, write_secret_file
from adapters.settings import Settings

COOKIE = "pj_device"
#: How long a browser keeps its device id (a year; the window it guards is a day).
COOKIE_MAX_AGE = 365 * 24 * 3600
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
_NEW_KEY_BYTES = 32


@dataclass(frozen=True)
class Device:
    """A request's device: its keyed hash, and a new id to give the browser when it had none."""

    hash: str
    new_cookie: str | None


class DeviceHasher:
    """Turns device ids into keyed hashes; never stores or logs an id."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> DeviceHasher:
        """The hasher with the configured key (the key file is created when needed)."""
        if settings.device_key is not None:
            return cls(decode_secret(settings.device_key.get_secret_value(), "PINGJING_DEVICE_KEY"))
        path = settings.device_key_file
        where = f"PINGJING_DEVICE_KEY_FILE {path}"
        text = write_secret_file(path, encode_secret(secrets.token_bytes(_NEW_KEY_BYTES)), where)
        return cls(decode_secret(text, where))

    def hash(self, device_id: str) -> str:
        """The keyed hash of a device id (64 hex digits)."""
        return hmac.new(self._key, device_id.encode("utf-8"), hashlib.sha256).hexdigest()

    def identify(self, request: Request) -> Device:
        """The request's device: by its cookie, or by address and user agent when it has none."""
        sent = request.cookies.get(COOKIE, "")
        if _DEVICE_ID.fullmatch(sent):
            return Device(self.hash(f"cookie:{sent}"), None)
        address = request.client.host if request.client else "unknown"
        agent = request.headers.get("user-agent", "")[:256]
        return Device(self.hash(f"client:{address}|{agent}"), new_device_id())

    def cookie_hash(self, device_id: str) -> str:
        """The hash a browser holding ``device_id`` in its cookie is known by."""
        return self.hash(f"cookie:{device_id}")


def new_device_id() -> str:
    """A fresh random device id for a browser's cookie."""
    return secrets.token_urlsafe(16)

