"""Properties of the projections over random histories of the tiny county (SQLite file store).

A history is a random sequence of commands, legal or not (an illegal one raises and writes
nothing), with random moments at which a live runner catches up. Whatever the history and
whenever the runner caught up, restarted or crashed, its tables must equal a rebuild from
scratch, and a rebuild up to a position must equal what the live views showed there.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from domain import commands as c
from domain.application import PingjingApp
from domain.errors import PingjingError
from domain.ids import unit_id
from projections import ALL
from projections.analyst import rebuild_in_memory
from projections.base import Projection
from projections.runner import Runner
from projections.store import ViewStore
from tests.conftest import ADMIN, CITIZEN, START, SUPERVISOR, SYSTEM, County, make_app
from tests.fakes import FakeClock
from tests.viewdump import Tables, dump

Step = tuple[Any, ...]

EXAMPLES = settings(max_examples=25)



# -- histories ----------------------------------------------------------------------------------

MOVES = (
    "contact",
    "report",
    "callback",
    "attempt",
    "supervise",
    "flag",
    "order",
    "rectified",
    "verify",
    "close",
    "reopen",
    "accountability",
    "commendation",
    "warn",
    "breach",
)

advances = st.tuples(st.just("advance"), st.sampled_from([1, 20, 180, 26 * 60, 4 * 24 * 60, 9 * 24 * 60]))
encounters = st.tuples(
    st.just("encounter"),
    st.sampled_from(["100102", "F10103", "100101", "unit:PS1", "unit:PS2"]),
    st.booleans(),  # with a one-time code
    st.sampled_from([0, 10, 120, 80 * 60]),  # minutes before now
)
ratings = st.tuples(
    st.just("rate"),
    st.sampled_from(["satisfied", "basically_satisfied", "dissatisfied", "dissatisfied"]),
    st.sampled_from([("officer", "100102"), ("officer", "F10103"), ("unit", "PS2")]),
    st.booleans(),  # with a phone
    st.sampled_from(["none", "none", "own", "own", "any", "unknown"]),  # which encounter code
    st.sampled_from(["", "complaint", "suggestion"]),
)
#: The move that takes a case onwards from each state, by the move's yes/no argument.
ONWARDS: dict[str, tuple[str, str]] = {
    "open": ("contact", "contact"),
    "pushed": ("contact", "contact"),
    "contacted": ("report", "report"),
    "reported": ("callback", "close"),
    "called_back": ("close", "order"),
    "rectifying": ("rectified", "warn"),
    "rectified": ("verify", "verify"),
    "verified": ("close", "accountability"),
    "closed": ("reopen", "commendation"),
}
sometimes = st.sampled_from([False, False, False, False, True])
moves = st.tuples(
    st.just("move"),
    st.sampled_from([*MOVES, *["onwards"] * len(MOVES)]),  # half any move, half one that fits the state
    st.sampled_from([0, 0, 0, 1, 1, 2, 5]),  # which case (mostly the first two)
    st.booleans(),  # the move's yes/no argument
    sometimes,  # made by someone who may not make it
)
transfers = st.just(("transfer",))
catch_ups = st.tuples(
    st.just("catch_up"),
    st.integers(1, 50),  # page size
    st.booleans(),  # a new runner, as after a restart
    st.integers(0, 6),  # how far behind the head it stops
)
#: Each kind of step with its weight (``one_of`` would give each kind the same share).
steps = st.sampled_from(
    [advances] * 3 + [encounters] * 2 + [ratings] * 3 + [moves] * 9 + [transfers] + [catch_ups] * 3
).flatmap(lambda kind: kind)
histories = st.lists(steps, min_size=8, max_size=50)


@dataclass
class World:
    """The tiny county on a fresh SQLite file, with what the history has made so far."""

    county: County
    refs: list[str] = field(default_factory=list)
    codes: list[tuple[str, str]] = field(default_factory=list)  # (code, whose encounter)
    written: int = 0
    refused: int = 0

    @property
    def app(self) -> PingjingApp:
        """The application."""
        return self.county.app

    def perform(self, step: Step) -> None:
        """Run one non-runner step; a refused command writes nothing."""
        before = self.app.recorder.max_notification_id()
        try:
            _STEPS[step[0]](self, *step[1:])
        except PingjingError:
            self.refused += 1
            assert self.app.recorder.max_notification_id() == before, f"{step} was refused but wrote events"
        else:
            self.written += 1


#: How every history starts: something for each projection to read and cases to move.
PRELUDE: list[Step] = [
    ("encounter", "100102", True, 10),
    ("rate", "dissatisfied", ("officer", "100102"), True, "own", ""),
    ("rate", "dissatisfied", ("unit", "PS2"), False, "none", ""),
]


@contextmanager
def tiny_county() -> Iterator[World]:
    """A fresh world per example: function-scoped fixtures are not reset between examples."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(START)
        app = make_app(str(Path(tmp) / "events.sqlite3"), clock)
        try:
            world = World(County(app, clock).setup())
            for step in PRELUDE:
                world.perform(step)
            yield world
        finally:
            app.close()


