"""A day's work in the demo county: encounters, ratings, and every case worked to where it gets."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta

from adapters.demo import data as d
from adapters.demo.sim import CITIZEN, DISPATCH, County, DemoError, Simulation, local
from domain import commands as c
from domain.application import Context
from domain.clock import token_from_int
from domain.usecases import Receipt
from domain.values import Actor, Channel, Role
from domain.workflow import MAX_CALLBACK_ATTEMPTS

ENCOUNTERS_PER_DAY = {
    "police_station": (4, 9),
    "traffic_brigade": (8, 14),
    "service_window": (15, 25),
    "bureau": (1, 3),
}
KINDS = {
    "police_station": (("dispatch", 40), ("reception", 30), ("duty", 15), ("service", 15)),
    "traffic_brigade": (("duty", 60), ("dispatch", 25), ("service", 15)),
    "service_window": (("service", 70), ("reception", 30)),
    "bureau": (("reception", 100),),
}
SUPERVISOR_UNIT = d.SUPERVISION[0]


class Activity:
    """Generates the county's days; cases follow the workflow with realistic delays."""

    def __init__(self, sim: Simulation, rng: random.Random, county: County) -> None:
        self.sim = sim
        self.rng = rng
        self.county = county
        self.dispatch_no = 0
        self.supervisors = [Context(Actor(b, Role.SUPERVISOR)) for b in county.officers[SUPERVISOR_UNIT][:3]]

    # -- helpers ---------------------------------------------------------------------------

    def _pick(self, weighted: tuple[tuple[str, int], ...]) -> str:
        names, weights = zip(*weighted, strict=True)
        return str(self.rng.choices(names, weights)[0])

    def _phone(self) -> str:
        return (
            "1" + self.rng.choice(("38", "39", "58", "59", "87", "88", "31", "32")) + f"{self.rng.randrange(10**8):08d}"
        )

    def _later(self, base: datetime, lo_hours: float, hi_hours: float) -> datetime:
        return base + timedelta(hours=self.rng.uniform(lo_hours, hi_hours))

    def _supervisor(self) -> Context:
        return self.rng.choice(self.supervisors)

    def _head(self, unit: str) -> Context:
        return Context(Actor(self.county.heads[unit], Role.UNIT_HEAD))

    # -- a day -----------------------------------------------------------------------------

    def day(self, day: date) -> None:
        """One day of encounters, ratings and direct intake."""
        for unit, kind in self.county.units.items():
            if kind not in ENCOUNTERS_PER_DAY:
                continue
            lo, hi = ENCOUNTERS_PER_DAY[kind]
            for _ in range(self.rng.randint(lo, hi)):
                self._encounter(day, unit, kind)
        for _ in range(self.rng.randint(2, 5)):
            unit = self.rng.choice([u for u, k in self.county.units.items() if k != "supervision_office"])
            self._rating(local(day, self.rng.randint(8, 19), self.rng.randrange(60)), "unit", unit, unit, None)
        if self.rng.random() < 0.35:
            self._direct_case(day, "hotline", self.rng.choice(d.HOTLINE_TEXTS))
        if self.rng.random() < 0.06:
            self._direct_case(day, "meeting", self.rng.choice(d.MEETING_TEXTS))
        if self.rng.random() < 0.04:
            self._direct_case(day, "letter", self.rng.choice(d.LETTER_TEXTS))

    def _encounter(self, day: date, unit: str, unit_kind: str) -> None:
        kind = self._pick(KINDS[unit_kind])
        badge = self.rng.choice(self.county.officers[unit][1:])
        hour = self.rng.randrange(24) if kind == "dispatch" else self.rng.randint(8, 18)
        at = local(day, hour, self.rng.randrange(60))
        code = token_from_int(self.rng.getrandbits(40), 8) if self.rng.random() < 0.5 else None
        if kind == "dispatch":
            self.dispatch_no += 1
            ref = f"CJ{day:%Y%m%d}{self.dispatch_no:05d}"
            cmd = c.LogEncounter(kind=kind, happened_at=at, badge=badge, unit_code=unit, external_ref=ref, code=code)
            self.sim.at(at + timedelta(minutes=1), cmd, DISPATCH)
        else:
            cmd = c.LogEncounter(kind=kind, happened_at=at, badge=badge, unit_code=unit, code=code)
            self.sim.at(at + timedelta(minutes=1), cmd, Context(Actor(badge, Role.OFFICER), Channel.API))
        self.sim.result.encounters += 1
        if self.rng.random() < 0.6:
            use_code = code if code and self.rng.random() < 0.7 else None
            target = ("officer", badge) if self.rng.random() < 0.85 else ("unit", unit)
            self._rating(self._later(at, 0.25, 3), target[0], target[1], unit, use_code)

    def _rating(self, at: datetime, target: str, key: str, unit: str, code: str | None) -> None:
        roll = self.rng.random()
        verdict = "satisfied" if roll < 0.82 else "basically_satisfied" if roll < 0.92 else "dissatisfied"
        low, high = {"satisfied": (4, 5), "basically_satisfied": (3, 4), "dissatisfied": (1, 3)}[verdict]
        complaint = self.rng.choice(d.COMPLAINTS) if verdict == "dissatisfied" and self.rng.random() < 0.6 else None
        suggestion = self.rng.choice(d.SUGGESTIONS) if verdict != "dissatisfied" and self.rng.random() < 0.03 else None
        opens = verdict == "dissatisfied" or suggestion is not None
        cmd = c.SubmitRating(
            target=target,
            key=key,
            verdict=verdict,
            service_score=self.rng.randint(low, high),
            attitude_score=self.rng.randint(low, high),
            efficiency_score=self.rng.randint(low, high),
            comment=self.rng.choice(d.COMMENTS) if self.rng.random() < 0.3 else None,
            complaint=complaint,
            suggestion=suggestion,
            phone=self._phone() if opens and self.rng.random() < 0.75 else None,
            encounter_code=code,
        )
        self.sim.result.ratings += 1
        self.sim.at(at, cmd, CITIZEN, self._case_flow(unit, at, cmd.phone is not None) if opens else None)

    def _direct_case(self, day: date, intake: str, text: str) -> None:
        unit = self.rng.choice([u for u, k in self.county.units.items() if k == "police_station"])
        cmd = c.OpenCase(
            intake=intake,
            kind="complaint" if intake != "meeting" else "suggestion",
            unit_code=unit,
            summary=text,
            phone=self._phone() if self.rng.random() < 0.8 else None,
        )
        at = local(day, self.rng.randint(8, 20), self.rng.randrange(60))
        ctx = Context(self._supervisor().actor, Channel(intake))
        self.sim.at(at, cmd, ctx, self._case_flow(unit, at, cmd.phone is not None))

    # -- a case's life ---------------------------------------------------------------------

    def _case_flow(self, unit: str, opened_at: datetime, callable_: bool) -> Callable[[Receipt], None]:
        def opened(receipt: Receipt) -> None:
            if receipt.case_ref is None:
                raise DemoError(f"{receipt.command} was expected to open a case")
            self.sim.result.cases += 1
            CaseLife(self, receipt.case_ref, unit, opened_at, callable_=callable_).start()

        return opened


