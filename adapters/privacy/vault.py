"""The vault: citizens' contacts sealed with AES-256-GCM, one random data key per citizen reference.

This is the implementation of :class:`domain.personal.PersonalData` for a database store:

- **sealing**: a contact's ``{"phone", "name"}`` (JSON) is encrypted with the citizen's data
  key under a fresh 96-bit nonce; the citizen reference is the associated data, so a sealed
  contact cannot be passed off as another citizen's. Stored as ``pj1.`` + URL-safe base64 of
  nonce + ciphertext + tag inside the event (:class:`~domain.transcodings.ContactAsDict`).
- **data keys**: 32 random bytes per citizen reference, stored wrapped (AES-256-GCM under the
  master key, the citizen reference again as associated data) in the key table
  (:mod:`adapters.privacy.keystore`), with the id of the master key that wrapped them
  (:mod:`adapters.privacy.master`).
- **opening**: the key is read from the table (then kept in memory, a few thousand at most)
  and unwrapped; no row means the citizen was erased and the contact reads as erased. A row
  the configured master keys cannot unwrap, or sealed data that do not authenticate, raise
  :class:`~adapters.privacy.master.MasterKeyError` / :class:`SealedDataError`: never an
  erasure by mistake.
- **erasing**: the row is deleted (then the database is purged of its bytes), and the key is
  forgotten by this process. Other processes keep a key they already hold in memory, but the
  erasure is also an event on the case (``Case.ContactErased``) that sets its contact to
  erased wherever the case is read, and every view follows that event.

:func:`personal_data_for` is the application's default (``PERSONAL_DATA_TOPIC``): the vault of
the store the environment names, with the master keys of the process's settings; the memory
store gets :class:`~domain.personal.InMemoryPersonalData`.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import OperationalError

from adapters.privacy.keystore import KeyRow, KeyTable, PostgresKeyTable, SqliteKeyTable
from adapters.privacy.master import MasterKey, MasterKeyError, MasterKeys
from adapters.settings import Settings
from domain.personal import InMemoryPersonalData, PersonalData

PREFIX = "pj1."
NONCE_BYTES = 12
DATA_KEY_BYTES = 32
_CONTACT_AAD = b"pingjing/contact/v1\x00"
_KEY_AAD = b"pingjing/citizen-key/v1\x00"
#: Data keys kept in memory (unwrapped); a rebuild reads each citizen once, so this only has to
#: hold what recent commands and reads touch.
CACHE_SIZE = 4096


class SealedDataError(ValueError):
    """Sealed data that do not open with the citizen's key: damaged, or moved from another citizen."""


class ErasablePersonalData(PersonalData, Protocol):
    """A :class:`PersonalData` that can also erase a citizen (the vault, the in-memory one)."""

    def erase(self, citizen_ref: str) -> bool:
        """Delete the citizen's key (or data) for good; False when it was already gone."""
        ...


def _aad(label: bytes, citizen_ref: str) -> bytes:
    return label + citizen_ref.encode("utf-8")


def wrap(master: MasterKey, citizen_ref: str, data_key: bytes) -> KeyRow:
    """The citizen's data key wrapped by ``master``, as a row of the key table."""
    nonce = os.urandom(NONCE_BYTES)
    wrapped = nonce + master.aead.encrypt(nonce, data_key, _aad(_KEY_AAD, citizen_ref))
    return KeyRow(citizen_ref, master.kid, wrapped)


def unwrap(master: MasterKey, row: KeyRow) -> bytes:
    """The data key of ``row``; :class:`MasterKeyError` when ``master`` does not open it."""
    try:
        nonce, wrapped = row.wrapped[:NONCE_BYTES], row.wrapped[NONCE_BYTES:]
        return master.aead.decrypt(nonce, wrapped, _aad(_KEY_AAD, row.citizen_ref))
    except InvalidTag:
        raise MasterKeyError(
            f"the data key of citizen {row.citizen_ref} does not open with master key {row.master_key_id}: "
            "the row is damaged or was written by another installation"
        ) from None


