"""A case told event by event: what, when, who, and the state after each step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.application import PingjingApp
from domain.case import Case
from domain.ids import LOCAL_TZ
from domain.values import Contact

#: How each event reads, in English and Chinese.
EVENT_LABELS: dict[str, tuple[str, str]] = {
    "Opened": ("opened", "立案"),
    "Pushed": ("pushed to unit", "推送至单位"),
    "CitizenContacted": ("unit contacted citizen", "单位联系当事人"),
    "ResultReported": ("unit reported result", "单位反馈结果"),
    "CallbackRecorded": ("callback", "回访"),
    "CallbackAttemptFailed": ("callback attempt, not reached", "回访未接通"),
    "Supervised": ("supervision contact", "督办沟通"),
    "Flagged": ("flagged for listed supervision", "挂牌督办"),
    "RectificationOrdered": ("rectification ordered", "责令整改"),
    "RectificationReported": ("rectification reported", "整改完成"),
    "Verified": ("verification", "落实核查"),
    "Closed": ("closed", "办结"),
    "Reopened": ("reopened", "重新办理"),
    "AccountabilityRecorded": ("accountability", "追责"),
    "CommendationRecorded": ("commendation", "表扬"),
    "SlaWarned": ("SLA warning", "临期预警"),
    "SlaBreached": ("SLA breach", "超期"),
}

_TEXT_FIELDS = ("summary", "note", "result", "reason", "instructions", "resolution")


def mask_phone(phone: str) -> str:
    """Show only the first three and last four digits (138****8000)."""
    digits = [ch for ch in phone if ch.isdigit()]
    if len(digits) < 8:
        return "*" * len(digits)
    return "".join(digits[:3]) + "*" * (len(digits) - 7) + "".join(digits[-4:])


@dataclass(frozen=True)
class Step:
    """One line of a case's story."""

    number: int
    at: str
    event: str
    label_en: str
    label_zh: str
    actor: str
    channel: str
    state_after: str
    round: int
    details: str


class Names:
    """Resolves unit and officer ids to readable names, with a small cache."""

    def __init__(self, app: PingjingApp) -> None:
        self.app = app
        self._cache: dict[UUID, str] = {}

    def __call__(self, aggregate_id: UUID | None) -> str:
        """``name (code)`` of a unit or officer, or the id if unknown."""
        if aggregate_id is None:
            return "-"
        if aggregate_id not in self._cache:
            agg: Any = self.app.get_aggregate(aggregate_id)
            key = getattr(agg, "code", None) or getattr(agg, "badge", None)
            self._cache[aggregate_id] = f"{agg.name} ({key})" if agg is not None else str(aggregate_id)
        return self._cache[aggregate_id]


def _details(event: Any, names: Names) -> str:
    parts: list[str] = []
    data = vars(event)
    if "kind" in data:
        parts.append(f"kind={data['kind']}")
    for key in ("step", "round", "outcome", "measure", "target"):
        if key in data and data[key] is not None:
            parts.append(f"{key}={data[key]}")
    for key in ("satisfied", "implemented", "citizen_accepted"):
        if key in data and data[key] is not None:
            parts.append(f"{key}={'yes' if data[key] else 'no'}")
    for key in ("due_at", "new_due_at"):
        if data.get(key) is not None:
            parts.append(f"{key}={data[key].astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}")
    if data.get("officer_id") is not None:
        parts.append(f"officer={names(data['officer_id'])}")
    if data.get("unit_id") is not None:
        parts.append(f"unit={names(data['unit_id'])}")
    contact = data.get("contact")
    if isinstance(contact, Contact):
        parts.append(f"contact={mask_phone(contact.phone)}")
    for key in _TEXT_FIELDS:
        if data.get(key):
            parts.append(f"{key}: {data[key]}")
    return "; ".join(parts)


def case_story(app: PingjingApp, ref: str) -> tuple[Case, list[Step]]:
    """The case as it stands now, and every event that made it so."""
    case = app.get_case(ref)
    names = Names(app)
    steps: list[Step] = []
    replayed: Any = None
    events: list[Any] = list(app.events.get(case.id))
    for number, event in enumerate(events, start=1):
        replayed = event.mutate(replayed)
        name = type(event).__name__
        en, zh = EVENT_LABELS.get(name, (name, name))
        meta = event.meta
        steps.append(
            Step(
                number=number,
                at=meta.occurred_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
                event=name,
                label_en=en,
                label_zh=zh,
                actor="system" if meta.role == "system" else f"{meta.role}:{meta.actor}",
                channel=meta.channel.value,
                state_after=replayed.state.value,
                round=replayed.round,
                details=_details(event, names),
            )
        )
    return case, steps
