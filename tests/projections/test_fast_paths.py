"""The rebuild's fast paths read and write exactly what the plain paths do.

A rebuild reads rows with one plain query, decodes them without the library's mapper
(or, for the activity projection, reads a few stored fields without building the event),
counts in bulk and formats moments with cheaper calls. Each is checked here against the
plain path it replaces, on every store.
"""

from __future__ import annotations

import threading
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoding,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic
from hypothesis import given, settings
from hypothesis import strategies as st

import projections.runner as runner_module
from domain.ids import LOCAL_TZ
from domain.personal import PersonalData
from domain.rates import period_keys
from domain.transcodings import ContactAsDict, EventDecoder, FastJSONTranscoder, read_moment, register
from domain.values import Contact, Meta
from projections import ALL, board, timeline
from projections.analyst import rebuild_in_memory
from projections.counts import Counts, Metrics, read_counts
from projections.registry import Registry
from projections.runner import Runner
from projections.store import ViewStore
from tests.conftest import County
from tests.projections.test_runner import dump, tell_a_story

# -- decoding -----------------------------------------------------------------------------------


class _MetaFromDict(Transcoding):
    """The domain's metadata, read back with :meth:`Meta.from_dict` (the reference)."""

    type = Meta
    name = "meta"

    def encode(self, obj: Meta) -> dict[str, str]:
        return obj.as_dict()

    def decode(self, data: dict[str, str]) -> Meta:
        return Meta.from_dict(data)


def _library_mapper(personal: PersonalData) -> Mapper[UUID]:
    """The library's own JSON transcoder and transcodings, nothing of ours on the read path but the contacts' seal."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), _MetaFromDict(), ContactAsDict(personal)):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


@pytest.fixture
def history(county: County) -> County:
    """A county with some weeks of life (the runner tests' story)."""
    tell_a_story(county)
    return county


def _all_notifications(county: County) -> list[Any]:
    return list(county.app.recorder.select_notifications(start=1, limit=100_000))


def test_events_decoded_from_rows_equal_what_the_library_decodes(history: County) -> None:
    app = history.app
    decoder = EventDecoder(app.mapper)
    reference = _library_mapper(app.personal)
    notifications = _all_notifications(history)
    assert len(notifications) > 50
    for n in notifications:
        fast = decoder(n.topic, n.originator_id, n.originator_version, n.state)
        plain = reference.to_domain_event(n)
        assert type(fast) is type(plain)
        assert vars(fast) == vars(plain), n.topic
        # The mapper of the application (our transcoder inside the library's mapper) agrees too.
        assert vars(app.mapper.to_domain_event(n)) == vars(plain)


def test_ids_given_as_text_are_read_as_the_recorder_would(history: County) -> None:
    decoder = EventDecoder(history.app.mapper, text_ids_are_uuids=True)
    for n in _all_notifications(history)[:20]:
        for text in (n.originator_id.hex, str(n.originator_id), n.originator_id.hex.upper()):
            event = decoder(n.topic, text, n.originator_version, n.state)
            assert type(event.originator_id) is UUID
            assert event.originator_id == n.originator_id


def test_the_stored_fields_are_offered_only_when_no_upcasting_is_needed(history: County) -> None:
    decoder = EventDecoder(history.app.mapper)
    n = _all_notifications(history)[-1]
    fields = decoder.fields(n.topic, n.state)
    assert fields is not None
    assert fields["meta"]["_type_"] == "meta", "typed values stay as stored"


class Probe(Aggregate):
    """An aggregate whose event gained a field in version 2."""

    class Sized(Aggregate.Event):
        class_version: ClassVar[int] = 2
        size: int
        unit: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["unit"] = "cm"


def _stored_v1(mapper: Mapper[UUID]) -> StoredEvent:
    state = {"timestamp": datetime(2021, 11, 5, 10, tzinfo=UTC), "size": 3}
    return StoredEvent(uuid4(), 2, get_topic(Probe.Sized), mapper.transcoder.encode(state))


def test_an_older_version_of_an_event_is_upcast_as_the_library_does() -> None:
    transcoder = FastJSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    register(transcoder)
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    stored = _stored_v1(mapper)
    decoder = EventDecoder(mapper)

    event = decoder(stored.topic, stored.originator_id, stored.originator_version, stored.state)

    assert vars(event) == vars(mapper.to_domain_event(stored))
    assert event.unit == "cm"
    assert decoder.fields(stored.topic, stored.state) is None, "a reader must get the upcast event instead"


def test_with_a_compressor_every_row_goes_through_the_mapper(history: County) -> None:
    transcoder = history.app.mapper.transcoder
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder, compressor=ZlibCompressor())
    decoder = EventDecoder(mapper)
    for n in _all_notifications(history)[:30]:
        stored = mapper.to_stored_event(history.app.mapper.to_domain_event(n))
        assert zlib.decompress(stored.state)
        event = decoder(stored.topic, stored.originator_id, stored.originator_version, stored.state)
        assert vars(event) == vars(mapper.to_domain_event(stored))
        assert decoder.fields(stored.topic, stored.state) is None


