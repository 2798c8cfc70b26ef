"""How console pages are drawn: the templates, the labels, times and countdowns, the error page.

Every console route is a :class:`ConsoleRoute`: whatever a handler or its dependencies raise
becomes a page, never JSON: no valid sign-in cookie is a 303 to the sign-in form, a refused
form check (CSRF) a 403 page, a domain error a page with the status the API gives it
(:func:`adapters.http.errors.domain_status`). Every answer carries the console's security
headers and is never cached.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import ValidationError as PydanticValidationError

from adapters.http.cases import CASE_READERS
from adapters.http.console.auth import ConsoleStaff, CsrfRefused, SignInRequired, clear_cookie
from adapters.http.errors import domain_status, field_errors
from adapters.http.queries import RATES_READERS, REPORT_READERS
from adapters.reports.render import RATE_LABELS, STEP_LABELS, percent
from domain.errors import PingjingError
from domain.ids import LOCAL_TZ
from domain.rates import FIVE_RATES
from domain.values import Role
from projections.timeline import local

PREFIX = "/console"
LOGIN_PATH = f"{PREFIX}/login"
TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")

#: The console's answers are never cached (a revealed contact, a case's state) nor framed elsewhere.
SECURITY_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'"
    ),
}

#: Who opens the QR page: administrators (who manage the codes) and the office (read-only).
QR_READERS = frozenset({Role.ADMIN, Role.SUPERVISOR})


@dataclass(frozen=True)
class NavItem:
    """A link of the console's navigation and the roles it is shown to."""

    key: str
    path: str
    zh: str
    en: str
    roles: frozenset[Role]


NAV: tuple[NavItem, ...] = (
    NavItem("board", f"{PREFIX}/board", "看板", "Board", CASE_READERS),
    NavItem("rates", f"{PREFIX}/", "五率", "Rates", RATES_READERS),
    NavItem("reports", f"{PREFIX}/reports", "报告", "Reports", REPORT_READERS),
    NavItem("qr", f"{PREFIX}/qr", "二维码", "QR", QR_READERS),
)

ROLE_LABELS: dict[str, tuple[str, str]] = {
    Role.SUPERVISOR.value: ("督察大队", "supervision office"),
    Role.UNIT_HEAD.value: ("单位负责人", "unit head"),
    Role.OFFICER.value: ("民警", "officer"),
    Role.AUDITOR.value: ("特约监督员", "auditor"),
    Role.ADMIN.value: ("管理员", "administrator"),
    Role.CITIZEN.value: ("群众", "citizen"),
    Role.SYSTEM.value: ("系统", "system"),
}
STATE_LABELS: dict[str, tuple[str, str]] = {
    "open": ("已立案", "open"),
    "pushed": ("已推送", "pushed"),
    "contacted": ("已联系", "contacted"),
    "reported": ("已反馈", "reported"),
    "called_back": ("已回访", "called back"),
    "rectifying": ("整改中", "rectifying"),
    "rectified": ("已整改", "rectified"),
    "verified": ("已核查", "verified"),
    "closed": ("已办结", "closed"),
}
KIND_LABELS: dict[str, tuple[str, str]] = {
    "dissatisfaction": ("不满意评价", "dissatisfied rating"),
    "complaint": ("投诉", "complaint"),
    "suggestion": ("建议", "suggestion"),
}
INTAKE_LABELS: dict[str, tuple[str, str]] = {
    "qr": ("扫码", "QR scan"),
    "hotline": ("热线", "hotline"),
    "meeting": ("开门评警", "evaluation meeting"),
    "letter": ("来信", "letter"),
    "home_visit": ("走访", "home visit"),
}
SLA_STATUS_LABELS: dict[str, tuple[str, str]] = {
    "running": ("进行中", "running"),
    "on_time": ("按时", "on time"),
    "late": ("超时办理", "late"),
    "missed": ("未办", "missed"),
    "cancelled": ("已取消", "cancelled"),
}


def label(table: Mapping[str, tuple[str, str]], key: str) -> str:
    """``中文 English`` for a key of a label table (the key itself when the table lacks it)."""
    zh, en = table.get(key, (key, ""))
    return f"{zh} {en}".strip() if en and en != zh else zh


def step_label(step: str) -> str:
    """An SLA step as ``联系当事人 contact``."""
    return f"{STEP_LABELS.get(step, step)} {step}"