class CaseLife:
    """Schedules one case's moves; each move schedules the next, so the demo's end cuts cases anywhere."""

    def __init__(self, activity: Activity, ref: str, unit: str, opened_at: datetime, *, callable_: bool) -> None:
        self.a = activity
        self.rng = activity.rng
        self.ref = ref
        self.unit = unit
        self.t = opened_at
        self.opened_at = opened_at
        self.callable = callable_

    def _at(self, lo: float, hi: float, command: c.Command, ctx: Context, then=None) -> None:  # type: ignore[no-untyped-def]
        self.t = max(self.a._later(self.t, lo, hi), self.t + timedelta(minutes=15))
        self.a.sim.at(self.t, command, ctx, then)

    def start(self) -> None:
        """Flag some cases early, then let the unit contact the citizen."""
        if self.rng.random() < 0.08:
            self._at(0.5, 4, c.FlagCase(ref=self.ref, reason="群众反映强烈,挂牌督办"), self.a._supervisor())
        slow = self.rng.random() < 0.12
        if slow:
            pushed = self.opened_at
            self.a.sim.at(
                pushed + timedelta(hours=19.2),
                c.RecordSlaWarning(ref=self.ref, step="contact", round=1),
                Context(Actor.system(), Channel.SYSTEM),
            )
            self.a.sim.at(
                pushed + timedelta(hours=24),
                c.RecordSlaBreach(ref=self.ref, step="contact", round=1),
                Context(Actor.system(), Channel.SYSTEM),
            )
            self.t = pushed + timedelta(hours=24)
        self._at(
            1,
            8,
            c.ContactCitizen(ref=self.ref, note=self.rng.choice(d.CONTACT_NOTES)),
            self.a._head(self.unit),
            lambda _: self._report(),
        )

    def _report(self) -> None:
        self._at(
            8,
            60,
            c.ReportResult(ref=self.ref, result=self.rng.choice(d.REPORT_TEXTS)),
            self.a._head(self.unit),
            lambda _: self._callback(),
        )

    def _callback(self) -> None:
        sup = self.a._supervisor()
        if not self.callable:
            if self.rng.random() < 0.3:
                self._rectify()
            else:
                self._at(2, 30, c.CloseCase(ref=self.ref, resolution="当事人未留联系方式,依单位反馈办结"), sup)
            return
        if self.rng.random() < 0.15:
            for _ in range(MAX_CALLBACK_ATTEMPTS):
                self._at(2, 20, c.RecordCallbackAttempt(ref=self.ref, note="电话无人接听"), sup)
            self._at(1, 10, c.CloseCase(ref=self.ref, resolution="三次回访未接通,依单位反馈办结"), sup)
            return
        satisfied = self.rng.random() < 0.75
        note = self.rng.choice(d.CALLBACK_OK if satisfied else d.CALLBACK_BAD)
        self._at(
            2,
            30,
            c.RecordCallback(ref=self.ref, satisfied=satisfied, note=note),
            sup,
            lambda _: self._after_callback(satisfied),
        )

    def _after_callback(self, satisfied: bool) -> None:
        sup = self.a._supervisor()
        if satisfied:
            self._close(sup)
        elif self.rng.random() < 0.5:
            self._at(
                1,
                24,
                c.ReopenCase(ref=self.ref, reason="群众对处理结果不满意,重新办理"),
                sup,
                lambda _: self._at(
                    2,
                    20,
                    c.ContactCitizen(ref=self.ref, note="重新联系当事人"),
                    self.a._head(self.unit),
                    lambda _: self._report(),
                ),
            )
        else:
            self._rectify()

    def _rectify(self) -> None:
        sup = self.a._supervisor()
        due = self.t + timedelta(days=self.rng.choice((7, 10, 15)))
        self._at(
            1,
            24,
            c.OrderRectification(ref=self.ref, instructions=self.rng.choice(d.RECTIFY_ORDERS), due_at=due),
            sup,
            lambda _: self._at(
                48,
                200,
                c.ReportRectified(ref=self.ref, note=self.rng.choice(d.RECTIFIED_NOTES)),
                self.a._head(self.unit),
                lambda _: self._verify(),
            ),
        )

    def _verify(self) -> None:
        sup = self.a._supervisor()
        ok = self.rng.random() < 0.85
        self._at(
            24,
            100,
            c.VerifyRectification(ref=self.ref, implemented=ok, note=d.VERIFY_NOTES[0 if ok else 1]),
            sup,
            lambda _: (
                self._close(sup, 4, 96)
                if ok
                else self._at(
                    48,
                    150,
                    c.ReportRectified(ref=self.ref, note=self.rng.choice(d.RECTIFIED_NOTES)),
                    self.a._head(self.unit),
                    lambda _: self._verify(),
                )
            ),
        )

    def _close(self, sup: Context, lo: float = 1, hi: float = 24) -> None:
        accepted = self.rng.random() < 0.9
        self._at(
            lo,
            hi,
            c.CloseCase(
                ref=self.ref, resolution="问题已解决,群众认可" if accepted else "已依规办结", citizen_accepted=accepted
            ),
            sup,
        )
        if self.rng.random() < 0.05:
            self._at(
                24,
                72,
                c.RecordCommendation(ref=self.ref, kind="praise", unit_code=self.unit, note="群众回访时为单位点赞"),
                sup,
            )
