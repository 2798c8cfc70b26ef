"""Reading many citizens' keys at once: a rebuild asks for them in a few queries, never reads an erased one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.privacy import master as master_module
from adapters.privacy.erase import erase_case
from adapters.privacy.keystore import KeyRow
from adapters.privacy.vault import Vault, vault_for
from adapters.settings import Settings
from adapters.store import resolve
from projections.analyst import rebuild_in_memory
from projections.timeline import ERASED, timeline
from tests.conftest import SUPERVISOR, County, make_app
from tests.fakes import FakeClock
from tests.privacy.conftest import PHONE, open_with_contact

_PLAIN = orjson.dumps({"phone": PHONE, "name": None})


def _vault(database: Path | str) -> Vault:
    vault = vault_for(resolve(str(database)).env, Settings())
    assert isinstance(vault, Vault)
    return vault


class _Counting:
    """Counts the key table's reads of one key and of many."""

    def __init__(self, vault: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.one: list[str] = []
        self.many: list[list[str]] = []
        table = vault.table
        fetch, fetch_many = table.fetch, table.fetch_many

        def one(ref: str) -> KeyRow | None:
            self.one.append(ref)
            return fetch(ref)  # type: ignore[no-any-return]

        def many(refs: list[str]) -> list[KeyRow]:
            self.many.append(list(refs))
            return fetch_many(refs)  # type: ignore[no-any-return]

        monkeypatch.setattr(table, "fetch", one)
        monkeypatch.setattr(table, "fetch_many", many)


def test_prefetched_keys_open_without_a_query_each_and_an_erased_one_still_reads_erased(
    stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, reader = _vault(stored), _vault(stored)
    try:
        sealed = {ref: writer.seal(ref, _PLAIN) for ref in ("CIT1", "CIT2", "CIT3")}
        assert writer.erase("CIT2")
        counting = _Counting(reader, monkeypatch)

        reader.prefetch([*sealed, "CIT1", "NEVER"])

        assert len(counting.many) == 1, "one query for all of them"
        assert reader.open("CIT1", sealed["CIT1"]) == _PLAIN
        assert reader.open("CIT3", sealed["CIT3"]) == _PLAIN
        assert counting.one == [], "the keys read ahead are not read again"
        assert reader.open("CIT2", sealed["CIT2"]) is None, "erased: no row, so nothing read ahead"
        assert counting.one == ["CIT2"], "a citizen not read ahead is looked up as before"
        reader.prefetch(["CIT1", "CIT2", "CIT3"])
        assert len(counting.many) == 1, "nothing left to read: the keys in memory, the erased one known"
    finally:
        writer.close()
        reader.close()


def test_many_keys_are_unwrapped_with_one_cipher_of_the_master_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "events.sqlite3"
    writer, reader = _vault(database), _vault(database)
    made: list[bytes] = []

    def counting_aead(secret: bytes) -> AESGCM:
        made.append(secret)
        return AESGCM(secret)

    try:
        sealed = {ref: writer.seal(ref, _PLAIN) for ref in ("CIT1", "CIT2", "CIT3")}
        monkeypatch.setattr(master_module, "AESGCM", counting_aead)  # the master keys' ciphers, only
        reader.prefetch(["CIT1"])
        assert all(reader.open(ref, text) == _PLAIN for ref, text in sealed.items())
        assert len(made) == 1
    finally:
        writer.close()
        reader.close()


def test_a_rebuild_reads_the_contacts_keys_in_batches_and_shows_an_erased_contact_erased(
    stored: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = stored
    app = make_app(database, clock)
    county = County(app, clock).setup()
    refs = [open_with_contact(county, phone=f"1391234{n:04d}") for n in range(5)]
    erased = app.get_case(refs[2]).contact
    assert erased is not None
    clock.advance(hours=1)
    assert erase_case(app, refs[2], "citizen's request", SUPERVISOR).recorded
    app.close()

    fresh = make_app(database, clock)  # nothing in memory, as a rebuild's process
    try:
        counting = _Counting(fresh.personal, monkeypatch)
        views = rebuild_in_memory(fresh)

        assert counting.many, "the keys were read ahead"
        assert counting.one == [erased.citizen_ref], "only the erased citizen's key is looked for on its own"
        for n, ref in enumerate(refs):
            opening = timeline(views, ref)[0].details
            if n == 2:
                assert f"contact={ERASED}" in opening
            else:
                assert f"contact=139****{n:04d}" in opening
    finally:
        fresh.close()
