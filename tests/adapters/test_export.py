"""The analysts' event export: rows, order, filters, formats, and no personal data in clear."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from adapters import export
from adapters.export import ExportError, ExportFilter, export_events, known_event_types
from domain import commands as c
from domain.application import PingjingApp
from domain.values import Channel, Meta, Role
from tests.conftest import ADMIN, START, County

PHONE = "13800138000"
CITIZEN_NAME = "张三丰"
DEVICE_HASH = "d3c0ffee" * 4
SHANGHAI = ZoneInfo("Asia/Shanghai")
NO_PYARROW = pytest.mark.skipif(find_spec("pyarrow") is None, reason="needs pyarrow: pip install 'pingjing[analytics]'")
ALL_FORMATS = ["jsonl", "csv", pytest.param("parquet", marks=NO_PYARROW)]


@pytest.fixture
def database(tmp_path: Path) -> str:
    """The CLI's default store, SQLite: the export reads events back through the real mapper."""
    return str(tmp_path / "events.sqlite3")


def story(county: County) -> str:
    """A dissatisfied rating with a contact at START, contacted at +1 h, reported at +2 h."""
    ref = county.rate("dissatisfied", phone=PHONE, citizen_name=CITIZEN_NAME, device_hash=DEVICE_HASH)
    assert ref is not None
    county.clock.advance(hours=1)
    county.app.contact_citizen(c.ContactCitizen(ref=ref, note="已电话联系当事人"), county.station_head)
    county.clock.advance(hours=1)
    county.app.report_result(c.ReportResult(ref=ref, result="已向群众说明情况并致歉"), county.station_head)
    return ref


def export_to(app: PingjingApp, path: Path, fmt: str, flt: ExportFilter | None = None) -> int:
    """Export the whole log of ``app`` to ``path``."""
    return export_events(app.iter_events(), path, fmt, flt or ExportFilter())


def read_rows(path: Path, fmt: str) -> list[dict[str, Any]]:
    """The exported rows, ``data`` parsed, read with each format's own reader."""
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if fmt == "csv":
        with path.open(encoding="utf-8", newline="") as f:
            found = list(csv.DictReader(f))
        ints = ("position", "version")
        return [{**r, **{k: int(r[k]) for k in ints}, "data": json.loads(r["data"])} for r in found]
    pq = pytest.importorskip("pyarrow.parquet")
    return [{**r, "data": json.loads(r["data"])} for r in pq.read_table(path).to_pylist()]


def only(rows: list[dict[str, Any]], type_name: str) -> dict[str, Any]:
    """The one row of this event type."""
    (row,) = [r for r in rows if r["type"] == type_name]
    return row


# -- rows and order ---------------------------------------------------------------------------


def test_jsonl_has_one_row_per_event_in_log_order(county: County, tmp_path: Path) -> None:
    story(county)
    expected = [
        (pos, type(e).__qualname__, str(e.originator_id), e.originator_version) for pos, e in county.app.iter_events()
    ]

    written = export_to(county.app, tmp_path / "events.jsonl", "jsonl")

    rows = read_rows(tmp_path / "events.jsonl", "jsonl")
    assert written == len(rows) == len(expected)
    assert [(r["position"], r["type"], r["aggregate_id"], r["version"]) for r in rows] == expected


@pytest.mark.parametrize("fmt", ["csv", pytest.param("parquet", marks=NO_PYARROW)])
def test_csv_and_parquet_read_back_the_same_rows_as_jsonl(county: County, tmp_path: Path, fmt: str) -> None:
    story(county)
    export_to(county.app, tmp_path / "events.jsonl", "jsonl")

    written = export_to(county.app, tmp_path / f"events.{fmt}", fmt)

    reference = read_rows(tmp_path / "events.jsonl", "jsonl")
    assert written == len(reference)
    assert read_rows(tmp_path / f"events.{fmt}", fmt) == reference


def test_a_row_carries_the_event_metadata_and_only_the_events_own_fields(county: County, tmp_path: Path) -> None:
    ref = story(county)
    case = county.app.get_case(ref)
    export_to(county.app, tmp_path / "events.jsonl", "jsonl")

    rows = read_rows(tmp_path / "events.jsonl", "jsonl")

    opened = only(rows, "Case.Opened")
    assert opened["aggregate_id"] == str(case.id)
    assert opened["version"] == 1
    assert datetime.fromisoformat(opened["occurred_at"]) == START
    assert datetime.fromisoformat(opened["occurred_at"]).tzinfo is not None
    assert (opened["actor"], opened["role"], opened["channel"]) == ("anonymous", "citizen", "qr")
    assert opened["correlation_id"]
    assert opened["data"]["ref"] == ref
    assert opened["data"]["kind"] == "dissatisfaction"
    assert opened["data"]["unit_id"] == str(county.app.get_unit("PS1").id)
    assert not {"originator_id", "originator_version", "timestamp", "meta", "originator_topic"} & set(opened["data"])
    pushed = only(rows, "Case.Pushed")
    assert (pushed["actor"], pushed["role"], pushed["version"]) == ("system", "system", 2)
    reported = only(rows, "Case.ResultReported")
    assert reported["data"] == {"result": "已向群众说明情况并致歉"}
    assert (reported["actor"], reported["role"]) == ("100101", "unit_head")


