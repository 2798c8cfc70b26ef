"""Notifications (三个一: pushed at once, reported back at once): one message to one recipient on one channel.

A notification is requested for a triggering event (a case pushed, a result reported, an
SLA warning or breach, a report published) and then delivered through its channel in
attempts: each attempt is claimed first (so two outboxes never send the same attempt),
then recorded as delivered or failed. A failed attempt waits an exponential backoff; the
last allowed one dead-letters the notification, which an administrator may retry.

Its id is derived from the triggering event and the recipient and channel, so asking for
the same notification twice collides in the event store instead of sending it twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import DomainAggregate
from domain.errors import RuleViolationError
from domain.ids import NAMESPACE
from domain.values import Meta


class TriggerKind(StrEnum):
    """What a notification tells."""

    CASE_PUSHED = "case_pushed"
    RESULT_REPORTED = "result_reported"
    SLA_WARNING = "sla_warning"
    SLA_BREACH = "sla_breach"
    REPORT_PUBLISHED = "report_published"


class DeliveryChannel(StrEnum):
    """How a notification travels."""

    LOG = "log"  # a structured log line
    WEBHOOK = "webhook"  # an HMAC-signed JSON POST
    EMAIL = "email"  # a mail over SMTP


class NotificationStatus(StrEnum):
    """Where a notification stands."""

    PENDING = "pending"  # waiting for its next attempt
    SENDING = "sending"  # an attempt is claimed and under way
    DELIVERED = "delivered"
    DEAD = "dead"  # every allowed attempt failed (dead letter)


OFFICE = "office"


def unit_recipient(code: str) -> str:
    """The recipient name of a unit's head: ``unit:LS-PCS-01``."""
    return f"unit:{code}"


def notification_id(trigger_id: uuid.UUID, trigger_version: int, recipient: str, channel: str) -> uuid.UUID:
    """The aggregate id of the notification of one event to one recipient on one channel."""
    return uuid.uuid5(NAMESPACE, f"notification:{trigger_id}:{trigger_version}:{recipient}:{channel}")


def backoff(attempt: int, base_seconds: float, max_seconds: float) -> timedelta:
    """The wait after failed attempt ``attempt`` (1, 2, ...): ``base * 2**(attempt-1)``, at most ``max``."""
    return timedelta(seconds=min(base_seconds * 2 ** min(attempt - 1, 62), max_seconds))


