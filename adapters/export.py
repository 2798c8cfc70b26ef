"""The analysts' event export (``pingjing events export``): every stored event as one row.

Rows go out as JSON lines, CSV or Parquet, in log order. Personal data never leaves in
clear (DESIGN §7): a contact keeps only its citizen reference, and any field that holds
a phone, a citizen's name, a device hash or an API token's hash is redacted wherever it sits in an event.
A contact whose citizen's data were erased is exported as ``{"citizen_ref", "phone": null,
"name": null, "erased": true}``; the erasure itself (``Case.ContactErased``) names only the
citizen reference and the reason.
Free texts (complaints, comments, summaries, notes) are exported as they are.

Arguments are checked before anything is written; a file is written under a temporary
name and only takes its own name once the export is complete.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.case import Case
from domain.encounters import Encounter, EncounterCode
from domain.ratings import DeviceBallot, Rating
from domain.registry import Officer, QrIdentity, Unit
from domain.seals import LogSeal
from domain.values import Contact

FORMATS = ("jsonl", "csv", "parquet")
COLUMNS = (
    "position",
    "type",
    "aggregate_id",
    "version",
    "occurred_at",
    "actor",
    "role",
    "channel",
    "correlation_id",
    "data",
)
REDACTED = "[redacted]"
#: Fields redacted wherever they appear in an event's data.
PERSONAL_FIELDS = frozenset({"phone", "citizen_name", "device_hash", "token_hash"})
#: Rows per Parquet row group: what is held in memory at once.
PARQUET_ROW_GROUP_SIZE = 50_000
PARQUET_COMPRESSION = "zstd"
PYARROW_MISSING = "parquet export needs pyarrow: pip install 'pingjing[analytics]'"

AGGREGATES: tuple[type[Aggregate], ...] = (
    Unit, Officer, QrIdentity, Encounter, EncounterCode, Rating, DeviceBallot, Case,
    LogSeal,
)
_NOT_DATA = frozenset({"originator_id", "originator_version", "timestamp", "meta", "originator_topic"})
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class ExportError(Exception):
    """The export cannot be done as asked (bad arguments, pyarrow missing, an unexportable value)."""


@dataclass(frozen=True)
class ExportFilter:
    """Which events to export: ``since`` <= meta.occurred_at < ``until``, of these types (empty: all)."""

    since: datetime | None = None
    until: datetime | None = None
    types: frozenset[str] = frozenset()

    def check(self) -> None:
        """Raise :class:`ExportError` naming what is wrong with this filter."""
        for label, moment in (("since", self.since), ("until", self.until)):
            if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
                raise ExportError(f"{label} {moment.isoformat()} has no time zone (e.g. add +08:00)")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ExportError(f"since {self.since.isoformat()} is not before until {self.until.isoformat()}")
        if isinstance(self.types, str):
            raise ExportError(f"types must be a set of event type names, not the string {self.types!r}")
        unknown = sorted(set(self.types) - _known_types())
        if unknown:
            hints = [difflib.get_close_matches(name, _known_types(), n=1) for name in unknown]
            named = ", ".join(
                f"{n!r} (did you mean {h[0]!r}?)" if h else repr(n) for n, h in zip(unknown, hints, strict=True)
            )
            raise ExportError(f"unknown event type {named}; names look like 'Case.Opened' or 'Rating.Submitted'")

    def admits(self, event: Any) -> bool:
        """True when ``event`` passes the filter."""
        if self.types and type(event).__qualname__ not in self.types:
            return False
        at = _occurred_at(event)
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)


def known_event_types() -> list[str]:
    """Every event type name of the domain's aggregates, sorted (e.g. ``Case.Opened``)."""
    return sorted(_known_types())