def test_text_is_written_as_utf8_not_escaped(county: County, tmp_path: Path) -> None:
    for fmt in ("jsonl", "csv"):
        export_to(county.app, tmp_path / f"events.{fmt}", fmt)

        assert "城关派出所".encode() in (tmp_path / f"events.{fmt}").read_bytes()


def test_csv_starts_with_a_header_row_and_holds_data_as_a_json_string(county: County, tmp_path: Path) -> None:
    story(county)
    export_to(county.app, tmp_path / "events.csv", "csv")

    with (tmp_path / "events.csv").open(encoding="utf-8", newline="") as f:
        header, *lines = list(csv.reader(f))

    assert header == list(export.COLUMNS)
    reported = next(line for line in lines if line[1] == "Case.ResultReported")
    assert json.loads(reported[-1]) == {"result": "已向群众说明情况并致歉"}


# -- personal data ------------------------------------------------------------------------------


def test_a_contact_keeps_only_its_citizen_ref(county: County, tmp_path: Path) -> None:
    named = story(county)
    unnamed = county.open_case(phone="13900139000")
    export_to(county.app, tmp_path / "events.jsonl", "jsonl")

    rows = read_rows(tmp_path / "events.jsonl", "jsonl")

    contacts = {r["data"]["ref"]: r["data"]["contact"] for r in rows if r["type"] == "Case.Opened"}
    named_ref = county.app.get_case(named).contact
    unnamed_ref = county.app.get_case(unnamed).contact
    assert named_ref is not None
    assert unnamed_ref is not None
    assert contacts[named] == {"citizen_ref": named_ref.citizen_ref, "phone": "[redacted]", "name": "[redacted]"}
    assert contacts[unnamed] == {"citizen_ref": unnamed_ref.citizen_ref, "phone": "[redacted]", "name": None}


def test_a_ratings_device_hash_is_redacted(county: County, tmp_path: Path) -> None:
    story(county)
    export_to(county.app, tmp_path / "events.jsonl", "jsonl")

    rating = only(read_rows(tmp_path / "events.jsonl", "jsonl"), "Rating.Submitted")

    assert rating["data"]["device_hash"] == "[redacted]"
    assert rating["data"]["verdict"] == "dissatisfied"


