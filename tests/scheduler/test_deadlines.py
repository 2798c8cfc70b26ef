"""The SLA clock under a controllable clock: nothing here sleeps for real hours."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain import commands as c
from domain.application import Context, Outcome, PingjingApp
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from scheduler.deadlines import DeadlineKeeper, Fired
from tests.conftest import SUPERVISOR, County, make_app
from tests.fakes import FakeClock

SHANGHAI = ZoneInfo("Asia/Shanghai")


def keeper_for(app: PingjingApp, clock: FakeClock) -> DeadlineKeeper:
    """A keeper on the app's own store, with views beside the events."""
    views = ViewStore.beside(app)
    return DeadlineKeeper(app, views, Runner(app, views, ALL), clock)


class FrozenRunner(Runner):
    """A runner that stops following the log once frozen: its keeper reads a stale ledger, as a
    keeper in another process does between reading the ledger and writing."""

    frozen_at: int | None = None

    def freeze(self) -> None:
        """Catch up now, and never past this point again."""
        self.catch_up()
        self.frozen_at = self.head()

    def catch_up(self, **kwargs: Any) -> int:
        """Catch up, but not past the freeze."""
        if self.frozen_at is not None:
            kwargs["until_position"] = self.frozen_at
        return super().catch_up(**kwargs)


def stale_keeper(app: PingjingApp, clock: FakeClock) -> tuple[DeadlineKeeper, FrozenRunner]:
    """A keeper with its own views, whose ledger stays where it was when its runner froze."""
    views = ViewStore.in_memory()
    runner = FrozenRunner(app, views, ALL)
    return DeadlineKeeper(app, views, runner, clock), runner


