"""Fixtures: the application on memory, SQLite and PostgreSQL; a small county; a clock."""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from hypothesis import HealthCheck, settings

from adapters.settings import Settings
from adapters.store import connect_postgres, resolve
from domain import commands as c
from domain.application import Context, PingjingApp
from domain.values import Actor, Channel, Role
from tests.fakes import FakeClock, RecordingObserver, SequentialIds

# Timing varies with the machine and the store; correctness, not speed, is what these tests check.
settings.register_profile("pingjing", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pingjing")

POSTGRES_URL = os.environ.get("PINGJING_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("PINGJING_REQUIRE_POSTGRES") == "1"

START = datetime(2021, 11, 1, 1, 0, tzinfo=UTC)  # Monday 2021-11-01 09:00 Asia/Shanghai


@pytest.fixture(autouse=True, scope="session")
def _data_key_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One master key file (citizens' data keys) for the whole run, for every process a test starts.

    Without it the key file sits beside a SQLite store, or in ``./var`` of the working directory for
    PostgreSQL: a copy of a store in another folder, or a ``serve`` started in a test's folder, would
    look for another key. The tests of the keys themselves set their own (``tests/privacy``).
    """
    before = os.environ.get("PINGJING_DATA_KEY_FILE")
    os.environ["PINGJING_DATA_KEY_FILE"] = str(tmp_path_factory.mktemp("master-key") / "data-key")
    yield
    if before is None:
        os.environ.pop("PINGJING_DATA_KEY_FILE", None)
    else:
        os.environ["PINGJING_DATA_KEY_FILE"] = before


@pytest.fixture(autouse=True)
def _heap_thawed() -> Iterator[None]:
    """A long-running command run in the test process freezes its heap (``adapters.heap.settle``):
    thawed after each test, so that what tests leave in cycles is collected as usual."""
    yield
    if gc.get_freeze_count():
        gc.unfreeze()


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """A CLI run configures structlog for the process (on a captured stream): put it back after each test."""
    yield
    structlog.reset_defaults()


def postgres_available() -> str | None:
    """None when the test PostgreSQL server answers, else the reason it does not."""
    try:
        env = resolve(POSTGRES_URL).env
        with connect_postgres(env) as conn:
            conn.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 - any failure means "not available", with its reason
        return f"PostgreSQL at {POSTGRES_URL} not reachable: {error}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server for tests; skipped (or failed in CI) when it does not answer."""
    reason = postgres_available()
    if reason:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PINGJING_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    return POSTGRES_URL


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PINGJING_DATABASE URL with a fresh schema, dropped afterwards."""
    base = request.getfixturevalue("postgres_url")
    schema = f"pj_test_{uuid.uuid4().hex[:12]}"
    yield f"{base}?schema={schema}"
    with connect_postgres(resolve(base).env) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def durable_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """PINGJING_DATABASE of each durable store: a SQLite file, a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / "events.sqlite3")
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """PINGJING_DATABASE for each store the application suite runs on."""
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return str(tmp_path / "events.sqlite3")
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test drives, starting Monday 2021-11-01 09:00 in Shanghai."""
    return FakeClock(START)


@pytest.fixture
def observer() -> RecordingObserver:
    """Records what the application executed."""
    return RecordingObserver()


def make_app(database: str, clock: FakeClock, observer: RecordingObserver | None = None) -> PingjingApp:
    """An application on ``database`` with the test's clock and predictable ids."""
    store = resolve(Settings(database=database).database)
    return PingjingApp(env=store.env, clock=clock, ids=SequentialIds(), observers=[observer] if observer else [])


@pytest.fixture
def app(database: str, clock: FakeClock, observer: RecordingObserver) -> Iterator[PingjingApp]:
    """The application on each store."""
    application = make_app(database, clock, observer)
    yield application
    application.close()


ADMIN = Context(Actor("admin-1", Role.ADMIN))
SUPERVISOR = Context(Actor("dc-wang", Role.SUPERVISOR))
SYSTEM = Context(Actor.system(), Channel.SYSTEM)
CITIZEN = Context(Actor("anonymous", Role.CITIZEN), Channel.QR)


def head_of(badge: str) -> Context:
    """A unit head acting."""
    return Context(Actor(badge, Role.UNIT_HEAD))


@dataclass
class County:
    """A tiny county: bureau, two stations with heads, an officer and an auxiliary."""

    app: PingjingApp
    clock: FakeClock

    station_head = head_of("100101")
    other_head = head_of("100201")

    def setup(self) -> County:
        """Register the units and officers."""
        a = self.app
        a.register_unit(c.RegisterUnit(code="BUR", unit_name="县公安局", kind="bureau"), ADMIN)
        for code, name, head in (("PS1", "城关派出所", "100101"), ("PS2", "青同派出所", "100201")):
            a.register_unit(c.RegisterUnit(code=code, unit_name=name, kind="police_station", parent_code="BUR"), ADMIN)
            a.register_officer(
                c.RegisterOfficer(badge=head, officer_name=f"{name}所长", kind="police", unit_code=code), ADMIN
            )
            a.assign_unit_head(c.AssignUnitHead(unit_code=code, badge=head), ADMIN)
        a.register_officer(
            c.RegisterOfficer(badge="100102", officer_name="李警官", kind="police", unit_code="PS1"), ADMIN
        )
        a.register_officer(
            c.RegisterOfficer(badge="F10103", officer_name="赵辅警", kind="auxiliary", unit_code="PS1"), ADMIN
        )
        return self

    def rate(self, verdict: str = "dissatisfied", *, phone: str | None = "13800138000", **extra: object) -> str | None:
        """A citizen rates officer 100102; returns the case reference if one was opened."""
        fields: dict[str, object] = {
            "target": "officer",
            "key": "100102",
            "verdict": verdict,
            "service_score": 2,
            "attitude_score": 2,
            "efficiency_score": 2,
            "phone": phone,
        }
        fields.update(extra)
        return self.app.submit_rating(c.SubmitRating.model_validate(fields), CITIZEN).case_ref

    def open_case(self, *, phone: str | None = "13800138000") -> str:
        """A dissatisfied rating that opens and pushes a case of PS1."""
        ref = self.rate("dissatisfied", phone=phone)
        assert ref is not None
        return ref


@pytest.fixture
def county(app: PingjingApp, clock: FakeClock) -> County:
    """The tiny county, registered."""
    return County(app, clock).setup()
