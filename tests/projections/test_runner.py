"""The runner on SQLite and PostgreSQL: catching up, exactly once across crashes, following live.

Views live beside the events (``ViewStore.beside``), as in production. Every check ends
by comparing the tables with a rebuild from scratch in a private memory database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from domain import commands as c
from domain.application import PingjingApp
from domain.case import Case
from domain.workflow import CaseState
from projections import ALL
from projections.activity import ActivityProjection
from projections.analyst import rebuild_in_memory
from projections.base import Projection
from projections.cases import CasesProjection
from projections.runner import Runner
from projections.store import ViewStore
from tests.conftest import ADMIN, SUPERVISOR, SYSTEM, County, make_app
from tests.fakes import FakeClock
from tests.viewdump import dump


def positions(runner: Runner) -> dict[str, int]:
    """Each projection's stored position."""
    return {s.name: s.position for s in runner.status()}


@pytest.fixture
def database(durable_database: str) -> str:
    """The durable stores only: beside a memory store the views are a private memory database."""
    return durable_database


@pytest.fixture
def history(county: County) -> County:
    """A county with some weeks of life: encounters, ratings, cases along every path."""
    tell_a_story(county)
    return county


def tell_a_story(county: County) -> None:
    """Encounters with and without codes, ratings of each verdict, and cases that go every way."""
    app, clock, head = county.app, county.clock, county.station_head
    for i in range(4):
        app.log_encounter(
            c.LogEncounter(kind="dispatch", happened_at=clock.now(), badge="100102", code=f"CODE{i:04d}"), SYSTEM
        )
        clock.advance(minutes=30)
    app.log_encounter(c.LogEncounter(kind="reception", happened_at=clock.now(), unit_code="PS2"), SYSTEM)
    county.rate("satisfied", encounter_code="CODE0000")
    county.rate("basically_satisfied", phone=None)
    county.rate("satisfied", target="unit", key="PS2", phone=None)
    refs = [county.open_case() for _ in range(4)]
    refs.append(county.open_case(phone=None))
    for ref in refs:
        clock.advance(hours=3)
        app.execute(c.ContactCitizen(ref=ref, note="所长电话联系"), head)
        clock.advance(hours=30)
        app.execute(c.ReportResult(ref=ref, result="已处理"), head)
    first, second, third = refs[:3]
    app.execute(c.RecordCallback(ref=first, satisfied=False, note="不满意"), SUPERVISOR)
    app.execute(c.OrderRectification(ref=first, instructions="限期整改"), SUPERVISOR)
    clock.advance(days=2)
    app.execute(c.ReportRectified(ref=first, note="已整改"), head)
    app.execute(c.VerifyRectification(ref=first, implemented=True, note="落实"), SUPERVISOR)
    app.execute(c.CloseCase(ref=first, resolution="整改到位", citizen_accepted=True), SUPERVISOR)
    app.execute(c.ReopenCase(ref=first, reason="群众再次反映"), SUPERVISOR)
    app.execute(c.RecordCallbackAttempt(ref=second, note="无人接听"), SUPERVISOR)
    app.execute(c.RecordCallback(ref=second, satisfied=True, note="满意"), SUPERVISOR)
    app.execute(c.CloseCase(ref=second, resolution="解决", citizen_accepted=False), SUPERVISOR)
    app.execute(c.RecordCommendation(ref=second, kind="praise", note="点赞"), SUPERVISOR)
    app.execute(c.FlagCase(ref=third, reason="挂牌督办"), SUPERVISOR)
    app.execute(c.RecordSlaWarning(ref=third, step="callback", round=1), SYSTEM)
    clock.advance(days=10)
    app.execute(c.RecordSlaBreach(ref=third, step="callback", round=1), SYSTEM)
    app.execute(c.RecordAccountability(ref=third, badge="100102", measure="reminder_talk", note="提醒"), SUPERVISOR)
    app.transfer_officer(c.TransferOfficer(badge="100102", unit_code="PS2"), ADMIN)
    county.open_case()


