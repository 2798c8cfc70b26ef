"""The staff API's use cases: one ``POST`` route per command a staff role may run.

Each route takes the command's own pydantic model as its JSON body; what the path carries
(a case reference, a unit code, a badge) is left out of the body and put back before the
command is validated as a whole. The command runs through :meth:`PingjingApp.execute` as the
token's actor on the API channel, so the domain's own role and unit checks apply, and the
answer (the :class:`~domain.usecases.Receipt`) is sent only after its transaction committed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from inspect import Parameter, Signature
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, StringConstraints, create_model

from adapters.http.auth import Staff, allow, role_names
from adapters.http.errors import ERROR_RESPONSES
from adapters.http.services import Services, services
from adapters.reports.publish import Reports, due_period
from domain import commands as c
from domain.permissions import ALLOWED_ROLES
from domain.reports import ReportKind
from domain.tokens import TOKEN_ROLES
from domain.usecases import Receipt
from domain.values import Role

PREFIX = "/api/v1"


@dataclass(frozen=True)
class CommandRoute:
    """A use case's route: its path (``{field}`` parts are the command's fields) and its OpenAPI tag."""

    path: str
    command: type[c.Command]
    tag: str


#: Every use case a staff role may run (the citizen's rating, the scheduler's and the outbox's own
#: records have no staff route; tokens are made on the command line).
COMMAND_ROUTES: tuple[CommandRoute, ...] = (
    CommandRoute("/units", c.RegisterUnit, "registry"),
    CommandRoute("/units/{unit_code}/head", c.AssignUnitHead, "registry"),
    CommandRoute("/officers", c.RegisterOfficer, "registry"),
    CommandRoute("/officers/{badge}/transfer", c.TransferOfficer, "registry"),
    CommandRoute("/officers/{badge}/left", c.RecordOfficerLeft, "registry"),
    CommandRoute("/qr-identities/{subject}/{key}/issue", c.IssueQr, "registry"),
    CommandRoute("/qr-identities/{subject}/{key}/rotate", c.RotateQr, "registry"),
    CommandRoute("/qr-identities/{subject}/{key}/revoke", c.RevokeQr, "registry"),
    CommandRoute("/encounters", c.LogEncounter, "encounters"),
    CommandRoute("/encounters/bulk", c.LogEncounters, "encounters"),
    CommandRoute("/cases", c.OpenCase, "cases"),
    CommandRoute("/cases/{ref}/contact", c.ContactCitizen, "case moves"),
    CommandRoute("/cases/{ref}/result", c.ReportResult, "case moves"),
    CommandRoute("/cases/{ref}/callback", c.RecordCallback, "case moves"),
    CommandRoute("/cases/{ref}/callback-attempts", c.RecordCallbackAttempt, "case moves"),
    CommandRoute("/cases/{ref}/supervision", c.RecordSupervision, "case moves"),
    CommandRoute("/cases/{ref}/flag", c.FlagCase, "case moves"),
    CommandRoute("/cases/{ref}/rectification", c.OrderRectification, "case moves"),
    CommandRoute("/cases/{ref}/rectification/done", c.ReportRectified, "case moves"),
    CommandRoute("/cases/{ref}/rectification/verification", c.VerifyRectification, "case moves"),
    CommandRoute("/cases/{ref}/close", c.CloseCase, "case moves"),
    CommandRoute("/cases/{ref}/reopen", c.ReopenCase, "case moves"),
    CommandRoute("/cases/{ref}/accountability", c.RecordAccountability, "case moves"),
    CommandRoute("/cases/{ref}/commendations", c.RecordCommendation, "case moves"),
)


class ReceiptOut(BaseModel):
    """What a use case did: the command, the aggregate it wrote, the case and its state after."""

    command: str
    aggregate_id: UUID | None
    case_ref: str | None
    state: str | None
    extra: dict[str, Any]

    @classmethod
    def of(cls, receipt: Receipt) -> ReceiptOut:
        """The JSON form of a receipt."""
        return cls(
            command=receipt.command,
            aggregate_id=receipt.aggregate_id,
            case_ref=receipt.case_ref,
            state=receipt.state,
            extra=dict(receipt.extra),
        )


def staff_roles(command: type[c.Command]) -> frozenset[Role]:
    """The roles a token can carry that may run ``command``."""
    return ALLOWED_ROLES[command] & TOKEN_ROLES


def path_fields(path: str) -> tuple[str, ...]:
    """The command fields a path carries, in order."""
    return tuple(re.findall(r"{(\w+)}", path))


def body_model(command: type[c.Command], carried: tuple[str, ...]) -> type[BaseModel] | None:
    """The command's model without the fields the path carries (None when nothing is left)."""
    if not carried:
        return command
    fields: dict[str, Any] = {
        name: (info.annotation, info) for name, info in command.model_fields.items() if name not in carried
    }
    if not fields:
        return None
    model: type[BaseModel] = create_model(
        f"{command.__name__}Body", __config__=ConfigDict(extra="forbid", frozen=True), __doc__=command.__doc__, **fields
    )
    return model


