"""Signing in to the console with a staff API token, and signing out.

``GET /console/login`` shows the form; ``POST /console/login`` checks the token as the API
checks a bearer token and keeps it in the console cookie, then sends the browser on (303) to
the page it came for or the dashboard; an unknown or revoked token gets the form again (401).
``POST /console/logout`` forgets the cookie. The sign-in form cannot carry a session's CSRF
token (there is no session yet): a sign-in posted from another site's page (its ``Origin``
names another host) is refused instead.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from adapters.http.console.auth import ConsoleStaff, check_token, clear_cookie, form_checked, posted, set_cookie
from adapters.http.console.pages import LOGIN_PATH, PREFIX, error_page, page
from adapters.http.errors import Unauthenticated
from adapters.http.services import Services, services

HOME = f"{PREFIX}/"
#: Where a sign-in may send the browser on: a console page of this site, nothing else.
_NEXT = re.compile(r"^/console(/[A-Za-z0-9._~%/?&=+:-]*)?$")


def safe_next(value: str | None) -> str:
    """``value`` when it is a console page of this site, else the dashboard."""
    if value and _NEXT.match(value) and "//" not in value and value != LOGIN_PATH:
        return value
    return HOME


def login_form(request: Request, next: str | None = None, signed_out: str | None = None) -> HTMLResponse:
    """The sign-in form."""
    notice = "已退出登录。 You are signed out." if signed_out else None
    return page(request, "login.html.j2", next=safe_next(next), notice=notice)


def login(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    form: Annotated[dict[str, str], Depends(posted)],
) -> Response:
    """Check the token; keep it in the cookie and go on, or show the form again (401)."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host", ""):
        return error_page(request, 403, "拒绝登录 Sign-in refused",
                          "登录表单来自其他网站。 The sign-in form was posted from another site.")
    secret = form.get("token", "").strip()
    target = safe_next(form.get("next"))
    try:
        check_token(request, svc, secret)
    except Unauthenticated as refused:
        message = ("请输入访问令牌。 Enter your access token." if not secret else
                   f"令牌无效或已停用，请向管理员申领。 The token was refused: {refused}.")
        return page(request, "login.html.j2", 401, next=target, error=message)
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, secret)
    return response


def logout(request: Request, staff: Annotated[ConsoleStaff, Depends(form_checked)]) -> Response:
    """Forget the cookie and show the sign-in form."""
    response = RedirectResponse(f"{LOGIN_PATH}?signed_out=1", status_code=303)
    clear_cookie(request, response)
    return response


def register(router: APIRouter) -> None:
    """Add the sign-in and sign-out routes."""
    router.add_api_route("/login", login_form, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/login", login, methods=["POST"], response_class=HTMLResponse)
    router.add_api_route("/logout", logout, methods=["POST"], response_class=HTMLResponse)