def more_life(county: County) -> None:
    """A few more events after the story: an encounter, a rating, a case moving on."""
    county.clock.advance(hours=1)
    county.app.log_encounter(c.LogEncounter(kind="service", happened_at=county.clock.now(), badge="F10103"), SYSTEM)
    ref = county.rate("dissatisfied", key="F10103")
    assert ref is not None
    county.clock.advance(hours=2)
    county.app.execute(c.ContactCitizen(ref=ref, note="联系"), county.station_head)


# -- catching up --------------------------------------------------------------------------------


def test_catch_up_applies_the_whole_log_and_a_second_catch_up_applies_nothing(history: County) -> None:
    app = history.app
    runner = Runner(app, ViewStore.beside(app), ALL, page=7)
    head = runner.head()

    assert head > 50
    assert 0 < runner.catch_up() <= head
    assert [(s.name, s.position, s.head, s.lag) for s in runner.status()] == [
        ("cases", head, head, 0),
        ("activity", head, head, 0),
    ]
    assert runner.catch_up() == 0
    assert dump(runner.views) == dump(rebuild_in_memory(app))


def test_closed_cases_let_go_of_are_restored_from_their_rows_when_they_hear_more(
    history: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A follower keeps its open cases in memory, not every case ever closed: with no room at all, every
    closed case is let go of after each page; a case reopened or commended after closing is restored from
    its rows, and the views end as a rebuild's."""
    monkeypatch.setattr(CasesProjection, "keep_cases", 0)
    monkeypatch.setattr(CasesProjection, "keep_closed_for", timedelta(0))
    restored: list[UUID] = []
    restore = CasesProjection._restore

    def restoring(self: CasesProjection, case_id: UUID) -> Any:
        restored.append(case_id)
        return restore(self, case_id)

    monkeypatch.setattr(CasesProjection, "_restore", restoring)
    app = history.app
    runner = Runner(app, ViewStore.beside(app), ALL, page=7)

    runner.catch_up()

    assert restored, "the story's cases reopened or commended after closing were let go of, then restored"
    cases = next(p for p in runner.projections if isinstance(p, CasesProjection))
    assert all(view.case.state is not CaseState.CLOSED for view in cases.cases.values())
    ((still_open,),) = runner.views.query("SELECT COUNT(*) FROM pj_board WHERE state <> ?", ("closed",))
    assert len(cases.cases) == still_open > 0, "the open cases stay"
    assert dump(runner.views) == dump(rebuild_in_memory(app))


def test_cases_closed_within_the_year_before_the_latest_event_stay_in_memory(
    history: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CasesProjection, "keep_cases", 0)
    app = history.app
    runner = Runner(app, ViewStore.beside(app), ALL, page=7)

    runner.catch_up()

    cases = next(p for p in runner.projections if isinstance(p, CasesProjection))
    ((on_board,),) = runner.views.query("SELECT COUNT(*) FROM pj_board")
    assert len(cases.cases) == on_board, "the story's cases closed days ago, not a year: all kept"
    assert any(view.case.state is CaseState.CLOSED for view in cases.cases.values())


def test_status_shows_the_lag_of_events_written_after_the_last_catch_up(history: County) -> None:
    app = history.app
    runner = Runner(app, ViewStore.beside(app), ALL)
    runner.catch_up()
    caught = runner.head()

    more_life(history)

    new = runner.head() - caught
    assert new > 0
    assert [(s.position, s.lag) for s in runner.status()] == [(caught, new), (caught, new)]
    assert 0 < runner.catch_up() <= new
    assert [s.lag for s in runner.status()] == [0, 0]


# -- exactly once ---------------------------------------------------------------------------------


class SimulatedCrashError(Exception):
    """The simulated end of a process."""


def crash_on_page(monkeypatch: pytest.MonkeyPatch, target: object, name: str, page: int) -> list[int]:
    """Make ``target.name`` raise :class:`SimulatedCrashError` on its ``page``-th call, after doing its work."""
    original: Callable[..., None] = getattr(target, name)
    calls = [0]

    def crashing(*args: Any) -> None:
        calls[0] += 1
        original(*args)
        if calls[0] == page:
            raise SimulatedCrashError

    monkeypatch.setattr(target, name, crashing)
    return calls


@pytest.mark.parametrize("page_of_crash", [1, 2, 5, 8])
@pytest.mark.parametrize("victim", [CasesProjection, ActivityProjection])
def test_a_projection_killed_while_writing_a_page_resumes_without_counting_anything_twice(
    history: County,
    database: str,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    victim: type[Projection],
    page_of_crash: int,
) -> None:
    app = history.app
    expected = dump(rebuild_in_memory(app))
    runner = Runner(app, ViewStore.beside(app), ALL, page=7)
    projection = next(p for p in runner.projections if isinstance(p, victim))
    crash_on_page(monkeypatch, projection, "flush", page_of_crash)
    done: list[int] = []

    with pytest.raises(SimulatedCrashError):
        runner.catch_up(progress=lambda position, _head: done.append(position))

    assert len(done) == page_of_crash - 1
    stopped_at = done[-1] if done else 0
    assert positions(runner) == {"cases": stopped_at, "activity": stopped_at}, "the page's positions were kept"
    restarted = make_app(database, clock)
    try:
        fresh = Runner(restarted, ViewStore.beside(restarted), ALL, page=7)
        assert 0 < fresh.catch_up() <= fresh.head() - stopped_at
        assert dump(fresh.views) == expected
    finally:
        restarted.close()


@pytest.mark.parametrize("page_of_crash", [1, 3, 7])
def test_a_crash_after_one_projection_recorded_its_position_rolls_back_both(
    history: County, monkeypatch: pytest.MonkeyPatch, page_of_crash: int
) -> None:
    app = history.app
    expected = dump(rebuild_in_memory(app))
    runner = Runner(app, ViewStore.beside(app), ALL, page=7)
    # Two projections record per page: the crash comes when the second one records.
    crash_on_page(monkeypatch, runner.views, "record_position", 2 * page_of_crash)
    done: list[int] = []

    with pytest.raises(SimulatedCrashError):
        runner.catch_up(progress=lambda position, _head: done.append(position))

    assert len(done) == page_of_crash - 1
    stopped_at = done[-1] if done else 0
    assert positions(runner) == {"cases": stopped_at, "activity": stopped_at}
    monkeypatch.undo()
    fresh = Runner(app, ViewStore.beside(app), ALL, page=7)
    fresh.catch_up()
    assert dump(fresh.views) == expected


def test_the_same_runner_retried_after_a_crash_ends_like_a_rebuild(
    history: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = history.app
    runner = Runner(app, ViewStore.beside(app), ALL, page=7)
    calls = crash_on_page(monkeypatch, runner.projections[0], "flush", 4)

    with pytest.raises(SimulatedCrashError):
        runner.catch_up()
    runner.catch_up()

    assert calls[0] > 4
    assert dump(runner.views) == dump(rebuild_in_memory(app))


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.71, 0.97])
def test_a_runner_restarted_part_way_through_the_log_ends_like_a_rebuild(history: County, fraction: float) -> None:
    app = history.app
    views = ViewStore.beside(app)
    first = Runner(app, views, ALL, page=7)
    stop = int(first.head() * fraction)

    assert 0 < first.catch_up(until_position=stop) <= stop
    assert positions(first) == {"cases": stop, "activity": stop}
    assert dump(views) == dump(rebuild_in_memory(app, until_position=stop))
    Runner(app, views, ALL, page=7).catch_up()
    assert dump(views) == dump(rebuild_in_memory(app))