class Vault:
    """Seals, opens and erases citizens' personal data with keys kept in ``table``."""

    def __init__(self, table: KeyTable, masters: MasterKeys, *, cache_size: int = CACHE_SIZE) -> None:
        self.table = table
        self.masters = masters
        self.cache_size = cache_size
        # citizen_ref -> the data key's cipher, or None: no key (erased).
        self._keys: dict[str, AESGCM | None] = {}
        self._lock = threading.RLock()
        self._masters_ready = False
        #: Why the last erasure's bytes could not be purged from the database's files yet (None: they were).
        self.last_purge: str | None = None

    # -- PersonalData ---------------------------------------------------------------------

    def prepare(self, citizen_refs: Collection[str]) -> None:
        """Create the missing keys of these citizens in one transaction, committed before their events are saved."""
        with self._lock:
            missing = [ref for ref in dict.fromkeys(citizen_refs) if self._keys.get(ref) is None]
        if missing:
            self._create(missing)

    def seal(self, citizen_ref: str, plaintext: bytes) -> str:
        """``plaintext`` encrypted with the citizen's key (created first when missing)."""
        with self._lock:
            aead = self._keys.get(citizen_ref)
        if aead is None:
            aead = self._create([citizen_ref])[citizen_ref]
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + aead.encrypt(nonce, plaintext, _aad(_CONTACT_AAD, citizen_ref))
        return PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")

    def open(self, citizen_ref: str, sealed: str) -> bytes | None:
        """The plaintext; None when the citizen's key was erased."""
        aead = self._key(citizen_ref)
        if aead is None:
            return None
        if not sealed.startswith(PREFIX):
            raise SealedDataError(f"the contact of citizen {citizen_ref} is sealed in an unknown format")
        text = sealed.removeprefix(PREFIX)
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(_CONTACT_AAD, citizen_ref))
        except (InvalidTag, binascii.Error, ValueError):
            raise SealedDataError(f"the sealed contact of citizen {citizen_ref} does not open with its key") from None

    def prefetch(self, citizen_refs: Iterable[str]) -> None:
        """Read the keys of these citizens (those not in memory) in a few queries, ready for :meth:`open`.

        For a reader about to open many contacts (a rebuild reads each citizen once): one query per
        few hundred citizens instead of one each. Only keys found are kept, as :meth:`open` would
        keep them; a citizen without a row is left to :meth:`open` to find erased.
        """
        with self._lock:
            missing = [ref for ref in dict.fromkeys(citizen_refs) if ref not in self._keys]
        if not missing:
            return
        found = [(row.citizen_ref, AESGCM(self._unwrap(row))) for row in self.table.fetch_many(missing)]
        with self._lock:
            for ref, aead in found:
                self._remember(ref, aead)

    # -- erasing --------------------------------------------------------------------------

    def erase(self, citizen_ref: str) -> bool:
        """Delete the citizen's key for good (then purge its bytes); False when there was none."""
        with self.table.transaction() as cur:
            deleted = cur.delete(citizen_ref)
        with self._lock:
            self._remember(citizen_ref, None)
        self.last_purge = self.table.purge() if deleted else None
        return deleted

    def has_key(self, citizen_ref: str) -> bool:
        """True while the citizen's key is stored (read from the table, not from memory)."""
        return self.table.fetch(citizen_ref) is not None

    def forget(self) -> None:
        """Drop every key held in memory (they are read again from the table when needed)."""
        with self._lock:
            self._keys.clear()

    def close(self) -> None:
        """Release the key table's connection."""
        self.table.close()

    # -- keys -----------------------------------------------------------------------------

    def _key(self, citizen_ref: str) -> AESGCM | None:
        with self._lock:
            if citizen_ref in self._keys:
                return self._keys[citizen_ref]
        row = self.table.fetch(citizen_ref)
        aead = None if row is None else AESGCM(self._unwrap(row))
        with self._lock:
            return self._remember(citizen_ref, aead)

    def _unwrap(self, row: KeyRow) -> bytes:
        self.ensure_masters()
        master = self.masters.get(row.master_key_id)
        if master is None:
            raise MasterKeyError(
                f"the data key of citizen {row.citizen_ref} is wrapped by master key {row.master_key_id}, "
                f"which is not configured ({self.masters.source} has {', '.join(self.masters.ids())}); "
                "put that key back (e.g. PINGJING_DATA_KEY=CURRENT,OLD) and run pingjing privacy rotate-master-key"
            )
        return unwrap(master, row)

    def _create(self, refs: list[str]) -> dict[str, AESGCM]:
        """Keys for ``refs``: the stored one where a citizen has one, a new random one otherwise."""
        self.ensure_masters()
        made: dict[str, AESGCM] = {}
        # The table's own lock serialises its transactions; this vault's lock is not held while one waits
        # for the database's write lock, so reads of keys already known go on meanwhile. Not durable on its
        # own: the events' durable commit that follows flushes the same log past it (see keystore).
        with self.table.transaction(durable=False) as cur:
            # Inside the write lock: a rotation that changed the key file meanwhile is seen here.
            active = self.masters.active()
            keys = {ref: os.urandom(DATA_KEY_BYTES) for ref in dict.fromkeys(refs)}
            written = cur.insert_many([wrap(active, ref, key) for ref, key in keys.items()])
            for ref, key in keys.items():
                if ref in written:
                    made[ref] = AESGCM(key)
                else:  # the citizen had a key already (another process made it): that one it is
                    row = cur.get(ref)
                    if row is None:
                        raise OperationalError(f"the key of citizen {ref} is neither new nor stored")
                    made[ref] = AESGCM(self._unwrap(row))
        with self._lock:
            for ref, aead in made.items():
                self._remember(ref, aead)
        return made

    def _remember(self, citizen_ref: str, aead: AESGCM | None) -> AESGCM | None:
        if len(self._keys) >= self.cache_size:
            self._keys.clear()
        self._keys[citizen_ref] = aead
        return aead

    def unreadable(self) -> dict[str, int]:
        """The citizens' keys wrapped by a master key that is not configured, counted by that key (none: all open)."""
        self.ensure_masters()
        configured = set(self.masters.ids())
        return {kid: n for kid, n in self.table.counts().items() if kid not in configured}

    def check(self) -> None:
        """:class:`MasterKeyError`, saying what to do, when some stored key is wrapped by a master key that
        is not configured (a long-running process checks before it starts, rather than fail a request later)."""
        missing = self.unreadable()
        if missing:
            raise MasterKeyError(
                f"{sum(missing.values())} citizen keys in {self.table.description()} are wrapped by master key "
                f"{', '.join(sorted(missing))}, which is not configured ({self.masters.source} has "
                f"{', '.join(self.masters.ids())}): their contacts cannot be read. Put that key back (e.g. "
                "PINGJING_DATA_KEY=CURRENT,OLD) and run pingjing privacy rotate-master-key"
            )

    def ensure_masters(self) -> None:
        """Load the master keys; never create a key file while the table holds keys (they would stay unreadable)."""
        if self._masters_ready:
            return
        masters = self.masters
        # The file is asked about again after the table: a process creates the file before it stores its
        # first key, so another process that starts at the same moment and sees that key sees the file too.
        if (
            masters.from_file
            and not masters.file_exists()
            and not self.table.is_empty()
            and not masters.file_exists()
        ):
            counts = self.table.counts()
            raise MasterKeyError(
                f"{masters.source} does not exist, yet {self.table.description()} holds "
                f"{sum(counts.values())} citizen keys wrapped by master key {', '.join(counts)}: restore that file "
                "(or set PINGJING_DATA_KEY); a new master key would leave those contacts unreadable"
            )
        masters.load()
        self._masters_ready = True