class Notification(DomainAggregate):
    """One message to one recipient on one channel, and every attempt to deliver it."""

    @staticmethod
    def create_id(trigger_id: uuid.UUID, trigger_version: int, recipient: str, channel: str, **_: object) -> uuid.UUID:
        """A notification is found by its triggering event, recipient and channel."""
        return notification_id(trigger_id, trigger_version, recipient, channel)

    @event("Requested")
    def __init__(
        self,
        trigger_id: uuid.UUID,
        trigger_version: int,
        trigger_position: int,
        kind: TriggerKind,
        recipient: str,
        channel: DeliveryChannel,
        address: str,
        subject: str,
        body: str,
        payload: dict[str, Any],
        max_attempts: int,
        backoff_seconds: float,
        max_backoff_seconds: float,
        meta: Meta,
    ) -> None:
        self.trigger_id = trigger_id
        self.trigger_version = trigger_version
        self.trigger_position = trigger_position
        self.kind = TriggerKind(kind)
        self.recipient = recipient
        self.channel = DeliveryChannel(channel)
        self.address = address
        self.subject = subject
        self.body = body
        self.payload = payload
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.requested_at = meta.occurred_at
        self.status = NotificationStatus.PENDING
        self.attempts = 0
        #: The attempt after which a failure dead-letters (moves on with each manual retry).
        self.last_allowed = max_attempts
        self.next_attempt_at: datetime | None = meta.occurred_at
        self.lease_until: datetime | None = None
        self.attempt_address: str | None = None
        self.last_error: str | None = None
        self.delivered_at: datetime | None = None
        self.detail: str | None = None

    # -- reading ---------------------------------------------------------------------------

    @property
    def label(self) -> str:
        """How refusals name this notification."""
        return f"notification {self.id} ({self.kind.value} to {self.recipient} by {self.channel.value})"

    def due_at(self) -> datetime | None:
        """When someone should act next: the next attempt, or the end of a running attempt's lease."""
        if self.status is NotificationStatus.PENDING:
            return self.next_attempt_at
        if self.status is NotificationStatus.SENDING:
            return self.lease_until
        return None

    # -- moves -----------------------------------------------------------------------------

    def _refuse(self, what: str, why: str) -> RuleViolationError:
        return RuleViolationError(f"{self.label} is {self.status.value}; cannot {what}: {why}")

    def start_attempt(self, attempt: int, address: str, lease_until: datetime, meta: Meta) -> None:
        """Claim the next attempt until ``lease_until``; only one claimant wins it."""
        what = f"start attempt {attempt}"
        if self.status is not NotificationStatus.PENDING:
            why = {
                NotificationStatus.DELIVERED: "it was already delivered",
                NotificationStatus.DEAD: "it is a dead letter; retry it first",
                NotificationStatus.SENDING: f"attempt {self.attempts} runs until {_iso(self.lease_until)}",
            }[self.status]
            raise self._refuse(what, why)
        if attempt != self.attempts + 1:
            raise self._refuse(what, f"the next attempt is {self.attempts + 1}")
        if self.next_attempt_at is not None and meta.occurred_at < self.next_attempt_at:
            raise self._refuse(what, f"it is not due before {_iso(self.next_attempt_at)}")
        if lease_until <= meta.occurred_at:
            raise self._refuse(what, "the lease must end after the attempt starts")
        self._attempt_started(attempt=attempt, address=address, lease_until=lease_until, meta=meta)

    @event("AttemptStarted")
    def _attempt_started(self, attempt: int, address: str, lease_until: datetime, meta: Meta) -> None:
        self.status = NotificationStatus.SENDING
        self.attempts = attempt
        self.attempt_address = address
        self.lease_until = lease_until
        self.next_attempt_at = None

    def _require_running(self, what: str, attempt: int) -> None:
        if self.status is not NotificationStatus.SENDING:
            why = "no attempt is under way" if self.attempts == 0 else f"attempt {self.attempts} was already recorded"
            raise self._refuse(what, why)
        if attempt != self.attempts:
            raise self._refuse(what, f"the attempt under way is {self.attempts}")

    def record_delivered(self, attempt: int, detail: str, meta: Meta) -> None:
        """The attempt under way reached the recipient."""
        self._require_running(f"record attempt {attempt} as delivered", attempt)
        self._delivered(attempt=attempt, detail=detail, meta=meta)

    @event("Delivered")
    def _delivered(self, attempt: int, detail: str, meta: Meta) -> None:
        self.status = NotificationStatus.DELIVERED
        self.delivered_at = meta.occurred_at
        self.detail = detail
        self.lease_until = None

    def record_failed(self, attempt: int, error: str, meta: Meta) -> None:
        """The attempt under way failed: wait the backoff, or dead-letter after the last allowed attempt."""
        self._require_running(f"record attempt {attempt} as failed", attempt)
        self._fail(attempt, error, meta)

    def abandon_attempt(self, attempt: int, why: str, meta: Meta) -> None:
        """Count an attempt whose claimant recorded no outcome before its lease ran out as failed."""
        what = f"abandon attempt {attempt}"
        self._require_running(what, attempt)
        if self.lease_until is not None and meta.occurred_at < self.lease_until:
            raise self._refuse(what, f"its lease runs until {_iso(self.lease_until)}")
        self._fail(attempt, f"no outcome recorded by {_iso(self.lease_until)}: {why}", meta)

    def _fail(self, attempt: int, error: str, meta: Meta) -> None:
        last = attempt >= self.last_allowed
        wait = backoff(attempt, self.backoff_seconds, self.max_backoff_seconds)
        next_at = None if last else meta.occurred_at + wait
        self._attempt_failed(attempt=attempt, error=error, next_attempt_at=next_at, meta=meta)
        if last:
            self._dead_lettered(attempts=attempt, last_error=error, meta=meta)

    @event("AttemptFailed")
    def _attempt_failed(self, attempt: int, error: str, next_attempt_at: datetime | None, meta: Meta) -> None:
        self.status = NotificationStatus.PENDING
        self.last_error = error
        self.next_attempt_at = next_attempt_at
        self.lease_until = None

    @event("DeadLettered")
    def _dead_lettered(self, attempts: int, last_error: str, meta: Meta) -> None:
        self.status = NotificationStatus.DEAD
        self.next_attempt_at = None

    def retry(self, reason: str, meta: Meta) -> None:
        """Give a dead letter another round of attempts, the first one at once."""
        if self.status is not NotificationStatus.DEAD:
            raise self._refuse("retry it", "only a dead letter can be retried")
        self._retried(reason=reason, last_allowed=self.attempts + self.max_attempts, meta=meta)

    @event("Retried")
    def _retried(self, reason: str, last_allowed: int, meta: Meta) -> None:
        self.status = NotificationStatus.PENDING
        self.last_allowed = last_allowed
        self.next_attempt_at = meta.occurred_at


def _iso(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat()
