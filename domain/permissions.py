"""Which role may run which use case (DESIGN §1). Unit scope is checked by the handlers."""

from __future__ import annotations

from domain import commands as c
from domain.errors import PermissionDeniedError
from domain.values import Actor, Role
from domain.workflow import MOVE_ROLES, Move

_ADMIN = frozenset({Role.ADMIN})

#: The move each case command makes.
CASE_MOVES: dict[type[c.Command], Move] = {
    c.ContactCitizen: Move.CONTACT,
    c.ReportResult: Move.REPORT,
    c.RecordCallback: Move.CALLBACK,
    c.RecordCallbackAttempt: Move.CALLBACK_ATTEMPT,
    c.RecordSupervision: Move.SUPERVISE,
    c.FlagCase: Move.FLAG,
    c.OrderRectification: Move.ORDER_RECTIFICATION,
    c.ReportRectified: Move.REPORT_RECTIFIED,
    c.VerifyRectification: Move.VERIFY,
    c.CloseCase: Move.CLOSE,
    c.ReopenCase: Move.REOPEN,
    c.RecordAccountability: Move.ACCOUNTABILITY,
    c.RecordCommendation: Move.COMMENDATION,
    c.RecordSlaWarning: Move.SLA_WARNING,
    c.RecordSlaBreach: Move.SLA_BREACH,
}

ALLOWED_ROLES: dict[type[c.Command], frozenset[Role]] = {
    c.RegisterUnit: _ADMIN,
    c.AssignUnitHead: _ADMIN,
    c.RegisterOfficer: _ADMIN,
    c.TransferOfficer: _ADMIN,
    c.RecordOfficerLeft: _ADMIN,
    c.IssueQr: _ADMIN,
    c.RotateQr: _ADMIN,
    c.RevokeQr: _ADMIN,
    c.LogEncounter: frozenset({Role.ADMIN, Role.SYSTEM, Role.OFFICER}),
    c.LogEncounters: frozenset({Role.ADMIN, Role.SYSTEM, Role.OFFICER}),
    c.SubmitRating: frozenset({Role.CITIZEN}),
    c.OpenCase: frozenset({Role.SUPERVISOR}),
    **{cmd: MOVE_ROLES[move] for cmd, move in CASE_MOVES.items()},
    c.PublishReport: frozenset({Role.SUPERVISOR, Role.SYSTEM}),
    c.RequestNotification: frozenset({Role.SYSTEM}),
    c.StartDeliveryAttempt: frozenset({Role.SYSTEM}),
    c.RecordDeliveryAttempt: frozenset({Role.SYSTEM}),
    c.RetryNotification: _ADMIN,
    c.CreateApiToken: _ADMIN,
    c.RevokeApiToken: _ADMIN,
    c.RecordPersonalDataRead: frozenset({Role.SUPERVISOR, Role.UNIT_HEAD}),
    # On a citizen's request (the office, an administrator) or by the retention job (the system).
    c.EraseContact: frozenset({Role.SUPERVISOR, Role.ADMIN, Role.SYSTEM}),
    c.SealLog: frozenset({Role.SUPERVISOR, Role.SYSTEM}),
}


def check_role(command: c.Command, actor: Actor) -> None:
    """Refuse the command unless the actor's role may run it."""
    allowed = ALLOWED_ROLES[type(command)]
    if actor.role not in allowed:
        roles = ", ".join(sorted(r.value for r in allowed))
        raise PermissionDeniedError(f"{actor} may not {command.name} (allowed: {roles})")
