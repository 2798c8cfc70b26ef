"""QR signing keys: a keyring of (key id, secret) whose first key signs and every key verifies.

The keys come from ``PINGJING_QR_KEYS`` (``k2:BASE64SECRET,k1:BASE64SECRET``: the first
is the active one, the others still verify codes printed with them), else from a key file
(``PINGJING_QR_KEY_FILE``, default ``var/qr-keys.json``) created on first use with one
random 32-byte secret, readable by its owner only (mode 0600). :func:`rotate_key_file`
puts a new key first in that file; :func:`retire_key` removes an old one.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.qr.errors import QrConfigError
from adapters.settings import Settings

ENV = "PINGJING_QR_KEYS"
KEY_ID = re.compile(r"[a-z0-9]{1,8}")
MIN_SECRET_BYTES = 32
#: A random 32-byte secret has about 30 distinct byte values; fewer than this is a pattern.
MIN_DISTINCT_BYTES = 16
NEW_SECRET_BYTES = 32
MAKE_ONE = "python3 -c 'import base64,secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'"
_BASE64 = re.compile(r"[A-Za-z0-9_-]+")
_ABOUT = "pingjing QR signing keys: the first signs new codes, every key verifies. Keep this file secret."


@dataclass(frozen=True)
class SigningKey:
    """One key of the keyring: its id (printed in every token) and its secret."""

    kid: str
    secret: bytes = field(repr=False)
    created_at: datetime | None = None


@dataclass(frozen=True)
class Keyring:
    """The signing keys, the active one first; ``source`` says where they came from."""

    keys: tuple[SigningKey, ...]
    source: str
    path: Path | None = None

    def __post_init__(self) -> None:
        if not self.keys:
            raise QrConfigError(f"{self.source}: no key (expected ID:BASE64SECRET[,ID:BASE64SECRET...])")
        seen: dict[str, SigningKey] = {}
        for key in self.keys:
            if key.kid in seen:
                raise QrConfigError(f"{self.source}: key id {key.kid!r} appears twice")
            for other in seen.values():
                if other.secret == key.secret:
                    raise QrConfigError(f"{self.source}: keys {other.kid!r} and {key.kid!r} have the same secret")
            seen[key.kid] = key

    @property
    def active(self) -> SigningKey:
        """The key that signs new codes."""
        return self.keys[0]

    def get(self, kid: str) -> SigningKey | None:
        """The key with this id, or None."""
        return next((key for key in self.keys if key.kid == kid), None)


def load_keyring(settings: Settings) -> Keyring:
    """The keyring of ``PINGJING_QR_KEYS``, or of the key file (created on first use)."""
    configured = settings.qr_keys.get_secret_value().strip() if settings.qr_keys is not None else ""
    if configured:
        return parse_keys(configured)
    return load_key_file(settings.qr_key_file)


def parse_keys(text: str, source: str = ENV) -> Keyring:
    """Parse ``ID:BASE64SECRET[,ID:BASE64SECRET...]``; refuse a malformed entry or a weak secret."""
    keys = []
    for number, entry in enumerate(text.split(","), start=1):
        if not entry.strip():
            continue  # a trailing comma
        kid, sep, secret = entry.partition(":")
        if not sep:
            # Without the ':' the entry may be the secret itself: never repeat it.
            raise QrConfigError(f"{source}: entry {number} has no ':' (expected ID:BASE64SECRET)")
        kid = check_key_id(kid.strip(), f"{source}: entry {number}")
        keys.append(SigningKey(kid, decode_secret(secret, f"{source}: key {kid!r}")))
    return Keyring(tuple(keys), source)


def check_key_id(kid: str, where: str) -> str:
    """``kid`` if it is 1-8 lower-case letters or digits (it is printed in every token)."""
    if not KEY_ID.fullmatch(kid):
        raise QrConfigError(f"{where}: key id {kid!r} must be 1-8 lower-case letters or digits")
    return kid


def decode_secret(text: str, where: str) -> bytes:
    """The bytes of a base64 secret (standard or URL-safe, padding optional); refuse a weak one."""
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        if not _BASE64.fullmatch(cleaned) or len(cleaned) % 4 == 1:
            raise binascii.Error
        secret = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise QrConfigError(f"{where}: the secret is not base64; make one with {MAKE_ONE}") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise QrConfigError(
            f"{where}: the secret is {len(secret)} bytes; at least {MIN_SECRET_BYTES} random bytes are needed "
            f"(make one with {MAKE_ONE})"
        )
    distinct = len(set(secret))
    if distinct < MIN_DISTINCT_BYTES:
        raise QrConfigError(
            f"{where}: the secret repeats a few byte values ({distinct} distinct in {len(secret)} bytes): "
            f"a pattern, not random bytes (make one with {MAKE_ONE})"
        )
    return secret


def new_key(kid: str) -> SigningKey:
    """A fresh random key."""
    return SigningKey(kid, secrets.token_bytes(NEW_SECRET_BYTES), datetime.now(UTC))


def encode_secret(secret: bytes) -> str:
    """The secret as URL-safe base64 without padding (the form ``PINGJING_QR_KEYS`` takes)."""
    return base64.urlsafe_b64encode(secret).decode("ascii").rstrip("=")


# -- the key file -------------------------------------------------------------------------


def load_key_file(path: Path) -> Keyring:
    """The keyring in ``path``; a missing file is created with one new key (``k1``), mode 0600."""
    where = f"PINGJING_QR_KEY_FILE {path}"
    try:
        if not path.exists():
            _create(path, Keyring((new_key("k1"),), where, path))
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise QrConfigError(f"{where}: other users may read it (mode {mode:04o}); chmod 600 {path}")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise QrConfigError(f"{where}: cannot be read or created: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise QrConfigError(f"{where}: not JSON: {error}") from None
    return Keyring(_keys_from_json(data, where), where, path)


def rotate_key_file(path: Path) -> tuple[Keyring, SigningKey]:
    """Put a new random key first in the key file; the old keys stay and still verify."""
    current = load_key_file(path)
    numbers = [int(k.kid[1:]) for k in current.keys if re.fullmatch(r"k\d{1,7}", k.kid)]
    key = new_key(f"k{max(numbers, default=0) + 1}")
    rotated = Keyring((key, *current.keys), current.source, path)
    _replace(path, rotated)
    return rotated, key


def retire_key(path: Path, kid: str) -> Keyring:
    """Remove a key that no longer signs: codes printed with it become forged."""
    current = load_key_file(path)
    if current.get(kid) is None:
        known = ", ".join(k.kid for k in current.keys)
        raise QrConfigError(f"{current.source}: no key {kid!r} (keys: {known})")
    if current.active.kid == kid:
        raise QrConfigError(f"{current.source}: key {kid!r} is the active one; rotate first (pingjing qr keys rotate)")
    retired = Keyring(tuple(k for k in current.keys if k.kid != kid), current.source, path)
    _replace(path, retired)
    return retired


def _keys_from_json(data: Any, where: str) -> tuple[SigningKey, ...]:
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise QrConfigError(f'{where}: expected an object with a list "keys" of {{"id", "secret"}}')
    keys = []
    for number, entry in enumerate(entries, start=1):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("id"), str)
            or not isinstance(entry.get("secret"), str)
        ):
            raise QrConfigError(f'{where}: keys[{number}] must be an object with string "id" and "secret"')
        kid = check_key_id(entry["id"], f"{where}: keys[{number}]")
        secret = decode_secret(entry["secret"], f"{where}: key {kid!r}")
        created = entry.get("created_at")
        try:
            created_at = datetime.fromisoformat(created) if isinstance(created, str) else None
        except ValueError:
            raise QrConfigError(f"{where}: key {kid!r}: created_at {created!r} is not an ISO 8601 time") from None
        keys.append(SigningKey(kid, secret, created_at))
    return tuple(keys)


def _to_json(keyring: Keyring) -> bytes:
    keys = [
        {
            "id": key.kid,
            "secret": encode_secret(key.secret),
            "created_at": key.created_at.isoformat() if key.created_at else None,
        }
        for key in keyring.keys
    ]
    return (json.dumps({"about": _ABOUT, "keys": keys}, indent=2) + "\n").encode("utf-8")


def _write_private(path: Path, content: bytes) -> Path:
    """Write ``content`` to a new file beside ``path``, mode 0600 from the start, flushed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    return temp


