"""Bad input, generated: import lines, command models and HTTP bodies beyond the OpenAPI document.

Every input gets a clear refusal (a 4xx with a message, a domain error, a refused import
line naming its problem) or is accepted; never a 500, a traceback or an unexpected
exception; and a refusal writes nothing (the log's head does not move).

The inputs are near misses as much as noise: valid lines and bodies with one field dropped,
retyped, stretched, emptied or filled with odd Unicode, besides random JSON, random bytes and
random form fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError as PydanticValidationError

from adapters.importer import parse_line, run_import
from adapters.qr.keys import load_keyring
from adapters.qr.tokens import make_token
from domain import commands as c
from domain.application import PingjingApp
from domain.errors import PingjingError
from domain.values import QrSubject
from tests.conftest import ADMIN, CITIZEN, SUPERVISOR, County, make_app
from tests.fakes import FakeClock
from tests.http.conftest import World, make_world

EXAMPLES = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# -- values: near misses and noise -----------------------------------------------------------

ODD_TEXT = st.sampled_from(["", " ", "\x00", "\u202e", "👮", "评" * 3000, "null", "1e999", "PJ-20211109-XXXXXX",
                            "<script>", "' OR 1=1 --", "\ud7ff", "\n\r\t"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40), ODD_TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4), max_leaves=12)

VALID_ARGS: dict[str, dict[str, Any]] = {
    "submit_rating": {"target": "officer", "key": "100102", "verdict": "dissatisfied", "service_score": 2,
                      "attitude_score": 2, "efficiency_score": 2, "complaint": "等候过久", "phone": "13800138000"},
    "open_case": {"intake": "hotline", "kind": "complaint", "unit_code": "PS1", "summary": "来电反映"},
    "log_encounter": {"kind": "reception", "badge": "100102", "happened_at": "2021-11-01T09:00:00+08:00"},
    "register_unit": {"code": "PS9", "unit_name": "新派出所", "kind": "police_station", "parent_code": "BUR"},
    "register_officer": {"badge": "100999", "officer_name": "新民警", "kind": "police", "unit_code": "PS1"},
}


@st.composite
def near_miss(draw: st.DrawFn, valid: dict[str, Any]) -> dict[str, Any]:
    """``valid`` with a few fields dropped, replaced by noise, or added."""
    data = dict(valid)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        if action == "drop" and data:
            data.pop(draw(st.sampled_from(sorted(data))))
        elif action == "replace" and data:
            data[draw(st.sampled_from(sorted(data)))] = draw(JSON)
        else:
            data[draw(st.text(min_size=1, max_size=12))] = draw(JSON)
    return data


def head(app: PingjingApp) -> int:
    return int(app.recorder.max_notification_id() or 0)


@pytest.fixture
def county_app(tmp_path: Path, clock: FakeClock) -> Iterator[PingjingApp]:
    """The tiny county on a SQLite file, with a pushed case."""
    app = make_app(str(tmp_path / "fuzz.sqlite3"), clock)
    County(app, clock).setup().open_case()
    yield app
    app.close()


# -- import lines ---------------------------------------------------------------------------

import_lines = st.one_of(
    st.text(max_size=200),
    JSON.map(lambda value: json.dumps(value, ensure_ascii=False)),
    st.sampled_from(sorted(VALID_ARGS)).flatmap(
        lambda name: st.fixed_dictionaries({
            "cmd": st.one_of(st.just(name), JSON),
            "at": st.one_of(st.just("2021-11-01T09:00:00+08:00"), JSON),
            "actor": st.one_of(st.just("admin:it-li"), st.just("citizen:anonymous"), JSON),
            "args": st.one_of(near_miss(VALID_ARGS[name]), JSON),
        }).map(lambda line: json.dumps(line, ensure_ascii=False))
    ),
)


@EXAMPLES
@given(lines=st.lists(import_lines, min_size=1, max_size=5))
def test_no_import_line_crashes_the_import_and_a_refused_atomic_import_writes_nothing(
    county_app: PingjingApp, lines: list[str]
) -> None:
    for number, text in enumerate(lines, start=1):
        try:
            parse_line(text, number, "imp-fuzz")
        except ValueError as error:
            refusal = str(error)
            assert refusal  # says what is wrong
    before = head(county_app)
    report = run_import(county_app, lines, run_id="imp-fuzz", atomic=True)
    assert all(line.error for line in report.refused)
    if report.refused:
        assert head(county_app) == before
        assert not report.written


# -- command models ---------------------------------------------------------------------------

@EXAMPLES
@given(data=st.data())
def test_every_command_model_refuses_bad_fields_with_a_validation_error_and_the_use_case_writes_nothing_when_it_refuses(
    county_app: PingjingApp, data: st.DataObject
) -> None:
    command_class = data.draw(st.sampled_from(c.ALL_COMMANDS))
    valid = VALID_ARGS.get(command_class.name, {})
    fields = data.draw(st.one_of(near_miss(valid), st.dictionaries(st.sampled_from(
        sorted(command_class.model_fields) or ["x"]), JSON, max_size=6)))
    try:
        command = command_class.model_validate(fields)
    except PydanticValidationError as error:
        problems = error.errors()
        assert problems  # names the fields
        return
    before = head(county_app)
    for context in (ADMIN, SUPERVISOR, CITIZEN):
        outcome = county_app.execute_batch([(command, context)])[0]
        if isinstance(outcome, PingjingError):
            assert str(outcome)
            assert head(county_app) == before
        else:
            before = head(county_app)


# -- HTTP bodies ------------------------------------------------------------------------------

@pytest.fixture
def served(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[World, list[str], str]]:
    """The app with a pushed case and officer 100102's code; its POST routes; a scan path."""
    world = make_world(str(tmp_path / "http.sqlite3"), tmp_path, clock, citizen_posts_per_minute=0)
    ref = world.county.open_case()
    world.rt.app.issue_qr(c.IssueQr(subject="officer", key="100102"), ADMIN)
    scan = f"/s/{make_token(load_keyring(world.rt.settings), QrSubject.OFFICER, '100102', 1)}"
    documented = world.client.get("/openapi.json").json()["paths"]
    posts = sorted(path.replace("{ref}", ref).replace("{unit_code}", "PS1").replace("{badge}", "100102")
                   .replace("{subject}", "officer").replace("{key}", "100102")
                   for path, operations in documented.items() if "post" in operations)
    assert len(posts) > 20
    yield world, posts, scan
    world.client.close()
    world.rt.close()


