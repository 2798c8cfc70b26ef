"""Every projection table of a view store, for comparing two stores' views."""

from __future__ import annotations

from typing import Any

from projections import ALL
from projections.store import ViewStore

Tables = dict[str, list[tuple[Any, ...]]]


def dump(views: ViewStore) -> Tables:
    """Every projection table as a sorted list of row tuples."""
    return {
        table: sorted(views.query(f"SELECT * FROM {table}"), key=repr)  # noqa: S608 - module constants
        for projection in ALL
        for table in projection.tables
    }
