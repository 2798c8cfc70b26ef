"""The master keys that wrap every citizen's data key.

A citizen's data key lives in the database, next to the events it opens; alone it would be
as readable as the events, so it is stored *wrapped* (AES-256-GCM) under a master key that
never touches the database: ``PINGJING_DATA_KEY`` (base64, 32 random bytes), or the key file
``PINGJING_DATA_KEY_FILE`` (created on first use with one random key, mode 0600, as the QR and
device keys are; by default ``data-key`` beside the SQLite file, so every process on that file
finds it whatever its working directory: ``var/data-key`` for the default store, and
``var/data-key`` for PostgreSQL). A copy of the database without the master key opens no contact.

Several master keys can be configured at once while rotating: the first wraps new data keys,
every one unwraps (the variable takes them separated by commas, the file one per line). Each
is known by an id derived from the key itself (the first 64 bits of an HMAC of a fixed
label), stored beside every wrapped data key, so a process can tell "wrapped by a key I do not
have" (a clear error naming that id) from "erased" (no row): a missing or wrong master key is
never taken for an erasure.

The key file is read again when it changes (its inode, size or time), so running processes
follow ``pingjing privacy rotate-master-key`` without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from threading import Lock

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.qr.errors import QrConfigError
from adapters.qr.keys import decode_secret, encode_secret, write_secret_file
from adapters.settings import Settings
from adapters.store import StoreConfigError

ENV = "PINGJING_DATA_KEY"
DEFAULT_FOLDER = Path("var")
DEFAULT_NAME = "data-key"
KEY_BYTES = 32
_ID_LABEL = b"pingjing data master key id"
_ABOUT = (
    "# pingjing master keys: the first wraps new citizen data keys, every one unwraps. Keep this file secret:\n"
    "# without it no stored contact can be read; with it and a copy of the database, every one can.\n"
)
MAKE_ONE = "python3 -c 'import base64,secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'"


class PrivacyConfigError(StoreConfigError):
    """The master key settings cannot be used: malformed, weak, unreadable, or missing while keys exist."""


class MasterKeyError(PrivacyConfigError):
    """A stored data key cannot be unwrapped with the configured master keys: never read as erased."""


@dataclass(frozen=True)
class MasterKey:
    """One master key: its id (stored with every data key it wraps) and the AES-256-GCM key."""

    kid: str
    secret: bytes = field(repr=False)

    @classmethod
    def of(cls, secret: bytes) -> MasterKey:
        """The key with its derived id."""
        return cls(key_id(secret), secret)

    @cached_property
    def aead(self) -> AESGCM:
        """The cipher that wraps and unwraps with this key (made once: a rebuild unwraps every citizen's key)."""
        return AESGCM(self.secret)


def key_id(secret: bytes) -> str:
    """16 hex digits derived from the key (an HMAC of a fixed label): names it without revealing it."""
    return hmac.new(secret, _ID_LABEL, hashlib.sha256).hexdigest()[:16]


def new_master_key() -> MasterKey:
    """A fresh random master key."""
    return MasterKey.of(secrets.token_bytes(KEY_BYTES))


def parse_secret(text: str, where: str) -> MasterKey:
    """A master key from base64: exactly 32 random bytes (an AES-256 key)."""
    try:
        secret = decode_secret(text, where)
    except QrConfigError as error:
        raise PrivacyConfigError(str(error)) from None
    if len(secret) != KEY_BYTES:
        raise PrivacyConfigError(
            f"{where}: a master key is exactly {KEY_BYTES} random bytes (AES-256), not {len(secret)}; "
            f"make one with {MAKE_ONE}"
        )
    return MasterKey.of(secret)


def parse_keys(text: str, where: str, separator: str) -> tuple[MasterKey, ...]:
    """The keys of ``text``, one per ``separator`` (``#`` comments and blanks skipped), the wrapping one first."""
    keys: list[MasterKey] = []
    for number, raw in enumerate(text.split(separator), start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        key = parse_secret(entry, f"{where}: key {number}")
        if any(k.kid == key.kid for k in keys):
            raise PrivacyConfigError(f"{where}: master key {key.kid} is given twice")
        keys.append(key)
    if not keys:
        raise PrivacyConfigError(f"{where}: no master key (expected base64 keys, make one with {MAKE_ONE})")
    return tuple(keys)


class MasterKeys:
    """The configured master keys: from the variable (fixed) or from the key file (followed as it changes).

    Loaded on first use, so a process that never seals or opens a contact never creates the
    file. ``may_create`` is asked before a missing key file is created: the vault refuses when
    the key table already holds wrapped keys (the file was lost or the path is wrong; a new key
    would wrap new contacts while the old ones stayed unreadable).
    """

    def __init__(self, *, env_text: str | None, path: Path) -> None:
        self.env_text = env_text.strip() if env_text and env_text.strip() else None
        self.path = path
        self._keys: tuple[MasterKey, ...] = ()
        self._stamp: tuple[int, int, int] | None = None
        self._lock = Lock()

    @classmethod
    def from_settings(cls, settings: Settings, beside: Path | None = None) -> MasterKeys:
        """The master keys ``settings`` name; without a key file named, ``data-key`` in the folder ``beside``.

        ``beside`` is the SQLite file's folder: every process working on that file finds the
        same key file, whatever its working directory (``var/data-key`` for the default store).
        """
        text = settings.data_key.get_secret_value() if settings.data_key is not None else None
        path = settings.data_key_file or (beside if beside is not None else DEFAULT_FOLDER) / DEFAULT_NAME
        return cls(env_text=text, path=path)

    @property
    def source(self) -> str:
        """Where the keys come from, for messages (never the keys)."""
        return ENV if self.env_text else f"PINGJING_DATA_KEY_FILE {self.path}"

    @property
    def from_file(self) -> bool:
        """True when the keys are the key file's (which rotation may rewrite)."""
        return self.env_text is None

    def load(self, may_create: bool = True) -> tuple[MasterKey, ...]:
        """The keys, the wrapping one first (read, or the file created, on first use)."""
        with self._lock:
            if not self._keys:
                self._read(may_create=may_create)
            return self._keys

    def refresh(self) -> tuple[MasterKey, ...]:
        """The keys, the key file read again if it changed since it was read."""
        with self._lock:
            if not self._keys:
                self._read(may_create=True)
            elif self.from_file and self._file_stamp() != self._stamp:
                self._read(may_create=False)
            return self._keys

    def active(self) -> MasterKey:
        """The key that wraps new data keys (the file followed if it changed)."""
        return self.refresh()[0]

    def get(self, kid: str) -> MasterKey | None:
        """The key with this id; the file is read again once when it is not among those known."""
        found = next((k for k in self.load() if k.kid == kid), None)
        if found is None:
            found = next((k for k in self.refresh() if k.kid == kid), None)
        return found

    def ids(self) -> list[str]:
        """The ids of the configured keys, the wrapping one first."""
        return [k.kid for k in self.load()]

    def file_exists(self) -> bool:
        """True when the key file is there (whether or not it is used)."""
        return self.path.exists()

    def _read(self, *, may_create: bool) -> None:
        if self.env_text is not None:
            self._keys = parse_keys(self.env_text, ENV, ",")
            return
        where = self.source
        if not self.path.exists() and not may_create:
            raise PrivacyConfigError(f"{where}: the file is missing")
        try:
            text = write_secret_file(self.path, _ABOUT + encode_secret(secrets.token_bytes(KEY_BYTES)), where)
        except QrConfigError as error:
            raise PrivacyConfigError(str(error)) from None
        self._keys = parse_keys(text, where, "\n")
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    # -- rotation (the key file) ----------------------------------------------------------

    def write_file(self, keys: tuple[MasterKey, ...]) -> None:
        """Replace the key file with ``keys`` (the first wraps), atomically, mode 0600, flushed to disk."""
        if not self.from_file:
            raise PrivacyConfigError(f"the master keys come from {ENV}; change the variable, not the file")
        content = _ABOUT + "".join(encode_secret(k.secret) + "\n" for k in keys)
        temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, content.encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)  # the new name survives a crash too
            finally:
                os.close(directory)
        except OSError as error:
            temp.unlink(missing_ok=True)
            raise PrivacyConfigError(f"{self.source}: cannot be written: {error.strerror}") from None
        with self._lock:
            self._keys = keys
            self._stamp = self._file_stamp()
