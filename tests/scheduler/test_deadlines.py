"""The SLA clock under a controllable clock: nothing here sleeps for real hours."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain import commands as c
from domain.application import PingjingApp
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from scheduler.deadlines import DeadlineKeeper
from tests.conftest import SUPERVISOR, County, make_app
from tests.fakes import FakeClock

SHANGHAI = ZoneInfo("Asia/Shanghai")


def keeper_for(app: PingjingApp, clock: FakeClock) -> DeadlineKeeper:
    """A keeper on the app's own store, with views beside the events."""
    views = ViewStore.beside(app)
    return DeadlineKeeper(app, views, Runner(app, views, ALL), clock)


def sla_events(app: PingjingApp, ref: str) -> list[tuple[str, str, int]]:
    """(event, step, round) of every SLA event of the case."""
    return [
        (type(e).__name__, e.step, e.round)
        for e in app.case_events(ref)
        if type(e).__name__ in ("SlaWarned", "SlaBreached")
    ]


@pytest.fixture
def keeper(county: County) -> DeadlineKeeper:
    return keeper_for(county.app, county.clock)


def test_an_uncontacted_case_is_warned_at_19_2_hours_and_breached_at_24(county: County, keeper: DeadlineKeeper) -> None:
    ref = county.open_case()
    opened = county.clock.now()
    assert keeper.refresh() == opened + timedelta(hours=19.2)  # pushed at once: the contact warning is next
    assert keeper.fire_due(opened + timedelta(hours=19, minutes=11)) == []
    fired = keeper.fire_due(opened + timedelta(hours=19, minutes=12))
    assert [(f.kind, f.step, f.recorded) for f in fired] == [("warning", "contact", True)]
    assert keeper.fire_due(opened + timedelta(hours=23, minutes=59)) == []
    fired = keeper.fire_due(opened + timedelta(hours=24))
    assert [(f.kind, f.step, f.recorded) for f in fired] == [("breach", "contact", True)]
    assert sla_events(county.app, ref) == [("SlaWarned", "contact", 1), ("SlaBreached", "contact", 1)]


def test_a_case_pushed_on_thursday_16_september_2021_breaches_feedback_on_wednesday_22nd(
    county: County, keeper: DeadlineKeeper
) -> None:
    county.clock.set(datetime(2021, 9, 16, 10, 0, tzinfo=SHANGHAI))
    ref = county.open_case()
    county.clock.advance(hours=1)
    county.app.contact_citizen(c.ContactCitizen(ref=ref, note="已联系"), county.station_head)
    # Fri 17th and the make-up Saturday 18th are working days; 19th-21st are the Mid-Autumn days off.
    before = keeper.fire_due(datetime(2021, 9, 22, 9, 59, tzinfo=SHANGHAI))
    assert [(f.kind, f.step) for f in before] == [("warning", "feedback")]
    # 80 % of 72 working hours = 57.6 h: Thu 14 h + Fri 24 h + Sat 19.6 h = Sat 18th 19:36.
    assert before[0].due_at == datetime(2021, 9, 18, 19, 36, tzinfo=SHANGHAI)
    county.clock.set(datetime(2021, 9, 22, 10, 0, tzinfo=SHANGHAI))
    fired = keeper.fire_due()
    assert [(f.kind, f.step, f.due_at) for f in fired] == [
        ("breach", "feedback", datetime(2021, 9, 22, 10, 0, tzinfo=SHANGHAI))
    ]
    case = county.app.get_case(ref)
    assert case.flagged, "a feedback breach flags the case"
    assert case.flag_reason is not None


