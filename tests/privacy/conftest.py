"""Fixtures for the personal-data tests: the master key file of each test, the store's raw bytes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.store import Store, connect_postgres, resolve
from domain import commands as c
from tests.conftest import SUPERVISOR, County
from tests.http.conftest import World, make_world

#: A phone and a name that appear nowhere else in the tests' data.
PHONE = "13912345678"
NAME = "欧阳知秋"
#: The case's summary: free text, stored as it is (the control that the searches can see Chinese text).
SUMMARY = "来电反映出警慢"


@pytest.fixture(autouse=True)
def data_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own master key file: every application the test builds (CLI, rebuild workers) uses it."""
    path = tmp_path / "data-key"
    monkeypatch.setenv("PINGJING_DATA_KEY_FILE", str(path))
    monkeypatch.delenv("PINGJING_DATA_KEY", raising=False)
    return path


@pytest.fixture
def stored(durable_database: str) -> str:
    """PINGJING_DATABASE of each store that keeps keys: a SQLite file, a PostgreSQL schema."""
    return durable_database


@pytest.fixture
def world(stored: str, tmp_path: Path, clock: object, data_key_file: Path) -> Iterator[World]:
    """The HTTP app on each store, the tiny county registered, a token per role."""
    made = make_world(stored, tmp_path, clock, data_key_file=data_key_file)  # type: ignore[arg-type]
    yield made
    made.client.close()
    made.rt.close()


def forms(text: str) -> list[bytes]:
    """Every way ``text`` could sit in a file: UTF-8, JSON with ASCII escapes, and digits spaced out."""
    found = {text.encode("utf-8"), json.dumps(text).strip('"').encode("ascii")}
    if text.isdigit():
        found.add(" ".join(text).encode("ascii"))
    return sorted(found)


def raw_bytes(store: Store) -> bytes:
    """Everything the store holds on disk, as bytes: the SQLite file and its -wal, or a pg_dump of the schema."""
    if store.kind == "sqlite":
        assert store.path is not None
        parts = [p.read_bytes() for p in (store.path, Path(f"{store.path}-wal")) if p.exists()]
        return b"".join(parts)
    env = store.env
    dump = shutil.which("pg_dump")
    if dump is None:
        pytest.skip("pg_dump is not installed")
    args = [dump, "--no-owner", "-h", env["POSTGRES_HOST"], "-p", env["POSTGRES_PORT"], "-U", env["POSTGRES_USER"]]
    if store.schema:
        args += ["--schema", store.schema]
    result = subprocess.run(  # noqa: S603 - pg_dump of the test's own database
        [*args, env["POSTGRES_DBNAME"]], capture_output=True, check=True,
        env={**os.environ, "PGPASSWORD": env.get("POSTGRES_PASSWORD", "")},
    )
    return result.stdout + _table_contents(store)


def _table_contents(store: Store) -> bytes:
    """Every value of every row of every table of the schema, as stored: bytes as they are, text as UTF-8.

    pg_dump writes ``bytea`` (the events' state) as hex; this reads the same rows as bytes, so a
    search finds what they hold.
    """
    schema = store.schema or "public"
    out: list[bytes] = []
    with connect_postgres(store.env) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            rows = conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()  # noqa: S608 - the test's own schema
            for row in rows:
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        out.append(bytes(value))
                    else:
                        out.append(str(value).encode("utf-8"))
    return b"\n".join(out)


def contains_any(data: bytes, text: str) -> bool:
    """True when ``data`` holds ``text`` in any of its :func:`forms`."""
    return any(form in data for form in forms(text))


def open_with_contact(county: County, *, phone: str = PHONE, name: str | None = NAME) -> str:
    """A hotline case of PS1 with the citizen's phone and name; its reference."""
    receipt = county.app.open_case(
        c.OpenCase(kind="complaint", unit_code="PS1", summary=SUMMARY, intake="hotline",
                   phone=phone, citizen_name=name),
        SUPERVISOR,
    )
    assert receipt.case_ref is not None
    return receipt.case_ref


def store_of(database: str) -> Store:
    """The resolved store of ``database``."""
    return resolve(database)
