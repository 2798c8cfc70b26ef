"""The case timeline: each event of a case as people read it, in Chinese and English.

One row per case event: when, what, who, the state after it, and the SLA status at
that moment (which steps were running, due when, and whether already overdue).

The opening line shows the citizen's contact as a masked phone, or as erased (已删除) once
the citizen's data were erased. A rebuild after the erasure reads the contact as erased from
the log itself; a projection following the log rewrites the opening line when the case's
``ContactErased`` event arrives (:func:`erase_contacts`), so both end with the same lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields, is_dataclass
from functools import lru_cache
from typing import Any

from domain.ids import LOCAL_TZ
from domain.values import Contact
from projections.registry import Registry
from projections.store import SQLITE_ONLY, Cursor, ViewStore

TABLE = "pj_timeline"
#: On SQLite ``WITHOUT ROWID``: the lines live in their primary key's B-tree, not in a table plus
#: an index beside it, so a rebuild (a line per case event) writes one tree, not two.
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "case_ref TEXT NOT NULL, seq INTEGER NOT NULL, position BIGINT NOT NULL, at TEXT NOT NULL, "
    "event TEXT NOT NULL, label_zh TEXT NOT NULL, label_en TEXT NOT NULL, actor TEXT NOT NULL, "
    "role TEXT NOT NULL, channel TEXT NOT NULL, state_after TEXT NOT NULL, round INTEGER NOT NULL, "
    "sla TEXT NOT NULL, details TEXT NOT NULL, PRIMARY KEY (case_ref, seq))" + SQLITE_ONLY,
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
    "ContactErased": ("个人信息已删除", "personal data erased"),
}

#: How a contact shows in ``details``: ``contact=138****8000``, or this once erased.
CONTACT_KEY = "contact="
ERASED = "已删除 (erased)"
#: The contact part of a line's details (the contact comes before every free text).
_CONTACT_PART = re.compile(r"(?:^|(?<=; ))contact=[^;]*")

_TEXT_FIELDS = ("summary", "note", "result", "reason", "instructions", "resolution")


def mask_phone(phone: str) -> str:
    """Only the first three and last four digits (138****8000)."""
    digits = [ch for ch in phone if ch.isdigit()]
    if len(digits) < 8:
        return "*" * len(digits)
    return "".join(digits[:3]) + "*" * (len(digits) - 7) + "".join(digits[-4:])


def local(moment: Any) -> str:
    """A moment as people in the county read it (``%Y-%m-%d %H:%M``, local time)."""
    # A step's deadline is shown on every line of its case while it runs: remember recent texts.
    # A fold-1 moment equals its fold-0 twin (an hour apart) as a key: never remembered.
    return local_text(moment) if moment.fold else _remembered_local_text(moment)


def local_text(moment: Any) -> str:
    """:func:`local` of a moment shown once (an event's own time): not remembered."""
    there = moment.astimezone(LOCAL_TZ)
    if there.year < 1000:  # formatted below the year is padded, by strftime it is not
        return f"{there:%Y-%m-%d %H:%M}"
    # The same text as strftime, written faster (a third cheaper than from isoformat).
    return "%04d-%02d-%02d %02d:%02d" % (there.year, there.month, there.day, there.hour, there.minute)  # noqa: UP031


_remembered_local_text = lru_cache(maxsize=4096)(local_text)


# What ``details`` shows, in its order: (field, how it is shown).
_PLAIN, _YES_NO, _MOMENT, _OFFICER, _UNIT, _CONTACT, _TEXT = range(7)
_SHOWN: tuple[tuple[str, int], ...] = (
    *((key, _PLAIN) for key in ("kind", "step", "round", "outcome", "measure", "target")),
    *((key, _YES_NO) for key in ("satisfied", "implemented", "citizen_accepted")),
    *((key, _MOMENT) for key in ("due_at", "new_due_at")),
    ("officer_id", _OFFICER),
    ("unit_id", _UNIT),
    ("contact", _CONTACT),
    *((key, _TEXT) for key in _TEXT_FIELDS),
)
#: Per event class: how many fields its events hold, and which of ``_SHOWN`` are among them.
_PLANS: dict[type, tuple[int, tuple[tuple[str, int], ...]]] = {}


def _shown(event: Any, data: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """The fields of ``_SHOWN`` this event may have (all of them when in doubt)."""
    plan = _PLANS.get(type(event))
    if plan is None:
        if not is_dataclass(event):
            return _SHOWN
        names = {f.name for f in fields(event)}
        plan = _PLANS[type(event)] = (len(names), tuple(item for item in _SHOWN if item[0] in names))
    # An event holds its class's fields; one that holds others is looked at in full.
    return plan[1] if len(data) == plan[0] else _SHOWN


def details(event: Any, registry: Registry) -> str:  # noqa: PLR0912 - a branch per way of showing
    """The event's own facts in one line; phones masked, ids replaced by codes and names."""
    data = vars(event)
    get = data.get
    parts: list[str] = []
    for key, shown in _shown(event, data):
        value = get(key)
        if shown == _PLAIN:
            if value is not None and not (key == "round" and "step" not in data):
                parts.append(f"{key}={value}")
        elif shown == _YES_NO:
            if value is not None:
                parts.append(f"{key}={'yes' if value else 'no'}")
        elif shown == _MOMENT:
            if value is not None:
                parts.append(f"{key}={local(value)}")
        elif shown == _OFFICER:
            if value is not None:
                info = registry.officers.get(value)
                parts.append(f"officer={info.name} ({info.badge})" if info else f"officer={value}")
        elif shown == _UNIT:
            if value is not None:
                unit = registry.units.get(value)
                parts.append(f"unit={unit.name} ({unit.code})" if unit else f"unit={value}")
        elif shown == _CONTACT:
            if isinstance(value, Contact):
                parts.append(f"{CONTACT_KEY}{ERASED if value.phone is None else mask_phone(value.phone)}")
        elif value:
            parts.append(f"{key}: {value}")
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


def without_contact(details: str) -> str:
    """``details`` with its contact shown as erased (the same text a rebuild after the erasure writes)."""
    return _CONTACT_PART.sub(f"{CONTACT_KEY}{ERASED}", details, count=1)


def erase_contacts(cur: Cursor, refs: Iterable[str]) -> None:
    """Show the contact of these cases' opening lines as erased (their ``ContactErased`` was just folded)."""
    for ref in sorted(set(refs)):
        cur.execute(f"SELECT seq, details FROM {TABLE} WHERE case_ref = ? AND event = 'Opened'", (ref,))
        lines = cur.fetchall()
        changed = [(erased, ref, seq) for seq, details in lines if (erased := without_contact(details)) != details]
        cur.executemany(f"UPDATE {TABLE} SET details = ? WHERE case_ref = ? AND seq = ?", changed)


def timeline(views: ViewStore, ref: str) -> list[TimelineRow]:
    """A case's history from the projection, oldest first."""
    rows = views.query(
        f"SELECT seq, position, at, event, label_zh, label_en, actor, role, channel, state_after, round, sla, details "
        f"FROM {TABLE} WHERE case_ref = ? ORDER BY seq",
        (ref,),
    )
    return [TimelineRow(*(row[i] for i in range(13))) for row in rows]
