"""The role matrix of the HTTP API (DESIGN §1): every route, every role, from one declarative table.

:data:`MAY_CALL` is written by hand from the design, not read from the app: which roles each
route lets in (``None``: open to anyone, no token). :data:`CALLS` makes a request to each route
that is valid for the role making it. A route added to the app but not to the table fails
:func:`test_the_table_covers_every_route_of_the_app`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from domain import commands as c
from tests.app.test_roles import called_back, contacted, pushed, rectified, rectifying, reported
from tests.conftest import ADMIN, START, SUPERVISOR
from tests.http.conftest import World

API = "/api/v1"
ROLES = ("admin", "auditor", "officer", "supervisor", "unit_head")
ALL = frozenset(ROLES)
ADMINS = frozenset({"admin"})
OFFICE = frozenset({"supervisor"})
HEADS = frozenset({"unit_head"})
ENCOUNTER_LOGGERS = frozenset({"admin", "officer"})
DIRECTORY = frozenset({"admin", "supervisor", "unit_head"})
CASE_READERS = frozenset({"supervisor", "unit_head", "auditor"})
CONTACT_READERS = frozenset({"supervisor", "unit_head"})
RATES_READERS = frozenset({"supervisor", "auditor", "unit_head", "officer"})
REPORT_READERS = frozenset({"supervisor", "auditor", "unit_head"})

#: (method, route) -> the roles it lets in (None: open, no token needed).
MAY_CALL: dict[tuple[str, str], frozenset[str] | None] = {
    ("POST", f"{API}/units"): ADMINS,
    ("POST", f"{API}/units/{{unit_code}}/head"): ADMINS,
    ("POST", f"{API}/officers"): ADMINS,
    ("POST", f"{API}/officers/{{badge}}/transfer"): ADMINS,
    ("POST", f"{API}/officers/{{badge}}/left"): ADMINS,
    ("POST", f"{API}/qr-identities/{{subject}}/{{key}}/issue"): ADMINS,
    ("POST", f"{API}/qr-identities/{{subject}}/{{key}}/rotate"): ADMINS,
    ("POST", f"{API}/qr-identities/{{subject}}/{{key}}/revoke"): ADMINS,
    ("POST", f"{API}/encounters"): ENCOUNTER_LOGGERS,
    ("POST", f"{API}/encounters/bulk"): ENCOUNTER_LOGGERS,
    ("POST", f"{API}/cases"): OFFICE,
    ("POST", f"{API}/cases/{{ref}}/contact"): HEADS,
    ("POST", f"{API}/cases/{{ref}}/result"): HEADS,
    ("POST", f"{API}/cases/{{ref}}/callback"): OFFICE,
    ("POST", f"{API}/cases/{{ref}}/callback-attempts"): OFFICE,
    ("POST", f"{API}/cases/{{ref}}/supervision"): OFFICE,
    ("POST", f"{API}/cases/{{ref}}/flag"): OFFICE,
    ("POST", f"{API}/cases/{{ref}}/rectification"): OFFICE,
    ("POST", f"{API}/cases/{{ref}}/rectification/done"): HEADS,
    ("POST", f"{API}/cases/{{ref}}/rectification/verification"): OFFICE,
    ("POST", f"{API}/cases/{{ref}}/close"): OFFICE,
    ("POST", f"{API}/cases/{{ref}}/reopen"): OFFICE,
    ("POST", f"{API}/cases/{{ref}}/accountability"): OFFICE,
    ("POST", f"{API}/cases/{{ref}}/commendations"): OFFICE,
    ("POST", f"{API}/reports"): OFFICE,
    ("GET", f"{API}/me"): ALL,
    ("GET", f"{API}/units"): ALL,
    ("GET", f"{API}/units/{{code}}"): ALL,
    ("GET", f"{API}/officers"): DIRECTORY,
    ("GET", f"{API}/officers/{{badge}}"): DIRECTORY,
    ("GET", f"{API}/cases"): CASE_READERS,
    ("GET", f"{API}/cases/{{ref}}"): CASE_READERS,
    ("GET", f"{API}/cases/{{ref}}/contact"): CONTACT_READERS,
    ("GET", f"{API}/rates"): RATES_READERS,
    ("GET", f"{API}/reports"): REPORT_READERS,
    ("GET", f"{API}/reports/{{name}}"): REPORT_READERS,
    ("GET", "/livez"): None,
    ("GET", "/healthz"): None,
    ("GET", "/metrics"): None,
}


@dataclass(frozen=True)
class Call:
    """A concrete request."""

    path: str
    json: Any = None
    params: dict[str, str] | None = None


_numbers = itertools.count(1)


def new_officer(w: World, unit: str = "PS1") -> str:
    """A freshly registered officer's badge."""
    badge = f"2{next(_numbers):05d}"
    w.rt.app.register_officer(c.RegisterOfficer(badge=badge, officer_name="新警官", kind="police", unit_code=unit),
                              ADMIN)
    return badge