def test_a_step_done_before_its_deadline_fires_nothing(county: County, keeper: DeadlineKeeper) -> None:
    ref = county.open_case()
    county.clock.advance(hours=2)
    county.app.contact_citizen(c.ContactCitizen(ref=ref, note="已联系"), county.station_head)
    county.clock.advance(hours=3)
    county.app.report_result(c.ReportResult(ref=ref, result="已处理"), county.station_head)
    county.clock.advance(hours=1)
    county.app.record_callback(c.RecordCallback(ref=ref, satisfied=True, note="满意"), SUPERVISOR)
    assert keeper.fire_due(county.clock.now() + timedelta(days=30)) == []
    assert sla_events(county.app, ref) == []


def test_a_flagged_case_runs_on_halved_limits(county: County, keeper: DeadlineKeeper) -> None:
    county.clock.set(datetime(2021, 11, 1, 9, 0, tzinfo=SHANGHAI))  # a Monday
    ref = county.open_case()
    county.clock.advance(minutes=30)
    county.app.flag_case(c.FlagCase(ref=ref, reason="重点督办"), SUPERVISOR)
    county.clock.advance(minutes=30)
    county.app.contact_citizen(c.ContactCitizen(ref=ref, note="已联系"), county.station_head)
    county.app.report_result(c.ReportResult(ref=ref, result="已处理"), county.station_head)
    # The callback starts after the flag: 1 working day instead of 2, due Tue 10:00, warned at 80 %
    # of 24 working hours = 19.2 h after Mon 10:00 = Tue 05:12.
    early = keeper.fire_due(datetime(2021, 11, 2, 9, 59, tzinfo=SHANGHAI))
    assert [(f.kind, f.step, f.due_at) for f in early] == [
        ("warning", "callback", datetime(2021, 11, 2, 5, 12, tzinfo=SHANGHAI))
    ]
    fired = keeper.fire_due(datetime(2021, 11, 2, 10, 0, tzinfo=SHANGHAI))
    assert [(f.kind, f.step) for f in fired] == [("breach", "callback")]
    assert sla_events(county.app, ref) == [("SlaWarned", "callback", 1), ("SlaBreached", "callback", 1)]


def test_a_restart_with_deadlines_pending_fires_each_once(tmp_path: Path, clock: FakeClock) -> None:
    database = str(tmp_path / "events.sqlite3")
    first = make_app(database, clock)
    county = County(first, clock).setup()
    ref = county.open_case()
    keeper_for(first, clock).fire_due(clock.now() + timedelta(hours=20))
    first.close()
    # Stopped for two days: the breach that passed meanwhile fires at once on restart, once.
    clock.advance(days=2)
    second = make_app(database, clock)
    fired = keeper_for(second, clock).fire_due()
    assert [(f.kind, f.step, f.recorded) for f in fired] == [("breach", "contact", True)]
    assert keeper_for(second, clock).fire_due() == []
    assert sla_events(second, ref) == [("SlaWarned", "contact", 1), ("SlaBreached", "contact", 1)]
    second.close()


@pytest.fixture
def two_apps_on_postgres(postgres_database: str, clock: FakeClock) -> Iterator[tuple[PingjingApp, PingjingApp]]:
    first, second = make_app(postgres_database, clock), make_app(postgres_database, clock)
    yield first, second
    first.close()
    second.close()


@pytest.mark.postgres
def test_two_keepers_on_one_postgresql_database_record_one_breach(
    two_apps_on_postgres: tuple[PingjingApp, PingjingApp], clock: FakeClock
) -> None:
    first, second = two_apps_on_postgres
    ref = County(first, clock).setup().open_case()
    keepers = [keeper_for(first, clock), keeper_for(second, clock)]
    for k in keepers:
        k.refresh()
    at = clock.now() + timedelta(hours=25)
    barrier = threading.Barrier(2)
    results: list[list[object]] = [[], []]

    def fire(i: int) -> None:
        barrier.wait()
        results[i] = list(keepers[i].fire_due(at))

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sla_events(first, ref) == [("SlaBreached", "contact", 1)]
    recorded = [f for r in results for f in r if getattr(f, "recorded", False)]
    assert len(recorded) == 1
