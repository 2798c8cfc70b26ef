"""The staff API route by route: each use case and query answers as the CLI would, refusals are clear JSON."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import START
from tests.http.conftest import World

API = "/api/v1"


def open_case(w: World, *, phone: str | None = "13800138000", name: str | None = "曹某") -> str:
    """A hotline complaint about PS1, opened by the office through the API."""
    body = {"intake": "hotline", "kind": "complaint", "unit_code": "ps1", "summary": "报警后出警太慢", "phone": phone,
            "citizen_name": name}
    r = w.post("supervisor", f"{API}/cases", {k: v for k, v in body.items() if v is not None})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "pushed"
    return str(r.json()["case_ref"])


def move(w: World, who: str, ref: str, step: str, body: dict[str, object]) -> dict[str, object]:
    """One case move through the API; its receipt."""
    r = w.post(who, f"{API}/cases/{ref}/{step}", body)
    assert r.status_code == 200, r.text
    receipt: dict[str, object] = r.json()
    assert receipt["case_ref"] == ref
    return receipt


# -- the case workflow, on every store ----------------------------------------------------------


def test_a_case_is_worked_to_its_end_through_the_api_and_its_history_reads_back(any_world: World) -> None:
    w = any_world
    ref = open_case(w)
    assert move(w, "unit_head", ref, "contact", {"note": "已电话联系群众"})["state"] == "contacted"
    assert move(w, "unit_head", ref, "result", {"result": "已当面说明情况并致歉"})["state"] == "reported"
    assert move(w, "supervisor", ref, "callback", {"satisfied": False, "note": "群众不满意"})["state"] == "called_back"
    due = (START + timedelta(days=10)).isoformat()
    assert move(w, "supervisor", ref, "rectification", {"instructions": "规范接警", "due_at": due})["state"] == (
        "rectifying"
    )
    assert move(w, "unit_head", ref, "rectification/done", {"note": "已培训"})["state"] == "rectified"
    verified = move(w, "supervisor", ref, "rectification/verification", {"implemented": True, "note": "已落实"})
    assert verified["state"] == "verified"
    move(w, "supervisor", ref, "accountability", {"badge": "100102", "measure": "criticism_notice", "note": "通报"})
    closed = move(w, "supervisor", ref, "close", {"resolution": "整改落实", "citizen_accepted": True})
    assert closed["state"] == "closed"
    move(w, "supervisor", ref, "commendations", {"kind": "banner", "note": "锦旗"})

    r = w.get("supervisor", f"{API}/cases/{ref}")
    assert r.status_code == 200, r.text
    case = r.json()
    assert case["case"]["state"] == "closed"
    assert [line["event"] for line in case["timeline"]] == [
        "Opened", "Pushed", "CitizenContacted", "ResultReported", "CallbackRecorded", "RectificationOrdered",
        "RectificationReported", "Verified", "AccountabilityRecorded", "Closed", "CommendationRecorded",
    ]
    assert {s["step"] for s in case["sla"]} >= {"push", "contact", "feedback", "callback", "verification"}
    assert case["audit"]["score"] <= 100
    board = w.get("supervisor", f"{API}/cases", params={"state": "closed"}).json()
    assert [row["ref"] for row in board] == [ref]


def test_the_other_moves_answer_with_the_state_after_them(world: World) -> None:
    ref = open_case(world)
    assert move(world, "supervisor", ref, "supervision", {"target": "unit", "note": "督促"})["state"] == "pushed"
    assert move(world, "supervisor", ref, "flag", {"reason": "群众反映强烈"})["state"] == "pushed"
    move(world, "unit_head", ref, "contact", {"note": "已联系"})
    move(world, "unit_head", ref, "result", {"result": "已处理"})
    assert move(world, "supervisor", ref, "callback-attempts", {"note": "无人接听"})["state"] == "reported"
    move(world, "supervisor", ref, "callback", {"satisfied": False, "note": "不满意"})
    assert move(world, "supervisor", ref, "reopen", {"reason": "重新办理"})["state"] == "pushed"
    row = world.get("supervisor", f"{API}/cases/{ref}").json()["case"]
    assert row["flagged"] is True
    assert row["round"] == 2


# -- registry, encounters ---------------------------------------------------------------------


def test_the_registry_is_kept_through_the_api_and_read_back(world: World) -> None:
    a = "admin"
    assert world.post(a, f"{API}/units", {"code": "PS3", "unit_name": "南关派出所", "kind": "police_station",
                                          "parent_code": "BUR"}).status_code == 200
    assert world.post(a, f"{API}/officers", {"badge": "100301", "officer_name": "孙警官", "kind": "police",
                                             "unit_code": "PS3"}).status_code == 200
    assert world.post(a, f"{API}/units/ps3/head", {"badge": "100301"}).json()["extra"] == {"code": "PS3",
                                                                                            "head": "100301"}
    assert world.post(a, f"{API}/officers/100102/transfer", {"unit_code": "PS3"}).status_code == 200
    assert world.post(a, f"{API}/officers/F10103/left", {"reason": "辞职"}).status_code == 200
    issued = world.post(a, f"{API}/qr-identities/officer/100102/issue")
    assert issued.json()["extra"]["version"] == 1
    assert world.post(a, f"{API}/qr-identities/officer/100102/rotate").json()["extra"]["version"] == 2
    assert world.post(a, f"{API}/qr-identities/officer/100102/revoke", {"reason": "遗失"}).status_code == 200

    units = {u["code"]: u for u in world.get("supervisor", f"{API}/units").json()}
    assert units["PS3"] == {"code": "PS3", "name": "南关派出所", "kind": "police_station", "parent_code": "BUR",
                            "head_badge": "100301"}
    assert world.get("officer", f"{API}/units/ps3").json()["head_badge"] == "100301"
    officers = {o["badge"]: o for o in world.get("admin", f"{API}/officers", params={"unit": "PS3"}).json()}
    assert set(officers) == {"100301", "100102"}
    assert world.get("unit_head", f"{API}/officers/F10103").json()["left"] is True
    me = world.get("unit_head", f"{API}/me").json()
    assert (me["role"], me["principal"], me["unit_code"]) == ("unit_head", "100101", "PS1")


def test_encounters_are_logged_one_by_one_and_in_bulk(world: World) -> None:
    happened = (START - timedelta(hours=1)).isoformat()
    one = world.post("officer", f"{API}/encounters", {"kind": "dispatch", "happened_at": happened, "badge": "100102"})
    assert one.status_code == 200, one.text
    bulk = world.post("admin", f"{API}/encounters/bulk", {"encounters": [
        {"kind": "reception", "happened_at": happened, "unit_code": "PS1"},
        {"kind": "duty", "happened_at": happened, "badge": "F10103", "external_ref": "CJ-1"},
    ]})
    assert bulk.json()["extra"] == {"logged": 2}
    refused = world.post("officer", f"{API}/encounters", {"kind": "duty", "happened_at": happened, "badge": "F10103"})
    assert refused.status_code == 403
    assert "own encounters" in refused.json()["message"]


# -- rates and reports --------------------------------------------------------------------------


def test_rates_answer_per_scope_and_as_of_a_moment(world: World) -> None:
    world.county.rate("satisfied")
    world.county.rate("dissatisfied")
    r = world.get("supervisor", f"{API}/rates", params={"scope": "unit:ps1", "period": "2021-11"})
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "unit:PS1"
    assert r.json()["rates"]["satisfaction"] == {"numerator": 1, "denominator": 2, "value": 0.5}
    before = world.get("auditor", f"{API}/rates", params={"period": "2021-11", "as_of": "2021-10-31T00:00:00+08:00"})
    assert before.json()["rates"]["satisfaction"]["denominator"] == 0
    unknown = world.get("supervisor", f"{API}/rates", params={"scope": "unit:NOPE", "period": "2021-11"})
    assert unknown.status_code == 404
    bad = world.get("supervisor", f"{API}/rates", params={"period": "2021-13"})
    assert bad.status_code == 422
    assert "2021-13" in bad.json()["message"]
    naive = world.get("supervisor", f"{API}/rates", params={"period": "2021-11", "as_of": "2021-11-01T00:00:00"})
    assert naive.status_code == 422
    assert naive.json()["fields"][0]["loc"] == ["query", "as_of"]


def test_a_report_is_published_listed_and_read_with_its_file(world: World) -> None:
    world.county.open_case()
    world.clock.advance(days=14)
    r = world.post("supervisor", f"{API}/reports", {"kind": "weekly", "period": "2021-w44"})
    assert r.status_code == 200, r.text
    published = r.json()
    assert (published["name"], published["edition"]) == ("weekly-2021-W44", 1)
    assert published["files"] == {"html": "weekly-2021-W44.html", "md": "weekly-2021-W44.md",
                                  "json": "weekly-2021-W44.json"}
    listed = world.get("unit_head", f"{API}/reports").json()
    assert [p["name"] for p in listed] == ["weekly-2021-W44"]
    one = world.get("auditor", f"{API}/reports/weekly-2021-W44").json()
    assert one["publication"]["content_hash"] == published["content_hash"]
    assert one["file_matches"] is True
    assert one["document"]["report"]["period"] == "2021-W44"
    assert world.get("supervisor", f"{API}/reports/weekly-2021-W45").status_code == 404
    assert world.get("supervisor", f"{API}/reports/yearly-2021").status_code == 422


# -- refusals -----------------------------------------------------------------------------------


def test_refusals_are_json_with_the_status_of_their_kind(world: World) -> None:
    ref = world.county.open_case()
    illegal = world.post("supervisor", f"{API}/cases/{ref}/close", {"resolution": "办结"})
    assert illegal.status_code == 409
    assert illegal.json() == {"error": "illegal_move", "message": illegal.json()["message"], "case_ref": ref,
                              "state": "pushed", "move": "close"}
    twice = world.post("admin", f"{API}/units", {"code": "PS1", "unit_name": "重复", "kind": "police_station"})
    assert (twice.status_code, twice.json()["error"]) == (409, "already_exists")
    unknown = world.get("supervisor", f"{API}/cases/PJ-20211101-ZZZZZZ")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    malformed = world.get("supervisor", f"{API}/cases/not-a-ref")
    assert (malformed.status_code, malformed.json()["error"]) == (422, "validation_error")
    missing = world.post("unit_head", f"{API}/cases/{ref}/contact", {})
    assert missing.status_code == 422
    assert missing.json()["fields"] == [{"loc": ["body", "note"], "message": "Field required", "type": "missing"}]
    nowhere = world.get("supervisor", "/api/v1/nowhere")
    assert nowhere.json() == {"error": "not_found", "message": "Not Found"}
    wrong_method = world.client.delete(f"{API}/units", headers=world.headers("admin"))
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "method_not_allowed")


def test_a_request_id_is_kept_and_used_as_the_correlation_id(world: World) -> None:
    ref = world.county.open_case()
    headers = {**world.headers("unit_head"), "X-Request-ID": "req-42"}
    r = world.client.post(f"{API}/cases/{ref}/contact", json={"note": "已联系"}, headers=headers)
    assert r.headers["X-Request-ID"] == "req-42"
    last = world.rt.app.case_events(ref)[-1]
    assert last.meta.correlation_id == "req-42"


@pytest.mark.parametrize("state", ["open", "pushed"])
def test_the_board_filters_by_state_unit_and_overdue(world: World, state: str) -> None:
    ref = world.county.open_case()
    assert [r["ref"] for r in world.get("supervisor", f"{API}/cases", params={"state": state}).json()] == [ref]
    assert world.get("supervisor", f"{API}/cases", params={"unit": "PS2"}).json() == []
    assert world.get("supervisor", f"{API}/cases", params={"overdue": True}).json() == []
    world.clock.advance(days=2)  # past the 24 h contact deadline
    overdue = world.get("supervisor", f"{API}/cases", params={"overdue": True}).json()
    assert [(r["ref"], r["overdue"]) for r in overdue] == [(ref, ["contact"])]
    assert world.get("supervisor", f"{API}/cases", params={"state": "lost"}).status_code == 422
    assert world.get("supervisor", f"{API}/cases", params={"unit": "NOPE"}).status_code == 404
