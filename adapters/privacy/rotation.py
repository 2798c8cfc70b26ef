"""Rotating the master key: every citizen's data key re-wrapped under a new master key.

The data keys themselves never change (they seal contacts inside events, and the log is never
rewritten); what is rotated is the master key that wraps them, which is the key that leaves
the database's protection if it leaks. The old master key stays readable until every data key
is re-wrapped, so nothing is unreadable at any moment:

- **key file** (``PINGJING_DATA_KEY_FILE``): a new key is put first in the file (the old ones
  stay after it), so every process wraps new data keys with it from its next key on (they
  follow the file); every data key still wrapped by another key is re-wrapped; then the old
  keys are dropped from the file, and a last pass, holding the key table's write lock,
  re-wraps any key a process made with an old key meanwhile. An interrupted rotation (the
  file holds several keys) is finished by running it again, without a new key.
- **variable** (``PINGJING_DATA_KEY``): set ``NEW,OLD`` (the new key first) in every process,
  run the rotation, which re-wraps every data key under the first key, then drop ``OLD``.

Each row is re-wrapped only if it is still wrapped by the key it was read with (an erasure or
another rotation meanwhile is respected). On SQLite the old wrappings' bytes are purged from
the file and the write-ahead log afterwards, as an erasure's are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.privacy.master import MasterKey, MasterKeyError, new_master_key
from adapters.privacy.vault import Vault, unwrap, wrap

#: Keys re-wrapped per transaction.
BATCH = 500


@dataclass
class Rotation:
    """What a rotation did."""

    #: The master key that wraps every data key now.
    active: str
    #: The master keys that no longer wrap anything.
    retired: list[str] = field(default_factory=list)
    rewrapped: int = 0
    #: With the variable: the keys to drop from ``PINGJING_DATA_KEY`` now.
    drop_from_env: list[str] = field(default_factory=list)
    #: A new key was made (the key file).
    new_key: bool = False


def rotate_master_key(vault: Vault) -> Rotation:
    """Re-wrap every data key under a new master key (key file) or under the first configured one (variable)."""
    vault.ensure_masters()
    masters = vault.masters
    keys = masters.load()
    if not masters.from_file:
        done = Rotation(active=keys[0].kid)
        done.rewrapped = _rewrap_all(vault, keys[0], keys)
        done.drop_from_env = [k.kid for k in keys[1:]]
        _purge(vault, done.rewrapped)
        vault.forget()
        return done
    made = len(keys) == 1
    if made:
        keys = (new_master_key(), *keys)
        masters.write_file(keys)
    active, old = keys[0], keys
    done = Rotation(active=active.kid, new_key=made)
    done.rewrapped = _rewrap_all(vault, active, old)
    masters.write_file((active,))
    # The last pass, holding the write lock: a key made with an old master key between the pass
    # above and the file's change is re-wrapped here; after it, every process reads the new file.
    done.rewrapped += _rewrap_all(vault, active, old, exclusive=True)
    done.retired = [k.kid for k in old[1:]]
    _purge(vault, done.rewrapped)
    vault.forget()
    return done


def _rewrap_all(vault: Vault, active: MasterKey, known: tuple[MasterKey, ...], *, exclusive: bool = False) -> int:
    by_id = {k.kid: k for k in known}
    count = 0
    while True:
        with vault.table.transaction(exclusive=exclusive) as cur:
            rows = cur.not_wrapped_by(active.kid, BATCH)
            for row in rows:
                master = by_id.get(row.master_key_id) or vault.masters.get(row.master_key_id)
                if master is None:
                    raise MasterKeyError(
                        f"the data key of citizen {row.citizen_ref} is wrapped by master key {row.master_key_id}, "
                        f"which is not configured ({vault.masters.source}); put it back (first key: the new one, "
                        "then the old ones) and run the rotation again: nothing was lost"
                    )
                if cur.rewrap(wrap(active, row.citizen_ref, unwrap(master, row)), row.master_key_id):
                    count += 1
        if len(rows) < BATCH:
            return count


def _purge(vault: Vault, rewrapped: int) -> None:
    if rewrapped:
        vault.last_purge = vault.table.purge()
