"""The demo's machinery: a time-ordered simulation, seeded ids, the county's registry."""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import count

from adapters.demo import data as d
from domain import commands as c
from domain.application import Context, PingjingApp
from domain.clock import token_from_int
from domain.errors import PingjingError
from domain.ids import LOCAL_TZ
from domain.usecases import Receipt
from domain.values import Actor, Channel, Role

#: Follow-ups come at least this long after their cause, so a batch never holds a cause and its effect.
WINDOW = timedelta(minutes=10)

ADMIN = Context(Actor("admin", Role.ADMIN), Channel.API)
CITIZEN = Context(Actor("anonymous", Role.CITIZEN), Channel.QR)
DISPATCH = Context(Actor.system(), Channel.IMPORT)


class DemoError(Exception):
    """The demo cannot be loaded here (e.g. the store is not empty)."""


class SeededIds:
    """Ids and tokens from a seeded generator: the same seed, the same ids."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"ids-{seed}")

    def new_id(self) -> uuid.UUID:
        """A reproducible UUID4."""
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def new_token(self, length: int) -> str:
        """A reproducible token."""
        return token_from_int(self.rng.getrandbits(5 * length), length)


@dataclass
class DemoResult:
    """What the demo loaded."""

    units: int = 0
    officers: int = 0
    encounters: int = 0
    ratings: int = 0
    cases: int = 0
    events: int = 0
    cao_ref: str = ""


Then = Callable[[Receipt], None]


@dataclass(order=True)
class _Item:
    at: datetime
    seq: int
    command: c.Command = field(compare=False)
    context: Context = field(compare=False)
    then: Then | None = field(compare=False, default=None)


class Simulation:
    """A time-ordered queue of commands; follow-ups are scheduled from receipts."""

    def __init__(self, app: PingjingApp, end: datetime, window: timedelta = WINDOW) -> None:
        self.window = window
        self.app = app
        self.end = end
        self.queue: list[_Item] = []
        self.seq = count()
        self.result = DemoResult()

    def at(
        self, when: datetime, command: c.Command, context: Context, then: Then | None = None, *, force: bool = False
    ) -> None:
        """Schedule ``command`` at ``when`` (dropped past the demo's end unless ``force``)."""
        if when > self.end and not force:
            return
        heapq.heappush(self.queue, _Item(when, next(self.seq), command, context, then))

    def run(self) -> None:
        """Execute everything in time order, one transaction per window.

        A follow-up is scheduled only once its cause is stored, so it always lands in a later
        window; within a case every follow-up is later than its cause.
        """
        while self.queue:
            window_end = self.queue[0].at + self.window
            batch: list[_Item] = []
            while self.queue and self.queue[0].at < window_end:
                batch.append(heapq.heappop(self.queue))
            items = [(i.command, Context(i.context.actor, i.context.channel, i.at)) for i in batch]
            for item, outcome in zip(batch, self.app.execute_batch(items), strict=True):
                if isinstance(outcome, PingjingError):
                    raise DemoError(f"demo command {item.command.name} at {item.at} failed: {outcome}")
                if item.then is not None:
                    item.then(outcome)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A moment on ``day`` in Asia/Shanghai."""
    return datetime.combine(day, time(hour, minute), tzinfo=LOCAL_TZ)


@dataclass
class County:
    """The registered county: units and their officers' badges."""

    units: dict[str, str] = field(default_factory=dict)  # code -> kind
    officers: dict[str, list[str]] = field(default_factory=dict)  # unit code -> badges
    heads: dict[str, str] = field(default_factory=dict)  # unit code -> head badge


def register_county(sim: Simulation, rng: random.Random, when: datetime) -> County:
    """Bureau, 15 stations, traffic brigade, window hall, supervision office; ~180 officers."""
    county = County()
    plan: list[tuple[tuple[str, str], str, str | None, int]] = [(d.BUREAU, "bureau", None, 6)]
    plan += [(s, "police_station", d.BUREAU[0], rng.randint(8, 10)) for s in d.STATIONS]
    plan += [
        (d.TRAFFIC, "traffic_brigade", d.BUREAU[0], 20),
        (d.WINDOW, "service_window", d.BUREAU[0], 12),
        (d.SUPERVISION, "supervision_office", d.BUREAU[0], 6),
    ]
    badge_no = count(130101)
    for (code, name), kind, parent, staff in plan:
        sim.at(when, c.RegisterUnit(code=code, unit_name=name, kind=kind, parent_code=parent), ADMIN, force=True)
        county.units[code] = kind
        badges = []
        for i in range(staff):
            badge = str(next(badge_no))
            auxiliary = i >= 3 and rng.random() < 0.4
            full_name = rng.choice(d.SURNAMES) + "".join(rng.choice(d.GIVEN) for _ in range(rng.choice((1, 2))))
            sim.at(
                when,
                c.RegisterOfficer(
                    badge=badge, officer_name=full_name, kind="auxiliary" if auxiliary else "police", unit_code=code
                ),
                ADMIN,
                force=True,
            )
            badges.append(badge)
        county.officers[code] = badges
        county.heads[code] = badges[0]
        sim.at(when, c.AssignUnitHead(unit_code=code, badge=badges[0]), ADMIN, force=True)
        sim.at(when, c.IssueQr(subject="unit", key=code), ADMIN, force=True)
        for badge in badges:
            sim.at(when, c.IssueQr(subject="officer", key=badge), ADMIN, force=True)
    sim.result.units = len(county.units)
    sim.result.officers = sum(len(b) for b in county.officers.values())
    return county
