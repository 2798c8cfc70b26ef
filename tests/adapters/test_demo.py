"""The Lingshou County demo: reproducible from its seed, and rich enough to show every state."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from adapters.demo import DemoError, DemoResult, load_demo
from adapters.demo.cao import CAO_UNIT
from adapters.store import resolve
from domain.application import PingjingApp
from domain.encounters import Encounter
from domain.ids import LOCAL_TZ
from domain.transcodings import ContactAsDict
from domain.values import AccountabilityMeasure, CommendationKind, EncounterKind, Verdict
from domain.workflow import CaseState
from projections.county_state import CountyState, fold

UNTIL = date(2021, 11, 30)
MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@dataclass
class Loads:
    """The demo loaded three times: twice with the default seed, once with another."""

    app: PingjingApp  # SQLite, seed 2021
    result: DemoResult
    county: CountyState
    same_seed: PingjingApp  # memory, seed 2021
    other_seed: PingjingApp  # memory, seed 2022


@pytest.fixture(scope="module")
def loads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loads]:
    """Load the demo once per store, for the whole module (each load takes seconds)."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    app = PingjingApp(env=resolve(str(path)).env)
    result = load_demo(app, seed=2021, until=UNTIL)
    same_seed = PingjingApp(env=MEMORY)
    load_demo(same_seed, seed=2021, until=UNTIL)
    other_seed = PingjingApp(env=MEMORY)
    load_demo(other_seed, seed=2022, until=UNTIL)
    yield Loads(app, result, fold(app.iter_events()), same_seed, other_seed)
    for each in (app, same_seed, other_seed):
        each.close()


def notifications(app: PingjingApp) -> list[Any]:
    """Every stored event record, in log order."""
    return list(app.recorder.select_notifications(start=1, limit=10**6))


def without_recording_time(state: bytes) -> dict[str, Any]:
    """An event's stored state without the library's wall-clock ``timestamp``."""
    data: dict[str, Any] = json.loads(state)
    data.pop("timestamp", None)
    return data


def opened(app: PingjingApp, state: bytes) -> bytes:
    """The stored state with its sealed contact opened: sealing is random by design (a fresh nonce under a
    random key per citizen, or another store's own tokens), so the same contact is stored differently."""
    if b'"sealed"' not in state:
        return state
    data: dict[str, Any] = json.loads(state)
    contact = ContactAsDict(app.personal).decode(data["contact"]["_data_"])
    data["contact"]["_data_"] = {"citizen_ref": contact.citizen_ref, "phone": contact.phone, "name": contact.name}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- reproducible ------------------------------------------------------------------------------


def test_the_same_seed_gives_byte_identical_events(loads: Loads) -> None:
    first = [(n.topic, opened(loads.app, n.state)) for n in notifications(loads.app)]
    second = [(n.topic, opened(loads.same_seed, n.state)) for n in notifications(loads.same_seed)]

    assert len(first) == len(second)
    assert first == second


def test_the_same_seed_gives_the_same_events_apart_from_their_recording_time(loads: Loads) -> None:
    first = notifications(loads.app)
    second = notifications(loads.same_seed)

    assert len(first) == len(second) == loads.result.events
    for a, b in zip(first, second, strict=True):
        assert (a.originator_id, a.originator_version, a.topic) == (
            b.originator_id, b.originator_version, b.topic,
        )
        assert without_recording_time(opened(loads.app, a.state)) == without_recording_time(
            opened(loads.same_seed, b.state)
        ), a.topic


def test_another_seed_gives_another_county(loads: Loads) -> None:
    first = [(n.topic, without_recording_time(n.state)) for n in notifications(loads.app)]
    other = [(n.topic, without_recording_time(n.state)) for n in notifications(loads.other_seed)]

    assert first != other
    assert fold(loads.other_seed.iter_events()).cases != loads.county.cases


def test_loading_into_a_store_that_holds_events_is_refused(loads: Loads) -> None:
    before = loads.same_seed.recorder.max_notification_id()

    with pytest.raises(DemoError, match="empty store only"):
        load_demo(loads.same_seed, seed=2021, until=UNTIL)

    assert loads.same_seed.recorder.max_notification_id() == before


# -- the county --------------------------------------------------------------------------------


def test_the_county_has_the_bureau_fifteen_stations_and_the_special_units(loads: Loads) -> None:
    units = loads.county.units

    assert Counter(u.kind for u in units.values()) == {
        "bureau": 1, "police_station": 15, "traffic_brigade": 1, "service_window": 1,
        "supervision_office": 1,
    }
    assert {f"LSPS{n:02d}" for n in range(1, 16)} <= set(units)
    assert {u.parent for u in units.values() if u.kind != "bureau"} == {"LSGAJ"}
    assert all(u.head for u in units.values())
    assert loads.result.units == len(units)


def test_the_county_has_at_least_150_officers(loads: Loads) -> None:
    officers = sum(u.officers for u in loads.county.units.values())

    assert officers >= 150
    assert all(u.officers > 0 for u in loads.county.units.values())
    assert loads.result.officers == officers


def test_encounters_of_all_four_kinds_fall_in_the_thirty_demo_days(loads: Loads) -> None:
    logged = [e for _, e in loads.app.iter_events() if isinstance(e, Encounter.Logged)]

    assert {EncounterKind(e.kind) for e in logged} == set(EncounterKind)
    assert len(logged) == loads.result.encounters
    days = {e.happened_at.astimezone(LOCAL_TZ).date() for e in logged}
    assert min(days) == date(2021, 11, 1)
    assert max(days) == UNTIL


def test_ratings_have_all_three_verdicts(loads: Loads) -> None:
    ratings = loads.county.ratings

    assert {Verdict(v) for v, n in ratings.items() if n > 0} == set(Verdict)
    assert sum(ratings.values()) == loads.result.ratings


def test_cases_stand_in_every_state_but_the_transient_open(loads: Loads) -> None:
    states = Counter(row.state for row in loads.county.cases)

    assert set(states) == {s.value for s in CaseState} - {CaseState.OPEN.value}
    assert len(loads.county.cases) == loads.result.cases
    assert loads.county.events == loads.result.events


# -- the Cao case ------------------------------------------------------------------------------


def test_the_cao_case_is_closed_accepted_flagged_criticised_and_commended(loads: Loads) -> None:
    case = loads.app.get_case(loads.result.cao_ref)

    assert case.state is CaseState.CLOSED
    assert case.citizen_accepted is True
    assert case.flagged
    assert [measure for _, measure in case.accountability] == [AccountabilityMeasure.CRITICISM_NOTICE]
    assert case.commendations == [CommendationKind.BANNER]
    assert case.unit_id == loads.app.get_unit(CAO_UNIT).id


def test_the_cao_case_happened_in_november_2021(loads: Loads) -> None:
    case = loads.app.get_case(loads.result.cao_ref)
    moments = [e.meta.occurred_at.astimezone(LOCAL_TZ) for e in loads.app.case_events(case.ref)]

    assert loads.result.cao_ref.startswith("PJ-20211109-")
    assert case.opened_at.astimezone(LOCAL_TZ).date() == date(2021, 11, 9)
    assert case.flagged_at is not None
    assert case.closed_at is not None
    assert case.opened_at < case.flagged_at < case.closed_at
    assert moments == sorted(moments)
    assert {(m.year, m.month) for m in moments} == {(2021, 11)}
