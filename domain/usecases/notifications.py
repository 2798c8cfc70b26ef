"""Notifications: requested by the outbox for an event, then claimed, delivered or failed, attempt by attempt."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from domain import commands as c
from domain.errors import AlreadyExistsError, NotFoundError
from domain.notifications import DeliveryChannel, Notification, TriggerKind, notification_id
from domain.usecases.base import Receipt, Work


def _load(w: Work, text: str) -> Notification:
    return w.uow.get(Notification, UUID(text), "notification", text)


def _done(cmd: c.Command, n: Notification) -> Receipt:
    case_ref = n.payload.get("case_ref")
    return Receipt(
        cmd.name,
        n.id,
        case_ref=case_ref if isinstance(case_ref, str) else None,
        state=n.status.value,
        extra={"kind": n.kind.value, "recipient": n.recipient, "channel": n.channel.value, "attempts": n.attempts},
    )


def request_notification(w: Work, cmd: c.RequestNotification) -> Receipt:
    """Record a notification to send; the same event, recipient and channel twice is refused."""
    trigger_id = UUID(cmd.trigger_id)
    nid = notification_id(trigger_id, cmd.trigger_version, cmd.recipient, cmd.channel)
    if w.uow.exists(nid):
        raise AlreadyExistsError(
            "notification", f"{cmd.kind} of {trigger_id} v{cmd.trigger_version} to {cmd.recipient} by {cmd.channel}"
        )
    if not w.uow.exists(trigger_id):
        raise NotFoundError("triggering aggregate", str(trigger_id))
    notification = Notification(
        trigger_id=trigger_id,
        trigger_version=cmd.trigger_version,
        trigger_position=cmd.trigger_position,
        kind=TriggerKind(cmd.kind),
        recipient=cmd.recipient,
        channel=DeliveryChannel(cmd.channel),
        address=cmd.address,
        subject=cmd.subject,
        body=cmd.body,
        payload=dict(cmd.payload),
        max_attempts=cmd.max_attempts,
        backoff_seconds=cmd.backoff_seconds,
        max_backoff_seconds=cmd.max_backoff_seconds,
        meta=w.meta,
    )
    w.uow.add(notification)
    return _done(cmd, notification)


def start_delivery_attempt(w: Work, cmd: c.StartDeliveryAttempt) -> Receipt:
    """Claim the next attempt; a second claimant of the same attempt is refused."""
    notification = _load(w, cmd.notification_id)
    lease_until = w.now + timedelta(seconds=cmd.lease_seconds)
    notification.start_attempt(cmd.attempt, cmd.address, lease_until, w.meta)
    return _done(cmd, notification)


def record_delivery_attempt(w: Work, cmd: c.RecordDeliveryAttempt) -> Receipt:
    """Record how the attempt under way ended; the last allowed failure dead-letters it."""
    notification = _load(w, cmd.notification_id)
    if cmd.outcome == "delivered":
        notification.record_delivered(cmd.attempt, cmd.detail, w.meta)
    elif cmd.outcome == "failed":
        notification.record_failed(cmd.attempt, cmd.detail, w.meta)
    else:
        notification.abandon_attempt(cmd.attempt, cmd.detail, w.meta)
    return _done(cmd, notification)


def retry_notification(w: Work, cmd: c.RetryNotification) -> Receipt:
    """Send a dead letter again (after its address or the receiver was fixed)."""
    notification = _load(w, cmd.notification_id)
    notification.retry(cmd.reason, w.meta)
    return _done(cmd, notification)


HANDLERS: dict[type[c.Command], Any] = {
    c.RequestNotification: request_notification,
    c.StartDeliveryAttempt: start_delivery_attempt,
    c.RecordDeliveryAttempt: record_delivery_attempt,
    c.RetryNotification: retry_notification,
}
