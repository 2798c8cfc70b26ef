"""Webhook delivery to a real receiver on 127.0.0.1: signatures, retries after the backoff, dead letters.

The receiver checks the HMAC signature with its own copy of the secret. Time is the
FakeClock's: a retry becomes due when the test moves the clock, nobody sleeps.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from adapters.notify.config import NotificationConfig
from adapters.notify.outbox import Outbox
from domain import commands as c
from domain.application import PingjingApp
from domain.errors import PermissionDeniedError
from domain.ids import case_id
from domain.notifications import NotificationStatus, notification_id
from tests.conftest import ADMIN, SYSTEM, County, make_app
from tests.fakes import FakeClock
from tests.notifications.conftest import (
    SECRET,
    SECRET_ENV,
    WebhookReceiver,
    config_from,
    free_port,
    outbox_for,
    webhook_config,
)
from tests.notifications.test_outbox import notification, notification_events, pushed_version


@pytest.fixture
def app(clock: FakeClock, tmp_path: Path) -> Iterator[PingjingApp]:
    """The application on a SQLite file."""
    application = make_app(str(tmp_path / "events.sqlite3"), clock)
    yield application
    application.close()


@pytest.fixture
def county(app: PingjingApp, clock: FakeClock) -> County:
    """The tiny county on that file."""
    return County(app, clock).setup()


def office_webhook(county: County, ref: str) -> str:
    """The id of the office's webhook notification of the case's push."""
    return str(notification_id(case_id(ref), pushed_version(county.app, ref), "office", "webhook"))


def test_a_pushed_case_reaches_the_webhook_signed_with_the_shared_secret(
    county: County, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    ref = county.open_case()
    summary = outbox_for(county.app, webhook_config(tmp_path, receiver.url)).run_once()
    assert summary.delivered == 3  # the log line of the office and of the unit, the office's webhook
    [request] = receiver.requests
    nid = office_webhook(county, ref)
    assert request.status == 200
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers["X-Pingjing-Notification"] == nid
    timestamp = request.headers["X-Pingjing-Timestamp"]
    assert timestamp == str(int(county.clock.now().timestamp()))
    signed = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Pingjing-Signature"] == f"sha256={signed}"
    body = request.json
    assert body["id"] == nid
    assert body["kind"] == "case_pushed"
    assert body["recipient"] == "office"
    assert body["attempt"] == 1
    assert body["payload"]["case_ref"] == ref
    assert body["subject"].startswith("【扫码评警】新督办件")
    assert notification(county.app, UUID(nid)).detail == "HTTP 200: accepted"


def test_a_failing_receiver_gets_the_notification_again_after_the_backoff_and_accepts_it_once(
    county: County, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    receiver.fail_first = 2
    ref = county.open_case()
    outbox = outbox_for(county.app, webhook_config(tmp_path, receiver.url, backoff=30))
    outbox.run_once()
    assert [r.status for r in receiver.requests] == [500]
    outbox.run_once()  # not due yet: nothing is sent
    county.clock.advance(seconds=29)
    outbox.run_once()
    assert len(receiver.requests) == 1
    county.clock.advance(seconds=1)
    assert outbox.run_once().failed == 1
    assert [r.status for r in receiver.requests] == [500, 500]
    county.clock.advance(seconds=59)  # the second wait is twice as long
    outbox.run_once()
    assert len(receiver.requests) == 2
    county.clock.advance(seconds=1)
    assert outbox.run_once().delivered == 1
    county.clock.advance(hours=1)
    outbox.run_once()

    nid = office_webhook(county, ref)
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert [r.json["attempt"] for r in receiver.requests] == [1, 2, 3]
    assert {r.headers["X-Pingjing-Notification"] for r in receiver.requests} == {nid}
    assert [a["id"] for a in receiver.accepted] == [nid]
    assert notification_events(county.app)[notification_id(case_id(ref), 2, "office", "webhook")] == [
        "Requested",
        "AttemptStarted", "AttemptFailed",
        "AttemptStarted", "AttemptFailed",
        "AttemptStarted", "Delivered",
    ]


def test_a_receiver_that_always_fails_dead_letters_after_the_maximum_and_an_admin_can_retry(
    county: County, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    receiver.fail_first = 1000
    ref = county.open_case()
    outbox = outbox_for(county.app, webhook_config(tmp_path, receiver.url, max_attempts=3, backoff=10))
    summaries = []
    for _ in range(6):
        summaries.append(outbox.run_once())
        county.clock.advance(minutes=10)
    assert len(receiver.requests) == 3
    assert sum(s.dead for s in summaries) == 1
    nid = notification_id(case_id(ref), 2, "office", "webhook")
    n = notification(county.app, nid)
    assert n.status is NotificationStatus.DEAD
    assert n.last_error == "HTTP 500 Internal Server Error: try again"
    assert notification_events(county.app)[nid] == [
        "Requested", *(["AttemptStarted", "AttemptFailed"] * 3), "DeadLettered"
    ]
    assert ("webhook", "dead", 1) in outbox.status().counts

    retry = c.RetryNotification(notification_id=str(nid), reason="接收端已修复")
    with pytest.raises(PermissionDeniedError):
        county.app.retry_notification(retry, SYSTEM)
    receiver.fail_first = 0
    county.app.retry_notification(retry, ADMIN)
    assert outbox.run_once().delivered == 1
    assert [a["attempt"] for a in receiver.accepted] == [4]
    assert notification(county.app, nid).status is NotificationStatus.DELIVERED


def test_a_wrong_secret_is_refused_by_the_receiver_and_recorded_as_a_failed_attempt(
    county: County, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    ref = county.open_case()
    wrong = config_from(
        tmp_path / "wrong.toml",
        f'[office]\nwebhook = true\n[webhook]\nurl = "{receiver.url}"\nsecret_env = "{SECRET_ENV}"\n',
        {SECRET_ENV: "not-the-shared-secret"},
    )
    summary = outbox_for(county.app, wrong).run_once()
    assert summary.failed == 1
    assert [r.status for r in receiver.requests] == [401]
    assert receiver.accepted == []
    n = notification(county.app, notification_id(case_id(ref), 2, "office", "webhook"))
    assert n.status is NotificationStatus.PENDING
    assert n.last_error == "HTTP 401 Unauthorized: bad signature"


def test_a_receiver_that_does_not_answer_is_a_failed_attempt(county: County, tmp_path: Path) -> None:
    ref = county.open_case()
    config = webhook_config(tmp_path, f"http://127.0.0.1:{free_port()}/nobody-listens")
    assert outbox_for(county.app, config).run_once().failed == 1
    error = notification(county.app, notification_id(case_id(ref), 2, "office", "webhook")).last_error
    assert str(error).startswith("cannot reach 127.0.0.1:")


def test_a_dead_letter_retried_after_the_webhook_moved_goes_to_the_new_address(
    county: County, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    ref = county.open_case()
    old: NotificationConfig = webhook_config(tmp_path, f"http://127.0.0.1:{free_port()}/old", max_attempts=1)
    Outbox(county.app, outbox_for(county.app).views, old).run_once()
    nid = notification_id(case_id(ref), 2, "office", "webhook")
    assert notification(county.app, nid).status is NotificationStatus.DEAD
    county.app.retry_notification(c.RetryNotification(notification_id=str(nid), reason="新地址"), ADMIN)
    outbox_for(county.app, webhook_config(tmp_path, receiver.url)).run_once()
    assert [a["id"] for a in receiver.accepted] == [str(nid)]
    assert notification(county.app, nid).attempt_address == receiver.url
