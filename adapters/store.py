"""Where the events live: ``PINGJING_DATABASE`` turned into eventsourcing settings.

- unset or empty: a SQLite file ``./var/pingjing.sqlite3`` (created when missing)
- ``sqlite:///PATH`` or a plain file path: that SQLite file
- ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?schema=NAME]``: PostgreSQL
- ``memory``: in-process memory (tests, experiments; nothing is kept)

SQLite and PostgreSQL stores use :mod:`adapters.persistence`: the library's recorders with a
hash chain written beside the events (``pingjing audit verify``). A memory store has none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import psycopg
from eventsourcing.persistence import OperationalError
from psycopg import sql

DEFAULT_SQLITE = Path("var") / "pingjing.sqlite3"
#: eventsourcing's ``PERSISTENCE_MODULE`` of each store kind: the chained recorders, and plain memory.
SQLITE_MODULE = "adapters.persistence.sqlite"
POSTGRES_MODULE = "adapters.persistence.postgres"
MEMORY_MODULE = "eventsourcing.popo"


class StoreConfigError(ValueError):
    """``PINGJING_DATABASE`` cannot be understood."""


@dataclass(frozen=True)
class Store:
    """A resolved store: its kind, a printable description, and the library's settings."""

    kind: str  # "sqlite" | "postgres" | "memory"
    description: str
    env: dict[str, str]
    schema: str | None = None
    path: Path | None = None


def resolve(database: str | None) -> Store:
    """Turn the setting into a :class:`Store`; refuse what it cannot mean."""
    value = (database or "").strip()
    if value in {"memory", "memory:"}:
        return Store("memory", "memory (nothing is kept)", {"PERSISTENCE_MODULE": MEMORY_MODULE})
    if value.startswith(("postgresql://", "postgres://")):
        return _postgres(value)
    if value.startswith("sqlite:///"):
        return _sqlite(Path(value.removeprefix("sqlite:///")))
    if "://" in value:
        scheme = value.split("://", 1)[0]
        raise StoreConfigError(
            f"PINGJING_DATABASE scheme {scheme!r} is not supported "
            "(use a file path, sqlite:///PATH, postgresql://... or memory)"
        )
    return _sqlite(Path(value) if value else DEFAULT_SQLITE)


def _sqlite(path: Path) -> Store:
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "PERSISTENCE_MODULE": SQLITE_MODULE,
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "10",
    }
    return Store("sqlite", f"SQLite file {path}", env, path=path)


def _postgres(url: str) -> Store:
    parsed = urlparse(url)
    dbname = parsed.path.lstrip("/")
    if not dbname:
        raise StoreConfigError(f"PINGJING_DATABASE {url!r} names no database")
    schema = (parse_qs(parsed.query).get("schema") or [""])[0] or None
    env = {
        "PERSISTENCE_MODULE": POSTGRES_MODULE,
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_USER": unquote(parsed.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parsed.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "4",
        "POSTGRES_PRE_PING": "y",
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
        ensure_schema(env, schema)
    where = f"{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}/{dbname}"
    return Store("postgres", f"PostgreSQL {where}" + (f" schema {schema}" if schema else ""), env, schema=schema)


def store_trouble(error: BaseException, path: Path | None = None) -> str:
    """What an error of the store means for the people waiting on it, in one clause: a full disk,
    a read-only store, or a store that cannot be reached (the driver's words say which; for a
    SQLite file ``path``, a file system mounted read-only says it too, since SQLite then reports
    only that it cannot open the file)."""
    text = str(error).lower()
    if "disk is full" in text or "no space left" in text or "could not extend file" in text:
        return "the event store's disk is full"
    if "readonly" in text or "read-only" in text or "read only" in text or _read_only(path):
        return "the event store is read-only"
    return "the event store cannot be reached"


def _read_only(path: Path | None) -> bool:
    """Whether the SQLite file ``path``, or its directory (which takes the -wal and -shm files), cannot be written."""
    if path is None:
        return False
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return True
        return not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK))
    except OSError:
        return False


def connect_postgres(env: dict[str, str]) -> psycopg.Connection[tuple[object, ...]]:
    """A plain psycopg connection with the store's settings (autocommit)."""
    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=int(env["POSTGRES_PORT"]),
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
        connect_timeout=int(env.get("POSTGRES_CONNECT_TIMEOUT", "5")),
        autocommit=True,
    )


def ensure_schema(env: dict[str, str], schema: str) -> None:
    """Create the PostgreSQL schema if it does not exist yet."""
    try:
        with connect_postgres(env) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    except psycopg.Error as error:
        raise OperationalError(f"cannot create schema {schema!r}: {error}") from error
