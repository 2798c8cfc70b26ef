"""One log line per use case without personal data; the store setting; durable SQLite commits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters import store
from adapters.bootstrap import Runtime, bootstrap
from adapters.settings import Settings
from adapters.store import StoreConfigError, connect_postgres, resolve
from domain import commands as c
from domain.application import Context
from domain.errors import NotFoundError, PermissionDeniedError
from domain.values import Channel
from tests.conftest import ADMIN, CITIZEN, START, SUPERVISOR, County, head_of
from tests.fakes import FakeClock

PHONE = "13931508866"
NAME = "曹某家属"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """The runtime as ``bootstrap`` builds it, on a SQLite file, with the real log observer."""
    rt = bootstrap(Settings(database=str(tmp_path / "events.sqlite3")), configure_logging=False)
    yield rt
    rt.close()


@pytest.fixture
def county(runtime: Runtime) -> County:
    """The tiny test county, registered before any log is captured."""
    return County(runtime.app, FakeClock(START)).setup()


def complaint(**fields: Any) -> c.SubmitRating:
    """A dissatisfied rating of officer 100102 that leaves a phone and a name."""
    data: dict[str, Any] = {
        "target": "officer", "key": "100102", "verdict": "dissatisfied",
        "service_score": 1, "attitude_score": 1, "efficiency_score": 1,
        "complaint": "出警太慢", "phone": PHONE, "citizen_name": NAME,
    }
    data.update(fields)
    return c.SubmitRating.model_validate(data)


def flat_values(value: Any) -> Iterator[str]:
    """Every value inside a log entry, as text."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            yield from flat_values(inner)
    elif isinstance(value, list | tuple | set):
        for inner in value:
            yield from flat_values(inner)
    else:
        yield str(value)


# -- logs --------------------------------------------------------------------------------------


def test_each_use_case_logs_one_line_with_its_case_ref_and_correlation_id(runtime: Runtime) -> None:
    app = runtime.app
    with capture_logs() as logs:
        County(app, FakeClock(START)).setup()
        ref = app.submit_rating(complaint(), Context(CITIZEN.actor, Channel.QR, correlation_id="req-42")).case_ref
        assert ref is not None
        app.contact_citizen(c.ContactCitizen(ref=ref, note="电话联系"), head_of("100101"))

    registry = ["register_unit_done"] + ["register_unit_done", "register_officer_done", "assign_unit_head_done"] * 2
    registry += ["register_officer_done"] * 2
    assert [e["event"] for e in logs] == [*registry, "submit_rating_done", "contact_citizen_done"]
    assert all(e["log_level"] == "info" for e in logs)
    correlation_ids = [e["correlation_id"] for e in logs]
    assert len(set(correlation_ids)) == len(logs)
    assert all("case_ref" not in e for e in logs[: len(registry)])
    rated, contacted = logs[-2:]
    assert (rated["case_ref"], rated["state"], rated["correlation_id"]) == (ref, "pushed", "req-42")
    assert (rated["actor"], rated["channel"]) == ("citizen:anonymous", "qr")
    assert (contacted["case_ref"], contacted["state"], contacted["actor"]) == (ref, "contacted", "unit_head:100101")


def test_a_batch_logs_one_line_per_command(runtime: Runtime, county: County) -> None:
    commands = [c.IssueQr(subject="unit", key=code) for code in ("BUR", "PS1", "PS2")]

    with capture_logs() as logs:
        runtime.app.execute_batch([(cmd, ADMIN) for cmd in commands])

    assert [e["event"] for e in logs] == ["issue_qr_done"] * 3


def test_a_refused_command_logs_a_refused_line_with_the_error_class(runtime: Runtime, county: County) -> None:
    ref = county.open_case()

    with capture_logs() as logs, pytest.raises(PermissionDeniedError):
        runtime.app.contact_citizen(c.ContactCitizen(ref=ref, note="电话联系"), county.other_head)

    assert len(logs) == 1
    entry = logs[0]
    assert entry["event"] == "contact_citizen_refused"
    assert entry["log_level"] == "warning"
    assert entry["error"] == "PermissionDeniedError"
    assert entry["case_ref"] == ref
    assert "not the head of unit PS1" in entry["reason"]
    assert entry["correlation_id"]


def test_a_refused_rating_logs_its_error_class_without_a_case(runtime: Runtime, county: County) -> None:
    with capture_logs() as logs, pytest.raises(NotFoundError):
        runtime.app.submit_rating(complaint(key="999999"), CITIZEN)

    assert [(e["event"], e["error"]) for e in logs] == [("submit_rating_refused", "NotFoundError")]
    assert "case_ref" not in logs[0]


def test_a_dry_run_logs_that_nothing_was_saved(runtime: Runtime, county: County) -> None:
    with capture_logs() as logs:
        runtime.app.execute_batch([(complaint(), CITIZEN)], dry_run=True)

    assert [e["event"] for e in logs] == ["submit_rating_not_saved"]


