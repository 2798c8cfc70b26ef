"""Published reports: the weekly review (周点评) and the monthly bulletin (月通报).

A publication records what was published, not the document: the period, the log position
the figures were computed at and the SHA-256 of the report's canonical content. Anyone can
recompute the report from the events up to that position and compare the hash
(``pingjing report verify``); a rewritten history no longer matches.

A period may be published again (a correction after late events): each publication is a
new edition with its own identity, ``weekly-2021-W47`` for the first, ``weekly-2021-W47-2``
for the second.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum

from eventsourcing.domain import event

from domain.aggregate import DomainAggregate
from domain.errors import ValidationError
from domain.ids import NAMESPACE
from domain.values import Meta


class ReportKind(StrEnum):
    """Which report."""

    WEEKLY = "weekly"  # 周点评: the previous ISO week
    MONTHLY = "monthly"  # 月通报: the previous calendar month


#: What each kind covers: an ISO week or a calendar month.
PERIOD_PATTERNS = {ReportKind.WEEKLY: re.compile(r"^\d{4}-W\d{2}$"), ReportKind.MONTHLY: re.compile(r"^\d{4}-\d{2}$")}
_NAME = re.compile(r"^(weekly|monthly)-(\d{4}-W\d{2}|\d{4}-\d{2})(?:-(\d+))?$")


def report_id(kind: ReportKind, period: str, edition: int) -> uuid.UUID:
    """The aggregate id of one edition of a report."""
    return uuid.uuid5(NAMESPACE, f"report:{kind.value}:{period}:{edition}")


def report_name(kind: ReportKind, period: str, edition: int) -> str:
    """How people name a publication: ``weekly-2021-W47`` (first edition), ``monthly-2021-11-2``."""
    return f"{kind.value}-{period}" if edition == 1 else f"{kind.value}-{period}-{edition}"


def parse_report_name(name: str) -> tuple[ReportKind, str, int | None]:
    """``(kind, period, edition)`` from a publication's name; no edition suffix means "the latest"."""
    m = _NAME.match(name.strip())
    if not m:
        raise ValidationError(
            f"{name!r} is not a report name (expected e.g. weekly-2021-W47, monthly-2021-11 or weekly-2021-W47-2)"
        )
    kind = ReportKind(m.group(1))
    if not PERIOD_PATTERNS[kind].match(m.group(2)):
        raise ValidationError(
            f"{name!r}: a {kind.value} report covers a period like "
            f"{'2021-W47' if kind is ReportKind.WEEKLY else '2021-11'}"
        )
    return kind, m.group(2), int(m.group(3)) if m.group(3) else None


class Report(DomainAggregate):
    """One publication of a weekly review or monthly bulletin."""

    @staticmethod
    def create_id(kind: ReportKind, period: str, edition: int, **_: object) -> uuid.UUID:
        """A publication is found by kind, period and edition."""
        return report_id(ReportKind(kind), period, edition)

    @event("Published")
    def __init__(
        self,
        kind: ReportKind,
        period: str,
        edition: int,
        title: str,
        position: int,
        content_hash: str,
        meta: Meta,
    ) -> None:
        self.kind = ReportKind(kind)
        self.period = period
        self.edition = edition
        self.title = title
        self.position = position
        self.content_hash = content_hash
        self.published_at = meta.occurred_at
        self.published_by = meta.actor

    @property
    def name(self) -> str:
        """``weekly-2021-W47``, ``monthly-2021-11-2``, ..."""
        return report_name(self.kind, self.period, self.edition)

    @property
    def label(self) -> str:
        """How refusals name this publication."""
        return f"report {self.name}"
