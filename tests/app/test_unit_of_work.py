"""The unit of work and the directory: shared batches, rollbacks, and a directory that follows the log."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from domain import commands as c
from domain.case import Case
from domain.encounters import Encounter
from domain.errors import RuleViolationError
from domain.ids import case_id, officer_id
from domain.registry import Officer
from domain.uow import UnitOfWork
from domain.values import Channel, Meta, Role
from domain.workflow import SupervisionTarget
from tests.conftest import ADMIN, CITIZEN, SUPERVISOR, County, head_of, make_app
from tests.fakes import FakeClock


def test_a_failed_command_in_a_batch_keeps_the_earlier_commands_changes_to_the_same_case(county: County) -> None:
    ref = county.open_case()
    head = county.station_head
    outcomes = county.app.execute_batch([
        (c.ContactCitizen(ref=ref, note="电话联系"), head),
        (c.RecordCallback(ref=ref, satisfied=True, note="too early"), SUPERVISOR),  # illegal: not reported
        (c.ReportResult(ref=ref, result="已处理"), head),
    ])
    assert [type(o).__name__ for o in outcomes] == ["Receipt", "IllegalMoveError", "Receipt"]
    case = county.app.get_case(ref)
    assert case.state == "reported"
    names = [type(e).__name__ for e in county.app.case_events(ref)]
    assert names == ["Opened", "Pushed", "CitizenContacted", "ResultReported"]


def test_rolling_back_a_command_undoes_its_changes_but_keeps_the_earlier_commands(county: County) -> None:
    ref = county.open_case()
    app = county.app
    meta = Meta("dc-wang", Role.SUPERVISOR, county.clock.now(), Channel.API, "corr-1")
    uow = UnitOfWork(app.repository, app.directory)
    uow.begin()
    uow.get(Case, case_id(ref), "case", ref).flag("重点督办", meta)
    uow.commit_point()
    uow.begin()
    uow.get(Case, case_id(ref), "case", ref).supervise(SupervisionTarget.UNIT, "督促", meta)
    uow.add(Encounter(id=uuid.uuid4(), kind="duty", officer_id=None, unit_id=case_id(ref), happened_at=meta.occurred_at,
                      external_ref=None, has_code=False, meta=meta))
    uow.rollback()
    changed = uow.changed()
    assert len(changed) == 1
    assert [type(e).__name__ for e in changed[0].pending_events] == ["Flagged"]
    assert isinstance(changed[0], Case)
    assert changed[0].flagged


def test_the_directory_copy_is_never_changed_by_a_command(county: County) -> None:
    app = county.app
    county.rate("satisfied")  # the directory now holds officer 100102
    app.execute_batch([(c.RecordOfficerLeft(badge="100102", reason="调离"), ADMIN)])
    shared = app.directory.get(officer_id("100102"))
    assert isinstance(shared, Officer)
    assert shared.left is False  # the directory catches up at the next batch, it is not mutated in place
    app.execute_batch([])
    caught_up = app.directory.get(officer_id("100102"))
    assert caught_up is not None
    assert caught_up.left is True


def test_the_directory_follows_changes_made_by_another_process(tmp_path: Path, clock: FakeClock) -> None:
    database = str(tmp_path / "shared.sqlite3")
    first, second = make_app(database, clock), make_app(database, clock)
    try:
        County(first, clock).setup()
        assert County(second, clock).rate("satisfied") is None  # the second app knows the officer
        first.record_officer_left(c.RecordOfficerLeft(badge="100102", reason="退休"), ADMIN)
        with pytest.raises(RuleViolationError, match="100102"):
            County(second, clock).rate("satisfied")
    finally:
        first.close()
        second.close()


def test_a_unit_head_assigned_in_the_same_batch_may_act_at_once(county: County) -> None:
    ref = county.open_case()
    outcomes = county.app.execute_batch([
        (c.RegisterOfficer(badge="100109", officer_name="新所长", kind="police", unit_code="PS1"), ADMIN),
        (c.AssignUnitHead(unit_code="PS1", badge="100109"), ADMIN),
        (c.ContactCitizen(ref=ref, note="新所长联系群众"), head_of("100109")),
        (c.ReportResult(ref=ref, result="old head"), head_of("100101")),
    ])
    assert [type(o).__name__ for o in outcomes[:3]] == ["Receipt", "Receipt", "Receipt"]
    assert type(outcomes[3]).__name__ == "PermissionDeniedError"
    assert county.app.get_case(ref).state == "contacted"


def test_citizens_rate_without_naming_themselves(county: County) -> None:
    receipt = county.app.submit_rating(
        c.SubmitRating(target="unit", key="PS2", verdict="satisfied", service_score=5, attitude_score=5,
                       efficiency_score=5),
        CITIZEN,
    )
    assert receipt.case_ref is None
    assert receipt.extra == {"verified": False}
