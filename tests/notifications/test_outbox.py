"""The outbox on the event store: each triggering event becomes its notifications exactly once.

Runs on memory, SQLite and PostgreSQL (the ``app`` fixture), across repeated runs, restarts,
a second outbox on the same store, and a crash between requesting and recording the position.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from structlog.testing import capture_logs

from adapters.notify import pending
from adapters.notify.channels import Outgoing
from adapters.notify.outbox import TRACKING, Outbox
from domain import commands as c
from domain.aggregate import event_topics
from domain.application import PingjingApp
from domain.ids import case_id
from domain.notifications import DeliveryChannel, Notification, NotificationStatus, notification_id
from projections.store import Cursor, ViewStore
from tests.conftest import ADMIN, SUPERVISOR, SYSTEM, County, make_app
from tests.fakes import FakeClock
from tests.notifications.conftest import outbox_for

PHONE = "13800138000"


def notification_events(app: PingjingApp) -> dict[UUID, list[str]]:
    """Every notification in the store, with the class names of its events in order."""
    found: dict[UUID, list[str]] = defaultdict(list)
    for _, event in app.iter_events():
        if isinstance(event, Notification.Event):
            found[event.originator_id].append(type(event).__name__)
    return dict(found)


def pushed_version(app: PingjingApp, ref: str) -> int:
    """The version of the case's Pushed event."""
    return next(e.originator_version for e in app.case_events(ref) if type(e).__name__ == "Pushed")


def notification(app: PingjingApp, nid: UUID) -> Notification:
    """The notification aggregate."""
    found = app.get_aggregate(nid)
    assert isinstance(found, Notification)
    return found


def of_kind(app: PingjingApp, kind: str) -> list[Notification]:
    """The notifications of one trigger kind, by recipient."""
    found = [notification(app, nid) for nid in notification_events(app)]
    return sorted((n for n in found if n.kind.value == kind), key=lambda n: n.recipient)


def test_a_pushed_case_notifies_the_unit_head_and_the_office_exactly_once(county: County) -> None:
    app = county.app
    ref = county.open_case(phone=PHONE)
    version = pushed_version(app, ref)
    expected = {notification_id(case_id(ref), version, r, "log") for r in ("unit:PS1", "office")}

    with capture_logs() as logs:
        first = outbox_for(app).run_once()
        second = outbox_for(app).run_once()  # a second outbox instance on the same store
        again = outbox_for(app).run_once()

    assert (first.requested, first.delivered) == (2, 2)
    assert (second.requested, second.delivered, again.requested, again.delivered) == (0, 0, 0, 0)
    events = notification_events(app)
    assert set(events) == expected
    assert all(names == ["Requested", "AttemptStarted", "Delivered"] for names in events.values())
    lines = [line for line in logs if line["event"] == "notification_delivered"]
    assert sorted(line["recipient"] for line in lines) == ["office", "unit:PS1"]
    assert {line["payload"]["case_ref"] for line in lines} == {ref}
    assert all(line["payload"]["unit_code"] == "PS1" for line in lines)
    assert "已推送至城关派出所" in lines[0]["subject"]


def test_no_notification_carries_the_citizens_phone(county: County) -> None:
    ref = county.open_case(phone=PHONE)
    app = county.app
    app.contact_citizen(c.ContactCitizen(ref=ref, note=f"已联系 {PHONE}"), county.station_head)
    app.report_result(c.ReportResult(ref=ref, result=f"已向 {PHONE} 说明情况"), county.station_head)
    outbox_for(app).run_once()
    topics = event_topics(Notification)
    stored = app.recorder.select_notifications(start=1, limit=10_000, topics=topics)
    assert len(stored) == 6 + 3  # two pushes and one result, three events each
    assert all(PHONE.encode() not in n.state for n in stored)


