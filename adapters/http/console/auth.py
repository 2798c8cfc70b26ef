"""Who is signed in to the console: the staff API token, carried in a cookie; and every form's CSRF token.

Signing in checks a token exactly as the API checks a bearer token
(:func:`adapters.http.auth.authenticate`: hashed, looked up, refused when unknown or revoked)
and keeps it in a cookie that scripts cannot read (HttpOnly), that no other site's page sends
(SameSite=Strict), scoped to ``/console`` and Secure over https. Each request checks it
again: a token revoked meanwhile signs the browser out at its next click.

Every console form carries ``csrf``: HMAC-SHA256 keyed with the token's hash over a fixed
purpose string. Only a page the console drew for that session knows it; it changes with the
token and reveals nothing about it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from adapters.http.auth import Staff, authenticate
from adapters.http.errors import Unauthenticated
from adapters.http.services import Services, services
from domain.application import Context
from domain.tokens import hash_token
from domain.values import Channel

COOKIE = "pj_console"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf"
_CSRF_PURPOSE = b"pingjing-console/csrf/1"


class SignInRequired(Exception):  # noqa: N818 - named for what the visitor must do, like the API's Unauthenticated
    """No console cookie, or one whose token is unknown or revoked."""

    def __init__(self, next_path: str, *, clear_cookie: bool) -> None:
        super().__init__("sign in to the console")
        self.next_path = next_path
        self.clear_cookie = clear_cookie


class CsrfRefused(Exception):  # noqa: N818 - named for the answer it becomes (a 403 page)
    """A console form arrived without its CSRF token, or with another session's."""


def csrf_token(secret: str) -> str:
    """The form token of a session: HMAC-SHA256(key = the token's SHA-256, the console's purpose)."""
    return hmac.new(bytes.fromhex(hash_token(secret)), _CSRF_PURPOSE, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ConsoleStaff(Staff):
    """A staff member signed in to the console: their commands and reads run on the console channel."""

    #: The form token every POST of this session must carry.
    csrf: str

    def context(self, request: Request) -> Context:
        """The use-case context: the token's actor, the console channel, the request id."""
        return Context(self.actor, Channel.CONSOLE, correlation_id=getattr(request.state, "request_id", None))


def check_token(request: Request, svc: Services, secret: str) -> ConsoleStaff:
    """The staff member a token stands for, checked as the API checks it; :class:`Unauthenticated` if none."""
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=secret)
    staff = authenticate(request, credentials, svc)
    signed_in = ConsoleStaff(staff.token_id, staff.actor, staff.unit_code, csrf_token(secret.strip()))
    request.state.staff = signed_in  # the request log names the actor, as for the API
    request.state.console_staff = signed_in
    return signed_in


def signed_in(request: Request, svc: Annotated[Services, Depends(services)]) -> ConsoleStaff:
    """The staff member whose token the console cookie carries; a :class:`SignInRequired` otherwise."""
    secret = request.cookies.get(COOKIE, "")
    next_path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        next_path = f"{COOKIE_PATH}/"  # a form is not posted again after signing in
    if not secret.strip():
        raise SignInRequired(next_path, clear_cookie=False)
    try:
        return check_token(request, svc, secret)
    except Unauthenticated:
        raise SignInRequired(next_path, clear_cookie=True) from None


async def posted(request: Request) -> dict[str, str]:
    """The posted form's text fields (files are not taken)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def form_checked(
    staff: Annotated[ConsoleStaff, Depends(signed_in)],
    form: Annotated[dict[str, str], Depends(posted)],
) -> ConsoleStaff:
    """A signed-in staff member whose form carries this session's CSRF token."""
    if not hmac.compare_digest(form.get(CSRF_FIELD, "").encode(), staff.csrf.encode()):
        raise CsrfRefused()
    return staff


def set_cookie(request: Request, response: Response, secret: str) -> None:
    """Keep the token in the console cookie (HttpOnly, SameSite=Strict, Path=/console, Secure over https)."""
    response.set_cookie(
        COOKIE, secret, path=COOKIE_PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


def clear_cookie(request: Request, response: Response) -> None:
    """Forget the console cookie."""
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
