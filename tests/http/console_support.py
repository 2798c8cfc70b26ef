"""Driving the console as a browser would: one cookie jar per person, forms posted with the page's CSRF token."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from domain import commands as c
from tests.conftest import ADMIN
from tests.fakes import FakeClock
from tests.http.conftest import World, make_world

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

CONSOLE = "/console"
#: Where the test's QR codes point.
PUBLIC_URL = "https://pj.example.cn"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a console page put in its forms."""
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def section(html: str, start: str, end: str = "</tr>") -> str:
    """The part of ``html`` from the first ``start`` to the next ``end`` (both must be there)."""
    at = html.index(start)
    return html[at : html.index(end, at)]


@dataclass
class Browser:
    """One person's browser on the console: their own cookies, redirects not followed."""

    world: World
    client: TestClient
    who: str | None = None

    def sign_in(self, who: str) -> httpx.Response:
        """Post the sign-in form with ``who``'s token."""
        self.who = who
        answer: httpx.Response = self.client.post(f"{CONSOLE}/login", data={"token": self.world.secrets[who]})
        return answer

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET a console page."""
        answer: httpx.Response = self.client.get(path, **kwargs)
        return answer

    def submit(self, page: str, action: str, data: dict[str, str] | None = None) -> httpx.Response:
        """Open ``page`` and post one of its forms to ``action`` with ``data`` and the page's CSRF token."""
        shown = self.client.get(page)
        assert shown.status_code == 200, shown.text
        answer: httpx.Response = self.client.post(action, data={**(data or {}), "csrf": csrf_of(shown.text)})
        return answer

    def post(self, action: str, data: dict[str, str] | None = None) -> httpx.Response:
        """Post a form as it is (no CSRF token added)."""
        answer: httpx.Response = self.client.post(action, data=data or {})
        return answer


def browser(world: World, who: str | None = None, *, https: bool = False) -> Browser:
    """A fresh browser; signed in as ``who`` when given."""
    client = TestClient(world.app, base_url="https://testserver" if https else "http://testserver",
                        follow_redirects=False)
    opened = Browser(world, client)
    if who is not None:
        signed = opened.sign_in(who)
        assert signed.status_code == 303, signed.text
    return opened


def issue_codes(world: World, *identities: tuple[str, str]) -> None:
    """Issue the QR codes of ``(subject, key)`` pairs as the administrator."""
    for subject, key in identities:
        world.rt.app.issue_qr(c.IssueQr.model_validate({"subject": subject, "key": key}), ADMIN)


def hotline_case(world: World, unit: str = "PS1", *, phone: str | None = "13800138000",
                 name: str | None = "曹某") -> str:
    """A hotline complaint about ``unit``, opened by the office through the API."""
    body = {"intake": "hotline", "kind": "complaint", "unit_code": unit, "summary": "报警后出警太慢",
            "phone": phone, "citizen_name": name}
    opened = world.post("supervisor", "/api/v1/cases", {k: v for k, v in body.items() if v is not None})
    assert opened.status_code == 200, opened.text
    return str(opened.json()["case_ref"])


def console_world_at(tmp_path: Path, clock: FakeClock) -> World:
    """The app on a SQLite file with the tiny county and a token per role; QR keys and reports under ``tmp_path``."""
    return make_world(str(tmp_path / "events.sqlite3"), tmp_path, clock, qr_key_file=tmp_path / "qr-keys.json",
                      qr_keys=None, public_url=PUBLIC_URL)
