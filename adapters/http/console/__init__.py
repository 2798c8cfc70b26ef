"""The supervision console: server-rendered pages under ``/console/`` for staff signed in with their token.

- ``/console/login``, ``/console/logout``: sign in with a staff API token (kept in an HttpOnly cookie)
- ``/console/``: the five rates per unit, this week and this month, with charts
- ``/console/board``: the case board, most urgent first, with live deadline countdowns
- ``/console/cases/{ref}``: a case's story, SLA steps, audit score and the moves the actor may make
- ``/console/reports``: published weekly reviews and monthly bulletins; the office publishes
- ``/console/qr``: units' and officers' QR codes, images and printable sheets; administrators manage them

Every page reads and writes through the staff API's own functions and the domain's use cases, with
the same role and unit rules; the routes are kept out of the OpenAPI document.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from adapters.http.console import cases, qr, rates, reports, session
from adapters.http.console.pages import PREFIX, STATIC, ConsoleRoute

STATIC_PATH = f"{PREFIX}/static"


def router() -> APIRouter:
    """Every console page, under ``/console``, out of the OpenAPI document."""
    console = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
    for module in (session, rates, cases, reports, qr):
        module.register(console)
    return console


def mount_static(app: FastAPI) -> None:
    """Serve the console's stylesheet and script under ``/console/static``."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="console-static")


__all__ = ["STATIC_PATH", "mount_static", "router"]
