"""Golden figures: a hand-written fortnight in the tiny county, every rate worked out on paper.

The story below is told through the use cases, in time order, with every moment given in
Asia/Shanghai wall-clock time. Each test states its figures as literal numbers with the
sums that give them; nothing expected is computed by the code under test.

Calendar (November 2021 has no public holiday in China):
  2021-W44 = Mon 1 Nov .. Sun 7 Nov     2021-W45 = Mon 8 Nov .. Sun 14 Nov
  2021-W46 = Mon 15 Nov .. Sun 21 Nov   2021-W48 = Mon 29 Nov .. Sun 5 Dec
Scopes: county ⊃ unit:BUR ⊃ {unit:PS1 (officers 100101 head, 100102, F10103), unit:PS2}.

Encounters (E) and ratings (R):
  E0  100102 duty       Mon 1 Nov 07:30 (= Sun 31 Oct 23:30 UTC), logged late at 09:05
  E5  F10103 duty       Mon 1 Nov 09:30
  E1  100102 dispatch   Mon 1 Nov 10:00, one-time code ENC00001
  E2  100102 reception  Tue 2 Nov 10:00
  E3  100102 service    Wed 3 Nov 10:00
  E4  100102 reception  Thu 4 Nov 10:00, one-time code ENC00004
  E6  PS2 window        Fri 5 Nov 10:00 (unit encounter, no officer)
  E7  100102 dispatch   Mon 8 Nov 10:00
  E8  100102 duty       Wed 10 Nov 10:00
  Ed  100102 duty       Wed 1 Dec 01:30 (= Tue 30 Nov 17:30 UTC), one-time code ENC0000D
  Ra1 100102 satisfied            Mon 1 Nov 12:00  code ENC00001 -> E1 (verified)
  Rc1 100102 dissatisfied + phone Mon 1 Nov 14:00  no code -> E0 (latest unrated: E1 is rated) -> case C1
  Ra2 100102 basically satisfied  Tue 2 Nov 15:00  no code -> E2
  Ra3 100102 satisfied            Thu 4 Nov 11:00  no code -> E4 (later than the unrated E3)
  Ra4 100102 satisfied            Thu 4 Nov 12:00  code ENC00004 -> E4 again (counted once)
  Rf1 F10103 dissatisfied         Thu 4 Nov 15:00  no code, E5 is 77.5 h old -> nothing -> case C6
  Ru1 unit PS2 satisfied          Fri 5 Nov 11:00  no code -> E6 (the unit's encounter)
  Rb  100102 basically satisfied  Mon 8 Nov 11:00  no code -> E7
  Rd  100102 satisfied            Wed 1 Dec 02:00 (= Tue 30 Nov 18:00 UTC) code ENC0000D -> Ed (verified)

Cases (C), all pushed the moment they open:
  C1 PS1/100102 callable      Mon 1 Nov 14:00  the perfect case
  C2 PS1/100102 callable      Tue 2 Nov 09:00  contacted late, called back unsatisfied, reopened
  C3 PS1/F10103 callable      Wed 3 Nov 09:00  three failed callbacks, closed as not reached
  C4 PS1/100102 callable      Thu 4 Nov 09:00  rectification: failed verification, reported twice, verified
  C5 PS2        not callable  Thu 4 Nov 14:00  rectification reported, not yet verified
  C6 PS1/F10103 not callable  Thu 4 Nov 15:00  feedback late, rectification never reported
  C7 PS1/100102 callable      Thu 27 Jan 2022 10:00  waiting on feedback, due on a make-up working Sunday
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

import projections
from domain import commands as c
from domain.application import Context, PingjingApp
from domain.rates import Rate, parse_period
from projections import board, ledger
from projections.analyst import rebuild_in_memory
from projections.cases import audit_of
from projections.rates import RatesReport, rates
from projections.runner import Runner
from projections.store import ViewStore
from tests.conftest import ADMIN, CITIZEN, SUPERVISOR, SYSTEM, County, head_of
from tests.fakes import FakeClock

PS1_HEAD = head_of("100101")
PS2_HEAD = head_of("100201")
SCOPES = ("county", "unit:BUR", "unit:PS1", "unit:PS2", "officer:100102")
PHONE = "13800138000"


def local(text: str) -> datetime:
    """A wall-clock moment in Asia/Shanghai (UTC+8, no daylight saving), e.g. ``local("2021-11-01 14:00")``."""
    return datetime.fromisoformat(f"{text}+08:00")


# -- the story ---------------------------------------------------------------------------------


@dataclass
class Story:
    """The use cases the story needs, each at the moment the clock was set to."""

    app: PingjingApp
    clock: FakeClock

    def at(self, moment: str | datetime) -> Story:
        """Move the clock to ``moment`` (local text, or an aware datetime)."""
        self.clock.set(local(moment) if isinstance(moment, str) else moment)
        return self

    def encounter(
        self,
        kind: str,
        happened_at: str | datetime,
        *,
        badge: str | None = None,
        unit: str | None = None,
        code: str | None = None,
        by: Context = SYSTEM,
    ) -> None:
        """Log a must-scan encounter."""
        happened = local(happened_at) if isinstance(happened_at, str) else happened_at
        self.app.log_encounter(
            c.LogEncounter(kind=kind, happened_at=happened, badge=badge, unit_code=unit, code=code), by
        )

    def rating(
        self,
        verdict: str,
        *,
        officer: str | None = None,
        unit: str | None = None,
        code: str | None = None,
        phone: str | None = None,
    ) -> str | None:
        """A citizen rates an officer (by badge) or a unit (by code); returns the case it opened, if any."""
        target, key = ("officer", officer) if officer else ("unit", unit)
        command = c.SubmitRating(
            target=target, key=key, verdict=verdict, service_score=3, attitude_score=3, efficiency_score=3,
            encounter_code=code, phone=phone,
        )  # fmt: skip
        return self.app.submit_rating(command, CITIZEN).case_ref

    def hotline(self, unit: str, *, badge: str | None = None, phone: str | None = None) -> str:
        """The office opens a complaint case from a hotline call."""
        command = c.OpenCase(
            intake="hotline", kind="complaint", unit_code=unit, badge=badge, summary="群众来电反映", phone=phone
        )
        ref = self.app.open_case(command, SUPERVISOR).case_ref
        assert ref is not None
        return ref

    def contact(self, ref: str, head: Context = PS1_HEAD) -> None:
        """The unit head contacts the citizen."""
        self.app.contact_citizen(c.ContactCitizen(ref=ref, note="已电话联系"), head)

    def report(self, ref: str, head: Context = PS1_HEAD) -> None:
        """The unit head reports the handling result."""
        self.app.report_result(c.ReportResult(ref=ref, result="已处理"), head)

    def callback(self, ref: str, *, satisfied: bool) -> None:
        """The office reaches the citizen on a callback."""
        self.app.record_callback(c.RecordCallback(ref=ref, satisfied=satisfied, note="回访"), SUPERVISOR)

    def failed_callback(self, ref: str) -> None:
        """A callback attempt that finds nobody."""
        self.app.record_callback_attempt(c.RecordCallbackAttempt(ref=ref, note="无人接听"), SUPERVISOR)

    def close(self, ref: str, *, accepted: bool | None = None) -> None:
        """The office closes the case."""
        self.app.close_case(c.CloseCase(ref=ref, resolution="办结", citizen_accepted=accepted), SUPERVISOR)

    def reopen(self, ref: str) -> None:
        """The office reopens the case for a new round."""
        self.app.reopen_case(c.ReopenCase(ref=ref, reason="群众不满意"), SUPERVISOR)

    def order(self, ref: str, due: str) -> None:
        """The office orders rectification by ``due``."""
        self.app.order_rectification(
            c.OrderRectification(ref=ref, instructions="限期整改", due_at=local(due)), SUPERVISOR
        )

    def rectified(self, ref: str, head: Context = PS1_HEAD) -> None:
        """The unit head reports the rectification done."""
        self.app.report_rectified(c.ReportRectified(ref=ref, note="已整改"), head)

    def verify(self, ref: str, *, implemented: bool, new_due: str | None = None) -> None:
        """The office checks the rectification on the spot."""
        self.app.verify_rectification(
            c.VerifyRectification(
                ref=ref, implemented=implemented, note="落实核查", new_due_at=local(new_due) if new_due else None
            ),
            SUPERVISOR,
        )


@dataclass(frozen=True)
class Cases:
    """The references of the story's cases."""

    c1_perfect: str
    c2_reopened: str
    c3_not_reached: str
    c4_rectified: str
    c5_ps2_rectifying: str
    c6_unreported: str
    c7_waiting: str