def _advance(w: World, minutes: int) -> None:
    w.county.clock.advance(minutes=minutes)


def _encounter(w: World, who: str, with_code: bool, minutes_ago: int) -> None:
    clock = w.county.clock
    code = f"C{len(w.codes) + 1:05d}" if with_code else None
    where = {"unit_code": who.removeprefix("unit:")} if who.startswith("unit:") else {"badge": who}
    happened = clock.now() - timedelta(minutes=minutes_ago)
    w.app.log_encounter(c.LogEncounter(kind="dispatch", happened_at=happened, code=code, **where), SYSTEM)
    if code:
        w.codes.append((code, who))


def _rate(w: World, verdict: str, target: tuple[str, str], phone: bool, code: str, text: str) -> None:
    subject = target[1] if target[0] == "officer" else f"unit:{target[1]}"
    codes = {
        "none": [],
        "own": [code for code, who in w.codes if who == subject],
        "any": [code for code, _ in w.codes],
        "unknown": ["ZZZZ9999"],
    }[code]
    extra: dict[str, object] = {"target": target[0], "key": target[1]}
    if codes:
        extra["encounter_code"] = codes[-1]
    if text:
        extra[text] = "群众反映的问题"
    ref = w.county.rate(verdict, phone="13800138000" if phone else None, **extra)
    if ref is not None:
        w.refs.append(ref)


def _move(w: World, move: str, which: int, yes: bool, wrong_actor: bool) -> None:
    if not w.refs:
        return
    ref = w.refs[which % len(w.refs)]
    case = w.app.get_case(ref)
    if move == "onwards":
        move = ONWARDS[case.state.value][not yes]
    ps1 = case.unit_id == unit_id("PS1")
    head = w.county.station_head if ps1 != wrong_actor else w.county.other_head
    office = CITIZEN if wrong_actor else SUPERVISOR
    system = CITIZEN if wrong_actor else SYSTEM
    later = w.county.clock.now() + timedelta(days=10)
    running = sorted(case.running)
    step = running[0] if running and yes else "verification"
    command, actor = {
        "contact": (lambda: c.ContactCitizen(ref=ref, note="电话联系"), head),
        "report": (lambda: c.ReportResult(ref=ref, result="已处理"), head),
        "callback": (lambda: c.RecordCallback(ref=ref, satisfied=yes, note="回访"), office),
        "attempt": (lambda: c.RecordCallbackAttempt(ref=ref, note="未接通"), office),
        "supervise": (lambda: c.RecordSupervision(ref=ref, target="citizen" if yes else "unit", note="督办"), office),
        "flag": (lambda: c.FlagCase(ref=ref, reason="挂牌督办"), office),
        "order": (lambda: c.OrderRectification(ref=ref, instructions="限期整改"), office),
        "rectified": (lambda: c.ReportRectified(ref=ref, note="已整改"), head),
        "verify": (
            lambda: c.VerifyRectification(ref=ref, implemented=yes, note="核查", new_due_at=None if yes else later),
            office,
        ),
        "close": (lambda: c.CloseCase(ref=ref, resolution="办结", citizen_accepted=yes), office),
        "reopen": (lambda: c.ReopenCase(ref=ref, reason="重新办理"), office),
        "accountability": (
            lambda: c.RecordAccountability(ref=ref, badge="100102", measure="reminder_talk", note="提醒"),
            office,
        ),
        "commendation": (
            lambda: c.RecordCommendation(
                ref=ref, kind="praise", note="点赞", **({"badge": "100102"} if yes else {"unit_code": "PS1"})
            ),
            office,
        ),
        "warn": (lambda: c.RecordSlaWarning(ref=ref, step=step, round=case.round), system),
        "breach": (lambda: c.RecordSlaBreach(ref=ref, step=step, round=case.round), system),
    }[move]
    w.app.execute(command(), actor)


def _transfer(w: World) -> None:
    now_in_ps1 = w.app.get_officer("100102").unit_id == unit_id("PS1")
    w.app.transfer_officer(c.TransferOfficer(badge="100102", unit_code="PS2" if now_in_ps1 else "PS1"), ADMIN)


_STEPS: dict[str, Callable[..., None]] = {
    "advance": _advance,
    "encounter": _encounter,
    "rate": _rate,
    "move": _move,
    "transfer": _transfer,
}


# -- properties ---------------------------------------------------------------------------------