def _endpoint(route: CommandRoute) -> Callable[..., ReceiptOut]:
    """The route's function, with the signature FastAPI reads: guard, path fields, body."""
    carried = path_fields(route.path)
    body = body_model(route.command, carried)
    guard = allow(staff_roles(route.command), route.command.name)

    def endpoint(**kwargs: Any) -> ReceiptOut:
        request: Request = kwargs["request"]
        staff: Staff = kwargs["staff"]
        svc: Services = kwargs["svc"]
        sent: BaseModel | None = kwargs.get("body")
        if isinstance(sent, route.command):
            command = sent
        else:
            data = sent.model_dump(exclude_unset=True) if sent is not None else {}
            command = route.command.model_validate({**data, **{name: kwargs[name] for name in carried}})
        return ReceiptOut.of(svc.app.execute(command, staff.context(request)))

    params = [
        Parameter("request", Parameter.KEYWORD_ONLY, annotation=Request),
        Parameter("staff", Parameter.KEYWORD_ONLY, annotation=Annotated[Staff, Depends(guard)]),
        Parameter("svc", Parameter.KEYWORD_ONLY, annotation=Annotated[Services, Depends(services)]),
        *(Parameter(name, Parameter.KEYWORD_ONLY, annotation=Annotated[str, Path()]) for name in carried),
    ]
    if body is not None:
        params.append(Parameter("body", Parameter.KEYWORD_ONLY, annotation=Annotated[body, Body()]))
    endpoint.__signature__ = Signature(params, return_annotation=ReceiptOut)  # type: ignore[attr-defined]
    endpoint.__name__ = route.command.name
    return endpoint


class PublishRequest(BaseModel):
    """Publish a weekly review or monthly bulletin, computed from the views now."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["weekly", "monthly"]
    #: ``2021-W47`` or ``2021-11``; default: the last complete week or month.
    period: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{4}-([Ww]\d{2}|\d{2})$")] | None = None


class PublicationOut(BaseModel):
    """A recorded publication and the names of its files."""

    name: str
    kind: str
    period: str
    edition: int
    position: int
    content_hash: str
    files: dict[str, str]


def publish_report(
    request: Request,
    staff: Annotated[Staff, Depends(allow(staff_roles(c.PublishReport), "publish_report"))],
    svc: Annotated[Services, Depends(services)],
    body: PublishRequest,
) -> PublicationOut:
    """Compute the report from the events, write its HTML, Markdown and JSON, and record the publication."""
    kind = ReportKind(body.kind)
    period = body.period.upper() if body.period else due_period(kind, svc.app.clock.now())
    reports = Reports(svc.app, svc.views, svc.rt.settings.reports_dir, policy=svc.rt.policy)
    done = reports.publish(kind, period, staff.context(request))
    return PublicationOut(
        name=done.name,
        kind=kind.value,
        period=done.period,
        edition=done.edition,
        position=done.position,
        content_hash=done.content_hash,
        files={suffix: path.name for suffix, path in done.files.items()},
    )


def router() -> APIRouter:
    """The use-case routes under ``/api/v1``."""
    api = APIRouter(prefix=PREFIX, responses=ERROR_RESPONSES)
    for route in COMMAND_ROUTES:
        roles = staff_roles(route.command)
        api.add_api_route(
            route.path,
            _endpoint(route),
            methods=["POST"],
            response_model=ReceiptOut,
            tags=[route.tag],
            summary=(route.command.__doc__ or route.command.name).strip().splitlines()[0],
            description=f"Runs `{route.command.name}`. Roles: {role_names(roles)}.",
            operation_id=route.command.name,
            openapi_extra={"x-roles": sorted(r.value for r in roles)},
        )
    roles = staff_roles(c.PublishReport)
    api.add_api_route(
        "/reports",
        publish_report,
        methods=["POST"],
        response_model=PublicationOut,
        tags=["reports"],
        summary="Publish the weekly review or monthly bulletin",
        description=f"Computes, writes and records a publication (the next edition). Roles: {role_names(roles)}.",
        operation_id="publish_report",
        openapi_extra={"x-roles": sorted(r.value for r in roles)},
    )
    return api
