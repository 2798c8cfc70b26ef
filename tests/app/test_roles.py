"""Who may run each use case (DESIGN §1, §4), checked through the application.

The table below is written by hand from the design, not copied from
``domain.permissions``: if the code drifts from the design, these tests say so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from domain import commands as c
from domain.application import Context, PingjingApp
from domain.errors import PermissionDeniedError
from domain.ids import case_id
from domain.notifications import notification_id
from domain.tokens import hash_token
from domain.values import Actor, Role
from tests.conftest import ADMIN, START, SUPERVISOR, SYSTEM, County

ADMIN_ONLY = frozenset({Role.ADMIN})
ENCOUNTER_LOGGERS = frozenset({Role.ADMIN, Role.SYSTEM, Role.OFFICER})
CITIZENS = frozenset({Role.CITIZEN})
OFFICE = frozenset({Role.SUPERVISOR})
UNIT_HEADS = frozenset({Role.UNIT_HEAD})
SCHEDULER = frozenset({Role.SYSTEM})

#: Who may run each command, from DESIGN §1 (actors) and §4 (who makes each move).
#: Officers and auditors make no case move at all.
MAY_RUN: dict[type[c.Command], frozenset[Role]] = {
    c.RegisterUnit: ADMIN_ONLY,
    c.AssignUnitHead: ADMIN_ONLY,
    c.RegisterOfficer: ADMIN_ONLY,
    c.TransferOfficer: ADMIN_ONLY,
    c.RecordOfficerLeft: ADMIN_ONLY,
    c.IssueQr: ADMIN_ONLY,
    c.RotateQr: ADMIN_ONLY,
    c.RevokeQr: ADMIN_ONLY,
    c.LogEncounter: ENCOUNTER_LOGGERS,
    c.LogEncounters: ENCOUNTER_LOGGERS,
    c.SubmitRating: CITIZENS,
    c.OpenCase: OFFICE,
    c.ContactCitizen: UNIT_HEADS,
    c.ReportResult: UNIT_HEADS,
    c.ReportRectified: UNIT_HEADS,
    c.RecordCallback: OFFICE,
    c.RecordCallbackAttempt: OFFICE,
    c.RecordSupervision: OFFICE,
    c.FlagCase: OFFICE,
    c.OrderRectification: OFFICE,
    c.VerifyRectification: OFFICE,
    c.CloseCase: OFFICE,
    c.ReopenCase: OFFICE,
    c.RecordAccountability: OFFICE,
    c.RecordCommendation: OFFICE,
    c.RecordSlaWarning: SCHEDULER,
    c.RecordSlaBreach: SCHEDULER,
    c.PublishReport: frozenset({Role.SUPERVISOR, Role.SYSTEM}),
    c.RequestNotification: SCHEDULER,
    c.StartDeliveryAttempt: SCHEDULER,
    c.RecordDeliveryAttempt: SCHEDULER,
    c.RetryNotification: ADMIN_ONLY,
    c.CreateApiToken: ADMIN_ONLY,
    c.RevokeApiToken: ADMIN_ONLY,
    c.RecordPersonalDataRead: frozenset({Role.SUPERVISOR, Role.UNIT_HEAD}),
    c.SealLog: frozenset({Role.SUPERVISOR, Role.SYSTEM}),  # the office, and the scheduler's daily seal
}

#: Who acts in each role. The officer is 100102, the officer rated on every case below,
#: and the unit head is 100101, the head of that case's unit (PS1): the strongest candidates.
PRINCIPALS: dict[Role, str] = {
    Role.CITIZEN: "anonymous",
    Role.OFFICER: "100102",
    Role.UNIT_HEAD: "100101",
    Role.SUPERVISOR: "dc-wang",
    Role.AUDITOR: "auditor-1",
    Role.ADMIN: "admin-1",
    Role.SYSTEM: "system",
}


def acting_as(role: Role) -> Context:
    """A context for the test's principal in ``role``."""
    return Context(Actor(PRINCIPALS[role], role))


def last_position(app: PingjingApp) -> int | None:
    """The log position of the newest stored event."""
    return app.recorder.max_notification_id()


# -- driving a case of PS1 (officer 100102) to the state a move needs ------------------------