def test_an_api_tokens_hash_is_redacted(county: County, tmp_path: Path) -> None:
    token_hash = "ab" * 32
    county.app.execute(c.CreateApiToken(token_hash=token_hash, role="auditor", principal="auditor-zhao"), ADMIN)
    export_to(county.app, tmp_path / "events.jsonl", "jsonl")

    created = only(read_rows(tmp_path / "events.jsonl", "jsonl"), "ApiToken.Created")

    assert created["data"]["token_hash"] == export.REDACTED
    assert created["data"]["role"] == "auditor"
    assert token_hash not in (tmp_path / "events.jsonl").read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_no_format_lets_the_phone_name_or_device_hash_out_while_the_citizen_ref_goes_out(
    county: County, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Uncompressed, so that a phone number in the file would show in its bytes.
    monkeypatch.setattr(export, "PARQUET_COMPRESSION", "none")
    contact = county.app.get_case(story(county)).contact
    assert contact is not None

    export_to(county.app, tmp_path / f"events.{fmt}", fmt)

    raw = (tmp_path / f"events.{fmt}").read_bytes()
    for secret in (PHONE, CITIZEN_NAME, DEVICE_HASH):
        assert secret.encode() not in raw
    assert re.search(rb"citizen_ref\W+" + contact.citizen_ref.encode(), raw)


@dataclass(frozen=True)
class Callback:
    """A value object of a hypothetical event: a contact person nested in the data."""

    phone: str
    citizen_name: str
    note: str


@dataclass
class Recorded:
    """A stand-in for a domain event, for values the current aggregates do not produce."""

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    meta: Meta
    payload: Any


def recorded(payload: Any) -> Recorded:
    """A stand-in event carrying ``payload``."""
    meta = Meta("dc-wang", Role.SUPERVISOR, START, Channel.API, "corr-1")
    return Recorded(uuid4(), 1, START, meta, payload)


def test_personal_fields_are_redacted_however_deeply_they_are_nested() -> None:
    payload = {
        "calls": [Callback(phone=PHONE, citizen_name=CITIZEN_NAME, note="回访")],
        "person": {"citizen_ref": "REF123", "name": CITIZEN_NAME, "phone": None},
    }
    sink = io.BytesIO()

    export_events([(1, recorded(payload))], sink, "jsonl")

    (row,) = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert row["data"]["payload"] == {
        "calls": [{"phone": "[redacted]", "citizen_name": "[redacted]", "note": "回访"}],
        "person": {"citizen_ref": "REF123", "name": "[redacted]", "phone": None},
    }


def test_a_value_the_export_does_not_know_is_refused_rather_than_printed() -> None:
    with pytest.raises(ExportError, match="cannot export a value of type object"):
        export_events([(1, recorded(object()))], io.BytesIO(), "jsonl")


# -- filters ------------------------------------------------------------------------------------


def test_since_is_inclusive_and_until_exclusive_in_any_time_zone(county: County, tmp_path: Path) -> None:
    story(county)
    one_hour_later = (START + timedelta(hours=1)).astimezone(SHANGHAI)
    flt = ExportFilter(since=one_hour_later, until=one_hour_later + timedelta(hours=1))

    written = export_to(county.app, tmp_path / "events.jsonl", "jsonl", flt)

    rows = read_rows(tmp_path / "events.jsonl", "jsonl")
    assert [r["type"] for r in rows] == ["Case.CitizenContacted"]
    assert written == 1


def test_since_alone_keeps_everything_from_that_moment(county: County, tmp_path: Path) -> None:
    story(county)
    flt = ExportFilter(since=START + timedelta(hours=1))

    written = export_to(county.app, tmp_path / "events.csv", "csv", flt)

    rows = read_rows(tmp_path / "events.csv", "csv")
    assert [r["type"] for r in rows] == ["Case.CitizenContacted", "Case.ResultReported"]
    assert written == 2


def test_until_alone_keeps_everything_before_that_moment(county: County, tmp_path: Path) -> None:
    story(county)
    everything = sum(1 for _ in county.app.iter_events())

    written = export_to(county.app, tmp_path / "events.jsonl", "jsonl", ExportFilter(until=START + timedelta(hours=1)))

    rows = read_rows(tmp_path / "events.jsonl", "jsonl")
    assert written == len(rows) == everything - 2
    assert all(datetime.fromisoformat(r["occurred_at"]) == START for r in rows)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_a_types_filter_keeps_only_those_event_types_in_log_order(county: County, tmp_path: Path, fmt: str) -> None:
    story(county)
    county.open_case()
    flt = ExportFilter(types=frozenset({"Case.Opened", "Rating.Submitted"}))

    written = export_to(county.app, tmp_path / f"events.{fmt}", fmt, flt)

    rows = read_rows(tmp_path / f"events.{fmt}", fmt)
    assert [r["type"] for r in rows] == ["Case.Opened", "Rating.Submitted"] * 2
    assert [r["position"] for r in rows] == sorted(r["position"] for r in rows)
    assert written == 4


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_an_export_that_matches_nothing_writes_an_empty_but_readable_file(
    county: County, tmp_path: Path, fmt: str
) -> None:
    flt = ExportFilter(types=frozenset({"Case.Closed"}))

    written = export_to(county.app, tmp_path / f"events.{fmt}", fmt, flt)

    assert written == 0
    assert read_rows(tmp_path / f"events.{fmt}", fmt) == []
    if fmt == "csv":
        assert (tmp_path / "events.csv").read_text(encoding="utf-8").splitlines() == [",".join(export.COLUMNS)]
    if fmt == "parquet":
        pq = pytest.importorskip("pyarrow.parquet")
        assert pq.read_schema(tmp_path / "events.parquet").names == list(export.COLUMNS)


# -- streaming and files ------------------------------------------------------------------------


class CountingSink(io.BytesIO):
    """A stream that remembers how many bytes it had received."""

    @property
    def received(self) -> int:
        """Bytes written so far."""
        return len(self.getbuffer())


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_rows_are_written_while_the_events_are_still_being_read(
    county: County, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "PARQUET_ROW_GROUP_SIZE", 10)
    events = [e for _, e in county.app.iter_events()] * 30
    sink = CountingSink()
    seen_at_last_event: list[int] = []

    def log() -> Iterator[tuple[int, Any]]:
        for position, event in enumerate(events, start=1):
            if position == len(events):
                seen_at_last_event.append(sink.received)
            yield position, event

    written = export_events(log(), sink, fmt)

    assert written == len(events)
    # Half of the output is out before the last event is read: nothing collects the whole log.
    assert seen_at_last_event[0] > sink.received / 2


def test_parquet_is_written_in_row_groups_of_bounded_size(
    county: County, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setattr(export, "PARQUET_ROW_GROUP_SIZE", 4)
    story(county)

    written = export_to(county.app, tmp_path / "events.parquet", "parquet")

    meta = pq.ParquetFile(tmp_path / "events.parquet").metadata
    assert meta.num_row_groups == math.ceil(written / 4)
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) == 4


def test_a_stream_gets_the_same_bytes_as_a_file_and_is_left_open(county: County, tmp_path: Path) -> None:
    story(county)
    for fmt in ("jsonl", "csv"):
        sink = io.BytesIO()

        export_events(county.app.iter_events(), sink, fmt)
        export_to(county.app, tmp_path / f"events.{fmt}", fmt)

        assert not sink.closed
        assert sink.getvalue() == (tmp_path / f"events.{fmt}").read_bytes()


def test_an_export_that_fails_midway_leaves_the_previous_file_alone(county: County, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "events.jsonl"
    out.parent.mkdir()
    out.write_text("yesterday's export\n", encoding="utf-8")

    def failing() -> Iterator[tuple[int, Any]]:
        yield from list(county.app.iter_events())[:3]
        raise RuntimeError("store went away")

    with pytest.raises(RuntimeError, match="store went away"):
        export_events(failing(), out, "jsonl")

    assert out.read_text(encoding="utf-8") == "yesterday's export\n"
    assert [p.name for p in out.parent.iterdir()] == ["events.jsonl"]


# -- bad arguments ------------------------------------------------------------------------------

NAIVE = datetime(2021, 11, 1, 9, 0)  # noqa: DTZ001 - the naive time the export must refuse


@pytest.mark.parametrize(
    ("fmt", "flt", "message"),
    [
        ("xlsx", ExportFilter(), "unknown export format 'xlsx'"),
        ("jsonl", ExportFilter(since=START, until=START), "is not before until"),
        ("csv", ExportFilter(since=START + timedelta(days=1), until=START), "is not before until"),
        ("jsonl", ExportFilter(since=NAIVE), "since 2021-11-01T09:00:00 has no time zone"),
        ("jsonl", ExportFilter(until=NAIVE), "until 2021-11-01T09:00:00 has no time zone"),
        ("csv", ExportFilter(types=frozenset({"Case.Opend"})), "'Case.Opend' (did you mean 'Case.Opened'?)"),
        ("jsonl", ExportFilter(types=frozenset({"Case.Created"})), "unknown event type 'Case.Created'"),
        ("jsonl", ExportFilter(types="Case.Opened"), "not the string 'Case.Opened'"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_are_refused_by_name_before_anything_is_written(
    county: County, tmp_path: Path, fmt: str, flt: ExportFilter, message: str
) -> None:
    out = tmp_path / "out" / "events.export"
    out.parent.mkdir()
    sink = io.BytesIO()

    with pytest.raises(ExportError, match=re.escape(message)):
        export_events(county.app.iter_events(), out, fmt, flt)
    with pytest.raises(ExportError, match=re.escape(message)):
        export_events(county.app.iter_events(), sink, fmt, flt)

    assert list(out.parent.iterdir()) == []
    assert sink.getvalue() == b""


def test_a_missing_output_directory_is_refused_by_name(county: County, tmp_path: Path) -> None:
    out = tmp_path / "nowhere" / "events.jsonl"

    with pytest.raises(ExportError, match=re.escape(f"cannot write {out}")):
        export_to(county.app, out, "jsonl")


def test_parquet_without_pyarrow_says_what_to_install(
    county: County, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry makes ``import pyarrow`` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)

    with pytest.raises(ExportError) as refused:
        export_to(county.app, tmp_path / "events.parquet", "parquet")

    assert str(refused.value) == "parquet export needs pyarrow: pip install 'pingjing[analytics]'"
    assert [p.name for p in tmp_path.iterdir() if "parquet" in p.name] == []


# -- event types --------------------------------------------------------------------------------


def test_known_event_types_are_sorted_and_name_every_type_in_the_log(county: County) -> None:
    story(county)
    in_log = {type(e).__qualname__ for _, e in county.app.iter_events()}

    known = known_event_types()

    assert known == sorted(known)
    assert in_log <= set(known)
    assert {"QrIdentity.Issued", "EncounterCode.Redeemed", "Encounter.Logged", "Case.SlaBreached"} <= set(known)
    assert not [name for name in known if name.endswith((".Event", ".Created"))]