def test_moments_read_share_their_offset_and_equal_the_plain_reading() -> None:
    texts = ["2021-11-05T10:00:00+08:00", "2021-11-05T10:00:00.123456+08:00", "2021-11-05T02:00:00+00:00"]
    moments = [read_moment(text) for text in texts]
    assert moments == [datetime.fromisoformat(text) for text in texts]
    assert moments[0].tzinfo is moments[1].tzinfo
    assert moments[0] == moments[2]


# -- reading rows -------------------------------------------------------------------------------


def test_rows_read_with_one_query_are_the_recorders_notifications(history: County) -> None:
    app = history.app
    runner = Runner(app, ViewStore.beside(app), ALL)
    head = runner.head()
    rows = runner.read(0, head, 100_000)
    notifications = app.recorder.select_notifications(start=1, limit=100_000, stop=head, topics=runner.topics)
    assert [row[0] for row in rows] == [n.id for n in notifications]
    for (_, originator_id, version, topic, state), n in zip(rows, notifications, strict=True):
        assert (UUID(str(originator_id)), version, topic, bytes(state)) == (
            n.originator_id,
            n.originator_version,
            n.topic,
            n.state,
        )
    # A limit and a window, as the runner pages through the log.
    assert [row[0] for row in runner.read(rows[2][0], rows[9][0], 5)] == [row[0] for row in rows[3:8]]


# -- the activity projection read from stored fields ----------------------------------------------


def test_activity_read_from_stored_fields_equals_activity_read_from_events(history: County) -> None:
    app = history.app
    light = dump(rebuild_in_memory(app))
    # "As of" a moment after everything, every row is decoded into its event.
    full = dump(rebuild_in_memory(app, as_of=datetime(2100, 1, 1, tzinfo=UTC)))
    assert light == full
    assert light["pj_activity_counts"], "the story counts encounters and ratings"