def pushed(k: County) -> str:
    """A dissatisfied rating's case, pushed to PS1."""
    return k.open_case()


def contacted(k: County) -> str:
    """A case whose citizen the head of PS1 has contacted."""
    ref = pushed(k)
    k.app.contact_citizen(c.ContactCitizen(ref=ref, note="已电话联系群众"), k.station_head)
    return ref


def reported(k: County) -> str:
    """A case whose result PS1 has reported."""
    ref = contacted(k)
    k.app.report_result(c.ReportResult(ref=ref, result="已当面说明情况并致歉"), k.station_head)
    return ref


def called_back(k: County, *, satisfied: bool) -> str:
    """A case the office has called back."""
    ref = reported(k)
    k.app.record_callback(c.RecordCallback(ref=ref, satisfied=satisfied, note="回访"), SUPERVISOR)
    return ref


def rectifying(k: County) -> str:
    """A case under a rectification order."""
    ref = called_back(k, satisfied=False)
    order = c.OrderRectification(ref=ref, instructions="规范接警流程")
    k.app.order_rectification(order, SUPERVISOR)
    return ref


def rectified(k: County) -> str:
    """A case whose rectification PS1 reported done."""
    ref = rectifying(k)
    k.app.report_rectified(c.ReportRectified(ref=ref, note="已组织培训"), k.station_head)
    return ref


def issued_qr(k: County) -> None:
    """Officer 100102 has a QR identity."""
    k.app.issue_qr(c.IssueQr(subject="officer", key="100102"), ADMIN)


def own_encounter(kind: str = "dispatch") -> c.LogEncounter:
    """An encounter of officer 100102 (the officer role's own badge)."""
    return c.LogEncounter(kind=kind, happened_at=START - timedelta(hours=1), badge="100102")


def _rotate(k: County) -> c.Command:
    issued_qr(k)
    return c.RotateQr(subject="officer", key="100102")


def _revoke(k: County) -> c.Command:
    issued_qr(k)
    return c.RevokeQr(subject="officer", key="100102", reason="工作证遗失")


def requested_notification(k: County, *, claimed: bool = False, dead: bool = False) -> str:
    """The id of a log notification of a fresh case's push to the office, as the outbox requests it."""
    trigger = case_id(pushed(k))
    request = c.RequestNotification(
        trigger_id=str(trigger), trigger_version=2, trigger_position=1, kind="case_pushed",
        recipient="office", channel="log", subject="新督办件", body="督办件已推送", max_attempts=1,
    )
    k.app.request_notification(request, SYSTEM)
    nid = str(notification_id(trigger, 2, "office", "log"))
    if claimed or dead:
        k.app.start_delivery_attempt(c.StartDeliveryAttempt(notification_id=nid, attempt=1), SYSTEM)
    if dead:
        failed = c.RecordDeliveryAttempt(notification_id=nid, attempt=1, outcome="failed", detail="HTTP 500")
        k.app.record_delivery_attempt(failed, SYSTEM)
    return nid


def created_token(k: County) -> str:
    """The id of a fresh supervisor's API token."""
    secret = f"secret-{k.app.ids.new_id().hex}"
    create = c.CreateApiToken(token_hash=hash_token(secret), role="supervisor", principal="dc-wang")
    return str(k.app.create_api_token(create, ADMIN).aggregate_id)