bodies = st.one_of(
    JSON.map(lambda value: ("application/json", json.dumps(value, ensure_ascii=False).encode())),
    st.binary(max_size=300).map(lambda raw: ("application/json", raw)),
    st.binary(max_size=300).map(lambda raw: ("application/x-www-form-urlencoded", raw)),
    st.text(max_size=100).map(lambda text: ("text/plain", text.encode())),
    st.sampled_from(sorted(VALID_ARGS)).flatmap(lambda name: near_miss(VALID_ARGS[name])).map(
        lambda body: ("application/json", json.dumps(body, ensure_ascii=False).encode())),
)


@EXAMPLES
@given(data=st.data())
def test_no_api_body_gets_a_server_error_and_a_refusal_writes_nothing(
    served: tuple[World, list[str], str], data: st.DataObject
) -> None:
    world, posts, _ = served
    path = data.draw(st.sampled_from(posts))
    kind, body = data.draw(bodies)
    who = data.draw(st.sampled_from(["supervisor", "admin", "unit_head", "officer", "auditor"]))
    before = world.head()
    answer = world.client.post(path, content=body, headers={**world.headers(who), "content-type": kind})
    assert answer.status_code < 500, (path, answer.text)
    if answer.status_code >= 400:
        assert answer.json()["message"]
        assert world.head() == before


form_fields = st.dictionaries(
    st.sampled_from(["verdict", "service_score", "attitude_score", "efficiency_score", "comment", "complaint",
                     "suggestion", "phone", "citizen_name", "encounter_code", "website", "last4", "x"]),
    st.one_of(st.text(max_size=60), ODD_TEXT, st.integers().map(str)), max_size=10)


@EXAMPLES
@given(data=st.data())
def test_no_citizen_form_gets_a_server_error_and_a_refusal_writes_nothing(
    served: tuple[World, list[str], str], data: st.DataObject
) -> None:
    world, _, scan = served
    path = data.draw(st.sampled_from([scan, scan[:-4] + "AAAA", "/s/garbage", "/track/PJ-20211101-000001",
                                      "/track/%00", "/track/" + "x" * 300]))
    fields = data.draw(form_fields)
    world.client.cookies.set("pj_device", data.draw(st.text(alphabet="abcdef0123456789_-", min_size=0,
                                                            max_size=40)) or "none")
    before = world.head()
    if data.draw(st.booleans()):
        answer = world.client.post(path, data=fields)
    else:
        kind, body = data.draw(bodies)
        answer = world.client.post(path, content=body, headers={"content-type": kind})
    assert answer.status_code < 500, (path, answer.text[-500:])
    assert "Traceback" not in answer.text
    if answer.status_code >= 400:
        assert world.head() == before
