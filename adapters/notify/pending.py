"""The outbox's read model: one row per notification, folded from the Notification events.

The outbox writes the rows of a page of events in the transaction that moves its tracking
position, so the table is exactly what the events up to that position say; dropped, it is
rebuilt from the log. Delivery reads it to find what is due without scanning the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain.notifications import Notification, NotificationStatus
from projections.store import Cursor, ViewStore

TABLE = "pj_notifications"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pj_notifications ("
    "id TEXT PRIMARY KEY, kind TEXT NOT NULL, recipient TEXT NOT NULL, channel TEXT NOT NULL, "
    "address TEXT NOT NULL, subject TEXT NOT NULL, case_ref TEXT, status TEXT NOT NULL, "
    "attempts INTEGER NOT NULL, due_at TEXT, requested_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
    "last_error TEXT, detail TEXT, trigger_position BIGINT NOT NULL, version INTEGER NOT NULL, "
    "position BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS pj_notifications_due ON pj_notifications (status, due_at)",
)
COLUMNS = (
    "id", "kind", "recipient", "channel", "address", "subject", "case_ref", "status", "attempts", "due_at",
    "requested_at", "updated_at", "last_error", "detail", "trigger_position", "version", "position",
)
UPSERT = (
    "INSERT INTO pj_notifications (id, kind, recipient, channel, address, subject, case_ref, status, attempts, "
    "due_at, requested_at, updated_at, last_error, detail, trigger_position, version, position) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, "
    "due_at = excluded.due_at, updated_at = excluded.updated_at, last_error = excluded.last_error, "
    "detail = excluded.detail, address = excluded.address, version = excluded.version, "
    "position = excluded.position"
)
# Only pending and running attempts have a due moment: the next attempt, or the end of the lease.
DUE = (
    "SELECT id FROM pj_notifications WHERE status IN ('pending', 'sending') AND due_at <= ? "
    "ORDER BY due_at, id LIMIT ?"
)
COUNTS = "SELECT channel, status, COUNT(*) FROM pj_notifications GROUP BY channel, status ORDER BY channel, status"
SELECT = (
    "SELECT id, kind, recipient, channel, address, subject, case_ref, status, attempts, due_at, "
    "requested_at, updated_at, last_error, detail, trigger_position, version, position FROM pj_notifications"
)


def ts(moment: datetime | None) -> str | None:
    """A moment stored as sortable UTC text."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_ts(text: str | None) -> datetime | None:
    """Inverse of :func:`ts`."""
    return None if text is None else datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    """One notification as the outbox and the CLI see it."""

    id: str
    kind: str
    recipient: str
    channel: str
    address: str
    subject: str
    case_ref: str | None
    status: str
    attempts: int
    due_at: datetime | None
    requested_at: datetime | None
    updated_at: datetime | None
    last_error: str | None
    detail: str | None
    trigger_position: int
    version: int
    position: int

    @classmethod
    def from_db(cls, values: tuple[Any, ...]) -> Row:
        """A row as the database returns it."""
        data = dict(zip(COLUMNS, values, strict=True))
        for key in ("due_at", "requested_at", "updated_at"):
            data[key] = from_ts(data[key])
        data["attempts"], data["trigger_position"] = int(data["attempts"]), int(data["trigger_position"])
        data["version"], data["position"] = int(data["version"]), int(data["position"])
        return cls(**data)


def row_of(notification: Notification, position: int) -> tuple[Any, ...]:
    """The row of ``notification`` as its event at ``position`` left it."""
    case_ref = notification.payload.get("case_ref")
    return (
        str(notification.id), notification.kind.value, notification.recipient, notification.channel.value,
        notification.attempt_address if notification.attempt_address is not None else notification.address,
        notification.subject, case_ref if isinstance(case_ref, str) else None, notification.status.value,
        notification.attempts, ts(notification.due_at()), ts(notification.requested_at),
        ts(notification.modified_on), notification.last_error, notification.detail,
        notification.trigger_position, notification.version, position,
    )


def write(cur: Cursor, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert or update rows (inside the transaction that records the outbox's position)."""
    cur.executemany(UPSERT, list(rows))


def due(views: ViewStore, now: datetime, limit: int) -> list[UUID]:
    """Notifications whose next attempt (or a running attempt's lease end) has come, oldest first."""
    return [UUID(str(r[0])) for r in views.query(DUE, (ts(now), limit))]


def counts(views: ViewStore) -> list[tuple[str, str, int]]:
    """``(channel, status, count)`` for every channel and status present."""
    return [(str(ch), str(st), int(n)) for ch, st, n in views.query(COUNTS)]


def listing(views: ViewStore, *, status: NotificationStatus | None = None, limit: int = 50) -> list[Row]:
    """The latest notifications (optionally in one status), newest first."""
    where, params = ("WHERE status = ? ", [status.value]) if status is not None else ("", [])
    rows = views.query(SELECT + f" {where}ORDER BY requested_at DESC, id LIMIT ?", (*params, limit))
    return [Row.from_db(r) for r in rows]