def issued(w: World) -> str:
    """A new officer with a QR identity."""
    badge = new_officer(w)
    w.rt.app.issue_qr(c.IssueQr(subject="officer", key=badge), ADMIN)
    return badge


def encounter(role: str) -> dict[str, Any]:
    """An encounter of officer 100102 (the officer token's own badge)."""
    return {"kind": "dispatch", "happened_at": (START - timedelta(hours=1)).isoformat(), "badge": "100102"}


def rates_call(w: World, role: str) -> Call:
    """An officer asks for their own rates of a closed week resting on five ratings; the others, the county's."""
    if role != "officer":
        return Call(f"{API}/rates", params={"scope": "county", "period": "2021-11"})
    for _ in range(5):
        w.county.rate("satisfied")
    w.clock.set(START + timedelta(days=8))
    return Call(f"{API}/rates", params={"scope": "officer:100102", "period": "2021-W44"})


def published(w: World) -> str:
    """A publication on record (its files are not on this machine)."""
    publish = c.PublishReport(kind="weekly", period="2021-W43", title="周点评", position=1, content_hash="ab" * 32)
    return str(w.rt.app.publish_report(publish, SUPERVISOR).extra["name"])


Builder = Callable[[World, str], Call]
CALLS: dict[tuple[str, str], Builder] = {
    ("POST", f"{API}/units"): lambda w, r: Call(
        f"{API}/units", {"code": f"PX{next(_numbers)}", "unit_name": "新派出所", "kind": "police_station"}),
    ("POST", f"{API}/units/{{unit_code}}/head"): lambda w, r: Call(f"{API}/units/PS1/head", {"badge": new_officer(w)}),
    ("POST", f"{API}/officers"): lambda w, r: Call(
        f"{API}/officers", {"badge": f"3{next(_numbers):05d}", "officer_name": "王警官", "kind": "police",
                            "unit_code": "PS1"}),
    ("POST", f"{API}/officers/{{badge}}/transfer"): lambda w, r: Call(
        f"{API}/officers/{new_officer(w)}/transfer", {"unit_code": "PS2"}),
    ("POST", f"{API}/officers/{{badge}}/left"): lambda w, r: Call(
        f"{API}/officers/{new_officer(w)}/left", {"reason": "辞职"}),
    ("POST", f"{API}/qr-identities/{{subject}}/{{key}}/issue"): lambda w, r: Call(
        f"{API}/qr-identities/officer/{new_officer(w)}/issue"),
    ("POST", f"{API}/qr-identities/{{subject}}/{{key}}/rotate"): lambda w, r: Call(
        f"{API}/qr-identities/officer/{issued(w)}/rotate"),
    ("POST", f"{API}/qr-identities/{{subject}}/{{key}}/revoke"): lambda w, r: Call(
        f"{API}/qr-identities/officer/{issued(w)}/revoke", {"reason": "遗失"}),
    ("POST", f"{API}/encounters"): lambda w, r: Call(f"{API}/encounters", encounter(r)),
    ("POST", f"{API}/encounters/bulk"): lambda w, r: Call(
        f"{API}/encounters/bulk", {"encounters": [encounter(r), encounter(r)]}),
    ("POST", f"{API}/cases"): lambda w, r: Call(
        f"{API}/cases", {"intake": "hotline", "kind": "complaint", "unit_code": "PS1", "summary": "出警太慢"}),
    ("POST", f"{API}/cases/{{ref}}/contact"): lambda w, r: Call(
        f"{API}/cases/{pushed(w.county)}/contact", {"note": "已联系"}),
    ("POST", f"{API}/cases/{{ref}}/result"): lambda w, r: Call(
        f"{API}/cases/{contacted(w.county)}/result", {"result": "已处理"}),
    ("POST", f"{API}/cases/{{ref}}/callback"): lambda w, r: Call(
        f"{API}/cases/{reported(w.county)}/callback", {"satisfied": True, "note": "满意"}),
    ("POST", f"{API}/cases/{{ref}}/callback-attempts"): lambda w, r: Call(
        f"{API}/cases/{reported(w.county)}/callback-attempts", {"note": "无人接听"}),
    ("POST", f"{API}/cases/{{ref}}/supervision"): lambda w, r: Call(
        f"{API}/cases/{pushed(w.county)}/supervision", {"target": "unit", "note": "督促"}),
    ("POST", f"{API}/cases/{{ref}}/flag"): lambda w, r: Call(
        f"{API}/cases/{pushed(w.county)}/flag", {"reason": "挂牌"}),
    ("POST", f"{API}/cases/{{ref}}/rectification"): lambda w, r: Call(
        f"{API}/cases/{called_back(w.county, satisfied=False)}/rectification", {"instructions": "整改"}),
    ("POST", f"{API}/cases/{{ref}}/rectification/done"): lambda w, r: Call(
        f"{API}/cases/{rectifying(w.county)}/rectification/done", {"note": "已整改"}),
    ("POST", f"{API}/cases/{{ref}}/rectification/verification"): lambda w, r: Call(
        f"{API}/cases/{rectified(w.county)}/rectification/verification", {"implemented": True, "note": "已落实"}),
    ("POST", f"{API}/cases/{{ref}}/close"): lambda w, r: Call(
        f"{API}/cases/{called_back(w.county, satisfied=True)}/close", {"resolution": "办结"}),
    ("POST", f"{API}/cases/{{ref}}/reopen"): lambda w, r: Call(
        f"{API}/cases/{called_back(w.county, satisfied=False)}/reopen", {"reason": "重办"}),
    ("POST", f"{API}/cases/{{ref}}/accountability"): lambda w, r: Call(
        f"{API}/cases/{pushed(w.county)}/accountability",
        {"badge": "100102", "measure": "criticism_notice", "note": "通报"}),
    ("POST", f"{API}/cases/{{ref}}/commendations"): lambda w, r: Call(
        f"{API}/cases/{pushed(w.county)}/commendations", {"kind": "praise", "note": "点赞"}),
    ("POST", f"{API}/reports"): lambda w, r: Call(f"{API}/reports", {"kind": "weekly", "period": "2021-W43"}),
    ("GET", f"{API}/me"): lambda w, r: Call(f"{API}/me"),
    ("GET", f"{API}/units"): lambda w, r: Call(f"{API}/units"),
    ("GET", f"{API}/units/{{code}}"): lambda w, r: Call(f"{API}/units/PS1"),
    ("GET", f"{API}/officers"): lambda w, r: Call(f"{API}/officers"),
    ("GET", f"{API}/officers/{{badge}}"): lambda w, r: Call(f"{API}/officers/100102"),
    ("GET", f"{API}/cases"): lambda w, r: Call(f"{API}/cases"),
    ("GET", f"{API}/cases/{{ref}}"): lambda w, r: Call(f"{API}/cases/{pushed(w.county)}"),
    ("GET", f"{API}/cases/{{ref}}/contact"): lambda w, r: Call(f"{API}/cases/{pushed(w.county)}/contact"),
    ("GET", f"{API}/rates"): rates_call,
    ("GET", f"{API}/reports"): lambda w, r: Call(f"{API}/reports"),
    ("GET", f"{API}/reports/{{name}}"): lambda w, r: Call(f"{API}/reports/{published(w)}"),
    ("GET", "/livez"): lambda w, r: Call("/livez"),
    ("GET", "/healthz"): lambda w, r: Call("/healthz"),
    ("GET", "/metrics"): lambda w, r: Call("/metrics"),
}


