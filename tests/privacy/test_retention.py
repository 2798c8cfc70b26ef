"""The retention job erases exactly the contacts of cases closed N days ago or more, once."""

from __future__ import annotations

from datetime import timedelta

from adapters.privacy.retention import Retention
from domain import commands as c
from domain.case import Case
from domain.values import Contact, Role
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from tests.conftest import SUPERVISOR, County
from tests.privacy.conftest import open_with_contact

DAYS = 180


def _close(county: County, ref: str) -> None:
    """Work a pushed case of PS1 to closed: contact, report, a satisfied callback (or none), close."""
    app, head = county.app, county.station_head
    app.contact_citizen(c.ContactCitizen(ref=ref, note="已电话联系"), head)
    app.report_result(c.ReportResult(ref=ref, result="已整改并道歉"), head)
    if app.get_case(ref).callable:
        app.record_callback(c.RecordCallback(ref=ref, satisfied=True, note="群众满意"), SUPERVISOR)
        app.close_case(c.CloseCase(ref=ref, resolution="已办结", citizen_accepted=True), SUPERVISOR)
    else:
        app.close_case(c.CloseCase(ref=ref, resolution="已办结"), SUPERVISOR)


def _views(county: County) -> ViewStore:
    views = ViewStore.beside(county.app)
    Runner(county.app, views, ALL).catch_up()
    return views


def test_retention_erases_exactly_the_contacts_due_and_only_once(county: County) -> None:
    clock, app = county.clock, county.app
    start = clock.now()
    old = open_with_contact(county)  # closed 200 days before the run: due
    on_the_day = open_with_contact(county, phone="13700000001")  # closed exactly 180 days before: due
    recent = open_with_contact(county, phone="13700000002")  # closed 100 days before: kept
    still_open = open_with_contact(county, phone="13700000003")  # never closed: kept
    reopened = open_with_contact(county, phone="13700000004")  # closed long ago, reopened, open: kept
    closed_again = open_with_contact(county, phone="13700000005")  # reopened, closed 100 days before: kept
    no_contact = county.open_case(phone=None)  # closed long ago, nothing to erase
    clock.advance(hours=1)
    for ref in (old, reopened, closed_again, no_contact):
        _close(county, ref)
    clock.advance(days=10)
    for ref in (reopened, closed_again):
        app.reopen_case(c.ReopenCase(ref=ref, reason="群众反映问题未解决"), SUPERVISOR)
    clock.set(start + timedelta(hours=1, days=20))
    _close(county, on_the_day)
    clock.set(start + timedelta(hours=1, days=100))
    _close(county, recent)
    _close(county, closed_again)
    clock.set(start + timedelta(hours=1, days=200))
    retention = Retention(app, _views(county), DAYS)

    planned = retention.run_once(dry_run=True)

    assert planned.due == [old, on_the_day]
    assert planned.erased == []
    assert app.get_case(old).contact.phone is not None  # type: ignore[union-attr]

    done = retention.run_once()

    assert [e.case_ref for e in done.erased] == [old, on_the_day]
    assert all(e.recorded and e.key_deleted for e in done.erased)
    assert done.failed == {}
    for ref in (old, on_the_day):
        case: Case = app.get_case(ref)
        assert case.contact is not None
        assert case.contact == Contact.erased_for(case.contact.citizen_ref)
        erasure = app.case_events(ref)[-1]
        assert type(erasure).__name__ == "ContactErased"
        assert erasure.meta.role == Role.SYSTEM
        assert erasure.reason.startswith("retention: 180 days")
    for ref in (recent, still_open, reopened, closed_again):
        assert app.get_case(ref).contact.phone is not None  # type: ignore[union-attr]

    head = app.recorder.max_notification_id()
    again = Retention(app, _views(county), DAYS).run_once()
    assert again.due == []
    assert again.erased == []
    assert app.recorder.max_notification_id() == head, "a second run records nothing"


def test_a_case_reopened_after_the_board_was_read_is_left_alone(county: County) -> None:
    """The board may lag: the case itself decides."""
    clock, app = county.clock, county.app
    ref = open_with_contact(county)
    clock.advance(hours=1)
    _close(county, ref)
    views = _views(county)
    clock.advance(days=DAYS + 1)
    retention = Retention(app, views, DAYS)
    assert retention.candidates(clock.now() - timedelta(days=DAYS)) == [ref]
    # Reopened (a month after closing is too late for a reopen, so back-date the whole story).
    clock.advance(days=-(DAYS + 1))
    clock.advance(days=5)
    app.reopen_case(c.ReopenCase(ref=ref, reason="群众反映问题未解决"), SUPERVISOR)
    clock.advance(days=DAYS)

    run = retention.run_once()  # the views were not caught up: the board still says closed

    assert run.due == []
    assert app.get_case(ref).contact.phone is not None  # type: ignore[union-attr]