def count_batches(app: PingjingApp, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every ``execute_batch`` call on ``app`` from now on."""
    sizes: list[int] = []
    execute_batch = app.execute_batch

    def spy(items: Sequence[tuple[c.Command, Context]], **kwargs: Any) -> list[Outcome]:
        sizes.append(len(items))
        return execute_batch(items, **kwargs)

    monkeypatch.setattr(app, "execute_batch", spy)
    return sizes


def open_cases(county: County, n: int) -> list[str]:
    """``n`` cases of PS1, opened a minute apart."""
    refs = []
    for _ in range(n):
        refs.append(county.open_case())
        county.clock.advance(minutes=1)
    return refs


def summary(fired: list[Fired]) -> list[tuple[str, str, str, bool]]:
    """(kind, case, step, recorded) of each fired moment."""
    return [(f.kind, f.ref, f.step, f.recorded) for f in fired]


def fire_together(keepers: list[DeadlineKeeper], at: datetime) -> list[list[Fired]]:
    """Each keeper fires what is due by ``at``, all at the same moment, each in its own thread."""
    barrier = threading.Barrier(len(keepers))
    results: list[list[Fired]] = [[] for _ in keepers]

    def fire(i: int) -> None:
        barrier.wait()
        results[i] = keepers[i].fire_due(at)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(len(keepers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


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
    results = fire_together(keepers, clock.now() + timedelta(hours=25))
    assert sla_events(first, ref) == [("SlaBreached", "contact", 1)]
    assert len([f for r in results for f in r if f.recorded]) == 1


def test_everything_due_is_recorded_in_one_transaction(
    county: County, keeper: DeadlineKeeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = open_cases(county, 4)
    batches = count_batches(county.app, monkeypatch)
    fired = keeper.fire_due(county.clock.now() + timedelta(hours=20))
    assert summary(fired) == [("warning", ref, "contact", True) for ref in refs], "earliest first"
    assert batches == [4]
    fired = keeper.fire_due(county.clock.now() + timedelta(hours=25))
    assert summary(fired) == [("breach", ref, "contact", True) for ref in refs]
    assert batches == [4, 4]
    assert keeper.fire_due(county.clock.now() + timedelta(hours=25)) == []
    assert batches == [4, 4], "nothing due: no transaction"
    for ref in refs:
        assert sla_events(county.app, ref) == [("SlaWarned", "contact", 1), ("SlaBreached", "contact", 1)]


def test_a_long_backlog_is_recorded_in_chunks(county: County, monkeypatch: pytest.MonkeyPatch) -> None:
    views = ViewStore.beside(county.app)
    keeper = DeadlineKeeper(county.app, views, Runner(county.app, views, ALL), county.clock, batch=2)
    refs = open_cases(county, 5)
    batches = count_batches(county.app, monkeypatch)
    fired = keeper.fire_due(county.clock.now() + timedelta(hours=25))
    assert summary(fired) == [("breach", ref, "contact", True) for ref in refs]
    assert batches == [2, 2, 1]


def test_the_same_due_moments_fired_twice_are_recorded_once(county: County, keeper: DeadlineKeeper) -> None:
    refs = open_cases(county, 3)
    stale, runner = stale_keeper(county.app, county.clock)
    runner.freeze()  # reads the ledger as it stands: three warnings, then three breaches to come
    warn_at, breach_at = county.clock.now() + timedelta(hours=20), county.clock.now() + timedelta(hours=25)
    assert [f.recorded for f in keeper.fire_due(warn_at)] == [True] * 3
    second = stale.fire_due(warn_at)
    assert summary(second) == [("warning", ref, "contact", False) for ref in refs]
    assert all("already warned" in f.reason for f in second)
    assert [f.recorded for f in keeper.fire_due(breach_at)] == [True] * 3
    second = stale.fire_due(breach_at)
    assert summary(second) == [("breach", ref, "contact", False) for ref in refs]
    assert all("already breached" in f.reason for f in second)
    for ref in refs:
        assert sla_events(county.app, ref) == [("SlaWarned", "contact", 1), ("SlaBreached", "contact", 1)]


def test_a_refused_moment_does_not_sink_the_others_in_its_batch(
    county: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, done, last = open_cases(county, 3)
    stale, runner = stale_keeper(county.app, county.clock)
    runner.freeze()  # still believes the middle case waits for its contact
    county.app.contact_citizen(c.ContactCitizen(ref=done, note="已联系"), county.station_head)
    batches = count_batches(county.app, monkeypatch)
    fired = stale.fire_due(county.clock.now() + timedelta(hours=20))
    assert batches == [3]
    assert summary(fired) == [
        ("warning", first, "contact", True),
        ("warning", done, "contact", False),
        ("warning", last, "contact", True),
    ]
    assert "step contact is not running" in fired[1].reason
    assert sla_events(county.app, first) == sla_events(county.app, last) == [("SlaWarned", "contact", 1)]
    assert sla_events(county.app, done) == []


def test_a_keeper_needs_a_positive_batch(county: County) -> None:
    views = ViewStore.beside(county.app)
    with pytest.raises(ValueError, match="batch"):
        DeadlineKeeper(county.app, views, Runner(county.app, views, ALL), county.clock, batch=0)


@pytest.mark.postgres
def test_two_keepers_firing_the_same_batches_at_once_record_each_moment_once(
    two_apps_on_postgres: tuple[PingjingApp, PingjingApp], clock: FakeClock
) -> None:
    first, second = two_apps_on_postgres
    county = County(first, clock).setup()
    refs = open_cases(county, 3)
    keepers = [keeper_for(first, clock), keeper_for(second, clock)]
    for at in (clock.now() + timedelta(hours=20), clock.now() + timedelta(hours=25)):
        for k in keepers:
            k.refresh()
        results = fire_together(keepers, at)
        recorded = sorted(f.ref for r in results for f in r if f.recorded)
        assert recorded == sorted(refs), "each case's moment recorded by exactly one keeper"
    for ref in refs:
        assert sla_events(first, ref) == [("SlaWarned", "contact", 1), ("SlaBreached", "contact", 1)]
