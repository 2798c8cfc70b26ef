"""How a contact is stored: sealed per citizen, its key durable first; old contacts in clear still read."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import JSONTranscoder

from adapters.privacy.erase import erase_case
from adapters.privacy.keystore import TABLE, PostgresKeyTable
from adapters.privacy.vault import SealedDataError, Vault, vault_for
from adapters.settings import Settings
from adapters.store import connect_postgres, resolve
from domain import commands as c
from domain.application import PingjingApp
from domain.personal import InMemoryPersonalData
from domain.transcodings import ContactAsDict, FastJSONTranscoder
from domain.values import Contact
from projections.analyst import rebuild_in_memory
from projections.timeline import ERASED, timeline
from tests.conftest import CITIZEN, SUPERVISOR, County, make_app
from tests.fakes import FakeClock, SequentialIds
from tests.privacy.conftest import NAME, PHONE, open_with_contact, raw_bytes


def _vault(tmp_path: Path) -> Vault:
    vault = vault_for(resolve(str(tmp_path / "events.sqlite3")).env, Settings())
    assert isinstance(vault, Vault)
    return vault


def test_a_contact_round_trips_sealed_and_reads_erased_once_forgotten() -> None:
    personal = InMemoryPersonalData()
    transcoding = ContactAsDict(personal)
    contact = Contact("CITIZEN1", PHONE, NAME)

    stored = transcoding.encode(contact)

    assert set(stored) == {"citizen_ref", "sealed"}
    assert PHONE not in repr(stored)
    assert transcoding.decode(stored) == contact
    assert personal.erase("CITIZEN1")
    assert transcoding.decode(stored) == Contact.erased_for("CITIZEN1")
    assert not personal.erase("CITIZEN1"), "erased before"
    assert transcoding.encode(Contact.erased_for("X")) == {"citizen_ref": "X", "erased": True}
    assert transcoding.decode({"citizen_ref": "X", "erased": True}).erased


def test_a_contact_stored_in_clear_still_reads() -> None:
    transcoder = FastJSONTranscoder()
    transcoder.register(ContactAsDict(InMemoryPersonalData()))
    old = b'{"contact": {"_type_": "contact", "_data_": {"citizen_ref": "OLD1", "phone": "13800138000", "name": null}}}'
    assert transcoder.decode(old)["contact"] == Contact("OLD1", "13800138000", None)


def test_the_vault_seals_with_the_citizens_own_key(tmp_path: Path) -> None:
    vault = _vault(tmp_path)
    try:
        plaintext = orjson.dumps({"phone": PHONE, "name": NAME})
        sealed = vault.seal("CITIZEN1", plaintext)
        assert sealed.startswith("pj1.")
        assert PHONE not in sealed
        assert vault.seal("CITIZEN1", plaintext) != sealed, "a fresh nonce each time"
        assert vault.open("CITIZEN1", sealed) == plaintext
        vault.seal("CITIZEN2", plaintext)
        with pytest.raises(SealedDataError, match="does not open"):
            vault.open("CITIZEN2", sealed)  # moved onto another citizen
        tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
        with pytest.raises(SealedDataError):
            vault.open("CITIZEN1", tampered)
        assert vault.erase("CITIZEN1")
        assert vault.open("CITIZEN1", sealed) is None
        assert vault.open("CITIZEN2", vault.seal("CITIZEN2", b"{}")) == b"{}"
        assert not vault.erase("CITIZEN1")
    finally:
        vault.close()


class _Watching:
    """A vault that checks, when asked for keys, that they are committed before any event is stored."""

    def __init__(self, vault: Vault, app: Any, database: Path) -> None:
        self.vault = vault
        self.app = app
        self.database = database
        self.prepared: list[list[str]] = []

    def prepare(self, citizen_refs: Collection[str]) -> None:
        head = self.app.recorder.max_notification_id()
        self.vault.prepare(citizen_refs)
        self.prepared.append(list(citizen_refs))
        # Seen from another connection: committed, before the batch's events are.
        with sqlite3.connect(self.database) as other:
            stored = {r[0] for r in other.execute(f"SELECT citizen_ref FROM {TABLE}")}  # noqa: S608
        assert set(citizen_refs) <= stored
        assert self.app.recorder.max_notification_id() == head

    def seal(self, citizen_ref: str, plaintext: bytes) -> str:
        return self.vault.seal(citizen_ref, plaintext)

    def open(self, citizen_ref: str, sealed: str) -> bytes | None:
        return self.vault.open(citizen_ref, sealed)


def test_a_batchs_new_keys_are_committed_in_one_go_before_its_events(tmp_path: Path, clock: FakeClock) -> None:
    database = tmp_path / "events.sqlite3"
    env = resolve(str(database)).env
    watching = _Watching(_vault(tmp_path), None, database)
    app = PingjingApp(env=env, clock=clock, ids=SequentialIds(), observers=[], personal=watching)
    watching.app = app
    try:
        county = County(app, clock).setup()
        ratings = [
            (c.SubmitRating(target="officer", key="100102", verdict="dissatisfied", service_score=1, attitude_score=1,
                            efficiency_score=1, phone=f"1370000{i:04d}"), CITIZEN)
            for i in range(10)
        ]
        outcomes = app.execute_batch(ratings)
        assert all(getattr(o, "case_ref", None) for o in outcomes)
        assert len(watching.prepared) == 1
        assert len(watching.prepared[0]) == 10
        assert open_with_contact(county) is not None
        assert len(watching.prepared) == 2
    finally:
        app.close()
        watching.vault.close()


class _InClear(ContactAsDict):
    """How contacts were stored before they were sealed."""

    def encode(self, obj: Contact) -> dict[str, Any]:
        return {"citizen_ref": obj.citizen_ref, "phone": obj.phone, "name": obj.name}


class _OldApp(PingjingApp):
    """The application as it was: contacts in clear."""

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(_InClear(self.personal))


def test_an_old_contact_in_clear_reads_and_its_erasure_shows_everywhere(tmp_path: Path, clock: FakeClock) -> None:
    database = str(tmp_path / "events.sqlite3")
    old = _OldApp(env=resolve(database).env, clock=clock, ids=SequentialIds(), observers=[],
                  personal=InMemoryPersonalData())  # no key table then
    ref = open_with_contact(County(old, clock).setup())
    old.close()
    assert PHONE.encode() in raw_bytes(resolve(database)), "stored in clear, as before contacts were sealed"
    app = make_app(database, clock)
    try:
        contact = app.get_case(ref).contact
        assert contact is not None
        assert (contact.phone, contact.name) == (PHONE, NAME)
        assert f"contact={PHONE[:3]}****{PHONE[-4:]}" in timeline(rebuild_in_memory(app), ref)[0].details

        clock.advance(hours=1)
        done = erase_case(app, ref, "citizen's request", SUPERVISOR)

        assert done.recorded
        assert done.in_clear, "the stored event still holds it: the operator is told"
        assert not done.key_deleted, "there was no key"
        assert app.get_case(ref).contact == Contact.erased_for(contact.citizen_ref)
        lines = timeline(rebuild_in_memory(app), ref)
        assert f"contact={ERASED}" in lines[0].details
        assert all(PHONE[-4:] not in line.details for line in lines)
    finally:
        app.close()


def test_on_the_memory_store_the_data_are_forgotten(clock: FakeClock) -> None:
    app = make_app("memory", clock)
    try:
        county = County(app, clock).setup()
        ref = open_with_contact(county)
        assert isinstance(app.personal, InMemoryPersonalData)
        done = erase_case(app, ref, "citizen's request", SUPERVISOR)
        assert done.recorded
        assert done.key_deleted
        assert app.get_case(ref).contact.erased  # type: ignore[union-attr]
        views = rebuild_in_memory(app)
        assert f"contact={ERASED}" in timeline(views, ref)[0].details
    finally:
        app.close()


def test_two_processes_that_make_the_same_citizens_key_agree_on_one(stored: str) -> None:
    env = resolve(stored).env
    first, second = vault_for(env, Settings()), vault_for(env, Settings())
    assert isinstance(first, Vault)
    assert isinstance(second, Vault)
    try:
        sealed = first.seal("CITIZEN1", b"one")
        second.prepare(["CITIZEN1", "CITIZEN2"])  # CITIZEN1's key exists: it is read, not replaced
        assert second.open("CITIZEN1", sealed) == b"one"
        assert first.open("CITIZEN2", second.seal("CITIZEN2", b"two")) == b"two"
        assert sum(first.table.counts().values()) == 2
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_the_key_table_connects_again_when_postgresql_dropped_its_connection(postgres_database: str) -> None:
    """As after a server restart: only this table's own session is ended here."""
    env = resolve(postgres_database).env
    vault = vault_for(env, Settings())
    assert isinstance(vault, Vault)
    table = vault.table
    assert isinstance(table, PostgresKeyTable)
    def drop_its_session() -> None:
        pid = table._connection().info.backend_pid
        with connect_postgres(env) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        vault.forget()

    try:
        sealed = vault.seal("CITIZEN1", b"one")
        drop_its_session()
        vault.prepare(["CITIZEN2"])  # a write transaction: pinged first, connected again
        drop_its_session()
        assert vault.open("CITIZEN1", sealed) == b"one"  # a read: tried again once on a new connection
        assert sum(table.counts().values()) == 2
    finally:
        vault.close()
