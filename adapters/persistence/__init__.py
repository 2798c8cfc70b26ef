"""The event store with a tamper-evident hash chain (SQLite and PostgreSQL).

``PINGJING_DATABASE`` resolves to ``adapters.persistence.sqlite`` or
``adapters.persistence.postgres`` as eventsourcing's ``PERSISTENCE_MODULE``: the library's
application recorders, extended so that every stored event gets its chain row in the same
transaction (:mod:`adapters.persistence.chain` says what is hashed).
"""

from __future__ import annotations

from eventsourcing.persistence import PersistenceError


class ChainError(PersistenceError):
    """The chain cannot be extended: the log's head was tampered with (run ``pingjing audit verify``).

    A persistence error, not an integrity error: it is no concurrent writer's conflict and
    must not be retried as one.
    """