def test_a_page_read_in_several_queries_is_written_in_one_transaction(
    history: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = history.app
    monkeypatch.setattr(runner_module, "READ", 5)
    runner = Runner(app, ViewStore.beside(app), ALL, page=40)
    pages: list[int] = []
    runner.catch_up(progress=lambda position, _head: pages.append(position))
    relevant = len(runner.read(0, runner.head(), 100_000))
    assert -(-relevant // 40) <= len(pages) <= relevant // 40 + 1
    assert len(pages) < relevant // 5, "a transaction per page, not per query"
    assert dump(runner.views) == dump(rebuild_in_memory(app))


def test_a_stop_asked_for_in_the_middle_of_a_page_stores_what_was_folded(
    history: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = history.app
    monkeypatch.setattr(runner_module, "READ", 5)
    runner = Runner(app, ViewStore.beside(app), ALL, page=100_000)
    stop = threading.Event()
    fold = runner.projections[1].apply

    def fold_then_stop(position: int, event: Any) -> None:
        fold(position, event)
        stop.set()

    runner.projections[1].apply = fold_then_stop  # type: ignore[method-assign]
    runner.catch_up(stop=stop)

    stored = {s.name: s.position for s in runner.status()}
    assert 0 < stored["activity"] == stored["cases"] < runner.head()
    fresh = Runner(app, ViewStore.beside(app), ALL)
    fresh.catch_up()
    assert dump(fresh.views) == dump(rebuild_in_memory(app))


# -- counting -----------------------------------------------------------------------------------

# Hypothesis takes naive bounds and attaches the zones itself.
scope_tuples = st.lists(
    st.sampled_from(["county", "unit:PS1", "unit:BUR", "officer:100102", "officer:F10103"]),
    min_size=1,
    max_size=4,
    unique=True,
).map(tuple)
count_moments = st.datetimes(
    min_value=datetime(2020, 12, 20),  # noqa: DTZ001
    max_value=datetime(2022, 1, 10),  # noqa: DTZ001
    timezones=st.sampled_from([LOCAL_TZ, UTC, timezone(timedelta(hours=8))]),
)
metric_tuples = st.lists(st.sampled_from(["a", "b", "c", "step:d"]), min_size=1, max_size=4).map(tuple)
# The same scopes object for many facts, as the registry hands them out.
shared_scopes = st.sampled_from([("county",), ("county", "unit:PS1")])


@settings(max_examples=60)
@given(st.lists(st.tuples(shared_scopes | scope_tuples, count_moments, metric_tuples), max_size=60))
def test_counts_spread_every_fact_over_its_scopes_periods_and_metrics(
    facts: list[tuple[tuple[str, ...], datetime, tuple[str, ...]]],
) -> None:
    counts = Counts(ABCD)
    expected: Counter[tuple[str, str, str]] = Counter()
    for fact_scopes, moment, metrics in facts + facts[:5]:  # some facts twice
        counts.add(fact_scopes, moment, *metrics)
        for scope in fact_scopes:
            for period in period_keys(moment):
                for metric in metrics:
                    expected[(scope, period, metric)] += 1
    assert counts.deltas == expected

    rows = counts.rows()

    assert [tuple(row[:2]) for row in rows] == sorted({(s, p) for s, p, _ in expected}), "one row per scope and period"
    assert {(row[0], row[1], m): v for row in rows for m, v in zip(ABCD.names, row[2:], strict=True) if v} == expected
    assert counts.rows() == [], "the rows are made once"


ABCD = Metrics("pj_test_counts", ("a", "b", "c", "step:d"))


def test_counts_added_twice_to_the_table_are_read_back_summed_and_without_the_metrics_never_counted() -> None:
    views = ViewStore.in_memory()
    views.create(ABCD.schema())
    moment = datetime(2021, 11, 3, 9, tzinfo=LOCAL_TZ)
    for _ in range(2):
        counts = Counts(ABCD)
        counts.add(("county", "unit:PS1"), moment, "a", "step:d")
        counts.add(("county",), moment, "a")
        with views.transaction(commit=True) as cur:
            counts.flush(cur)

    assert read_counts(views, [ABCD, ABCD], "county", "2021-11") == {"a": 8, "step:d": 4}
    assert read_counts(views, [ABCD], "unit:PS1", "2021-W44") == {"a": 2, "step:d": 2}
    assert read_counts(views, [ABCD], "unit:PS1", "2021-12") == {}
    assert "step__d" in ABCD.schema()[0], "a metric's column is its name made an identifier"


def test_a_metric_the_table_does_not_count_is_refused_when_its_rows_are_made() -> None:
    counts = Counts(ABCD)
    counts.add(("county",), datetime(2021, 11, 3, tzinfo=UTC), "e")
    with pytest.raises(KeyError, match="e"):
        counts.rows()


@pytest.mark.parametrize("names", [(), ("a", "a"), ("a b",), ("Robert'); DROP TABLE x;--",)])
def test_metrics_must_be_distinct_names_that_make_columns(names: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="metric names"):
        Metrics("pj_test_counts", names)


# -- formatting ---------------------------------------------------------------------------------

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
any_moments = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=offsets | st.sampled_from([UTC, LOCAL_TZ]),
)


@settings(max_examples=300)
@given(any_moments)
def test_moments_are_written_as_strftime_writes_them(moment: datetime) -> None:
    """Remembered (``ts``, ``local``) or written once (``utc_text``, ``local_text``), the same text."""
    assert board.utc_text(moment) == board.ts(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert timeline.local_text(moment) == timeline.local(moment) == f"{moment.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}"


def test_the_two_readings_of_a_repeated_hour_are_written_apart() -> None:
    # Equal as datetimes of one zone (the wall time is the same), an hour apart in UTC.
    zone = ZoneInfo("America/New_York")
    first, second = (datetime(2021, 11, 7, 1, 30, tzinfo=zone, fold=fold) for fold in (0, 1))
    assert first == second
    for moment in (first, second, first, second):
        assert board.ts(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert timeline.local(moment) == f"{moment.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}"
    assert board.ts(first) != board.ts(second)


def _details_reference(event: Any, registry: Registry) -> str:
    """``timeline.details`` as first written: every field looked at, for every event."""
    data = vars(event)
    parts: list[str] = []
    for key in ("kind", "step", "round", "outcome", "measure", "target"):
        if data.get(key) is not None and not (key == "round" and "step" not in data):
            parts.append(f"{key}={data[key]}")
    for key in ("satisfied", "implemented", "citizen_accepted"):
        if data.get(key) is not None:
            parts.append(f"{key}={'yes' if data[key] else 'no'}")
    for key in ("due_at", "new_due_at"):
        if data.get(key) is not None:
            parts.append(f"{key}={timeline.local(data[key])}")
    if data.get("officer_id") is not None:
        info = registry.officers.get(data["officer_id"])
        parts.append(f"officer={info.name} ({info.badge})" if info else f"officer={data['officer_id']}")
    if data.get("unit_id") is not None:
        unit = registry.units.get(data["unit_id"])
        parts.append(f"unit={unit.name} ({unit.code})" if unit else f"unit={data['unit_id']}")
    contact = data.get("contact")
    if isinstance(contact, Contact):
        parts.append(f"contact={timeline.mask_phone(contact.phone)}")
    parts.extend(f"{key}: {data[key]}" for key in ("summary", "note", "result", "reason", "instructions",
                                                     "resolution") if data.get(key))
    return "; ".join(parts)


def test_timeline_details_look_at_the_fields_each_event_has(history: County) -> None:
    app = history.app
    registry = Registry()
    checked = 0
    for _, event in app.iter_events():
        registry.apply(event)
        assert timeline.details(event, registry) == _details_reference(event, registry)
        checked += 1
    # An event holding a field its class does not declare is looked at in full.
    _, opened = next((p, e) for p, e in app.iter_events() if type(e).__qualname__ == "Case.Opened")
    object.__setattr__(opened, "outcome", "resolved")
    assert "outcome=resolved" in timeline.details(opened, registry)
    assert timeline.details(opened, registry) == _details_reference(opened, registry)
    assert checked > 50
