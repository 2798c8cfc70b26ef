"""What every write makes: event state in the library's JSON format, and random ids.

The encoder writes with orjson after one walk over the typed values; it must give the
library's own bytes, hand over what orjson cannot write the same way, and refuse what no
reader could read back. Ids come from a pool of the operating system's randomness, which a
forked process must not share.
"""

from __future__ import annotations

import enum
import math
import os
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError
from hypothesis import given
from hypothesis import strategies as st

from domain.application import PingjingApp
from domain.clock import RandomIdSource, random_uuid4
from domain.transcodings import FastJSONTranscoder
from domain.values import Actor, Channel, Meta, Role


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


class Shape(enum.Enum):
    ROUND = "round"


@pytest.fixture(scope="module")
def transcoder() -> FastJSONTranscoder:
    """The application's transcoder (its transcodings registered), on a memory store."""
    app = PingjingApp(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, observers=[])
    try:
        t = app.mapper.transcoder
        assert isinstance(t, FastJSONTranscoder)
        return t
    finally:
        app.close()


def library(transcoder: FastJSONTranscoder, obj: Any) -> bytes:
    """What the library's own encoder writes with the same transcodings."""
    return JSONTranscoder.encode(transcoder, obj)


moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),  # noqa: DTZ001 - hypothesis adds the zone
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
)
scalars = (
    st.text(max_size=12) | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.booleans() | st.none()
    | st.uuids() | moments | st.decimals(allow_nan=False, allow_infinity=False, places=2)
    | st.sampled_from([Colour.RED, Size.BIG])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
states = st.dictionaries(st.text(max_size=10), values, max_size=8)


@given(states)
def test_the_bytes_are_the_librarys(transcoder: FastJSONTranscoder, state: dict[str, Any]) -> None:
    assert transcoder.encode(state) == library(transcoder, state)
    assert transcoder.decode(transcoder.encode(state)) == transcoder.decode(library(transcoder, state))


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=5))
def test_numbers_read_back_as_written(transcoder: FastJSONTranscoder, numbers: list[float]) -> None:
    """orjson may spell a float differently from ``repr`` (``1e16``, not ``1e+16``); it reads back the same."""
    state = {"x": numbers, "y": {"z": numbers[0]}}
    assert orjson.loads(transcoder.encode(state)) == orjson.loads(library(transcoder, state))


def test_metadata_and_contacts_are_written_through_their_transcodings(transcoder: FastJSONTranscoder) -> None:
    meta = Meta("dc-wang", Role.SUPERVISOR, datetime(2021, 11, 9, 20, 40, tzinfo=UTC), Channel.CONSOLE, "c-1")
    state = {"meta": meta, "actor": Actor("a", Role.ADMIN).principal, "ids": [uuid.uuid4(), (uuid.uuid4(),)]}
    assert transcoder.encode(state) == library(transcoder, state)


def test_what_orjson_cannot_write_alike_is_written_by_the_library(transcoder: FastJSONTranscoder) -> None:
    for state in (
        {"big": 2**70},  # beyond 64 bits
        {"keys": {1: "one", 2.5: "x", None: "n", False: "f"}},  # keys that are not text
        {"deep": {"n": Decimal("1.10")}},
    ):
        assert transcoder.encode(state) == library(transcoder, state)


def test_a_value_with_no_transcoding_is_named_as_the_library_names_it(transcoder: FastJSONTranscoder) -> None:
    with pytest.raises(TranscodingNotRegisteredError, match="Shape"):
        transcoder.encode({"shape": Shape.ROUND})
    with pytest.raises(TranscodingNotRegisteredError, match="set"):
        transcoder.encode({"tags": {"a"}})


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_numbers_that_are_not_json_are_refused(transcoder: FastJSONTranscoder, number: float) -> None:
    """The library would write ``NaN``, which no JSON reader (the log's included) reads back."""
    with pytest.raises(ValueError, match="not a JSON number"):
        transcoder.encode({"payload": {"x": number}})


# -- ids ---------------------------------------------------------------------------------------


def test_pooled_ids_are_version_4_uuids() -> None:
    ids = [random_uuid4() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:50]:
        assert value.version == 4
        assert value.variant == uuid.RFC_4122
        assert uuid.UUID(str(value)) == value
        assert hash(uuid.UUID(value.hex)) == hash(value)


def test_tokens_use_the_reference_alphabet() -> None:
    tokens = [RandomIdSource().new_token(12) for _ in range(200)]
    assert len(set(tokens)) == len(tokens)
    assert all(len(t) == 12 and set(t) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for t in tokens)
    assert len(RandomIdSource().new_token(30)) == 30  # more bits than one draw holds


def test_a_forked_process_draws_ids_of_its_own() -> None:
    random_uuid4()  # the pool is filled, with ids still to hand out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, then leave at once
        os.close(read)
        os.write(write, b"".join(random_uuid4().bytes for _ in range(10)))
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 4096):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    child = {uuid.UUID(bytes=data[i : i + 16]) for i in range(0, len(data), 16)}
    parent = {random_uuid4() for _ in range(10)}
    assert len(child) == 10
    assert not child & parent, "the child handed out ids the parent also hands out"
