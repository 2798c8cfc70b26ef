"""Fixtures for the HTTP tests: the app on a store with the tiny county, and a token per role."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from adapters.bootstrap import Runtime, bootstrap
from adapters.http import create_app
from adapters.settings import Settings
from domain import commands as c
from domain.tokens import hash_token
from domain.values import Role
from tests.conftest import ADMIN, County
from tests.fakes import FakeClock, SequentialIds

with warnings.catch_warnings():
    # Starlette announces a successor of httpx for its TestClient; httpx is what FastAPI documents.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

#: Who holds each test token: the office, an auditor, an administrator, the head of PS1 (100101),
#: the officer rated on every case (100102), and the head of PS2 (100201).
PRINCIPALS: dict[str, tuple[Role, str, str | None]] = {
    "supervisor": (Role.SUPERVISOR, "dc-wang", None),
    "auditor": (Role.AUDITOR, "auditor-1", None),
    "admin": (Role.ADMIN, "admin-1", None),
    "unit_head": (Role.UNIT_HEAD, "100101", "PS1"),
    "officer": (Role.OFFICER, "100102", None),
    "other_head": (Role.UNIT_HEAD, "100201", "PS2"),
}


def make_token(rt: Runtime, role: Role, principal: str, unit: str | None = None) -> str:
    """A token's secret, its hash recorded through the use case."""
    secret = f"pj_test_{role.value}_{principal}_{rt.app.ids.new_id().hex}"
    rt.app.create_api_token(
        c.CreateApiToken(token_hash=hash_token(secret), role=role.value, principal=principal, unit_code=unit), ADMIN
    )
    return secret


def bearer(secret: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {secret}"}


@dataclass
class World:
    """The app on a store with the tiny county and a token for each principal."""

    rt: Runtime
    app: FastAPI
    client: TestClient
    county: County
    clock: FakeClock
    secrets: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        """The Authorization header of ``who`` (a key of :data:`PRINCIPALS`)."""
        return bearer(self.secrets[who])

    def head(self) -> int:
        """The log's last position."""
        return int(self.rt.app.recorder.max_notification_id() or 0)

    def get(self, who: str | None, path: str, **kwargs: Any) -> Any:
        """GET as ``who`` (None: without a token)."""
        return self.client.get(path, headers=self.headers(who) if who else {}, **kwargs)

    def post(self, who: str | None, path: str, json: Any = None, **kwargs: Any) -> Any:
        """POST as ``who`` (None: without a token)."""
        return self.client.post(path, json=json, headers=self.headers(who) if who else {}, **kwargs)


def make_world(database: str, tmp_path: Path, clock: FakeClock, **settings: Any) -> World:
    """The app on ``database`` with the county registered and every token made."""
    files = {"reports_dir": tmp_path / "reports", "qr_key_file": tmp_path / "qr-keys.json",
             "device_key_file": tmp_path / "device-key"}
    rt = bootstrap(
        Settings(database=database, **{**files, **settings}),
        clock=clock, ids=SequentialIds(), observers=[], configure_logging=False,
    )
    county = County(rt.app, clock).setup()
    app = create_app(rt)
    world = World(rt, app, TestClient(app), county, clock)
    for who, (role, principal, unit) in PRINCIPALS.items():
        world.secrets[who] = make_token(rt, role, principal, unit)
    return world


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock) -> Iterator[World]:
    """The app on a SQLite file."""
    made = make_world(str(tmp_path / "events.sqlite3"), tmp_path, clock)
    yield made
    made.client.close()
    made.rt.close()


@pytest.fixture
def any_world(database: str, tmp_path: Path, clock: FakeClock) -> Iterator[World]:
    """The app on each store (memory, SQLite, PostgreSQL)."""
    made = make_world(database, tmp_path, clock)
    yield made
    made.client.close()
    made.rt.close()