def test_no_log_entry_holds_the_citizens_phone_or_name(runtime: Runtime, county: County) -> None:
    app = runtime.app
    with capture_logs() as logs:
        ref = app.submit_rating(complaint(), CITIZEN).case_ref
        assert ref is not None
        app.open_case(
            c.OpenCase(intake="hotline", kind="complaint", unit_code="PS1", summary="热线反映出警慢",
                       phone=PHONE, citizen_name=NAME),
            Context(SUPERVISOR.actor, Channel.HOTLINE),
        )
        with pytest.raises(NotFoundError):
            app.submit_rating(complaint(key="999999"), CITIZEN)
        app.contact_citizen(c.ContactCitizen(ref=ref, note="电话联系"), county.station_head)

    assert len(logs) == 4
    for entry in logs:
        for text in flat_values(entry):
            assert PHONE not in text, entry
            assert NAME not in text, entry
    assert app.get_case(ref).contact is not None  # the data was there to leak


# -- resolving PINGJING_DATABASE ---------------------------------------------------------------


@pytest.mark.parametrize("unset", [None, "", "   "])
def test_an_unset_database_is_the_sqlite_file_under_var(
    unset: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    resolved = resolve(unset)

    assert resolved.kind == "sqlite"
    assert resolved.path == Path("var") / "pingjing.sqlite3"
    assert resolved.env["PERSISTENCE_MODULE"] == "adapters.persistence.sqlite"
    assert resolved.env["SQLITE_DBNAME"] == str(Path("var") / "pingjing.sqlite3")
    assert (tmp_path / "var").is_dir()


def test_a_sqlite_url_names_the_file_relative_or_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    absolute = tmp_path / "abs" / "events.sqlite3"

    relative = resolve("sqlite:///data/events.sqlite3")
    rooted = resolve(f"sqlite:///{absolute}")

    assert relative.env["SQLITE_DBNAME"] == str(Path("data") / "events.sqlite3")
    assert rooted.env["SQLITE_DBNAME"] == str(absolute)
    assert rooted.kind == relative.kind == "sqlite"
    assert (tmp_path / "data").is_dir()
    assert absolute.parent.is_dir()


def test_a_plain_path_is_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "events.sqlite3"

    resolved = resolve(str(path))

    assert (resolved.kind, resolved.path) == ("sqlite", path)
    assert resolved.env["SQLITE_DBNAME"] == str(path)
    assert resolved.description == f"SQLite file {path}"
    assert path.parent.is_dir()


def test_memory_keeps_nothing() -> None:
    resolved = resolve("memory")

    assert resolved.kind == "memory"
    assert resolved.env == {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def test_a_postgresql_url_gives_the_librarys_postgres_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[tuple[str, str]] = []
    monkeypatch.setattr(store, "ensure_schema", lambda env, schema: created.append((env["POSTGRES_HOST"], schema)))

    resolved = resolve("postgresql://u:p@h:5433/db?schema=s")

    assert resolved.kind == "postgres"
    assert resolved.schema == "s"
    assert {k: resolved.env[k] for k in (
        "PERSISTENCE_MODULE", "POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER",
        "POSTGRES_PASSWORD", "POSTGRES_SCHEMA",
    )} == {
        "PERSISTENCE_MODULE": "adapters.persistence.postgres", "POSTGRES_DBNAME": "db", "POSTGRES_HOST": "h",
        "POSTGRES_PORT": "5433", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p", "POSTGRES_SCHEMA": "s",
    }
    assert created == [("h", "s")]
    assert resolved.description == "PostgreSQL h:5433/db schema s"


def test_a_postgresql_url_without_schema_takes_defaults_and_decodes_the_password() -> None:
    resolved = resolve("postgres://pj:p%40ss%2Fword@db.example/pingjing")

    assert resolved.env["POSTGRES_PASSWORD"] == "p@ss/word"  # noqa: S105 - a made-up password in a test URL
    assert resolved.env["POSTGRES_USER"] == "pj"
    assert resolved.env["POSTGRES_PORT"] == "5432"
    assert "POSTGRES_SCHEMA" not in resolved.env
    assert resolved.schema is None


@pytest.mark.postgres
def test_a_postgresql_schema_is_created_when_missing(postgres_database: str) -> None:
    resolved = resolve(postgres_database)

    assert resolved.schema is not None
    with connect_postgres(resolved.env) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (resolved.schema,)).fetchone()
    assert found is not None


@pytest.mark.parametrize(
    ("database", "complaint_text"),
    [
        ("ftp://x", "scheme 'ftp' is not supported"),
        ("mysql://u@h/db", "scheme 'mysql' is not supported"),
        ("postgresql://u@h", "names no database"),
    ],
)
def test_an_unusable_database_setting_raises_store_config_error(database: str, complaint_text: str) -> None:
    with pytest.raises(StoreConfigError, match=complaint_text):
        resolve(database)


# -- durable commits ---------------------------------------------------------------------------


def test_sqlite_commits_are_durable_full_sync_in_wal_mode(runtime: Runtime) -> None:
    with runtime.app.factory.datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA synchronous")
        synchronous = cursor.fetchone()[0]
        cursor.execute("PRAGMA journal_mode")
        journal_mode = cursor.fetchone()[0]

    assert synchronous == 2  # FULL
    assert journal_mode.lower() == "wal"


def test_a_committed_use_case_is_there_after_reopening_the_store(tmp_path: Path) -> None:
    settings = Settings(database=str(tmp_path / "events.sqlite3"))
    first = bootstrap(settings, configure_logging=False, observers=[])
    County(first.app, FakeClock(START)).setup()
    written = first.app.recorder.max_notification_id()
    first.close()

    again = bootstrap(settings, configure_logging=False, observers=[])
    try:
        assert again.app.recorder.max_notification_id() == written
        assert again.app.get_unit("PS1").head_badge == "100101"
    finally:
        again.close()
