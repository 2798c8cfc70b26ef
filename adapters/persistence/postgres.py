"""The PostgreSQL event store with its hash chain: ``PERSISTENCE_MODULE=adapters.persistence.postgres``.

Positions (``notification_id``) come from a sequence, and sequences hand out numbers in the
order transactions ask, not the order they commit. The library therefore takes an
``EXCLUSIVE`` lock on the events table at the start of every inserting transaction, before
the sequence is touched, and holds it until commit: inserting transactions run one after
another, and each one's positions are greater than those of every transaction committed
before it. This recorder appends the chain rows inside that same transaction, after the
inserts, while the lock is held: the chain's head it reads is the last committed one (the
previous holder committed before the lock was granted, and READ COMMITTED statements see
what was committed before they started), and nobody can append before this commit. Gaps
in the positions (a rolled-back insert consumes sequence numbers) are normal and harmless:
the chain links each row to the previous *chained* position.

When the chain table is first created on a store that already holds events, the chain is
computed for that whole history at once, under the same lock: history before the upgrade
is sealed as found.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256
from typing import Any
from uuid import UUID

from eventsourcing import postgres as es_postgres
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import Environment, EnvType
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from adapters.persistence import ChainError
from adapters.persistence.chain import GENESIS, chain_rows, id_text, links_after

#: Rows read at a time while the chain of an existing history is computed.
_HISTORY_PAGE = 20_000
#: Serialises the creation of chain tables between processes starting at the same time.
_CREATE_LOCK = int.from_bytes(sha256(b"pingjing:event-chain:create").digest()[:8], "big", signed=True)


def chain_table_of(events_table_name: str) -> str:
    """The chain table beside an events table."""
    return f"{events_table_name}_chain"


class ChainedPostgresApplicationRecorder(es_postgres.PostgresApplicationRecorder):
    """The library's PostgreSQL application recorder, writing a chain row with every event."""

    def __init__(self, datastore: es_postgres.PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.chain_table_name = chain_table_of(events_table_name)
        self.check_identifier_length(self.chain_table_name)
        schema, chain = Identifier(self.datastore.schema), Identifier(self.chain_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{chain} ("
                "position bigint PRIMARY KEY, "
                "event_hash bytea NOT NULL, "
                "chain_hash bytea NOT NULL)"
            ).format(schema=schema, chain=chain)
        )
        self.select_chain_head_statement = SQL(
            "SELECT position, chain_hash FROM {schema}.{chain} ORDER BY position DESC LIMIT 1"
        ).format(schema=schema, chain=chain)
        # The events of a batch as four arrays, one per column, each sent in binary: the
        # library sends one array of a composite type, which psycopg writes as escaped text
        # in Python, row by row and byte by byte (a third of the CPU of a group commit).
        self.insert_event_arrays_statement = SQL(
            "INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(
            schema=schema, table=Identifier(self.events_table_name),
            id_type=Identifier(self.datastore.originator_id_type),
        )
        self.ids_are_uuids = self.datastore.originator_id_type == "uuid"
        self.notify_statement = SQL("NOTIFY {0}").format(Identifier(self.channel_name))
        # One statement for a whole batch of rows, however many events the transaction holds.
        self.insert_chain_statement = SQL(
            "INSERT INTO {schema}.{chain} (position, event_hash, chain_hash) "
            "SELECT * FROM unnest(%b::bigint[], %b::bytea[], %b::bytea[])"  # sent in binary, not as escaped text
        ).format(schema=schema, chain=chain)

    # -- one attempt per call --------------------------------------------------------------
    # The library retries these ten times on a connection error, each attempt waiting up to
    # POSTGRES_CONNECT_TIMEOUT for the pool: while the server is away a request would wait
    # the better part of a minute and then, often, go through, which to a citizen is a hang.
    # Here a call fails after one attempt, and the caller decides: the HTTP layer answers 503
    # at once (and the group committer answers everything queued behind it), the projection
    # follower and the scheduler try again on their own schedule. Connections broken by a
    # restart are replaced before they are handed out (POSTGRES_PRE_PING), so an idle service
    # does not see the restart at all.

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The library's insert, tried once."""
        once: Any = es_postgres.PostgresApplicationRecorder.insert_events.__wrapped__
        result: Sequence[int] | None = once(self, stored_events, **kwargs)
        return result

    def select_events(self, originator_id: Any, **kwargs: Any) -> Sequence[StoredEvent]:
        """The library's select, tried once."""
        once: Any = es_postgres.PostgresAggregateRecorder.select_events.__wrapped__
        result: Sequence[StoredEvent] = once(self, originator_id, **kwargs)
        return result

    def select_notifications(self, *args: Any, **kwargs: Any) -> Any:
        """The library's select, tried once."""
        once: Any = es_postgres.PostgresApplicationRecorder.select_notifications.__wrapped__
        return once(self, *args, **kwargs)

    def max_notification_id(self) -> int | None:
        """The library's query, tried once."""
        once: Any = es_postgres.PostgresApplicationRecorder.max_notification_id.__wrapped__
        result: int | None = once(self)
        return result

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
        curs.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s",
            (self.datastore.schema, self.chain_table_name),
        )
        existed = curs.fetchone() is not None
        super()._create_table(curs)
        if not existed:
            self._chain_history(curs)

    def _chain_history(self, curs: Cursor[DictRow]) -> None:
        """Chain every event already stored, in position order (the upgrade of an older store)."""
        schema, events = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        curs.execute(SQL("LOCK TABLE {}.{} IN EXCLUSIVE MODE").format(schema, events))
        select = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {}.{} "
            "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(schema, events)
        copy = SQL("COPY {}.{} (position, event_hash, chain_hash) FROM STDIN").format(
            schema, Identifier(self.chain_table_name)
        )
        previous, after = GENESIS, 0
        while True:
            curs.execute(select, (after, _HISTORY_PAGE))
            rows = [
                (
                    int(r["notification_id"]),
                    id_text(r["originator_id"]),
                    int(r["originator_version"]),
                    str(r["topic"]),
                    bytes(r["state"]),
                )
                for r in curs.fetchall()
            ]
            if not rows:
                return
            chained = chain_rows(previous, rows)
            with curs.copy(copy) as writer:
                for row in chained:
                    writer.write_row(row)
            after, previous = chained[-1][0], chained[-1][2]

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        """The library's insert (lock the table, notify the followers, insert), its rows sent as arrays."""
        self._lock_table(curs)
        curs.execute(self.notify_statement)
        if self.ids_are_uuids:
            ids: list[Any] = [e.originator_id if type(e.originator_id) is UUID else UUID(str(e.originator_id))
                              for e in stored_events]
        else:
            ids = [str(e.originator_id) for e in stored_events]
        curs.execute(
            self.insert_event_arrays_statement,
            (ids, [e.originator_version for e in stored_events], [e.topic for e in stored_events],
             [e.state for e in stored_events]),
            prepare=True,
        )

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if positions:
            self._extend_chain(curs, stored_events, positions)
        return positions

    def _extend_chain(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], positions: Sequence[int]
    ) -> None:
        # Still inside the inserting transaction, under its EXCLUSIVE lock on the events table.
        curs.execute(self.select_chain_head_statement, prepare=True)
        head = curs.fetchone()
        chained = links_after(
            (int(head["position"]), bytes(head["chain_hash"])) if head else None, positions, stored_events,
            tampered="the events table was tampered with",
        )
        curs.execute(
            self.insert_chain_statement,
            ([r[0] for r in chained], [r[1] for r in chained], [r[2] for r in chained]),
            prepare=True,
        )

    def chain_head(self) -> tuple[int, bytes] | None:
        """The last chained position and its chain hash (None: nothing chained yet)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_chain_head_statement)
            head = curs.fetchone()
        return (int(head["position"]), bytes(head["chain_hash"])) if head else None


class ChainedPostgresFactory(es_postgres.PostgresFactory):
    """The library's PostgreSQL factory with the chained application recorder (the only factory here)."""

    application_recorder_class = ChainedPostgresApplicationRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        if self.datastore.enable_db_functions:
            # The library's insert function writes events without their chain rows.
            raise ChainError("POSTGRES_ENABLE_DB_FUNCTIONS is not supported: events would be stored unchained")