#: A command that is valid in the county once the preparation has run.
VALID: dict[type[c.Command], Callable[[County], c.Command]] = {
    c.RegisterUnit: lambda k: c.RegisterUnit(
        code="PS3", unit_name="南关派出所", kind="police_station", parent_code="BUR"
    ),
    c.AssignUnitHead: lambda k: c.AssignUnitHead(unit_code="PS1", badge="100102"),
    c.RegisterOfficer: lambda k: c.RegisterOfficer(
        badge="100103", officer_name="王警官", kind="police", unit_code="PS1"
    ),
    c.TransferOfficer: lambda k: c.TransferOfficer(badge="100102", unit_code="PS2"),
    c.RecordOfficerLeft: lambda k: c.RecordOfficerLeft(badge="F10103", reason="辞职"),
    c.IssueQr: lambda k: c.IssueQr(subject="officer", key="100102"),
    c.RotateQr: _rotate,
    c.RevokeQr: _revoke,
    c.LogEncounter: lambda k: own_encounter(),
    c.LogEncounters: lambda k: c.LogEncounters(
        encounters=[own_encounter("dispatch"), own_encounter("reception")]
    ),
    c.SubmitRating: lambda k: c.SubmitRating(
        target="officer", key="100102", verdict="satisfied",
        service_score=5, attitude_score=5, efficiency_score=5,
    ),
    c.OpenCase: lambda k: c.OpenCase(
        intake="hotline", kind="complaint", unit_code="PS1", summary="出警太慢"
    ),
    c.ContactCitizen: lambda k: c.ContactCitizen(ref=pushed(k), note="已电话联系群众"),
    c.ReportResult: lambda k: c.ReportResult(ref=contacted(k), result="已说明情况"),
    c.RecordCallback: lambda k: c.RecordCallback(ref=reported(k), satisfied=True, note="满意"),
    c.RecordCallbackAttempt: lambda k: c.RecordCallbackAttempt(ref=reported(k), note="无人接听"),
    c.RecordSupervision: lambda k: c.RecordSupervision(
        ref=pushed(k), target="unit", note="电话督促派出所"
    ),
    c.FlagCase: lambda k: c.FlagCase(ref=pushed(k), reason="群众反映强烈"),
    c.OrderRectification: lambda k: c.OrderRectification(
        ref=called_back(k, satisfied=False), instructions="规范接警流程"
    ),
    c.ReportRectified: lambda k: c.ReportRectified(ref=rectifying(k), note="已组织培训"),
    c.VerifyRectification: lambda k: c.VerifyRectification(
        ref=rectified(k), implemented=True, note="现场核查已落实"
    ),
    c.CloseCase: lambda k: c.CloseCase(
        ref=called_back(k, satisfied=True), resolution="群众满意", citizen_accepted=True
    ),
    c.ReopenCase: lambda k: c.ReopenCase(ref=called_back(k, satisfied=False), reason="群众不满意"),
    c.RecordAccountability: lambda k: c.RecordAccountability(
        ref=pushed(k), badge="100102", measure="criticism_notice", note="全局通报批评"
    ),
    c.RecordCommendation: lambda k: c.RecordCommendation(ref=pushed(k), kind="banner", note="锦旗"),
    c.RecordSlaWarning: lambda k: c.RecordSlaWarning(ref=pushed(k), step="contact", round=1),
    c.RecordSlaBreach: lambda k: c.RecordSlaBreach(ref=pushed(k), step="contact", round=1),
    c.PublishReport: lambda k: c.PublishReport(
        kind="weekly", period="2021-W43", title="周点评", position=1, content_hash="ab" * 32
    ),
    c.RequestNotification: lambda k: c.RequestNotification(
        trigger_id=str(case_id(pushed(k))), trigger_version=2, trigger_position=1, kind="case_pushed",
        recipient="office", channel="log", subject="新督办件", body="督办件已推送",
    ),
    c.StartDeliveryAttempt: lambda k: c.StartDeliveryAttempt(notification_id=requested_notification(k), attempt=1),
    c.RecordDeliveryAttempt: lambda k: c.RecordDeliveryAttempt(
        notification_id=requested_notification(k, claimed=True), attempt=1, outcome="delivered", detail="HTTP 200"
    ),
    c.RetryNotification: lambda k: c.RetryNotification(
        notification_id=requested_notification(k, dead=True), reason="接收端已修复"
    ),
    c.CreateApiToken: lambda k: c.CreateApiToken(
        token_hash=hash_token(f"secret-{k.app.ids.new_id().hex}"), role="unit_head", principal="100101",
        unit_code="PS1",
    ),
    c.RevokeApiToken: lambda k: c.RevokeApiToken(token_id=created_token(k), reason="令牌遗失"),
    c.RecordPersonalDataRead: lambda k: c.RecordPersonalDataRead(ref=pushed(k), fields=["phone"]),
    # The head moves on with every seal, so each call seals a position not sealed yet.
    c.SealLog: lambda k: c.SealLog(position=last_position(k.app) or 1, chain_hash="cd" * 32),
}