def key_table_for(env: Mapping[str, str]) -> KeyTable | None:
    """The key table beside the events the environment names; None for a store with no database (memory)."""
    sqlite = env.get("SQLITE_DBNAME")
    if sqlite:
        if sqlite == ":memory:" or "mode=memory" in sqlite:
            return None
        return SqliteKeyTable(Path(sqlite), lock_timeout=float(env.get("SQLITE_LOCK_TIMEOUT") or 10))
    if env.get("POSTGRES_DBNAME"):
        keys = ("POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD",
                "POSTGRES_CONNECT_TIMEOUT", "POSTGRES_SCHEMA")
        return PostgresKeyTable({k: v for k in keys if (v := env.get(k)) is not None})
    return None


def vault_for(env: Mapping[str, str], settings: Settings) -> ErasablePersonalData:
    """The vault of the store ``env`` names with the master keys of ``settings``; in-memory for the memory store."""
    table = key_table_for(env)
    if table is None:
        return InMemoryPersonalData()
    beside = table.path.parent if isinstance(table, SqliteKeyTable) else None
    return Vault(table, MasterKeys.from_settings(settings, beside))


def personal_data_for(env: Mapping[str, str]) -> ErasablePersonalData:
    """The application's default (``PERSONAL_DATA_TOPIC``): :func:`vault_for` with the process's settings."""
    return vault_for(env, Settings())