def send(w: World, method: str, call: Call, who: str | None) -> Any:
    """The call, as ``who`` (None: no token)."""
    headers = w.headers(who) if who else {}
    return w.client.request(method, call.path, json=call.json, params=call.params, headers=headers)


def test_the_table_covers_every_route_of_the_app(world: World) -> None:
    # Every route the app serves is in its OpenAPI document (FastAPI's own pages aside).
    paths = world.client.get("/openapi.json").json()["paths"]
    routes = {(method.upper(), path) for path, operations in paths.items() for method in operations}
    assert routes == set(MAY_CALL), "a route is missing from MAY_CALL, or the table names one the app lacks"
    assert set(CALLS) == set(MAY_CALL)


def test_the_routes_say_in_openapi_which_roles_they_let_in(world: World) -> None:
    paths = world.client.get("/openapi.json").json()["paths"]
    for (method, route), roles in MAY_CALL.items():
        if roles is not None:
            assert set(paths[route][method.lower()]["x-roles"]) == roles, (method, route)


@pytest.mark.parametrize("route", sorted(MAY_CALL), ids=lambda r: f"{r[0]} {r[1]}")
def test_each_role_is_let_in_or_refused_as_the_table_says(world: World, route: tuple[str, str]) -> None:
    method, _ = route
    allowed = MAY_CALL[route]
    if allowed is None:
        for who in (None, *ROLES):
            assert send(world, method, CALLS[route](world, who or ""), who).status_code == 200
        return
    call = CALLS[route](world, "")
    before = world.head()
    anonymous = send(world, method, call, None)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    for who in sorted(ALL - allowed):
        call = CALLS[route](world, who)
        before = world.head()
        refused = send(world, method, call, who)
        assert refused.status_code == 403, (who, refused.text)
        assert refused.json()["error"] == "permission_denied"
        assert f"{who}:" in refused.json()["message"]
        assert world.head() == before, f"{who} was refused but something was written"
    for who in sorted(allowed):
        call = CALLS[route](world, who)
        answered = send(world, method, call, who)
        assert answered.status_code == 200, (who, answered.text)