#: Moves a unit head may make only on their own unit's cases.
UNIT_SCOPED = (c.ContactCitizen, c.ReportResult, c.ReportRectified)


def test_the_role_table_covers_every_command_the_application_knows() -> None:
    assert set(MAY_RUN) == set(c.ALL_COMMANDS)
    assert set(VALID) == set(c.ALL_COMMANDS)


@pytest.mark.parametrize("command_class", c.ALL_COMMANDS, ids=lambda k: k.name)
def test_a_valid_command_is_refused_for_every_other_role_and_runs_for_its_own(
    county: County, command_class: type[c.Command]
) -> None:
    app = county.app
    command = VALID[command_class](county)
    for role in sorted(set(Role) - MAY_RUN[command_class]):
        before = last_position(app)
        with pytest.raises(PermissionDeniedError, match=command.name):
            app.execute(command, acting_as(role))
        assert last_position(app) == before, f"{role} was refused but something was written"
    # The same command then succeeds for each allowed role: the refusals were about the role.
    for i, role in enumerate(sorted(MAY_RUN[command_class])):
        if i:
            command = VALID[command_class](county)
        before = last_position(app) or 0
        receipt = app.execute(command, acting_as(role))
        assert receipt.command == command.name
        assert (last_position(app) or 0) > before, f"{role} succeeded but nothing was written"


@pytest.mark.parametrize("command_class", UNIT_SCOPED, ids=lambda k: k.name)
def test_the_head_of_another_unit_cannot_move_this_units_case(
    county: County, command_class: type[c.Command]
) -> None:
    app = county.app
    command = VALID[command_class](county)
    assert isinstance(command, c.CaseCommand)
    before = last_position(app)
    with pytest.raises(PermissionDeniedError) as refused:
        app.execute(command, county.other_head)  # the head of PS2, on a case of PS1
    assert command.ref in str(refused.value)
    assert "PS1" in str(refused.value)
    assert last_position(app) == before
    assert app.execute(command, county.station_head).case_ref == command.ref


@pytest.mark.parametrize(
    "command",
    [
        c.LogEncounter(kind="duty", happened_at=START, badge="F10103"),
        c.LogEncounter(kind="duty", happened_at=START, unit_code="PS1"),
        c.LogEncounters(encounters=[own_encounter(), c.LogEncounter(
            kind="duty", happened_at=START, badge="F10103")]),
    ],
    ids=["another_badge", "unit_only", "batch_with_another_badge"],
)
def test_an_officer_may_log_only_their_own_encounters(
    county: County, command: c.Command
) -> None:
    app = county.app
    before = last_position(app)
    with pytest.raises(PermissionDeniedError, match="own encounters"):
        app.execute(command, acting_as(Role.OFFICER))
    assert last_position(app) == before


def test_a_unit_head_acting_as_an_officer_makes_no_case_move(county: County) -> None:
    # The head's badge does not carry the unit-head role by itself: the role does.
    app = county.app
    ref = pushed(county)
    before = last_position(app)
    with pytest.raises(PermissionDeniedError):
        app.contact_citizen(
            c.ContactCitizen(ref=ref, note="已联系"), Context(Actor("100101", Role.OFFICER))
        )
    assert last_position(app) == before


def test_a_head_transferred_to_another_unit_no_longer_moves_the_old_units_cases(
    county: County,
) -> None:
    app = county.app
    ref = pushed(county)
    app.transfer_officer(c.TransferOfficer(badge="100101", unit_code="PS2"), ADMIN)
    before = last_position(app)
    [outcome] = app.execute_batch([(c.ContactCitizen(ref=ref, note="已联系"), county.station_head)])
    assert isinstance(outcome, PermissionDeniedError), outcome
    assert last_position(app) == before


def test_a_head_who_has_left_no_longer_moves_the_units_cases(county: County) -> None:
    app = county.app
    ref = pushed(county)
    app.record_officer_left(c.RecordOfficerLeft(badge="100101", reason="退休"), ADMIN)
    before = last_position(app)
    [outcome] = app.execute_batch([(c.ContactCitizen(ref=ref, note="已联系"), county.station_head)])
    assert isinstance(outcome, PermissionDeniedError), outcome
    assert last_position(app) == before
