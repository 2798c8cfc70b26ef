"""A citizen's phone and name: sealed at rest, read on record, erased for good with every event kept.

Each test runs on a SQLite file and on a PostgreSQL schema and looks at what the store really
holds: the SQLite file and its write-ahead log byte by byte, or every row of the schema
(``pg_dump`` and a plain read of each table).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.cli import main
from adapters.export import ExportFilter, export_events
from adapters.privacy.vault import Vault
from adapters.store import resolve
from domain.application import PingjingApp
from domain.case import Case
from domain.values import Contact
from projections.analyst import rebuild_in_memory
from projections.timeline import ERASED, timeline
from tests.http.conftest import World
from tests.http.console_support import CONSOLE, browser
from tests.privacy.conftest import NAME, PHONE, SUMMARY, contains_any, open_with_contact, raw_bytes
from tests.viewdump import dump


def _stored_events(app: PingjingApp) -> list[tuple[int, str, bytes]]:
    """Every stored event as (position, topic, stored bytes)."""
    return [(n.id, n.topic, bytes(n.state)) for n in app.recorder.select_notifications(start=1, limit=1_000_000)]


def _erase(database: str, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["--database", database, "privacy", "erase", *args])
    out, err = capsys.readouterr()
    return status, out, err


def _wrapped_key(vault: Vault, citizen_ref: str) -> bytes:
    row = vault.table.fetch(citizen_ref)
    assert row is not None
    return row.wrapped


def test_contacts_are_sealed_at_rest_yet_read_on_record(world: World, stored: str) -> None:
    ref = open_with_contact(world.county)
    store = resolve(stored)

    on_disk = raw_bytes(store)
    assert contains_any(on_disk, SUMMARY), "the search sees what the events hold in clear"
    assert not contains_any(on_disk, PHONE), "the phone is stored sealed"
    assert not contains_any(on_disk, NAME), "the name is stored sealed"
    assert b"pj1." in on_disk, "the sealed contact is in the event"

    before = world.head()
    answer = world.get("supervisor", f"/api/v1/cases/{ref}/contact")
    assert answer.status_code == 200
    assert answer.json()["phone"] == PHONE
    assert answer.json()["citizen_name"] == NAME
    reads = [e for _, e in world.rt.app.iter_events(before + 1) if type(e).__name__ == "Recorded"]
    assert len(reads) == 1, "the read is on record"
    # A process of its own (another application on the same store) opens the same contact.
    other = PingjingApp(env=store.env, observers=[])
    try:
        contact = other.get_case(ref).contact
        assert contact == Contact(contact.citizen_ref if contact else "", PHONE, NAME)
    finally:
        other.close()


def test_an_erased_contact_is_nowhere_while_every_event_stays(
    world: World, stored: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = open_with_contact(world.county)
    app = world.rt.app
    store = resolve(stored)
    case = app.get_case(ref)
    assert case.contact is not None
    citizen = case.contact.citizen_ref
    assert isinstance(app.personal, Vault)
    wrapped = _wrapped_key(app.personal, citizen)
    assert wrapped in raw_bytes(store), "the search sees the wrapped key while it is stored"
    live = world.rt.app  # the service keeps following the log while the CLI erases
    world.get("supervisor", f"/api/v1/cases/{ref}")  # its views caught up, the contact masked
    events_before = _stored_events(app)

    status, out, _ = _erase(stored, "--case", ref, "--reason", "citizen's request", "--by", "admin:it-li",
                            capsys=capsys)

    assert status == 0
    assert f"case {ref}: contact of citizen {citizen} erased (key deleted" in out
    # Nothing of the contact or its key is left in the store's files.
    on_disk = raw_bytes(store)
    assert contains_any(on_disk, SUMMARY), "the search sees what the events hold in clear"
    assert not contains_any(on_disk, PHONE)
    assert not contains_any(on_disk, NAME)
    assert wrapped not in on_disk, "the wrapped key's bytes are gone from the file, its free pages and its log"
    # Every event is still there, byte for byte, and one more says who erased it and why.
    events_after = _stored_events(app)
    assert events_after[: len(events_before)] == events_before
    (erasure,) = events_after[len(events_before):]
    assert erasure[1].endswith("Case.ContactErased")
    recorded = json.loads(erasure[2])
    assert recorded["citizen_ref"] == citizen
    assert recorded["reason"] == "citizen's request"
    assert recorded["meta"]["_data_"]["actor"] == "it-li"
    assert not contains_any(erasure[2], PHONE)
    # Read afresh (another process), the opening event still decodes: to an erased contact.
    fresh = PingjingApp(env=store.env, observers=[])
    try:
        opened = next(e for e in fresh.case_events(ref) if isinstance(e, Case.Opened))  # type: ignore[attr-defined]
        assert opened.contact == Contact.erased_for(citizen)
        assert fresh.get_case(ref).contact == Contact.erased_for(citizen)
        assert fresh.get_case(ref).contact_erased_at is not None
        rebuilt = rebuild_in_memory(fresh)
        # Views rebuilt now show it erased, and so do the views that were following the log.
        lines = timeline(rebuilt, ref)
        assert f"contact={ERASED}" in lines[0].details
        assert lines[-1].event == "ContactErased"
        assert all(PHONE[-4:] not in line.details for line in lines)
        following = world.rt.app  # the service's own views, caught up by the next read
        assert following is live
        world.get("supervisor", f"/api/v1/cases/{ref}")
        assert dump(world.app.state.services.views) == dump(rebuilt)
    finally:
        fresh.close()


def test_staff_and_citizen_are_told_clearly_that_the_contact_was_erased(
    world: World, stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = open_with_contact(world.county)
    _erase(stored, "--case", ref, "--reason", "citizen's request", capsys=capsys)
    head = world.head()

    answer = world.get("supervisor", f"/api/v1/cases/{ref}/contact")
    assert answer.status_code == 404
    assert answer.json()["what"] == "erased contact of case"
    assert "were erased" in answer.json()["message"]
    assert world.head() == head, "a refused read records nothing"
    story = world.get("supervisor", f"/api/v1/cases/{ref}")
    assert story.status_code == 200
    assert f"contact={ERASED}" in story.json()["timeline"][0]["details"]

    zh = world.client.post(f"/track/{ref}", data={"last4": PHONE[-4:]})
    assert zh.status_code == 410
    assert "已按规定删除" in zh.text
    en = world.client.post(f"/track/{ref}?lang=en", data={"last4": "0000"})
    assert en.status_code == 410
    assert "were erased" in en.text
    assert PHONE[-4:] not in zh.text


def test_a_second_erasure_says_it_was_done_before(
    world: World, stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = open_with_contact(world.county)
    citizen = world.rt.app.get_case(ref).contact.citizen_ref  # type: ignore[union-attr]
    _erase(stored, "--case", ref, "--reason", "citizen's request", capsys=capsys)
    head = world.head()

    again = _erase(stored, "--citizen", citizen, "--reason", "asked twice", capsys=capsys)

    assert again[0] == 0
    assert f"case {ref}: contact of citizen {citizen} already erased at" in again[1]
    assert world.head() == head, "nothing more is recorded"
    as_json = main(["--database", stored, "privacy", "erase", "--case", ref, "--reason", "x", "--format", "json"])
    assert as_json == 0
    data = json.loads(capsys.readouterr().out)
    assert data["erased"][0]["already_erased"] is True
    assert data["erased"][0]["key_deleted"] is False


def test_erasing_a_citizen_finds_their_case_and_refuses_the_unknown(
    world: World, stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = open_with_contact(world.county)
    other = open_with_contact(world.county, phone="13700001111", name=None)
    citizen = world.rt.app.get_case(ref).contact.citizen_ref  # type: ignore[union-attr]

    status, out, _ = _erase(stored, "--citizen", citizen, "--reason", "citizen's request", capsys=capsys)

    assert status == 0
    assert ref in out
    assert other not in out
    fresh = PingjingApp(env=resolve(stored).env, observers=[])
    try:
        assert fresh.get_case(other).contact.phone == "13700001111"  # type: ignore[union-attr]
    finally:
        fresh.close()
    unknown = _erase(stored, "--citizen", "NOSUCHCITIZEN", "--reason", "x", capsys=capsys)
    assert unknown[0] == 1
    assert "unknown citizen 'NOSUCHCITIZEN'" in unknown[2]
    no_contact = world.county.open_case(phone=None)
    refused = _erase(stored, "--case", no_contact, "--reason", "x", capsys=capsys)
    assert refused[0] == 1
    assert "has no citizen contact to erase" in refused[2]


def test_the_export_says_erased_and_names_no_data(
    world: World, stored: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = open_with_contact(world.county)
    _erase(stored, "--case", ref, "--reason", "citizen's request", capsys=capsys)
    fresh = PingjingApp(env=resolve(stored).env, observers=[])
    try:
        target = tmp_path / "events.jsonl"
        export_events(fresh.iter_events(), target, "jsonl", ExportFilter())
        rows: list[dict[str, Any]] = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    finally:
        fresh.close()
    opened = next(r for r in rows if r["type"] == "Case.Opened" and r["data"]["ref"] == ref)
    assert opened["data"]["contact"]["erased"] is True
    assert opened["data"]["contact"]["phone"] is None
    erased = next(r for r in rows if r["type"] == "Case.ContactErased")
    assert erased["data"]["reason"] == "citizen's request"
    assert not contains_any(target.read_bytes(), PHONE)


def test_the_erasure_deletes_the_key_row_and_only_that(
    world: World, stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = open_with_contact(world.county)
    kept = open_with_contact(world.county, phone="13700001111", name=None)
    app = world.rt.app
    citizen = app.get_case(ref).contact.citizen_ref  # type: ignore[union-attr]
    other = app.get_case(kept).contact.citizen_ref  # type: ignore[union-attr]
    assert isinstance(app.personal, Vault)
    assert app.personal.table.counts() == {app.personal.masters.active().kid: 2}

    _erase(stored, "--case", ref, "--reason", "citizen's request", capsys=capsys)

    assert not app.personal.has_key(citizen)
    assert app.personal.has_key(other)
    assert sum(app.personal.table.counts().values()) == 1


def _verify(database: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    status = main(["--database", database, "audit", "verify", "--format", "json", *extra])
    return status, json.loads(capsys.readouterr().out)


def test_the_tamper_evident_log_still_verifies_after_an_erasure(
    world: World, stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The chain hashes the stored bytes; erasing deletes only a key beside them (DESIGN §7)."""
    ref = open_with_contact(world.county)
    status, before = _verify(stored, capsys)
    assert status == 0
    assert before["intact"] is True

    _erase(stored, "--case", ref, "--reason", "citizen's request", capsys=capsys)

    expected = f"{before['head_position']}:{before['head_hash']}"
    status, after = _verify(stored, capsys, "--expect", expected)
    assert status == 0, after["problem"]
    assert after["intact"] is True
    assert after["head_position"] == before["head_position"] + 1, "the erasure is one more event on the chain"


def test_the_console_shows_the_contact_erased_and_refuses_to_reveal_it(
    world: World, stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = open_with_contact(world.county)
    _erase(stored, "--case", ref, "--reason", "citizen's request", capsys=capsys)
    office = browser(world, "supervisor")
    head = world.head()

    page = office.get(f"{CONSOLE}/cases/{ref}")
    refused = office.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/personal-data")

    assert page.status_code == 200
    assert ERASED in page.text
    assert "个人信息已删除" in page.text
    assert refused.status_code == 404
    assert "were erased" in refused.text
    assert PHONE[-4:] not in refused.text
    assert world.head() == head, "nothing is recorded"