#: Routes on one case: the head of another unit is refused, the head of the case's unit let in.
UNIT_SCOPED: dict[str, tuple[str, Callable[[World], Call]]] = {
    "contact": ("POST", lambda w: Call(f"{API}/cases/{pushed(w.county)}/contact", {"note": "已联系"})),
    "result": ("POST", lambda w: Call(f"{API}/cases/{contacted(w.county)}/result", {"result": "已处理"})),
    "rectified": ("POST", lambda w: Call(f"{API}/cases/{rectifying(w.county)}/rectification/done", {"note": "已整改"})),
    "read": ("GET", lambda w: Call(f"{API}/cases/{pushed(w.county)}")),
    "contact_read": ("GET", lambda w: Call(f"{API}/cases/{pushed(w.county)}/contact")),
    "board": ("GET", lambda w: Call(f"{API}/cases", params={"unit": "PS1"})),
}


@pytest.mark.parametrize("name", sorted(UNIT_SCOPED))
def test_the_head_of_another_unit_is_refused_on_this_units_cases(world: World, name: str) -> None:
    method, build = UNIT_SCOPED[name]
    call = build(world)
    before = world.head()
    refused = send(world, method, call, "other_head")
    assert refused.status_code == 403, refused.text
    assert "PS1" in refused.json()["message"]
    assert world.head() == before
    assert send(world, method, call, "unit_head").status_code == 200


def test_a_unit_heads_board_holds_only_their_units_cases(world: World) -> None:
    mine = pushed(world.county)
    theirs = world.rt.app.open_case(
        c.OpenCase(intake="hotline", kind="complaint", unit_code="PS2", summary="窗口排队太久"), SUPERVISOR
    ).case_ref
    assert [r["ref"] for r in world.get("unit_head", f"{API}/cases").json()] == [mine]
    assert [r["ref"] for r in world.get("other_head", f"{API}/cases").json()] == [theirs]
    assert {r["ref"] for r in world.get("supervisor", f"{API}/cases").json()} == {mine, theirs}


def test_a_head_who_no_longer_heads_the_unit_reads_none_of_its_cases(world: World) -> None:
    ref = pushed(world.county)
    world.rt.app.transfer_officer(c.TransferOfficer(badge="100101", unit_code="PS2"), ADMIN)
    refused = world.get("unit_head", f"{API}/cases/{ref}")
    assert refused.status_code == 403
    assert "no longer the head of unit PS1" in refused.json()["message"]
