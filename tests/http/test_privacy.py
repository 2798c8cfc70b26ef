"""Privacy through the API (DESIGN §1, §7): what officers and auditors never get, and reads on record."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from domain.tokens import PersonalDataRead
from tests.conftest import START
from tests.fakes import FakeClock
from tests.http.conftest import World, make_world
from tests.http.test_roles import CALLS, MAY_CALL, send

API = "/api/v1"
PHONE = "13912345678"
NAME = "欧阳某某"
DEVICE = "d1ce0fbeefcafe0123456789abcdef00"
COMMENT = "ZXQ-评语-态度很差的那位"
COMPLAINT = "ZXQ-投诉-报警后两小时没人来"
SUGGESTION = "ZXQ-建议-窗口多开一个"
SECRETS = (PHONE, NAME, DEVICE, "ZXQ", "1391234")


def seed_ratings(w: World) -> None:
    """Officer 100102 is rated in week 2021-W44 with distinctive texts, phones and devices."""
    for i in range(6):
        w.county.rate("dissatisfied" if i % 2 else "satisfied", phone=PHONE, citizen_name=NAME,
                      comment=f"{COMMENT}{i}", device_hash=f"{DEVICE}{i:02d}")
    w.county.rate("dissatisfied", phone=PHONE, complaint=COMPLAINT, citizen_name=NAME)
    w.county.rate("basically_satisfied", phone=PHONE, suggestion=SUGGESTION)


def leaks(text: str) -> list[str]:
    """The distinctive personal data found in ``text``."""
    return [s for s in SECRETS if s in text]


def test_no_officer_response_ever_holds_a_ratings_text_a_phone_or_a_device(world: World) -> None:
    seed_ratings(world)
    bodies: dict[str, str] = {}
    for route in sorted(MAY_CALL):
        method, path = route
        answer = send(world, method, CALLS[route](world, "officer"), "officer")
        bodies[f"{method} {path} -> {answer.status_code}"] = answer.text
    own = world.get("officer", f"{API}/rates", params={"scope": "officer:100102", "period": "2021-W44"})
    assert own.status_code == 200, own.text
    bodies["own rates of 2021-W44"] = own.text
    found = {where: leaks(text) for where, text in bodies.items() if leaks(text)}
    assert found == {}
    assert own.json()["counts"]["ratings"] >= 5  # aggregates only: counts and rates


def test_no_console_page_an_officer_can_open_holds_a_ratings_text_a_phone_or_a_device(world: World) -> None:
    seed_ratings(world)
    ref = world.county.open_case(phone=PHONE)
    world.clock.advance(days=14)
    signed_in = world.client.post("/console/login", data={"token": world.secrets["officer"]}, follow_redirects=False)
    assert signed_in.status_code == 303
    pages = ["/console/", "/console/?week=2021-W44&month=2021-11", "/console/board", f"/console/cases/{ref}",
             "/console/reports", "/console/qr", "/console/qr/officer/100102.svg"]
    bodies = {}
    for path in pages:
        answer = world.client.get(path)
        bodies[f"{path} -> {answer.status_code}"] = answer.text
    own_week = bodies["/console/?week=2021-W44&month=2021-11 -> 200"]
    assert "Own rates (100102)" in own_week  # the officer's own aggregated rates are shown
    assert re.search(r'data-rate="satisfaction"><span class="pct">44.4%</span> <span class="frac">4/9</span>', own_week)
    found = {where: leaks(text) for where, text in bodies.items() if leaks(text)}
    assert found == {}
    assert all(not where.endswith("-> 200") for where in bodies if "cases" in where or "board" in where)


def test_an_auditor_reads_case_histories_and_reports_without_a_phone_or_a_name(world: World) -> None:
    seed_ratings(world)
    opened = world.post("supervisor", f"{API}/cases", {
        "intake": "hotline", "kind": "complaint", "unit_code": "PS1", "phone": "139 1234 5678", "citizen_name": NAME,
        "summary": f"{NAME}来电反映出警慢，回电 {PHONE} 或 0311-87654321"})
    ref = opened.json()["case_ref"]
    world.post("unit_head", f"{API}/cases/{ref}/contact", {"note": f"已拨打{PHONE}联系{NAME}"})
    world.clock.advance(days=14)
    assert world.post("supervisor", f"{API}/reports", {"kind": "weekly", "period": "2021-W44"}).status_code == 200
    bodies = [
        world.get("auditor", f"{API}/cases").text,
        world.get("auditor", f"{API}/cases/{ref}").text,
        world.get("auditor", f"{API}/reports").text,
        world.get("auditor", f"{API}/reports/weekly-2021-W44").text,
        world.get("auditor", f"{API}/rates", params={"period": "2021-W44"}).text,
    ]
    bodies += [world.get("auditor", f"{API}/cases/{row['ref']}").text
               for row in world.get("auditor", f"{API}/cases").json()]
    # The complaint itself is part of the history an auditor reviews; who made it, and how to reach them, is not.
    personal = (PHONE, NAME, "1391234", "87654321")
    assert [[p for p in personal if p in b] for b in bodies if any(p in b for p in personal)] == []
    case = world.get("auditor", f"{API}/cases/{ref}").json()
    assert case["case"]["summary"] == "[redacted]来电反映出警慢，回电 139****5678 或 031*****4321"
    assert {line["actor"] for line in case["timeline"]} <= {"citizen", "system", "supervisor:dc-wang",
                                                           "unit_head:100101"}


@pytest.mark.parametrize("who", ["supervisor", "unit_head"])
def test_staff_read_a_phone_or_a_name_only_through_the_recorded_contact_read(world: World, who: str) -> None:
    opened = world.post("supervisor", f"{API}/cases", {
        "intake": "hotline", "kind": "complaint", "unit_code": "PS1", "phone": PHONE, "citizen_name": NAME,
        "summary": f"{NAME}反映出警慢，请回电{PHONE}"})
    ref = opened.json()["case_ref"]
    world.post("unit_head", f"{API}/cases/{ref}/contact", {"note": f"已拨打 139-1234-5678 联系{NAME}"})
    history = world.get(who, f"{API}/cases/{ref}")
    board = world.get(who, f"{API}/cases")
    for answer in (history, board):
        assert answer.status_code == 200
        assert leaks(answer.text) == []
    notes = [line["details"] for line in history.json()["timeline"]]
    assert "note: 已拨打 139****5678 联系[redacted]" in notes
    before = world.head()
    contact = world.get(who, f"{API}/cases/{ref}/contact").json()
    assert (contact["phone"], contact["citizen_name"]) == (PHONE, NAME)
    assert world.head() == before + 1


def test_reading_a_contact_is_recorded_as_an_event_before_it_is_sent(world: World) -> None:
    ref = world.county.open_case(phone=PHONE)
    before = world.head()
    r = world.get("unit_head", f"{API}/cases/{ref}/contact")
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == PHONE
    assert r.headers["Cache-Control"] == "no-store"
    assert world.head() == before + 1
    read = world.rt.app.get_aggregate(UUID(r.json()["read_id"]))
    assert isinstance(read, PersonalDataRead)
    assert (read.case_ref, read.fields, read.read_by, read.role.value) == (ref, ["phone"], "100101", "unit_head")
    assert read.read_at == START
    me = world.get("unit_head", f"{API}/me").json()
    assert str(read.token_id) == me["token_id"]
    [event] = [e for _, e in world.rt.app.iter_events(start=before + 1)]
    assert type(event).__qualname__ == "PersonalDataRead.Recorded"
    assert event.meta.channel.value == "api"


def test_a_refused_or_empty_contact_read_sends_nothing_and_records_nothing(world: World) -> None:
    with_contact = world.county.open_case(phone=PHONE)
    without = world.county.open_case(phone=None)
    before = world.head()
    for who, ref, status in (("other_head", with_contact, 403), ("auditor", with_contact, 403),
                             ("supervisor", without, 404)):
        r = world.get(who, f"{API}/cases/{ref}/contact")
        assert r.status_code == status, r.text
        assert PHONE not in r.text
    assert world.head() == before


# -- an officer's own rates ------------------------------------------------------------------


@pytest.fixture
def rated(world: World) -> World:
    """Officer 100102 rated six times in 2021-W44, read after the week is over."""
    seed_ratings(world)
    world.clock.set(START + timedelta(days=7))
    return world


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"scope": "officer:F10103", "period": "2021-W44"}, "only their own rates"),
        ({"scope": "unit:PS1", "period": "2021-W44"}, "only their own rates"),
        ({"scope": "county", "period": "2021-11"}, "only their own rates"),
        ({"scope": "officer:100102", "period": "2021-11"}, "not over yet"),
        ({"scope": "officer:100102", "period": "2021-W45"}, "not over yet"),
        ({"scope": "officer:100102", "period": "2021-W43"}, "fewer than 5 ratings"),
        ({"scope": "officer:100102", "period": "2021-W44", "as_of": "2021-11-05T00:00:00+08:00"}, "as of"),
    ],
)
def test_an_officer_reads_only_their_own_closed_periods_with_enough_ratings(
    rated: World, params: dict[str, str], reason: str
) -> None:
    r = rated.get("officer", f"{API}/rates", params=params)
    assert r.status_code == 403, r.text
    assert reason in r.json()["message"]


def test_an_officer_reads_their_own_closed_week(rated: World) -> None:
    r = rated.get("officer", f"{API}/rates", params={"scope": "officer:100102", "period": "2021-w44"})
    assert r.status_code == 200, r.text
    assert r.json()["rates"]["satisfaction"]["denominator"] == 8


@pytest.fixture
def strict(tmp_path: Path, clock: FakeClock) -> Iterator[World]:
    """An install that shows officers their rates from ten ratings on."""
    made = make_world(str(tmp_path / "strict.sqlite3"), tmp_path, clock, officer_min_ratings=10)
    yield made
    made.client.close()
    made.rt.close()


def test_the_threshold_is_the_setting(strict: World) -> None:
    seed_ratings(strict)
    strict.clock.set(START + timedelta(days=7))
    r = strict.get("officer", f"{API}/rates", params={"scope": "officer:100102", "period": "2021-W44"})
    assert r.status_code == 403
    assert "fewer than 10 ratings" in r.json()["message"]
    assert "8" not in r.json()["message"]  # not even how many