def tell_the_story(s: Story) -> Cases:  # noqa: PLR0915 - one story, told in time order, reads best unbroken
    """The fortnight of the module docstring, then one night across the month end and one January case."""
    # -- week 44 ------------------------------------------------------------------------------
    s.at("2021-11-01 09:05").encounter("duty", "2021-11-01 07:30", badge="100102")  # E0, back-filled
    s.at("2021-11-01 09:30").encounter("duty", "2021-11-01 09:30", badge="F10103")  # E5
    s.at("2021-11-01 10:00").encounter("dispatch", "2021-11-01 10:00", badge="100102", code="ENC00001", by=ADMIN)
    s.at("2021-11-01 12:00").rating("satisfied", officer="100102", code="ENC00001")  # Ra1 -> E1
    c1 = s.at("2021-11-01 14:00").rating("dissatisfied", officer="100102", phone=PHONE)  # Rc1 -> E0
    assert c1 is not None
    s.at("2021-11-01 16:00").contact(c1)

    c2 = s.at("2021-11-02 09:00").hotline("PS1", badge="100102", phone=PHONE)
    s.at("2021-11-02 10:00").encounter("reception", "2021-11-02 10:00", badge="100102")  # E2
    s.at("2021-11-02 10:30").report(c1)
    s.at("2021-11-02 15:00").rating("basically_satisfied", officer="100102")  # Ra2 -> E2

    c3 = s.at("2021-11-03 09:00").hotline("PS1", badge="F10103", phone=PHONE)
    s.at("2021-11-03 10:00").encounter("service", "2021-11-03 10:00", badge="100102")  # E3
    s.at("2021-11-03 10:05").contact(c3)
    s.at("2021-11-03 10:30").callback(c1, satisfied=True)
    s.at("2021-11-03 11:00").contact(c2)  # 26 h after the push: late
    s.at("2021-11-03 11:30").close(c1, accepted=True)
    s.at("2021-11-03 15:00").report(c3)

    c4 = s.at("2021-11-04 09:00").hotline("PS1", badge="100102", phone=PHONE)
    s.at("2021-11-04 09:30").report(c2)
    s.at("2021-11-04 10:00").encounter("reception", "2021-11-04 10:00", badge="100102", code="ENC00004", by=ADMIN)
    s.at("2021-11-04 10:15").failed_callback(c3)
    s.at("2021-11-04 11:00").contact(c4)
    s.at("2021-11-04 11:00").rating("satisfied", officer="100102")  # Ra3 -> E4
    s.at("2021-11-04 12:00").rating("satisfied", officer="100102", code="ENC00004")  # Ra4 -> E4 again
    c5 = s.at("2021-11-04 14:00").hotline("PS2")
    s.at("2021-11-04 14:00").failed_callback(c3)
    c6 = s.at("2021-11-04 15:00").rating("dissatisfied", officer="F10103")  # Rf1 -> no encounter
    assert c6 is not None
    s.at("2021-11-04 16:00").contact(c5, PS2_HEAD)

    s.at("2021-11-05 09:00").failed_callback(c3)
    s.at("2021-11-05 09:10").report(c4)
    s.at("2021-11-05 09:30").contact(c6)
    s.at("2021-11-05 10:00").encounter("reception", "2021-11-05 10:00", unit="PS2")  # E6
    s.at("2021-11-05 10:00").report(c5, PS2_HEAD)
    s.at("2021-11-05 10:00").close(c3)  # not reached
    s.at("2021-11-05 10:30").callback(c2, satisfied=False)
    s.at("2021-11-05 11:00").rating("satisfied", unit="PS2")  # Ru1 -> E6
    s.at("2021-11-05 11:00").reopen(c2)
    s.at("2021-11-05 15:00").contact(c2)  # round 2

    # -- week 45 ------------------------------------------------------------------------------
    s.at("2021-11-08 10:00").encounter("dispatch", "2021-11-08 10:00", badge="100102")  # E7
    s.at("2021-11-08 10:00").report(c2)  # round 2
    s.at("2021-11-08 10:30").callback(c4, satisfied=False)
    s.at("2021-11-08 11:00").rating("basically_satisfied", officer="100102")  # Rb -> E7
    s.at("2021-11-08 11:00").order(c4, due="2021-11-15 11:00")
    s.at("2021-11-08 11:30").order(c5, due="2021-11-22 10:00")  # not callable: ordered straight from REPORTED

    s.at("2021-11-09 10:00").callback(c2, satisfied=True)  # round 2
    s.at("2021-11-09 11:00").close(c2, accepted=True)

    s.at("2021-11-10 09:00").report(c6)  # feedback was due Tue 9 Nov 15:00: late
    s.at("2021-11-10 10:00").encounter("duty", "2021-11-10 10:00", badge="100102")  # E8
    s.at("2021-11-10 10:00").rectified(c4)
    s.at("2021-11-10 10:30").order(c6, due="2021-11-24 10:30")
    s.at("2021-11-10 11:00").rectified(c5, PS2_HEAD)

    s.at("2021-11-11 10:00").verify(c4, implemented=False, new_due="2021-11-18 10:00")
    s.at("2021-11-12 10:00").rectified(c4)  # reported a second time
    s.at("2021-11-15 10:00").verify(c4, implemented=True)
    s.at("2021-11-15 11:00").close(c4, accepted=True)

    # -- the night of 30 Nov: UTC says November, Shanghai says 1 December ------------------------
    s.at(datetime(2021, 11, 30, 17, 35, tzinfo=UTC))
    s.encounter("duty", datetime(2021, 11, 30, 17, 30, tzinfo=UTC), badge="100102", code="ENC0000D")  # Ed
    s.at(datetime(2021, 11, 30, 18, 0, tzinfo=UTC)).rating("satisfied", officer="100102", code="ENC0000D")  # Rd

    # -- before the Spring Festival 2022: Sat 29 and Sun 30 Jan are make-up working days (调休) ---
    c7 = s.at("2022-01-27 10:00").hotline("PS1", badge="100102", phone=PHONE)
    s.at("2022-01-27 15:00").contact(c7)
    return Cases(c1, c2, c3, c4, c5, c6, c7)