@EXAMPLES
@given(history=histories)
def test_views_followed_live_whenever_the_runner_caught_up_equal_views_rebuilt_from_scratch(
    history: list[Step],
) -> None:
    with tiny_county() as world:
        views = ViewStore.beside(world.app)
        runner = Runner(world.app, views, ALL)
        for step in history:
            if step[0] != "catch_up":
                world.perform(step)
                continue
            _, page, restarted, _ = step
            if restarted:
                runner = Runner(world.app, ViewStore.beside(world.app), ALL, page=page)
            else:
                runner.page = page
            runner.catch_up()
        runner.catch_up()
        note(f"{world.written} commands written, {world.refused} refused, {len(world.refs)} cases")

        assert [s.lag for s in runner.status()] == [0, 0]
        assert dump(views) == dump(rebuild_in_memory(world.app))


@EXAMPLES
@given(history=histories)
def test_a_rebuild_up_to_a_position_equals_the_live_views_as_they_stood_at_that_position(
    history: list[Step],
) -> None:
    with tiny_county() as world:
        views = ViewStore.beside(world.app)
        runner = Runner(world.app, views, ALL)
        seen: dict[int, Tables] = {}
        for step in history:
            if step[0] != "catch_up":
                world.perform(step)
                continue
            _, page, _, behind = step
            runner.page = page
            here = min(s.position for s in runner.status())
            stop = max(here, runner.head() - behind)
            runner.catch_up(until_position=stop)
            assert [s.position for s in runner.status()] == [stop, stop]
            seen[stop] = dump(views)
        note(f"snapshots at {sorted(seen)} of {runner.head()}")

        for position, tables in seen.items():
            assert dump(rebuild_in_memory(world.app, until_position=position)) == tables, f"at {position}"


class SimulatedCrashError(Exception):
    """The simulated end of a process."""


@EXAMPLES
@given(history=histories, data=st.data())
def test_a_projection_stopped_in_the_middle_of_a_batch_and_restarted_ends_with_identical_tables(
    history: list[Step], data: st.DataObject
) -> None:
    with tiny_county() as world:
        for step in history:
            if step[0] != "catch_up":
                world.perform(step)
        victim: type[Projection] = data.draw(st.sampled_from(ALL), label="victim")
        sources = tuple(source.Event for source in victim.sources)  # type: ignore[attr-defined]
        its_events = [position for position, event in world.app.iter_events() if isinstance(event, sources)]
        crash_at = data.draw(st.sampled_from(its_events), label="crash at position")
        in_flush = data.draw(st.booleans(), label="crash while writing")
        page = data.draw(st.integers(1, 50), label="page")
        runner = Runner(world.app, ViewStore.beside(world.app), ALL, page=page)
        projection = next(p for p in runner.projections if isinstance(p, victim))
        arm_crash(projection, crash_at, in_flush=in_flush)

        try:
            runner.catch_up()
        except SimulatedCrashError:
            pass
        else:
            raise AssertionError(f"no crash at {crash_at}")
        assert all(s.position < crash_at for s in runner.status()), "a crashed page was recorded"
        restarted = Runner(world.app, ViewStore.beside(world.app), ALL, page=data.draw(st.integers(1, 50)))
        restarted.catch_up()

        assert dump(restarted.views) == dump(rebuild_in_memory(world.app))


def arm_crash(projection: Projection, position: int, *, in_flush: bool) -> None:
    """Make ``projection`` crash when it reaches ``position``: while folding it, or while writing its page."""
    apply, flush = projection.apply, projection.flush
    reached = [False]

    def crashing_apply(at: int, event: Any) -> None:
        if at >= position:
            if not in_flush:
                raise SimulatedCrashError
            reached[0] = True
        apply(at, event)

    def crashing_flush(cur: Any) -> None:
        flush(cur)
        if reached[0]:
            raise SimulatedCrashError

    projection.apply = crashing_apply  # type: ignore[method-assign]
    projection.flush = crashing_flush  # type: ignore[method-assign]


def test_a_history_moves_its_cases_and_refused_commands_write_nothing() -> None:
    """The steps do what the properties rely on: cases move, illegal moves are refused and write nothing."""
    history: list[Step] = [
        ("encounter", "100102", True, 10),
        ("rate", "dissatisfied", ("officer", "100102"), True, "own", ""),
        ("rate", "dissatisfied", ("officer", "100102"), True, "own", ""),  # the code is used
        ("move", "report", 2, True, False),  # before contact: illegal
        ("move", "contact", 2, True, True),  # the other station's head
        ("move", "contact", 2, True, False),
        ("advance", 26 * 60),
        ("move", "onwards", 2, True, False),  # report
        ("move", "warn", 2, True, False),
        ("move", "callback", 2, False, False),
        ("move", "order", 2, True, False),
    ]
    with tiny_county() as world:
        assert (world.written, world.refused, len(world.refs)) == (len(PRELUDE), 0, 2)
        for step in history:
            world.perform(step)

        assert (world.written, world.refused) == (len(PRELUDE) + 8, 3)
        assert len(world.refs) == 3
        assert world.app.get_case(world.refs[2]).state.value == "rectifying"
