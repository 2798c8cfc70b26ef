"""Who is asking: the bearer token of a request, and the roles each route lets in (DESIGN §1, §7).

A request's token is hashed (SHA-256) and the :class:`domain.tokens.ApiToken` with the id
derived from that hash is loaded: no secret is ever stored or compared. No token, an unknown
one or a revoked one is a 401 with ``WWW-Authenticate: Bearer``; a role the route does not let
in is a 403 naming the actor, what they asked for and the roles allowed.

The use cases check roles and units again themselves; the route's check answers first, before
a body is even validated, and documents the route in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.http.errors import Unauthenticated
from adapters.http.services import Services, services
from domain.application import Context
from domain.errors import NotFoundError, PermissionDeniedError
from domain.tokens import hash_token
from domain.values import Actor, Channel, Role

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="pj_...",
    description="A staff API token from `pingjing token create --role ROLE --principal ID`.",
)


@dataclass(frozen=True)
class Staff:
    """The member of staff a request's token stands for."""

    token_id: UUID
    actor: Actor
    #: A unit head's unit; None for the other roles.
    unit_code: str | None

    @property
    def role(self) -> Role:
        """The role the token carries."""
        return self.actor.role

    def context(self, request: Request) -> Context:
        """The use-case context of this request: the token's actor, the API channel, the request id."""
        return Context(self.actor, Channel.API, correlation_id=getattr(request.state, "request_id", None))


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    svc: Annotated[Services, Depends(services)],
) -> Staff:
    """The staff member behind the request's bearer token; 401 without a working one."""
    if credentials is None or not credentials.credentials.strip():
        raise Unauthenticated("this route needs a staff API token: Authorization: Bearer <token>", invalid=False)
    try:
        token = svc.app.get_api_token(hash_token(credentials.credentials.strip()))
    except NotFoundError:
        raise Unauthenticated("the bearer token is not a pingjing API token", invalid=True) from None
    if token.revoked:
        raise Unauthenticated(f"{token.label} was revoked", invalid=True)
    staff = Staff(token.id, Actor(token.principal, token.role), token.unit_code)
    request.state.staff = staff
    return staff


def role_names(roles: Iterable[Role]) -> str:
    """``admin, supervisor`` (sorted)."""
    return ", ".join(sorted(r.value for r in roles))


def documented(endpoint: Callable[..., Any], roles: Iterable[Role], method: str = "GET") -> dict[str, Any]:
    """``add_api_route`` arguments naming the route's roles: in its description and as ``x-roles``."""
    doc = (endpoint.__doc__ or "").strip()
    return {
        "methods": [method],
        "operation_id": endpoint.__name__,
        "summary": doc.splitlines()[0].rstrip(".") if doc else endpoint.__name__,
        "description": f"{doc}\n\nRoles: {role_names(roles)}.",
        "openapi_extra": {"x-roles": sorted(r.value for r in roles)},
    }


def allow(roles: Iterable[Role], what: str) -> Callable[..., Staff]:
    """A dependency letting only ``roles`` in; ``what`` names the route in the refusal (``read the board``)."""
    allowed = frozenset(roles)

    def check(staff: Annotated[Staff, Depends(authenticate)]) -> Staff:
        if staff.role not in allowed:
            raise PermissionDeniedError(f"{staff.actor} may not {what} (allowed: {role_names(allowed)})")
        return staff

    return check


def check_unit_head(svc: Services, staff: Staff, unit_code: str, what: str) -> None:
    """A unit head reads only their own unit's cases, and only while they still head it."""
    if staff.unit_code != unit_code:
        raise PermissionDeniedError(f"{staff.actor} is the head of unit {staff.unit_code}, not of unit {unit_code}, "
                                    f"to which {what} belongs")
    unit = svc.app.get_unit(unit_code)
    if unit.head_badge != staff.actor.principal:
        raise PermissionDeniedError(f"{staff.actor} is no longer the head of unit {unit_code}")