def write_secret_file(path: Path, new_text: str, where: str) -> str:
    """The text of a private secret file, first written with ``new_text`` if it is missing (mode 0600).

    Two processes starting together agree on one secret: the file appears atomically, and
    the one that loses the race reads the winner's.
    """
    try:
        if not path.exists():
            _publish(path, _write_private(path, (new_text + "\n").encode("utf-8")))
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise QrConfigError(f"{where}: other users may read it (mode {mode:04o}); chmod 600 {path}")
        return path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise QrConfigError(f"{where}: cannot be read or created: {error.strerror}") from None
    except UnicodeDecodeError:
        raise QrConfigError(f"{where}: not text") from None


def _create(path: Path, keyring: Keyring) -> None:
    """Create the key file unless another process just did (then theirs is used)."""
    _publish(path, _write_private(path, _to_json(keyring)))


def _publish(path: Path, temp: Path) -> None:
    """Link the finished ``temp`` file in as ``path`` unless ``path`` exists by now; remove ``temp``."""
    try:
        os.link(temp, path)  # atomic, and fails if the file exists: two first runs agree on one key
    except FileExistsError:
        pass
    finally:
        temp.unlink()


def _replace(path: Path, keyring: Keyring) -> None:
    try:
        os.replace(_write_private(path, _to_json(keyring)), path)
    except OSError as error:
        raise QrConfigError(f"{keyring.source}: cannot be written: {error.strerror}") from None