def test_a_restarted_outbox_on_the_same_sqlite_file_requests_and_sends_nothing_twice(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = str(tmp_path / "events.sqlite3")
    first_app = make_app(path, clock)
    ref = County(first_app, clock).setup().open_case()
    assert outbox_for(first_app).run_once().delivered == 2
    rows = ViewStore.beside(first_app).query("SELECT * FROM pj_notifications ORDER BY id")
    first_app.close()

    second_app = make_app(path, clock)  # another process, later
    try:
        summary = outbox_for(second_app).run_once()
        assert (summary.requested, summary.delivered, summary.lag) == (0, 0, 0)
        # An outbox that lost its position and table reads the whole log again: every request
        # collides with the one already made, and the table it folds is the same.
        fresh = ViewStore.in_memory()
        replay = Outbox(second_app, fresh).run_once()
        assert (replay.requested, replay.already, replay.delivered) == (0, 2, 0)
        assert fresh.query("SELECT * FROM pj_notifications ORDER BY id") == rows
        assert len(notification_events(second_app)) == 2
        assert {n.recipient for n in of_kind(second_app, "case_pushed")} == {"office", "unit:PS1"}
        assert ref in {n.payload["case_ref"] for n in of_kind(second_app, "case_pushed")}
    finally:
        second_app.close()


@pytest.mark.postgres
def test_two_outboxes_on_one_postgresql_store_notify_exactly_once(postgres_database: str, clock: FakeClock) -> None:
    one, two = make_app(postgres_database, clock), make_app(postgres_database, clock)
    try:
        County(one, clock).setup().open_case()
        a, b = outbox_for(one), outbox_for(two)
        summaries = [a.run_once(), b.run_once(), a.run_once()]
        assert sum(s.requested for s in summaries) == 2
        assert sum(s.delivered for s in summaries) == 2
        County(two, clock).open_case()  # a second case, noticed first by the other outbox
        summaries = [b.run_once(), a.run_once()]
        assert [s.requested for s in summaries] == [2, 0]
        events = notification_events(one)
        assert len(events) == 4
        assert all(names.count("Delivered") == 1 for names in events.values())
        assert b.status().position == a.status().position == summaries[-1].head
    finally:
        one.close()
        two.close()


class CrashingViews(ViewStore):
    """Views whose first position update fails: the process dies after its requests were saved."""

    crashed = False

    def record_position(self, cur: Cursor, name: str, expected: int, position: int) -> None:
        """Fail once, then behave."""
        if not CrashingViews.crashed:
            CrashingViews.crashed = True
            raise RuntimeError("power cut")
        super().record_position(cur, name, expected, position)


def test_a_crash_between_requesting_and_recording_the_position_sends_nothing_twice(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = make_app(str(tmp_path / "events.sqlite3"), clock)
    try:
        County(app, clock).setup().open_case()
        views = ViewStore.beside(app)
        crashing = CrashingViews(views.datastore, views.dialect, views.description)
        with pytest.raises(RuntimeError, match="power cut"):
            Outbox(app, crashing).run_once()
        assert len(notification_events(app)) == 2  # requested, but the position did not move
        assert views.position(TRACKING) == 0
        summary = Outbox(app, views).run_once()
        assert (summary.requested, summary.already, summary.delivered) == (0, 2, 2)
        assert all(names.count("Delivered") == 1 for names in notification_events(app).values())
    finally:
        app.close()


def test_the_units_reported_result_goes_back_to_the_office(county: County) -> None:
    app = county.app
    ref = county.open_case()
    app.contact_citizen(c.ContactCitizen(ref=ref, note="已电话联系"), county.station_head)
    county.clock.advance(hours=2)
    app.report_result(c.ReportResult(ref=ref, result="已说明情况"), county.station_head)
    summary = outbox_for(app).run_once()
    assert summary.delivered == 3  # the push to two recipients, the result to one
    [result] = of_kind(app, "result_reported")
    assert result.recipient == "office"
    assert result.subject == f"【扫码评警】城关派出所已反馈督办件 {ref} 的办理结果"
    # Reported Monday 11:00 in Shanghai: the callback is due two working days later.
    assert result.payload["callback_due"] == "2021-11-03T11:00:00+08:00"
    assert result.payload["callable"] is True


def test_an_sla_warning_and_a_breach_notify_the_unit_head_and_the_office_with_the_deadline(county: County) -> None:
    app = county.app
    ref = county.open_case()
    county.clock.advance(hours=20)
    app.record_sla_warning(c.RecordSlaWarning(ref=ref, step="contact", round=1), SYSTEM)
    county.clock.advance(days=3)
    app.record_sla_breach(c.RecordSlaBreach(ref=ref, step="feedback", round=1), SYSTEM)
    outbox_for(app).run_once()

    warnings = of_kind(app, "sla_warning")
    assert [n.recipient for n in warnings] == ["office", "unit:PS1"]
    assert warnings[0].payload["deadline"] == "2021-11-02T09:00:00+08:00"  # pushed Monday 09:00, 24 h
    assert "「联系当事人」即将超时（时限 2021-11-02 09:00）" in warnings[0].subject
    breaches = of_kind(app, "sla_breach")
    assert [n.recipient for n in breaches] == ["office", "unit:PS1"]
    assert breaches[0].payload["step"] == "feedback"
    assert breaches[0].payload["deadline"] == "2021-11-04T09:00:00+08:00"  # three working days
    assert "已自动挂牌督办" in breaches[0].body


def test_a_step_that_started_after_the_flag_is_notified_with_the_halved_limit(county: County) -> None:
    app, clock, head = county.app, county.clock, county.station_head
    ref = county.open_case()
    app.contact_citizen(c.ContactCitizen(ref=ref, note="已联系"), head)
    app.report_result(c.ReportResult(ref=ref, result="已处理"), head)
    app.record_callback(c.RecordCallback(ref=ref, satisfied=False, note="不满意"), SUPERVISOR)
    app.flag_case(c.FlagCase(ref=ref, reason="群众反映强烈"), SUPERVISOR)
    clock.advance(hours=1)
    app.reopen_case(c.ReopenCase(ref=ref, reason="重新办理"), SUPERVISOR)  # round 2 starts at 10:00
    clock.advance(hours=10)
    app.record_sla_warning(c.RecordSlaWarning(ref=ref, step="contact", round=2), SYSTEM)
    outbox_for(app).run_once()
    [warning, _] = of_kind(app, "sla_warning")
    assert warning.payload["round"] == 2
    assert warning.payload["deadline"] == "2021-11-01T22:00:00+08:00"  # 12 h, not 24 h


def test_a_published_report_goes_to_the_office_and_every_unit_but_the_office_itself(county: County) -> None:
    app = county.app
    app.register_unit(
        c.RegisterUnit(code="DCO", unit_name="督察大队", kind="supervision_office", parent_code="BUR"), ADMIN
    )
    app.publish_report(
        c.PublishReport(kind="weekly", period="2021-W43", title="第43周扫码评警周点评", position=12,
                        content_hash="ab" * 32),
        SYSTEM,
    )
    summary = outbox_for(app).run_once()
    reports = of_kind(app, "report_published")
    assert [n.recipient for n in reports] == ["office", "unit:BUR", "unit:PS1", "unit:PS2"]
    assert summary.delivered == 4
    assert reports[0].payload["report_name"] == "weekly-2021-W43"
    assert reports[0].payload["content_hash"] == "ab" * 32
    assert reports[0].subject == "【扫码评警】周点评已发布：第43周扫码评警周点评"


class Recording:
    """A channel that keeps what it is given."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def send(self, message: Outgoing) -> str:
        """Keep it."""
        self.sent.append(message)
        return "ok"


class BrokenChannel:
    """A channel with a bug: it raises something no channel should."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def send(self, message: Outgoing) -> str:
        """Raise."""
        self.sent.append(message)
        raise KeyError("bug")


def test_a_channel_that_crashes_is_a_recorded_failure_and_the_run_does_not_raise(county: County) -> None:
    county.open_case()
    broken = BrokenChannel()
    outbox = outbox_for(county.app, channels={DeliveryChannel.LOG: broken})
    with capture_logs() as logs:
        summary = outbox.run_once()
    assert (summary.requested, summary.failed, summary.delivered) == (2, 2, 0)
    assert len(broken.sent) == 2
    for names in notification_events(county.app).values():
        assert names == ["Requested", "AttemptStarted", "AttemptFailed"]
    failures = [line for line in logs if line["event"] == "notification_attempt_failed"]
    assert {line["error"] for line in failures} == {"KeyError: 'bug'"}
    rows = pending.listing(outbox.views)
    assert {(r.status, r.attempts, r.last_error) for r in rows} == {("pending", 1, "KeyError: 'bug'")}


def test_an_attempt_whose_outbox_stopped_is_abandoned_after_its_lease_and_sent_again(county: County) -> None:
    app, clock = county.app, county.clock
    ref = county.open_case()
    outbox = outbox_for(app, channels={})  # requests only: no channel can send yet
    outbox.catch_up()
    nid = notification_id(case_id(ref), pushed_version(app, ref), "office", "log")
    # Another outbox claims the first attempt and dies before recording how it went.
    app.start_delivery_attempt(c.StartDeliveryAttempt(notification_id=str(nid), attempt=1, lease_seconds=600), SYSTEM)
    outbox = outbox_for(app)
    outbox.run_once()
    assert notification(app, nid).status is NotificationStatus.SENDING  # the lease still runs
    clock.advance(seconds=600)
    assert outbox.run_once().abandoned == 1
    assert notification(app, nid).last_error == (
        f"no outcome recorded by {(datetime(2021, 11, 1, 1, 10, tzinfo=UTC)).isoformat()}: "
        "the outbox that claimed it stopped or hung"
    )
    clock.advance(seconds=30)  # the backoff after a failed attempt
    outbox.run_once()
    assert notification_events(app)[nid] == [
        "Requested", "AttemptStarted", "AttemptFailed", "AttemptStarted", "Delivered"
    ]


def test_starting_at_the_head_skips_the_history_only_on_a_first_start(county: County) -> None:
    app = county.app
    county.open_case()
    outbox = outbox_for(app)
    assert outbox.start_at_head() is True
    assert outbox.run_once().requested == 0
    county.open_case()
    assert outbox.run_once().requested == 2
    assert outbox.start_at_head() is False


def test_run_once_delivers_a_notification_only_when_its_next_attempt_is_due(county: County) -> None:
    county.open_case()
    broken = BrokenChannel()
    outbox = outbox_for(county.app, channels={DeliveryChannel.LOG: broken})
    outbox.run_once()
    outbox.run_once()
    assert len(broken.sent) == 2  # the backoff has not passed
    outbox.channels[DeliveryChannel.LOG] = Recording()
    county.clock.advance(seconds=29)
    assert outbox.run_once().delivered == 0
    county.clock.advance(seconds=1)
    assert outbox.run_once().delivered == 2
    assert outbox.status().counts == [("log", "delivered", 2)]


def test_a_case_trigger_is_read_from_the_case_as_it_stood_then(county: County) -> None:
    app = county.app
    ref = county.open_case()
    county.clock.advance(hours=3)
    app.contact_citizen(c.ContactCitizen(ref=ref, note="已联系"), county.station_head)  # before the outbox runs
    outbox_for(app).run_once()
    pushed = of_kind(app, "case_pushed")
    assert {n.payload["contact_due"] for n in pushed} == {"2021-11-02T09:00:00+08:00"}
    assert {n.payload["occurred_at"] for n in pushed} == {"2021-11-01T01:00:00+00:00"}
    assert all(n.trigger_version == pushed_version(app, ref) for n in pushed)
