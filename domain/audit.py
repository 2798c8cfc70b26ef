"""The procedural audit score of a case (案卷评查): 100 points, less a deduction per defect.

Modelled on the seed's standard procedural case file with deduction items. The table is
here, in one place; the README prints it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

FULL_SCORE = 100


@dataclass(frozen=True)
class Deduction:
    """One kind of defect and what it costs."""

    code: str
    points: int
    zh: str
    en: str


DEDUCTIONS: dict[str, Deduction] = {
    d.code: d
    for d in (
        Deduction("late_step", 5, "环节超时办理", "a step done after its deadline"),
        Deduction("missed_step", 10, "应办环节未办", "a required step never done (the case closed without it)"),
        Deduction("failed_callback", 2, "回访未接通", "a callback attempt that did not reach the citizen"),
        Deduction("reopened", 10, "重新办理", "the case was reopened"),
        Deduction("no_resolution", 10, "办结未经群众确认", "closed without a resolution confirmed by the citizen"),
        Deduction("not_accepted", 5, "群众不认可处理结果", "the citizen did not accept the resolution"),
    )
}


def audit_score(codes: Iterable[str]) -> int:
    """100 less every deduction, never below zero."""
    return max(0, FULL_SCORE - sum(DEDUCTIONS[code].points for code in codes))