def export_events(
    events: Iterable[tuple[int, Any]],
    out: BinaryIO | Path,
    fmt: str,
    flt: ExportFilter = ExportFilter(),
) -> int:
    """Write the (position, event) pairs that pass ``flt`` as rows of ``fmt``; returns the number written.

    ``out`` is a binary stream (left open) or a file path (replaced only when complete).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "parquet":
        _pyarrow()
    flt.check()
    rows = (_row(position, event) for position, event in events if flt.admits(event))
    write = {"jsonl": _write_jsonl, "csv": _write_csv, "parquet": _write_parquet}[fmt]
    if not isinstance(out, Path):
        return write(rows, out)
    try:
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    except OSError as error:
        raise ExportError(f"cannot write {out}: {error.strerror}") from None
    part = Path(name)
    try:
        with open(fd, "wb") as sink:
            count = write(rows, sink)
        part.replace(out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return count


# -- rows -----------------------------------------------------------------------------------


def _row(position: int, event: Any) -> dict[str, Any]:
    meta = getattr(event, "meta", None)
    return {
        "position": position,
        "type": type(event).__qualname__,
        "aggregate_id": str(event.originator_id),
        "version": event.originator_version,
        "occurred_at": _occurred_at(event).isoformat(),
        "actor": meta.actor if meta else None,
        "role": _plain(meta.role) if meta else None,
        "channel": _plain(meta.channel) if meta else None,
        "correlation_id": meta.correlation_id if meta else None,
        "data": _fields((k, v) for k, v in vars(event).items() if k not in _NOT_DATA),
    }


def _occurred_at(event: Any) -> datetime:
    meta = getattr(event, "meta", None)
    # Every domain event carries its metadata (DESIGN §3); the timestamp is the same moment.
    at: datetime = meta.occurred_at if meta is not None else event.timestamp
    return at


def _fields(items: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    """A mapping made JSON-safe, its personal fields redacted; beside a citizen_ref, ``name`` is personal."""
    pairs = [(str(key), value) for key, value in items]
    contact_like = any(key == "citizen_ref" for key, _ in pairs)
    return {
        key: _redacted(value) if key in PERSONAL_FIELDS or (contact_like and key == "name") else _plain(value)
        for key, value in pairs
    }


def _redacted(value: Any) -> str | None:
    return None if value is None else REDACTED


def _plain(value: Any) -> Any:
    """``value`` as JSON-safe data: UUIDs as strings, times ISO, enums as values."""
    for kinds, convert in _CONVERSIONS:
        if isinstance(value, kinds):
            return convert(value)
    if is_dataclass(value) and not isinstance(value, type):
        return _fields((f.name, getattr(value, f.name)) for f in fields(value))
    # Refuse rather than str(): an unknown object could print personal data.
    raise ExportError(f"cannot export a value of type {type(value).__name__}")


def _contact(value: Contact) -> dict[str, Any]:
    if value.phone is None:  # the citizen's data were erased: nothing to redact, and it says so
        return {"citizen_ref": value.citizen_ref, "phone": None, "name": None, "erased": True}
    return {"citizen_ref": value.citizen_ref, "phone": REDACTED, "name": _redacted(value.name)}


#: First match wins: a StrEnum is a str too, and a Contact a dataclass.
_CONVERSIONS: tuple[tuple[type | tuple[type, ...], Callable[[Any], Any]], ...] = (
    (Enum, lambda v: _plain(v.value)),
    ((str, int, float, type(None)), lambda v: v),
    (Contact, _contact),
    ((UUID, Decimal), str),
    ((datetime, date, time), lambda v: v.isoformat()),
    (Mapping, lambda v: _fields(v.items())),
    ((list, tuple), lambda v: [_plain(item) for item in v]),
    ((set, frozenset), lambda v: sorted((_plain(item) for item in v), key=_dumps)),
)


# -- formats --------------------------------------------------------------------------------


def _write_jsonl(rows: Iterable[dict[str, Any]], sink: BinaryIO) -> int:
    count = 0
    for row in rows:
        sink.write(_dumps(row).encode() + b"\n")
        count += 1
    return count


def _flat(row: dict[str, Any]) -> list[Any]:
    return [_dumps(row[c]) if c == "data" else row[c] for c in COLUMNS]


def _write_csv(rows: Iterable[dict[str, Any]], sink: BinaryIO) -> int:
    line = io.StringIO()
    writer = csv.writer(line)

    def put(values: Iterable[Any]) -> None:
        writer.writerow(values)
        sink.write(line.getvalue().encode())
        line.seek(0)
        line.truncate()

    put(COLUMNS)
    count = 0
    for row in rows:
        put(_flat(row))
        count += 1
    return count


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415 - optional dependency
        import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415
    except ImportError:
        raise ExportError(PYARROW_MISSING) from None
    return pa, pq


def _write_parquet(rows: Iterable[dict[str, Any]], sink: BinaryIO) -> int:
    pa, pq = _pyarrow()
    integer = {"position", "version"}
    schema = pa.schema([(c, pa.int64() if c in integer else pa.string()) for c in COLUMNS])
    count = 0
    row_iter = iter(rows)
    with pq.ParquetWriter(sink, schema, compression=PARQUET_COMPRESSION) as writer:
        while chunk := list(islice(row_iter, PARQUET_ROW_GROUP_SIZE)):
            columns = zip(*(_flat(row) for row in chunk), strict=True)
            arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=PARQUET_ROW_GROUP_SIZE)
            count += len(chunk)
    return count


# -- event types ----------------------------------------------------------------------------


@cache
def _known_types() -> frozenset[str]:
    return frozenset(cls.__qualname__ for aggregate in AGGREGATES for cls in _event_classes(aggregate))


def _event_classes(aggregate: type[Aggregate]) -> Iterator[type]:
    """The aggregate's own event classes, without the library's generic ``Event`` and ``Created``."""
    nested = [
        cls
        for cls in vars(aggregate).values()
        if isinstance(cls, type)
        and issubclass(cls, Aggregate.Event)
        and cls.__qualname__ == f"{aggregate.__qualname__}.{cls.__name__}"
    ]
    has_own_created = any(issubclass(cls, Aggregate.Created) and cls.__name__ != "Created" for cls in nested)
    for cls in nested:
        if cls.__name__ == "Event" or (cls.__name__ == "Created" and has_own_created):
            continue
        yield cls