def span(seconds: int) -> tuple[str, str]:
    """A length of time in its two largest units: (``3小时12分``, ``3 h 12 min``)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}天" + (f"{hours}小时" if hours else ""), f"{days} d" + (f" {hours} h" if hours else "")
    if hours:
        zh = f"{hours}小时" + (f"{minutes}分" if minutes else "")
        return zh, f"{hours} h" + (f" {minutes} min" if minutes else "")
    if minutes:
        return f"{minutes}分", f"{minutes} min"
    return f"{secs}秒", f"{secs} s"


def countdown(deadline: datetime, now: datetime) -> str:
    """``剩余 3小时12分 / 3 h 12 min left`` or ``已超时 2小时 / 2 h overdue`` (static/console.js says the same)."""
    left = (deadline - now).total_seconds()
    if left >= 0:
        zh, en = span(math.floor(left))
        return f"剩余 {zh} / {en} left"
    zh, en = span(math.floor(-left))
    return f"已超时 {zh} / {en} overdue"


def iso(moment: datetime) -> str:
    """A moment for a ``data-deadline`` attribute: ISO 8601 with its offset, Asia/Shanghai."""
    return moment.astimezone(LOCAL_TZ).isoformat(timespec="seconds")


def with_query(path: str, **params: str | None) -> str:
    """``path?a=1&b=2`` with the parameters that have a value."""
    kept = {key: value for key, value in params.items() if value}
    return f"{path}?{urlencode(kept)}" if kept else path


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates ship with the code: not checked on disk at every render
    )
    env.globals.update(
        label=label,
        step_label=step_label,
        countdown=countdown,
        iso=iso,
        local=local,
        percent=percent,
        with_query=with_query,
        ROLE_LABELS=ROLE_LABELS,
        STATE_LABELS=STATE_LABELS,
        KIND_LABELS=KIND_LABELS,
        INTAKE_LABELS=INTAKE_LABELS,
        SLA_STATUS_LABELS=SLA_STATUS_LABELS,
        RATE_LABELS=RATE_LABELS,
        FIVE=list(FIVE_RATES),
        PREFIX=PREFIX,
    )
    return env


templates = Jinja2Templates(env=_environment())


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A console page; the signed-in staff member (if any) and their form token come from the request."""
    staff: ConsoleStaff | None = getattr(request.state, "console_staff", None)
    nav = [item for item in NAV if staff is not None and staff.role in item.roles]
    values = {"staff": staff, "csrf": staff.csrf if staff is not None else "", "nav": nav, "notice": None,
              "error": None, "error_details": []}
    values.update(context)
    response: HTMLResponse = templates.TemplateResponse(request, template, values, status_code=status_code)
    return response


def error_page(
    request: Request, status_code: int, title: str, message: str, details: list[str] | None = None
) -> HTMLResponse:
    """The page of a refusal: what was refused and why."""
    return page(request, "error.html.j2", status_code, title=title, message=message, details=details or [])


#: The heading of each refusal, by status.
ERROR_TITLES: dict[int, str] = {
    403: "无权操作 Not allowed",
    404: "未找到 Not found",
    409: "无法办理 Refused",
    422: "输入有误 Invalid input",
}


def domain_error_page(request: Request, error: PingjingError) -> HTMLResponse:
    """A domain error's page, with the status the API answers it with."""
    status, _ = domain_status(error)
    return error_page(request, status, ERROR_TITLES.get(status, "无法办理 Refused"), str(error))


def invalid_messages(errors: list[Any]) -> list[str]:
    """Each field's problem, ``field: message`` (never the input echoed back)."""
    return [f"{'.'.join(e['loc'][-1:]) or 'form'}: {e['message']}" for e in field_errors(errors)]


class ConsoleRoute(APIRoute):
    """A console route: refusals become pages, every answer gets the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, wrapped."""
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            response = await self._answer(handler, request)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return console_handler

    async def _answer(self, handler: Callable[[Request], Coroutine[Any, Any, Response]], request: Request) -> Response:
        try:
            return await handler(request)
        except SignInRequired as refused:
            target = LOGIN_PATH if refused.next_path in {PREFIX, f"{PREFIX}/"} else with_query(
                LOGIN_PATH, next=refused.next_path
            )
            redirect = RedirectResponse(target, status_code=303)
            if refused.clear_cookie:
                clear_cookie(request, redirect)
            return redirect
        except CsrfRefused:
            return error_page(
                request, 403, "表单校验失败 Form check failed",
                "表单缺少有效的安全校验码（CSRF），未做任何更改；请刷新页面后重试。 The form's security token (CSRF) "
                "is missing or wrong; nothing was changed. Reload the page and retry.",
            )
        except PingjingError as error:
            return domain_error_page(request, error)
        except (RequestValidationError, PydanticValidationError) as invalid:
            return error_page(request, 422, ERROR_TITLES[422], "请求参数有误 The request is not valid.",
                              invalid_messages(list(invalid.errors())))
