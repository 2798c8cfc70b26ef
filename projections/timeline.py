"""The case timeline: each event of a case as people read it, in Chinese and English.

One row per case event: when, what, who, the state after it, and the SLA status at
that moment (which steps were running, due when, and whether already overdue).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.ids import LOCAL_TZ
from domain.values import Contact
from projections.registry import Registry
from projections.store import ViewStore

TABLE = "pj_timeline"
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "case_ref TEXT NOT NULL, seq INTEGER NOT NULL, position BIGINT NOT NULL, at TEXT NOT NULL, "
    "event TEXT NOT NULL, label_zh TEXT NOT NULL, label_en TEXT NOT NULL, actor TEXT NOT NULL, "
    "role TEXT NOT NULL, channel TEXT NOT NULL, state_after TEXT NOT NULL, round INTEGER NOT NULL, "
    "sla TEXT NOT NULL, details TEXT NOT NULL, PRIMARY KEY (case_ref, seq))",
)

#: How each event reads, in Chinese and English.
EVENT_LABELS: dict[str, tuple[str, str]] = {
    "Opened": ("立案", "opened"),
    "Pushed": ("推送至单位", "pushed to unit"),
    "CitizenContacted": ("单位联系当事人", "unit contacted citizen"),
    "ResultReported": ("单位反馈结果", "unit reported result"),
    "CallbackRecorded": ("回访", "callback"),
    "CallbackAttemptFailed": ("回访未接通", "callback attempt, not reached"),
    "Supervised": ("督办沟通", "supervision contact"),
    "Flagged": ("挂牌督办", "flagged for listed supervision"),
    "RectificationOrdered": ("责令整改", "rectification ordered"),
    "RectificationReported": ("整改完成", "rectification reported"),
    "Verified": ("落实核查", "verification"),
    "Closed": ("办结", "closed"),
    "Reopened": ("重新办理", "reopened"),
    "AccountabilityRecorded": ("追责", "accountability"),
    "CommendationRecorded": ("表扬", "commendation"),
    "SlaWarned": ("临期预警", "SLA warning"),
    "SlaBreached": ("超期", "SLA breach"),
}

_TEXT_FIELDS = ("summary", "note", "result", "reason", "instructions", "resolution")


def mask_phone(phone: str) -> str:
    """Only the first three and last four digits (138****8000)."""
    digits = [ch for ch in phone if ch.isdigit()]
    if len(digits) < 8:
        return "*" * len(digits)
    return "".join(digits[:3]) + "*" * (len(digits) - 7) + "".join(digits[-4:])


def local(moment: Any) -> str:
    """A moment as people in the county read it."""
    return f"{moment.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}"


def details(event: Any, registry: Registry) -> str:
    """The event's own facts in one line; phones masked, ids replaced by codes and names."""
    data = vars(event)
    parts: list[str] = []
    for key in ("kind", "step", "round", "outcome", "measure", "target"):
        if data.get(key) is not None and not (key == "round" and "step" not in data):
            parts.append(f"{key}={data[key]}")
    for key in ("satisfied", "implemented", "citizen_accepted"):
        if data.get(key) is not None:
            parts.append(f"{key}={'yes' if data[key] else 'no'}")
    for key in ("due_at", "new_due_at"):
        if data.get(key) is not None:
            parts.append(f"{key}={local(data[key])}")
    if data.get("officer_id") is not None:
        info = registry.officers.get(data["officer_id"])
        parts.append(f"officer={info.name} ({info.badge})" if info else f"officer={data['officer_id']}")
    if data.get("unit_id") is not None:
        unit = registry.units.get(data["unit_id"])
        parts.append(f"unit={unit.name} ({unit.code})" if unit else f"unit={data['unit_id']}")
    contact = data.get("contact")
    if isinstance(contact, Contact):
        parts.append(f"contact={mask_phone(contact.phone)}")
    parts.extend(f"{key}: {data[key]}" for key in _TEXT_FIELDS if data.get(key))
    return "; ".join(parts)


@dataclass(frozen=True)
class TimelineRow:
    """One line of a case's history."""

    seq: int
    position: int
    at: str
    event: str
    label_zh: str
    label_en: str
    actor: str
    role: str
    channel: str
    state_after: str
    round: int
    sla: str
    details: str


INSERT = f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def timeline(views: ViewStore, ref: str) -> list[TimelineRow]:
    """A case's history from the projection, oldest first."""
    rows = views.query(
        f"SELECT seq, position, at, event, label_zh, label_en, actor, role, channel, state_after, round, sla, details "
        f"FROM {TABLE} WHERE case_ref = ? ORDER BY seq",
        (ref,),
    )
    return [TimelineRow(*(row[i] for i in range(13))) for row in rows]
