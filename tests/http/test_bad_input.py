"""Bad input on every use-case route: a 422 naming the field, and nothing written."""

from __future__ import annotations

import pytest

from adapters.http.api import COMMAND_ROUTES, CommandRoute, path_fields, staff_roles
from domain.values import Role
from tests.http.conftest import World

API = "/api/v1"
#: Who may call each route (the first allowed role of the tests' principals).
CALLER = {Role.ADMIN: "admin", Role.SUPERVISOR: "supervisor", Role.UNIT_HEAD: "unit_head", Role.OFFICER: "officer"}
#: A good value of each path field.
GOOD_PATH = {"unit_code": "PS1", "badge": "100102", "subject": "officer", "key": "100102"}
#: A value of each path field that can never be right.
BAD_PATH = {"unit_code": "p", "badge": "1", "subject": "bogus", "key": "-", "ref": "PJ-2021-nope"}


def caller(route: CommandRoute) -> str:
    """A principal whose role the route lets in."""
    return next(CALLER[r] for r in sorted(staff_roles(route.command)) if r in CALLER)


def concrete(route: CommandRoute, ref: str, values: dict[str, str] | None = None) -> str:
    """The route's path with its fields filled in."""
    filled = {**GOOD_PATH, "ref": ref, **(values or {})}
    return f"{API}{route.path.format(**{name: filled[name] for name in path_fields(route.path)})}"


def has_body(route: CommandRoute) -> bool:
    """Whether anything is left for the body once the path has its fields."""
    return bool(set(route.command.model_fields) - set(path_fields(route.path)))


BODIES = {
    "empty object": {},
    "unknown field": {"no_such_field": 1},
    "array": [1, 2],
    "string": "note",
}


@pytest.mark.parametrize("route", [r for r in COMMAND_ROUTES if has_body(r)], ids=lambda r: r.command.name)
def test_a_bad_body_is_a_422_naming_the_field_and_nothing_is_written(world: World, route: CommandRoute) -> None:
    ref = world.county.open_case()
    before = world.head()
    for bad, sent in BODIES.items():
        r = world.post(caller(route), concrete(route, ref), sent)
        assert r.status_code == 422, (bad, r.text)
        body = r.json()
        assert body["error"] == "validation_error"
        assert body["fields"], bad
        assert all(f["loc"][0] == "body" for f in body["fields"]), bad
    assert world.head() == before


@pytest.mark.parametrize("route", [r for r in COMMAND_ROUTES if path_fields(r.path)], ids=lambda r: r.command.name)
def test_a_path_that_cannot_be_right_is_a_422_and_nothing_is_written(world: World, route: CommandRoute) -> None:
    before = world.head()
    # The body is whatever the route would take; the path is what is wrong.
    r = world.post(caller(route), concrete(route, "PJ-20211101-AAAAAA", BAD_PATH), {})
    assert r.status_code == 422, r.text
    assert world.head() == before


def test_malformed_json_is_a_422_and_nothing_is_written(world: World) -> None:
    before = world.head()
    r = world.client.post(f"{API}/units", content=b'{"code": "PS9", ', headers={
        **world.headers("admin"), "Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"] == "validation_error"
    assert world.head() == before


HOTLINE = {"intake": "hotline", "kind": "complaint", "unit_code": "PS1", "summary": "出警太慢"}
ENCOUNTER = {"kind": "dispatch", "happened_at": "2021-11-01T08:00:00+08:00", "badge": "100102"}


@pytest.mark.parametrize(
    ("who", "path", "body", "field"),
    [
        ("supervisor", "/cases", {**HOTLINE, "phone": "call me"}, "phone"),
        ("supervisor", "/cases", {**HOTLINE, "kind": "rumour"}, "kind"),
        ("supervisor", "/cases", {**HOTLINE, "summary": "x" * 2001}, "summary"),
        ("supervisor", "/cases/{ref}/accountability", {"badge": "100102", "measure": "fine", "note": "x"}, "measure"),
        ("supervisor", "/cases/{ref}/rectification", {"instructions": "x", "due_at": "tomorrow"}, "due_at"),
        ("officer", "/encounters", {**ENCOUNTER, "happened_at": "2021-11-01T08:00:00"}, "happened_at"),
        ("officer", "/encounters/bulk", {"encounters": []}, "encounters"),
        ("admin", "/units", {"code": "PS 9", "unit_name": "新所", "kind": "police_station"}, "code"),
    ],
)
def test_a_value_that_cannot_be_right_names_its_field(
    world: World, who: str, path: str, body: dict[str, object], field: str
) -> None:
    ref = world.county.open_case()
    before = world.head()
    r = world.post(who, API + path.format(ref=ref), body)
    assert r.status_code == 422, r.text
    assert r.json()["fields"][0]["loc"][:2] == ["body", field]
    assert world.head() == before
