"""The Notification aggregate: its moves, the backoff, the dead letter, and what it refuses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError as PydanticValidationError

from domain import commands as c
from domain.errors import RuleViolationError
from domain.notifications import (
    DeliveryChannel,
    Notification,
    NotificationStatus,
    TriggerKind,
    backoff,
    notification_id,
)
from domain.values import Channel, Meta, Role

T0 = datetime(2021, 11, 1, 1, 0, tzinfo=UTC)
TRIGGER = uuid.UUID(int=42)


def meta(at: datetime) -> Meta:
    """The system acting at ``at``."""
    return Meta("system", Role.SYSTEM, at, Channel.SYSTEM, "corr-1")


def requested(max_attempts: int = 3, at: datetime = T0) -> Notification:
    """A webhook notification to the office, just requested."""
    return Notification(
        trigger_id=TRIGGER,
        trigger_version=2,
        trigger_position=18,
        kind=TriggerKind.CASE_PUSHED,
        recipient="office",
        channel=DeliveryChannel.WEBHOOK,
        address="http://127.0.0.1:9/hook",
        subject="【扫码评警】新督办件",
        body="督办件已推送",
        payload={"case_ref": "PJ-20211101-00000D"},
        max_attempts=max_attempts,
        backoff_seconds=30,
        max_backoff_seconds=100,
        meta=meta(at),
    )


def names(n: Notification) -> list[str]:
    """The class names of the events not yet saved."""
    return [type(e).__name__ for e in n.collect_events()]


def test_the_id_comes_from_the_event_recipient_and_channel_so_a_second_request_collides() -> None:
    n = requested()
    assert n.id == notification_id(TRIGGER, 2, "office", "webhook")
    assert n.id != notification_id(TRIGGER, 2, "office", "email")
    assert n.id != notification_id(TRIGGER, 3, "office", "webhook")
    assert n.id != notification_id(TRIGGER, 2, "unit:PS1", "webhook")


def test_a_requested_notification_is_due_at_once() -> None:
    n = requested()
    assert n.status is NotificationStatus.PENDING
    assert n.due_at() == T0
    assert n.attempts == 0


def test_an_attempt_is_claimed_then_delivered() -> None:
    n = requested()
    n.start_attempt(1, "http://127.0.0.1:9/hook", T0 + timedelta(minutes=5), meta(T0))
    assert n.status is NotificationStatus.SENDING
    assert n.due_at() == T0 + timedelta(minutes=5)  # the lease's end
    n.record_delivered(1, "HTTP 200", meta(T0 + timedelta(seconds=1)))
    assert n.status is NotificationStatus.DELIVERED
    assert n.due_at() is None
    assert names(n) == ["Requested", "AttemptStarted", "Delivered"]


def test_a_failed_attempt_waits_an_exponential_backoff_capped_by_the_maximum() -> None:
    assert [backoff(a, 30, 100).total_seconds() for a in (1, 2, 3, 4)] == [30, 60, 100, 100]
    n = requested(max_attempts=5)
    at = T0
    for attempt, wait in ((1, 30), (2, 60), (3, 100)):
        n.start_attempt(attempt, n.address, at + timedelta(minutes=5), meta(at))
        n.record_failed(attempt, "HTTP 500", meta(at))
        assert n.status is NotificationStatus.PENDING
        assert n.next_attempt_at == at + timedelta(seconds=wait)
        at = n.next_attempt_at


def test_the_last_allowed_failure_dead_letters_and_every_attempt_is_an_event() -> None:
    n = requested(max_attempts=2)
    n.start_attempt(1, n.address, T0 + timedelta(minutes=5), meta(T0))
    n.record_failed(1, "HTTP 500", meta(T0))
    later = T0 + timedelta(seconds=30)
    n.start_attempt(2, n.address, later + timedelta(minutes=5), meta(later))
    n.record_failed(2, "HTTP 503", meta(later))
    assert n.status is NotificationStatus.DEAD
    assert n.last_error == "HTTP 503"
    assert names(n) == [
        "Requested", "AttemptStarted", "AttemptFailed", "AttemptStarted", "AttemptFailed", "DeadLettered"
    ]


def test_an_attempt_before_its_backoff_is_refused() -> None:
    n = requested()
    n.start_attempt(1, n.address, T0 + timedelta(minutes=5), meta(T0))
    n.record_failed(1, "HTTP 500", meta(T0))
    with pytest.raises(RuleViolationError, match="not due before"):
        n.start_attempt(2, n.address, T0 + timedelta(minutes=5), meta(T0 + timedelta(seconds=29)))


def test_a_second_claimant_of_the_same_attempt_is_refused() -> None:
    n = requested()
    n.start_attempt(1, n.address, T0 + timedelta(minutes=5), meta(T0))
    with pytest.raises(RuleViolationError, match=r"is sending; cannot start attempt 1: attempt 1 runs until"):
        n.start_attempt(1, n.address, T0 + timedelta(minutes=5), meta(T0))


@pytest.mark.parametrize("outcome", ["delivered", "failed"])
def test_nothing_more_is_recorded_on_a_delivered_notification(outcome: str) -> None:
    n = requested()
    n.start_attempt(1, n.address, T0 + timedelta(minutes=5), meta(T0))
    n.record_delivered(1, "HTTP 200", meta(T0))
    with pytest.raises(RuleViolationError, match=rf"{n.id}.* is delivered; cannot record attempt 1 as {outcome}"):
        getattr(n, f"record_{outcome}")(1, "again", meta(T0))
    with pytest.raises(RuleViolationError, match="is delivered; cannot start attempt 2: it was already delivered"):
        n.start_attempt(2, n.address, T0 + timedelta(minutes=5), meta(T0))
    with pytest.raises(RuleViolationError, match="only a dead letter can be retried"):
        n.retry("again", meta(T0))


def test_a_dead_letter_takes_no_attempt_until_an_administrator_retries_it() -> None:
    n = requested(max_attempts=1)
    n.start_attempt(1, n.address, T0 + timedelta(minutes=5), meta(T0))
    n.record_failed(1, "connection refused", meta(T0))
    assert n.status is NotificationStatus.DEAD
    with pytest.raises(RuleViolationError, match="is dead; cannot start attempt 2: it is a dead letter"):
        n.start_attempt(2, n.address, T0 + timedelta(minutes=5), meta(T0))
    with pytest.raises(RuleViolationError, match="is dead; cannot record attempt 1 as failed"):
        n.record_failed(1, "again", meta(T0))
    later = T0 + timedelta(hours=1)
    n.retry("the receiver is fixed", meta(later))
    assert n.status is NotificationStatus.PENDING
    assert n.due_at() == later
    # Another full round of attempts: one more here (max_attempts is 1).
    n.start_attempt(2, n.address, later + timedelta(minutes=5), meta(later))
    n.record_failed(2, "still refused", meta(later))
    assert n.status is NotificationStatus.DEAD


def test_an_attempt_with_no_outcome_is_abandoned_only_after_its_lease() -> None:
    n = requested()
    lease = T0 + timedelta(minutes=5)
    n.start_attempt(1, n.address, lease, meta(T0))
    with pytest.raises(RuleViolationError, match="its lease runs until"):
        n.abandon_attempt(1, "outbox stopped", meta(lease - timedelta(seconds=1)))
    n.abandon_attempt(1, "outbox stopped", meta(lease))
    assert n.status is NotificationStatus.PENDING
    assert str(n.last_error).startswith("no outcome recorded by")
    assert n.next_attempt_at == lease + timedelta(seconds=30)


def test_recording_the_wrong_attempt_is_refused() -> None:
    n = requested()
    with pytest.raises(RuleViolationError, match="no attempt is under way"):
        n.record_delivered(1, "HTTP 200", meta(T0))
    with pytest.raises(RuleViolationError, match="the next attempt is 1"):
        n.start_attempt(2, n.address, T0 + timedelta(minutes=5), meta(T0))
    n.start_attempt(1, n.address, T0 + timedelta(minutes=5), meta(T0))
    with pytest.raises(RuleViolationError, match="the attempt under way is 1"):
        n.record_failed(2, "HTTP 500", meta(T0))


def request(**changes: object) -> dict[str, object]:
    """The fields of a valid request, with ``changes``."""
    fields: dict[str, object] = {
        "trigger_id": str(TRIGGER), "trigger_version": 2, "trigger_position": 18, "kind": "case_pushed",
        "recipient": "unit:PS1", "channel": "log", "subject": "新督办件", "body": "督办件已推送",
        "payload": {"case_ref": "PJ-20211101-00000D"},
    }
    return fields | changes


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"payload": {"phone": "13800138000"}}, "must not carry personal data"),
        ({"recipient": "citizen:13800138000"}, "recipient"),
        ({"channel": "webhook"}, "needs an http:// or https:// address"),
        ({"channel": "email", "address": "not-an-address"}, "needs e-mail addresses"),
        ({"address": "http://127.0.0.1/"}, "a log notification has no address"),
        ({"backoff_seconds": 60, "max_backoff_seconds": 30}, "max_backoff_seconds must not be less"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"payload": {"ratio": float("nan")}}, "finite number"),  # not JSON: the log could not be read back
        ({"payload": {"ratio": float("inf")}}, "finite number"),
    ],
)
def test_a_malformed_request_is_refused_naming_what_is_wrong(changes: dict[str, object], reason: str) -> None:
    c.RequestNotification.model_validate(request())
    with pytest.raises(PydanticValidationError, match=reason):
        c.RequestNotification.model_validate(request(**changes))
