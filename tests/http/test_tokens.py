"""``pingjing token create|list|revoke`` and what a token opens: its secret shown once, only its hash kept."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.bootstrap import bootstrap
from adapters.http import create_app
from adapters.settings import Settings
from domain.tokens import ApiToken, api_token_id, hash_token
from tests.adapters.support import run_cli
from tests.conftest import County, make_app
from tests.fakes import FakeClock
from tests.http.conftest import TestClient, bearer

SECRET = re.compile(r"pj_[A-Za-z0-9_-]{43}")


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> str:
    """A SQLite file with the tiny county."""
    path = str(tmp_path / "tokens.sqlite3")
    app = make_app(path, clock)
    County(app, clock).setup()
    app.close()
    return path


@pytest.fixture
def client(store: str, tmp_path: Path) -> Iterator[TestClient]:
    """The API on that file."""
    rt = bootstrap(Settings(database=store, reports_dir=tmp_path / "reports"), observers=[], configure_logging=False)
    with TestClient(create_app(rt)) as http:
        yield http
    rt.close()


def create(store: str, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, str]:
    """``token create ARGS --format json``; what it printed."""
    assert run_cli("--database", store, "token", "create", *args, "--format", "json") == 0, capsys.readouterr().err
    made: dict[str, str] = json.loads(capsys.readouterr().out)
    return made


def test_a_token_is_shown_once_and_only_its_hash_is_stored(
    store: str, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    made = create(store, capsys, "--role", "supervisor", "--principal", "dc-wang", "--label", "督察大队王")
    secret = made["token"]
    assert SECRET.fullmatch(secret)
    assert made["id"] == str(api_token_id(hash_token(secret)))
    stored = b"".join(p.read_bytes() for p in Path(store).parent.glob(Path(store).name + "*"))
    assert secret.encode() not in stored
    assert hash_token(secret).encode() in stored

    me = client.get("/api/v1/me", headers=bearer(secret))
    assert me.status_code == 200
    assert me.json() == {"token_id": made["id"], "role": "supervisor", "principal": "dc-wang", "unit_code": None}

    assert run_cli("--database", store, "token", "list", "--format", "json") == 0
    listed = capsys.readouterr().out
    assert secret not in listed
    assert hash_token(secret) not in listed
    [row] = json.loads(listed)
    assert (row["id"], row["role"], row["label"], row["revoked"]) == (made["id"], "supervisor", "督察大队王", False)


def test_a_revoked_token_is_refused_with_401(
    store: str, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    made = create(store, capsys, "--role", "unit_head", "--principal", "100101", "--unit", "ps1")
    assert client.get("/api/v1/cases", headers=bearer(made["token"])).status_code == 200

    assert run_cli("--database", store, "token", "revoke", made["id"], "--reason", "调离") == 0
    assert "revoked" in capsys.readouterr().out
    refused = client.get("/api/v1/cases", headers=bearer(made["token"]))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="pingjing", error="invalid_token"'
    assert refused.json()["error"] == "unauthenticated"
    assert "revoked" in refused.json()["message"]
    assert run_cli("--database", store, "token", "revoke", made["id"]) == 1
    assert "already revoked" in capsys.readouterr().err
    assert run_cli("--database", store, "token", "list") == 0
    assert "revoked" in capsys.readouterr().out


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer pj_not_a_token", "Basic ZGM6d2FuZw==", "bearer "],
    ids=["none", "empty", "unknown", "basic", "blank"],
)
def test_a_request_without_a_working_token_gets_401(client: TestClient, header: str | None) -> None:
    r = client.get("/api/v1/units", headers={"Authorization": header} if header else {})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith('Bearer realm="pingjing"')
    assert r.json()["error"] == "unauthenticated"


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--role", "unit_head", "--principal", "100101"], 2, "needs the unit_code"),
        (["--role", "supervisor", "--principal", "dc-wang", "--unit", "PS1"], 2, "unit heads only"),
        (["--role", "citizen", "--principal", "anonymous"], 2, "invalid choice"),
        (["--role", "unit_head", "--principal", "100101", "--unit", "PS2"], 1, "not the head of unit PS2"),
        (["--role", "officer", "--principal", "999999"], 1, "unknown officer"),
        (["--role", "auditor", "--principal", "bad principal"], 2, "principal"),
        (["--role", "auditor", "--principal", "a-1", "--by", "supervisor:dc-wang"], 1, "may not create_api_token"),
    ],
)
def test_a_token_that_cannot_be_right_is_refused_and_nothing_is_stored(
    store: str, capsys: pytest.CaptureFixture[str], args: list[str], status: int, message: str
) -> None:
    assert run_cli("--database", store, "token", "create", *args) == status
    captured = capsys.readouterr()
    assert message in captured.err
    assert not SECRET.search(captured.out)
    assert run_cli("--database", store, "token", "list", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_an_officer_token_acts_under_the_badge_upper_cased(
    store: str, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    made = create(store, capsys, "--role", "officer", "--principal", "f10103")
    assert made["principal"] == "F10103"
    app = make_app(store, FakeClock(datetime.now(UTC)))
    try:
        found = app.get_api_token(hash_token(made["token"]))
    finally:
        app.close()
    assert isinstance(found, ApiToken)
    assert (found.principal, found.role.value, found.token_hash) == ("F10103", "officer", hash_token(made["token"]))