@pytest.mark.parametrize(
    "database",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_a_restarted_runner_links_ratings_to_the_same_of_several_simultaneous_encounters_as_a_rebuild(
    county: County,
) -> None:
    app, clock = county.app, county.clock
    at = clock.now()
    # A dispatch system's minute clock: several encounters at each moment, logged out of time order,
    # half of them before the officer moved to the other station (so the unit's scan rate depends on the link).
    for i in range(40):
        if i == 20:
            app.transfer_officer(c.TransferOfficer(badge="100102", unit_code="PS2"), ADMIN)
        when = at - timedelta(minutes=(i * 7) % 3)
        app.log_encounter(
            c.LogEncounter(kind="dispatch", happened_at=when, badge="100102", external_ref=f"JJ-{i}"), SYSTEM
        )
    clock.advance(minutes=5)
    views = ViewStore.beside(app)
    Runner(app, views, ALL).catch_up()

    for _ in range(5):
        county.rate("satisfied")
        Runner(app, views, ALL).catch_up()  # restarted before each rating

    rated = views.query("SELECT COUNT(*) FROM pj_encounters WHERE rated = 1")
    assert int(rated[0][0]) == 5
    assert dump(views) == dump(rebuild_in_memory(app))


# -- two runners on the same views (``projections run`` and a CLI command catching up) -------------



def test_a_runner_overtaken_by_another_while_folding_a_page_applies_each_event_once(history: County) -> None:
    app = history.app
    views = ViewStore.beside(app)
    other = Runner(app, ViewStore.beside(app), ALL, page=7)
    runner = Runner(app, views, ALL, page=50)
    first_case_event = next(p for p, event in app.iter_events() if isinstance(event, Case.Event))
    fold = runner.projections[1].apply
    overtaken: list[int] = []

    def fold_while_the_other_runner_stores_a_page(position: int, event: Any) -> None:
        if not overtaken:
            overtaken.append(other.catch_up(until_position=first_case_event - 1))
        fold(position, event)

    runner.projections[1].apply = fold_while_the_other_runner_stores_a_page  # type: ignore[method-assign]

    runner.catch_up()
    other.catch_up()

    assert overtaken[0] > 0
    assert dump(views) == dump(rebuild_in_memory(app))


def test_a_runner_overtaken_by_another_while_folding_a_case_event_catches_up_without_error(
    county: County,
) -> None:
    app = county.app
    ref = county.open_case()
    views = ViewStore.beside(app)
    Runner(app, views, ALL).catch_up()
    app.execute(c.FlagCase(ref=ref, reason="挂牌督办"), SUPERVISOR)
    app.execute(c.RecordSupervision(ref=ref, target="citizen", note="督办"), SUPERVISOR)
    other = Runner(app, ViewStore.beside(app), ALL)
    runner = Runner(app, views, ALL)
    fold = runner.projections[0].apply
    overtaken: list[int] = []

    def fold_after_the_other_runner_caught_up(position: int, event: Any) -> None:
        if not overtaken:
            overtaken.append(other.catch_up())
        fold(position, event)

    runner.projections[0].apply = fold_after_the_other_runner_caught_up  # type: ignore[method-assign]

    runner.catch_up()

    assert overtaken[0] > 0
    assert [s.lag for s in runner.status()] == [0, 0]
    assert dump(views) == dump(rebuild_in_memory(app))


# -- following live -----------------------------------------------------------------------------


class Following:
    """A runner following the log in a thread of its own, as ``projections run`` does."""

    def __init__(self, runner: Runner, poll: float) -> None:
        self.runner = runner
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(poll,), daemon=True)

    def _run(self, poll: float) -> None:
        try:
            self.runner.run_forever(self.stop, poll=poll)
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            self.errors.append(error)

    def wait_until_caught_up(self, timeout: float) -> float:
        """Seconds until the runner's lag is 0; fails after ``timeout``."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            assert not self.errors, f"the runner died: {self.errors[0]!r}"
            if all(s.lag == 0 for s in self.runner.status()):
                return time.monotonic() - started
            time.sleep(0.01)
        pytest.fail(f"still lagging after {timeout} s: {self.runner.status()}")


@pytest.fixture
def following(history: County, database: str) -> Iterator[Following]:
    """A live runner over the story; PostgreSQL with a long poll (NOTIFY must wake it), SQLite a short one."""
    poll = 5.0 if database.startswith("postgresql") else 0.1
    live = Following(Runner(history.app, ViewStore.beside(history.app), ALL, page=7), poll)
    live.thread.start()
    try:
        yield live
    finally:
        live.stop.set()
        live.thread.join(timeout=10)
    assert not live.thread.is_alive(), "run_forever did not stop when asked"
    assert not live.errors, f"the runner died: {live.errors[0]!r}"


def test_a_live_runner_follows_new_commands_and_its_tables_equal_a_rebuild(
    history: County, following: Following
) -> None:
    following.wait_until_caught_up(timeout=10)

    for _ in range(3):
        more_life(history)
        following.wait_until_caught_up(timeout=3)

    assert [s.position for s in following.runner.status()] == [history.app.recorder.max_notification_id()] * 2
    assert dump(following.runner.views) == dump(rebuild_in_memory(history.app))


@pytest.mark.postgres
def test_on_postgresql_a_live_runner_is_woken_by_notify_well_before_its_poll_interval(
    postgres_database: str, clock: FakeClock
) -> None:
    app = make_app(postgres_database, clock)
    county = County(app, clock).setup()
    live = Following(Runner(app, ViewStore.beside(app), ALL), poll=5.0)
    live.thread.start()
    try:
        live.wait_until_caught_up(timeout=10)
        delays = []
        for _ in range(3):
            time.sleep(0.3)  # not a deadline: lets the runner reach its wait, so only a NOTIFY can wake it
            county.rate("satisfied")
            delays.append(live.wait_until_caught_up(timeout=4.5))
    finally:
        live.stop.set()
        live.thread.join(timeout=10)
        app.close()
    assert max(delays) < 2.0, f"picked up after {delays} s with a 5 s poll: no NOTIFY?"


# -- one projection at a time --------------------------------------------------------------------


def test_a_runner_of_only_the_cases_projection_leaves_the_activity_projection_where_it_was(history: County) -> None:
    app = history.app
    views = ViewStore.beside(app)
    Runner(app, views, ALL).catch_up()
    before = app.recorder.max_notification_id()
    activity_rows = {t: dump(views)[t] for t in ActivityProjection.tables}

    more_life(history)
    only_cases = Runner(app, views, [CasesProjection])
    only_cases.catch_up()

    head = app.recorder.max_notification_id()
    assert positions(Runner(app, views, ALL)) == {"cases": head, "activity": before}
    assert {t: dump(views)[t] for t in ActivityProjection.tables} == activity_rows
    rebuilt = dump(rebuild_in_memory(app))
    assert {t: dump(views)[t] for t in CasesProjection.tables} == {t: rebuilt[t] for t in CasesProjection.tables}


def test_reset_drops_and_rebuilds_only_its_own_projections_tables(history: County) -> None:
    app = history.app
    views = ViewStore.beside(app)
    Runner(app, views, ALL).catch_up()
    head = app.recorder.max_notification_id()
    everything = dump(views)
    only_cases = Runner(app, views, [CasesProjection])

    only_cases.reset()

    after_reset = dump(views)
    assert all(after_reset[t] == [] for t in CasesProjection.tables)
    assert all(after_reset[t] == everything[t] != [] for t in ActivityProjection.tables)
    assert positions(Runner(app, views, ALL)) == {"cases": 0, "activity": head}
    assert 0 < only_cases.catch_up() <= head
    assert dump(views) == everything


def test_reset_of_a_projection_whose_tables_were_dropped_by_hand_recreates_them(history: County) -> None:
    app = history.app
    views = ViewStore.beside(app)
    runner = Runner(app, views, ALL)
    runner.catch_up()
    everything = dump(views)

    with views.transaction(commit=True) as cur:
        cur.execute("DROP TABLE pj_timeline")
    runner.reset()
    runner.catch_up()

    assert dump(views) == everything


def test_views_written_through_one_application_are_read_the_same_through_another(
    history: County, database: str, clock: FakeClock
) -> None:
    app = history.app
    Runner(app, ViewStore.beside(app), ALL).catch_up()
    other: PingjingApp = make_app(database, clock)
    try:
        runner = Runner(other, ViewStore.beside(other), ALL)
        assert [s.lag for s in runner.status()] == [0, 0]
        assert dump(runner.views) == dump(rebuild_in_memory(app))
    finally:
        other.close()