# -- fixtures and readers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Golden:
    """The story's cases and its views, built twice: rebuilt in memory, and by a runner beside the store."""

    cases: Cases
    views: tuple[ViewStore, ViewStore]


@pytest.fixture
def golden(county: County, clock: FakeClock) -> Iterator[Golden]:
    """The story, told on each store of the ``app`` fixture, with both builds of its views."""
    app = county.app
    cases = tell_the_story(Story(app, clock))
    in_memory = rebuild_in_memory(app)
    beside = ViewStore.beside(app)  # on the memory store, a private memory database of its own
    # A runner stopped half-way through the log, then a new process carrying on from its position.
    Runner(app, beside, projections.ALL).catch_up(until_position=(app.recorder.max_notification_id() or 0) // 2)
    Runner(app, beside, projections.ALL).catch_up()
    yield Golden(cases, (in_memory, beside))
    in_memory.close()
    if beside.description == "memory":  # otherwise it is the event store's own database, closed with the app
        beside.close()


def report(g: Golden, scope: str, period: str) -> RatesReport:
    """The rates report of ``scope`` in ``period``; both builds of the views must agree on it."""
    in_memory, beside = (rates(views, scope, parse_period(period)) for views in g.views)
    assert in_memory == beside, f"{scope} {period}: the two builds of the views disagree"
    return in_memory


def fractions(g: Golden, rate: str, period: str) -> dict[str, tuple[int, int]]:
    """``(numerator, denominator)`` of one rate in one period, for every scope of the story."""
    figures = {scope: report(g, scope, period).rates[rate] for scope in SCOPES}
    return {scope: (r.numerator, r.denominator) for scope, r in figures.items()}


def counts(g: Golden, scope: str, period: str, *names: str) -> dict[str, int]:
    """Plain counts of ``scope`` in ``period``."""
    every = report(g, scope, period).counts
    return {name: every[name] for name in names}


def rate(g: Golden, name: str, scope: str, period: str) -> Rate:
    """One rate."""
    return report(g, scope, period).rates[name]


# -- scan rate -----------------------------------------------------------------------------------


def test_scan_rate_counts_each_encounter_with_a_linked_rating_once(golden: Golden) -> None:
    # W44 encounters: E0 E5 E1 E2 E3 E4 (PS1) + E6 (PS2) = 7; of 100102: E0 E1 E2 E3 E4 = 5.
    # Linked: E1 by code (Ra1); E0 by fallback (Rc1 at Mon 14:00 skips the rated E1 for the latest
    # unrated one); E2 (Ra2); E4 twice (Ra3 by fallback, Ra4 by code) counts once; E6 by the PS2
    # unit rating. Not linked: E3 (Ra3 chose the later E4), E5 (Rf1 came 77.5 h > 72 h later).
    #   county = BUR: {E0,E1,E2,E4,E6} / 7 = 5/7;  PS1: {E0,E1,E2,E4} / 6 = 4/6
    #   PS2: {E6} / 1 = 1/1;  officer 100102: {E0,E1,E2,E4} / 5 = 4/5
    assert fractions(golden, "scan", "2021-W44") == {
        "county": (5, 7),
        "unit:BUR": (5, 7),
        "unit:PS1": (4, 6),
        "unit:PS2": (1, 1),
        "officer:100102": (4, 5),
    }
    # W45: E7 (linked by Rb) and E8 (no later rating) = 1/2, all of 100102 in PS1.
    assert fractions(golden, "scan", "2021-W45") == {
        "county": (1, 2),
        "unit:BUR": (1, 2),
        "unit:PS1": (1, 2),
        "unit:PS2": (0, 0),
        "officer:100102": (1, 2),
    }
    assert rate(golden, "scan", "county", "2021-W44").display() == "71.4%"  # 5/7 = 0.71428...
    assert rate(golden, "scan", "officer:100102", "2021-W44").display() == "80.0%"  # 4/5


def test_scan_rate_months_follow_shanghai_time_not_utc(golden: Golden) -> None:
    # E0 happened Sun 31 Oct 23:30 UTC = Mon 1 Nov 07:30 local: November, not October.
    october = rate(golden, "scan", "county", "2021-10")
    assert (october.numerator, october.denominator, october.value, october.display()) == (0, 0, None, "n/a")
    # November: W44 (5/7) + W45 (1/2) = 6/9; officer 100102: 4/5 + 1/2 = 5/7.
    # Ed (30 Nov 17:30 UTC = 1 Dec 01:30 local) is not in November.
    november = fractions(golden, "scan", "2021-11")
    assert (november["county"], november["officer:100102"]) == ((6, 9), (5, 7))
    # December: Ed, linked by Rd's code = 1/1; and it is in W48 (Mon 29 Nov .. Sun 5 Dec).
    assert fractions(golden, "scan", "2021-12")["county"] == (1, 1)
    assert fractions(golden, "scan", "2021-W48")["officer:100102"] == (1, 1)


# -- satisfaction rate ---------------------------------------------------------------------------


def test_satisfaction_counts_satisfied_and_basically_satisfied_over_every_rating(golden: Golden) -> None:
    # W44 ratings by rating time: Ra1 S, Rc1 D, Ra2 B, Ra3 S, Ra4 S (100102); Rf1 D (F10103); Ru1 S (PS2).
    #   county = BUR: (S 4 + B 1) / 7 = 5/7;  PS1: (Ra1 Ra2 Ra3 Ra4) / 6 = 4/6
    #   PS2: Ru1 / 1 = 1/1;  officer 100102: (Ra1 Ra2 Ra3 Ra4) / 5 = 4/5
    assert fractions(golden, "satisfaction", "2021-W44") == {
        "county": (5, 7),
        "unit:BUR": (5, 7),
        "unit:PS1": (4, 6),
        "unit:PS2": (1, 1),
        "officer:100102": (4, 5),
    }
    names = ("ratings", "ratings_satisfied", "ratings_basically_satisfied", "ratings_dissatisfied")
    assert counts(golden, "county", "2021-W44", *names) == dict(zip(names, (7, 4, 1, 2), strict=True))
    assert counts(golden, "unit:PS1", "2021-W44", *names) == dict(zip(names, (6, 3, 1, 2), strict=True))
    assert counts(golden, "unit:PS2", "2021-W44", *names) == dict(zip(names, (1, 1, 0, 0), strict=True))
    assert counts(golden, "officer:100102", "2021-W44", *names) == dict(zip(names, (5, 3, 1, 1), strict=True))
    # W45: Rb (basically satisfied) = 1/1.
    assert fractions(golden, "satisfaction", "2021-W45")["county"] == (1, 1)
    # November: 5/7 + 1/1 = 6/8 (75.0%); officer 100102: 4/5 + 1/1 = 5/6 (83.3%). Rd is December's.
    november = fractions(golden, "satisfaction", "2021-11")
    assert (november["county"], november["officer:100102"]) == ((6, 8), (5, 6))
    assert rate(golden, "satisfaction", "county", "2021-11").display() == "75.0%"
    assert fractions(golden, "satisfaction", "2021-12")["county"] == (1, 1)


def test_ratings_with_an_encounter_code_are_verified_and_the_rest_unverified(golden: Golden) -> None:
    # Verified (code): Ra1, Ra4 in W44; Rd in December. Unverified: Rc1 Ra2 Ra3 Rf1 Ru1 in W44, Rb in W45.
    names = ("ratings_verified", "ratings_unverified")
    assert counts(golden, "county", "2021-W44", *names) == {"ratings_verified": 2, "ratings_unverified": 5}
    assert counts(golden, "unit:PS1", "2021-W44", *names) == {"ratings_verified": 2, "ratings_unverified": 4}
    assert counts(golden, "unit:PS2", "2021-W44", *names) == {"ratings_verified": 0, "ratings_unverified": 1}
    assert counts(golden, "officer:100102", "2021-W44", *names) == {"ratings_verified": 2, "ratings_unverified": 3}
    assert counts(golden, "county", "2021-11", *names) == {"ratings_verified": 2, "ratings_unverified": 6}
    assert counts(golden, "county", "2021-12", *names) == {"ratings_verified": 1, "ratings_unverified": 0}


# -- callback rate -------------------------------------------------------------------------------


def test_callback_rate_counts_callable_cases_by_the_week_they_opened(golden: Golden) -> None:
    # Opened in W44: C1 C2 C3 C4 (callable, PS1), C5 (PS2) and C6 (PS1) with no phone: not callable.
    # Reached: C1 (Wed); C2 (Fri, unsatisfied; reached again in round 2, counted once); C4 on
    # Mon 8 Nov, which counts in W44 where C4 opened. C3: three failed attempts, never reached.
    #   county = BUR = PS1: 3/4;  PS2: 0/0 (n/a);  officer 100102 (C1 C2 C4): 3/3
    assert fractions(golden, "callback", "2021-W44") == {
        "county": (3, 4),
        "unit:BUR": (3, 4),
        "unit:PS1": (3, 4),
        "unit:PS2": (0, 0),
        "officer:100102": (3, 3),
    }
    # Nothing opened in W45, so nothing to call back: n/a everywhere, even with three callbacks made.
    assert set(fractions(golden, "callback", "2021-W45").values()) == {(0, 0)}
    assert fractions(golden, "callback", "2021-11")["county"] == (3, 4)
    opened = {scope: counts(golden, scope, "2021-W44", "cases_opened")["cases_opened"] for scope in SCOPES}
    # C1..C6 = 6; PS1: C1 C2 C3 C4 C6 = 5; PS2: C5 = 1; officer 100102: C1 C2 C4 = 3.
    assert opened == {"county": 6, "unit:BUR": 6, "unit:PS1": 5, "unit:PS2": 1, "officer:100102": 3}


# -- rectification and implementation rates -----------------------------------------------------


def test_rectification_and_implementation_count_each_order_once_by_the_week_it_was_ordered(golden: Golden) -> None:
    # Ordered in W45: C4 (Mon 8, PS1/100102), C5 (Mon 8, PS2), C6 (Wed 10, PS1/F10103).
    # Reported done: C4 (Wed 10, and again Fri 12 after the failed check: still one), C5 (Wed 10).
    # Verified implemented: C4 (Mon 15 Nov, W46, but counted in W45 where it was ordered).
    #   county = BUR: reported 2/3, implemented 1/2;  PS1 (C4 C6): 1/2 and 1/1
    #   PS2 (C5): 1/1 and 0/1;  officer 100102 (C4): 1/1 and 1/1
    assert fractions(golden, "rectification", "2021-W45") == {
        "county": (2, 3),
        "unit:BUR": (2, 3),
        "unit:PS1": (1, 2),
        "unit:PS2": (1, 1),
        "officer:100102": (1, 1),
    }
    assert fractions(golden, "implementation", "2021-W45") == {
        "county": (1, 2),
        "unit:BUR": (1, 2),
        "unit:PS1": (1, 1),
        "unit:PS2": (0, 1),
        "officer:100102": (1, 1),
    }
    assert rate(golden, "implementation", "unit:PS2", "2021-W45").display() == "0.0%"  # a real zero, not n/a
    assert rate(golden, "rectification", "county", "2021-W45").display() == "66.7%"  # 2/3
    # Nothing was ordered in W44 or W46: the check made on Mon 15 Nov (W46) belongs to W45's order.
    for period in ("2021-W44", "2021-W46"):
        assert fractions(golden, "rectification", period)["county"] == (0, 0)
        assert fractions(golden, "implementation", period)["county"] == (0, 0)
    assert fractions(golden, "rectification", "2021-11")["county"] == (2, 3)
    assert fractions(golden, "implementation", "2021-11")["county"] == (1, 2)


# -- on-time rates -------------------------------------------------------------------------------


def test_contact_on_time_counts_a_contact_after_24_hours_as_late(golden: Golden) -> None:
    # Contact is due 24 h after the push, counted in the week of that deadline:
    #   C1   pushed Mon 1 14:00, due Tue 2 14:00, done Mon 1 16:00    on time  PS1 100102
    #   C2r1 pushed Tue 2 09:00, due Wed 3 09:00, done Wed 3 11:00    LATE     PS1 100102
    #   C3   pushed Wed 3 09:00, due Thu 4 09:00, done Wed 3 10:05    on time  PS1
    #   C4   pushed Thu 4 09:00, due Fri 5 09:00, done Thu 4 11:00    on time  PS1 100102
    #   C5   pushed Thu 4 14:00, due Fri 5 14:00, done Thu 4 16:00    on time  PS2
    #   C6   pushed Thu 4 15:00, due Fri 5 15:00, done Fri 5 09:30    on time  PS1
    #   C2r2 reopened Fri 5 11:00, due Sat 6 11:00, done Fri 5 15:00  on time  PS1 100102
    # All due in W44: county 6/7; PS1 5/6; PS2 1/1; officer 100102 3/4.
    assert fractions(golden, "on_time_contact", "2021-W44") == {
        "county": (6, 7),
        "unit:BUR": (6, 7),
        "unit:PS1": (5, 6),
        "unit:PS2": (1, 1),
        "officer:100102": (3, 4),
    }
    assert rate(golden, "on_time_contact", "officer:100102", "2021-W44").display() == "75.0%"
    assert fractions(golden, "on_time_contact", "2021-W45")["county"] == (0, 0)
    assert fractions(golden, "on_time_contact", "2021-11")["county"] == (6, 7)


def test_feedback_on_time_counts_in_the_week_of_its_working_day_deadline(golden: Golden) -> None:
    # Feedback is due 3 China working days after the push (Mon-Fri in Nov 2021), same time of day:
    #   C1   pushed Mon 1 14:00 -> Tue, Wed, Thu 4 14:00 (W44)  reported Tue 2 10:30   on time
    #   C2r1 pushed Tue 2 09:00 -> Wed, Thu, Fri 5 09:00 (W44)  reported Thu 4 09:30   on time
    #   C3   pushed Wed 3 09:00 -> Thu, Fri, Mon 8 09:00 (W45)  reported Wed 3 15:00   on time
    #   C4   pushed Thu 4 09:00 -> Fri, Mon, Tue 9 09:00 (W45)  reported Fri 5 09:10   on time
    #   C5   pushed Thu 4 14:00 -> Fri, Mon, Tue 9 14:00 (W45)  reported Fri 5 10:00   on time  PS2
    #   C6   pushed Thu 4 15:00 -> Fri, Mon, Tue 9 15:00 (W45)  reported Wed 10 09:00  LATE
    #   C2r2 reopened Fri 5 11:00 -> Mon, Tue, Wed 10 11:00 (W45)  reported Mon 8 10:00  on time
    # W44: C1 C2r1 = 2/2 (all PS1 100102). W45: county 4/5; PS1 (C3 C4 C6 C2r2) 3/4; PS2 1/1;
    # officer 100102 (C4 C2r2) 2/2. Three reports made in W44 (C3, C4, C5) count in W45.
    assert fractions(golden, "on_time_feedback", "2021-W44") == {
        "county": (2, 2),
        "unit:BUR": (2, 2),
        "unit:PS1": (2, 2),
        "unit:PS2": (0, 0),
        "officer:100102": (2, 2),
    }
    assert fractions(golden, "on_time_feedback", "2021-W45") == {
        "county": (4, 5),
        "unit:BUR": (4, 5),
        "unit:PS1": (3, 4),
        "unit:PS2": (1, 1),
        "officer:100102": (2, 2),
    }
    assert fractions(golden, "on_time_feedback", "2021-11")["county"] == (6, 7)  # 2/2 + 4/5


def test_push_and_callback_on_time_follow_the_same_deadline_rule(golden: Golden) -> None:
    # Push is due 10 min after opening and happens at once: C1..C6 all on time in W44.
    assert fractions(golden, "on_time_push", "2021-W44") == {
        "county": (6, 6),
        "unit:BUR": (6, 6),
        "unit:PS1": (5, 5),
        "unit:PS2": (1, 1),
        "officer:100102": (3, 3),
    }
    # Callback is due 2 working days after the report:
    #   C1   reported Tue 2 10:30 -> Thu 4 10:30 (W44), called Wed 3 10:30   on time
    #   C2r1 reported Thu 4 09:30 -> Mon 8 09:30 (W45), called Fri 5 10:30   on time
    #   C3   reported Wed 3 15:00 -> Fri 5 15:00, closed unreached Fri 10:00: missed before its
    #        deadline, so never due (it costs audit points instead)
    #   C4   reported Fri 5 09:10 -> Tue 9 09:10 (W45), called Mon 8 10:30   on time
    #   C2r2 reported Mon 8 10:00 -> Wed 10 10:00 (W45), called Tue 9 10:00  on time
    assert fractions(golden, "on_time_callback", "2021-W44")["county"] == (1, 1)
    assert fractions(golden, "on_time_callback", "2021-W45")["county"] == (3, 3)


def test_a_zero_denominator_is_not_applicable_rather_than_zero_or_full(golden: Golden) -> None:
    # Officer 100102 had nothing at all in October; PS2 opened no callable case in W44.
    for name, r in report(golden, "officer:100102", "2021-10").rates.items():
        assert (r.numerator, r.denominator, r.value, r.display()) == (0, 0, None, "n/a"), name
    callback = rate(golden, "callback", "unit:PS2", "2021-W44")
    assert (callback.value, callback.display()) == (None, "n/a")
    scan = rate(golden, "scan", "unit:PS1", "2021-W44")
    assert (scan.value, scan.display()) == (4 / 6, "66.7%")


# -- audit score ---------------------------------------------------------------------------------


def test_audit_scores_deduct_by_the_table(golden: Golden) -> None:
    cases = golden.cases
    for views in golden.views:
        # C1: every step on time, called back satisfied, closed with the citizen's acceptance.
        perfect = audit_of(views, cases.c1_perfect)
        assert perfect is not None
        assert (perfect.score, perfect.deductions, perfect.state) == (100, [], "closed")
        # C2: contact 2 h late (late_step -5), reopened after an unsatisfied callback (reopened -10):
        # 100 - 5 - 10 = 85.
        reopened = audit_of(views, cases.c2_reopened)
        assert reopened is not None
        assert (reopened.score, reopened.deductions) == (85, ["late_step", "reopened"])
        # C3: three failed callbacks (3 x -2), closed with the callback step never done (missed_step
        # -10) and without a resolution confirmed by the citizen (no_resolution -10):
        # 100 - 6 - 10 - 10 = 74.
        unreached = audit_of(views, cases.c3_not_reached)
        assert unreached is not None
        assert unreached.score == 74
        assert unreached.deductions == [
            "failed_callback",
            "failed_callback",
            "failed_callback",
            "missed_step",
            "no_resolution",
        ]
        assert (
            unreached.explained()[-1] == "-10 办结未经群众确认 (closed without a resolution confirmed by the citizen)"
        )


# -- board and ledger ----------------------------------------------------------------------------


def test_the_ledger_of_a_reopened_case_shows_each_round_with_its_deadlines(golden: Golden) -> None:
    # Warnings at 80 % of the limit on the step's own calendar:
    #   push 10 min -> 8 min;  contact 24 h -> 19 h 12 min;
    #   feedback r1 Tue 2 09:00 .. Fri 5 09:00 = 15 + 24 + 24 + 9 = 72 working h, x 0.8 = 57.6 h:
    #     Tue 15 h, Wed 24 h, then 18.6 h into Thu -> Thu 4 18:36
    #   callback r1 Thu 4 09:30 .. Mon 8 09:30 = 14.5 + 24 + (weekend 0) + 9.5 = 48 h, x 0.8 = 38.4 h:
    #     Thu 14.5 h, then 23.9 h into Fri -> Fri 5 23:54
    #   feedback r2 Fri 5 11:00 .. Wed 10 11:00 = 13 + 24 + 24 + 11 = 72 h, x 0.8 = 57.6 h:
    #     Fri 13 h, Mon 24 h, then 20.6 h into Tue -> Tue 9 20:36
    #   callback r2 Mon 8 10:00 .. Wed 10 10:00 = 14 + 24 + 10 = 48 h, x 0.8 = 38.4 h:
    #     Mon 14 h, Tue 24 h, then 0.4 h into Wed -> Wed 10 00:24
    expected = {
        # (step, round): (started, warn_at, deadline, ended, status)
        ("push", 1): ("11-02 09:00", "11-02 09:08", "11-02 09:10", "11-02 09:00", "on_time"),
        ("contact", 1): ("11-02 09:00", "11-03 04:12", "11-03 09:00", "11-03 11:00", "late"),
        ("feedback", 1): ("11-02 09:00", "11-04 18:36", "11-05 09:00", "11-04 09:30", "on_time"),
        ("callback", 1): ("11-04 09:30", "11-05 23:54", "11-08 09:30", "11-05 10:30", "on_time"),
        ("contact", 2): ("11-05 11:00", "11-06 06:12", "11-06 11:00", "11-05 15:00", "on_time"),
        ("feedback", 2): ("11-05 11:00", "11-09 20:36", "11-10 11:00", "11-08 10:00", "on_time"),
        ("callback", 2): ("11-08 10:00", "11-10 00:24", "11-10 10:00", "11-09 10:00", "on_time"),
    }
    for views in golden.views:
        runs = ledger.steps_of(views, golden.cases.c2_reopened)
        assert len(runs) == 7
        assert {r.seq for r in runs} == {1}
        assert not any(r.flagged for r in runs)
        assert {r.unit_code for r in runs} == {"PS1"}
        actual = {(r.step, r.round): (r.started_at, r.warn_at, r.deadline, r.ended_at, r.status) for r in runs}
        assert actual == {
            key: (*(local(f"2021-{moment}") for moment in moments[:4]), moments[4]) for key, moments in expected.items()
        }


def test_the_board_shows_a_case_waiting_on_feedback_due_on_a_make_up_working_sunday(golden: Golden) -> None:
    # C7 pushed Thu 27 Jan 2022 10:00. Three working days: Fri 28, Sat 29 (调休 working day),
    # Sun 30 (调休 working day) -> due Sun 30 Jan 2022 10:00, before the holiday of 31 Jan .. 6 Feb.
    # Contacted Thu 27 15:00, within 24 h (due Fri 28 10:00), so feedback is all it waits on.
    # Feedback warning: Thu 27 10:00 .. Sun 30 10:00 = 14 + 24 + 24 + 10 = 72 working h, x 0.8 = 57.6 h:
    #   Thu 14 h, Fri 24 h, then 19.6 h into Sat -> Sat 29 Jan 19:36.
    ref = golden.cases.c7_waiting
    for views in golden.views:
        row = board.case_row(views, ref)
        assert row is not None
        assert (row.ref, row.kind, row.intake, row.unit_code, row.officer_badge) == (
            ref, "complaint", "hotline", "PS1", "100102"
        )  # fmt: skip
        assert (row.state, row.round, row.flagged) == ("contacted", 1, False)
        assert (row.opened_at, row.closed_at) == (local("2022-01-27 10:00"), None)
        assert row.waiting == ["feedback"]
        assert row.deadlines == {"feedback": local("2022-01-30 10:00")}
        assert row.next_deadline == local("2022-01-30 10:00")
        assert row.overdue_steps(local("2022-01-30 09:59")) == []
        assert row.overdue_steps(local("2022-01-30 10:01")) == ["feedback"]

        runs = {r.step: r for r in ledger.steps_of(views, ref)}
        assert set(runs) == {"push", "contact", "feedback"}
        contact, feedback = runs["contact"], runs["feedback"]
        assert (contact.deadline, contact.ended_at, contact.status) == (
            local("2022-01-28 10:00"), local("2022-01-27 15:00"), "on_time"
        )  # fmt: skip
        assert (feedback.started_at, feedback.warn_at, feedback.deadline) == (
            local("2022-01-27 10:00"), local("2022-01-29 19:36"), local("2022-01-30 10:00")
        )  # fmt: skip
        assert (feedback.ended_at, feedback.status) == (None, "running")
