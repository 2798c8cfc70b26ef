"""The citizen's pages: rating from a scanned code, the thank-you page, tracking, and every refusal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.templating import Jinja2Templates

from adapters.bootstrap import bootstrap
from adapters.http.citizen.devices import COOKIE, DeviceHasher
from adapters.qr.keys import load_keyring
from adapters.qr.tokens import make_token
from domain import commands as c
from domain.values import QrSubject
from tests.conftest import ADMIN, SUPERVISOR
from tests.fakes import FakeClock
from tests.http.conftest import World, make_world

COMPLAINT = "窗口等了两个小时没人管"
PHONE = "13800138000"
DEVICE_ID = "d" * 22


@pytest.fixture
def citizen_world(tmp_path: Path, clock: FakeClock) -> Iterator[World]:
    """The tiny county with QR codes issued for officer 100102 and unit PS1."""
    made = make_world(str(tmp_path / "events.sqlite3"), tmp_path, clock)
    for subject, key in (("officer", "100102"), ("unit", "PS1")):
        made.rt.app.issue_qr(c.IssueQr.model_validate({"subject": subject, "key": key}), ADMIN)
    yield made
    made.client.close()
    made.rt.close()


def token(world: World, subject: QrSubject = QrSubject.OFFICER, key: str = "100102", version: int = 1) -> str:
    return make_token(load_keyring(world.rt.settings), subject, key, version)


def rating(**fields: str) -> dict[str, str]:
    form = {"verdict": "dissatisfied", "service_score": "2", "attitude_score": "1", "efficiency_score": "2"}
    form.update(fields)
    return form


def submit(world: World, form: dict[str, str], *, device: str = DEVICE_ID, path: str | None = None,
           **kwargs: Any) -> Any:
    world.client.cookies.set(COOKIE, device)
    return world.client.post(path or f"/s/{token(world)}", data=form, **kwargs)


def case_ref_of(page: str) -> str | None:
    found = re.search(r'id="case-ref">([^<]+)<', page)
    return found.group(1) if found else None


def message_of(page: str) -> str:
    found = re.search(r'id="message">([^<]+)<', page)
    assert found, page
    return found.group(1)


# -- the rating page ------------------------------------------------------------------------


def test_scanning_an_officers_code_names_the_officer_and_promises_privacy_in_chinese(citizen_world: World) -> None:
    page = citizen_world.client.get(f"/s/{token(citizen_world)}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<meta charset="utf-8">' in page.text
    assert '<html lang="zh-CN">' in page.text
    assert "李警官" in page.text
    assert "100102" in page.text
    assert "城关派出所" in page.text
    assert "被评价的民警看不到您的评价" in page.text
    for name in ("verdict", "service_score", "attitude_score", "efficiency_score", "comment", "complaint",
                 "suggestion", "phone", "citizen_name", "encounter_code"):
        assert f'name="{name}"' in page.text
    # every text field has a label pointing at it
    for field_id in ("complaint", "suggestion", "comment", "phone", "citizen_name", "encounter_code"):
        assert f'<label for="{field_id}">' in page.text


def test_the_first_visit_gives_the_browser_a_device_cookie(citizen_world: World) -> None:
    page = citizen_world.client.get(f"/s/{token(citizen_world)}")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie


def test_the_english_switch_shows_the_page_in_english_and_is_remembered(citizen_world: World) -> None:
    path = f"/s/{token(citizen_world)}"
    english = citizen_world.client.get(f"{path}?lang=en")
    assert '<html lang="en">' in english.text
    assert "You are rating the officer" in english.text
    assert "will not see your rating" in english.text
    assert "pj_lang=en" in english.headers["set-cookie"]
    assert "You are rating the officer" in citizen_world.client.get(path).text
    assert "您正在评价民警" in citizen_world.client.get(f"{path}?lang=zh").text


def test_a_units_code_names_the_unit(citizen_world: World) -> None:
    page = citizen_world.client.get(f"/s/{token(citizen_world, QrSubject.UNIT, 'PS1')}")
    assert page.status_code == 200
    assert "您正在评价单位" in page.text
    assert "城关派出所" in page.text


def test_a_forged_code_is_a_404_that_names_no_one(citizen_world: World) -> None:
    genuine = token(citizen_world)
    forged = genuine[:-3] + ("AAA" if not genuine.endswith("AAA") else "BBB")
    page = citizen_world.client.get(f"/s/{forged}")
    assert page.status_code == 404
    assert "不是本局发放" in message_of(page.text)
    assert "李警官" not in page.text
    assert "100102" not in page.text.replace(forged, "")


def test_a_rotated_or_revoked_code_answers_410_with_a_clear_page(citizen_world: World) -> None:
    old = token(citizen_world)
    citizen_world.rt.app.rotate_qr(c.RotateQr.model_validate({"subject": "officer", "key": "100102"}), ADMIN)
    stale = citizen_world.client.get(f"/s/{old}")
    assert stale.status_code == 410
    assert "已更换" in message_of(stale.text)
    assert citizen_world.client.get(f"/s/{token(citizen_world, version=2)}").status_code == 200
    revoke = c.RevokeQr.model_validate({"subject": "officer", "key": "100102", "reason": "证件遗失"})
    citizen_world.rt.app.revoke_qr(revoke, ADMIN)
    revoked = citizen_world.client.get(f"/s/{token(citizen_world, version=2)}")
    assert revoked.status_code == 410
    assert "已停用" in message_of(revoked.text)


# -- submitting -----------------------------------------------------------------------------


def test_a_dissatisfied_rating_with_a_complaint_and_a_phone_opens_a_case_named_on_the_thank_you_page(
    citizen_world: World,
) -> None:
    page = submit(citizen_world, rating(complaint=COMPLAINT, phone=PHONE))
    assert page.status_code == 200
    assert "感谢您的评价" in page.text
    ref = case_ref_of(page.text)
    assert ref is not None
    case = citizen_world.rt.app.get_case(ref)
    assert case.summary == COMPLAINT
    assert case.contact is not None
    assert case.contact.phone == PHONE
    assert f'href="/track/{ref}"' in page.text


def test_a_satisfied_rating_opens_no_case(citizen_world: World) -> None:
    page = submit(citizen_world, rating(verdict="satisfied", service_score="5", attitude_score="5",
                                        efficiency_score="5"))
    assert page.status_code == 200
    assert "感谢您的评价" in page.text
    assert case_ref_of(page.text) is None


def test_the_device_is_stored_only_as_its_keyed_hash(citizen_world: World) -> None:
    submit(citizen_world, rating(complaint=COMPLAINT))
    stored = [e for _, e in citizen_world.rt.app.iter_events() if type(e).__qualname__ == "Rating.Submitted"]
    hasher = DeviceHasher.from_settings(citizen_world.rt.settings)
    assert [e.device_hash for e in stored] == [hasher.cookie_hash(DEVICE_ID)]
    raw = Path(citizen_world.rt.settings.database or "").read_bytes()
    assert DEVICE_ID.encode() not in raw


def test_the_same_device_rating_the_same_officer_again_within_24_hours_is_refused_and_nothing_is_written(
    citizen_world: World,
) -> None:
    submit(citizen_world, rating(complaint=COMPLAINT))
    before = citizen_world.head()
    again = submit(citizen_world, rating(verdict="satisfied"))
    assert again.status_code == 429
    assert "24 小时内只能评价同一对象一次" in message_of(again.text)
    assert int(again.headers["retry-after"]) > 23 * 3600
    assert citizen_world.head() == before
    citizen_world.clock.advance(hours=24)
    assert submit(citizen_world, rating(verdict="satisfied")).status_code == 200


def test_another_device_or_another_target_is_not_limited_by_the_first(citizen_world: World) -> None:
    assert submit(citizen_world, rating()).status_code == 200
    assert submit(citizen_world, rating(), device="e" * 22).status_code == 200
    unit_code = f"/s/{token(citizen_world, QrSubject.UNIT, 'PS1')}"
    assert submit(citizen_world, rating(), path=unit_code).status_code == 200


def test_a_browser_without_the_cookie_is_known_by_its_address_and_browser(citizen_world: World) -> None:
    client = citizen_world.client
    client.cookies.clear()
    first = client.post(f"/s/{token(citizen_world)}", data=rating(), headers={"user-agent": "phone-a"})
    assert first.status_code == 200
    client.cookies.clear()
    second = client.post(f"/s/{token(citizen_world)}", data=rating(), headers={"user-agent": "phone-a"})
    assert second.status_code == 429


def test_bad_fields_come_back_as_the_form_with_every_problem_named_and_nothing_written(citizen_world: World) -> None:
    before = citizen_world.head()
    page = submit(citizen_world, {"verdict": "angry", "service_score": "9", "attitude_score": "3",
                                  "phone": "call me", "comment": "x" * 501, "complaint": COMPLAINT})
    assert page.status_code == 422
    problems = re.findall(r"<li>([^<]+)</li>", page.text)
    assert problems == ["请选择总体评价。", "请为服务水平选择 1 到 5 分。", "请为办事效率选择 1 到 5 分。",
                        "留言过长，最多 500 个字。", "手机号格式不正确。"]
    assert COMPLAINT in page.text  # what was typed is kept
    assert citizen_world.head() == before


def test_a_name_without_a_phone_is_refused(citizen_world: World) -> None:
    page = submit(citizen_world, rating(citizen_name="曹先生"))
    assert page.status_code == 422
    assert "留下称呼时请同时留下手机号。" in page.text


def test_a_filled_honeypot_is_refused_and_nothing_is_written(citizen_world: World) -> None:
    before = citizen_world.head()
    page = submit(citizen_world, rating(website="http://cheap.example"))
    assert page.status_code == 400
    assert "应保持为空" in message_of(page.text)
    assert citizen_world.head() == before


def test_an_oversized_form_is_refused_before_it_is_read(citizen_world: World) -> None:
    before = citizen_world.head()
    page = submit(citizen_world, rating(complaint="长" * 40_000), headers={"accept": "text/html"})
    assert page.status_code == 413
    assert "提交的内容过长" in page.text
    assert citizen_world.head() == before


def test_one_address_posting_too_often_is_told_when_to_come_back(tmp_path: Path, clock: FakeClock) -> None:
    world = make_world(str(tmp_path / "events.sqlite3"), tmp_path, clock, citizen_posts_per_minute=3)
    try:
        world.rt.app.issue_qr(c.IssueQr.model_validate({"subject": "officer", "key": "100102"}), ADMIN)
        statuses = [submit(world, rating(), device=f"{n}" * 22).status_code for n in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = submit(world, rating(), device="9" * 22)
        assert 0 < int(refused.headers["retry-after"]) <= 61
        assert "提交过于频繁" in message_of(refused.text)
    finally:
        world.client.close()
        world.rt.close()


def test_a_rating_with_a_one_time_encounter_code_is_marked_verified_and_the_code_cannot_be_reused(
    citizen_world: World,
) -> None:
    citizen_world.rt.app.log_encounter(
        c.LogEncounter.model_validate({"kind": "reception", "badge": "100102", "code": "K7Q2M9",
                                       "happened_at": citizen_world.clock.now().isoformat()}), ADMIN)
    page = submit(citizen_world, rating(verdict="satisfied", encounter_code="k7q2m9"))
    assert page.status_code == 200
    assert "已通过评价码核实" in page.text
    reused = submit(citizen_world, rating(verdict="satisfied", encounter_code="K7Q2M9"), device="f" * 22)
    assert reused.status_code == 409
    assert "评价码已被使用或已过期" in reused.text
    unknown = submit(citizen_world, rating(verdict="satisfied", encounter_code="ZZZZ99"), device="g" * 22)
    assert unknown.status_code == 422
    assert "评价码不存在" in unknown.text


def test_an_officer_who_left_after_the_scan_cannot_be_rated(citizen_world: World) -> None:
    path = f"/s/{token(citizen_world)}"
    left = c.RecordOfficerLeft.model_validate({"badge": "100102", "reason": "调离"})
    citizen_world.rt.app.record_officer_left(left, ADMIN)
    page = submit(citizen_world, rating(), path=path)
    assert page.status_code == 410


# -- tracking -------------------------------------------------------------------------------


def opened_case(world: World, **fields: str) -> str:
    ref = case_ref_of(submit(world, rating(complaint=COMPLAINT, phone=PHONE, **fields)).text)
    assert ref is not None
    return ref


def test_tracking_asks_for_the_last_four_digits_first(citizen_world: World) -> None:
    ref = opened_case(citizen_world)
    page = citizen_world.client.get(f"/track/{ref}")
    assert page.status_code == 200
    assert 'name="last4"' in page.text
    assert '<label for="last4">' in page.text
    assert COMPLAINT not in page.text


def test_the_right_digits_show_the_cases_milestones_and_no_staff_notes(citizen_world: World) -> None:
    ref = opened_case(citizen_world)
    app = citizen_world.rt.app
    head = citizen_world.county.station_head
    app.contact_citizen(c.ContactCitizen.model_validate({"ref": ref, "note": "电话联系，已致歉"}), head)
    app.report_result(c.ReportResult.model_validate({"ref": ref, "result": "内部处理意见：批评教育值班民警"}), head)
    page = citizen_world.client.post(f"/track/{ref}", data={"last4": PHONE[-4:]})
    assert page.status_code == 200
    assert "责任单位已反馈处理结果" in re.search(r'id="state"[^>]*>([^<]+)<', page.text).group(1)  # type: ignore[union-attr]
    assert "您的投诉已受理" in page.text
    assert "责任单位已与您联系" in page.text
    assert "批评教育" not in page.text
    assert "已致歉" not in page.text
    assert "城关派出所所长" not in page.text


def test_wrong_digits_are_refused_and_tracking_pauses_after_too_many(citizen_world: World) -> None:
    ref = opened_case(citizen_world)
    for _ in range(citizen_world.rt.settings.track_attempts_per_hour):
        wrong = citizen_world.client.post(f"/track/{ref}", data={"last4": "0000"})
        assert wrong.status_code == 403
        assert "后四位不正确" in wrong.text
    paused = citizen_world.client.post(f"/track/{ref}", data={"last4": PHONE[-4:]})
    assert paused.status_code == 429
    assert "输错次数过多" in message_of(paused.text)


def test_tracking_refuses_a_malformed_entry_an_unknown_case_and_a_case_without_a_phone(citizen_world: World) -> None:
    ref = opened_case(citizen_world)
    assert citizen_world.client.post(f"/track/{ref}", data={"last4": "12a4"}).status_code == 422
    unknown = citizen_world.client.post("/track/PJ-20211109-ZZZZZZ", data={"last4": "8000"})
    assert unknown.status_code == 404
    assert "没有这个案件编号" in message_of(unknown.text)
    for garbled in ("%00", "x" * 300, "PJ-2021"):  # not the form of a case reference: no such case either
        answer = citizen_world.client.post(f"/track/{garbled}", data={"last4": "8000"})
        assert answer.status_code == 404, garbled
        assert "没有这个案件编号" in message_of(answer.text)
    no_phone = case_ref_of(submit(citizen_world, rating(complaint=COMPLAINT), device="h" * 22).text)
    refused = citizen_world.client.post(f"/track/{no_phone}", data={"last4": "8000"})
    assert refused.status_code == 403
    assert "不能在线查询" in message_of(refused.text)


def test_a_closed_case_tracks_to_closed(citizen_world: World) -> None:
    ref = opened_case(citizen_world)
    app = citizen_world.rt.app
    head = citizen_world.county.station_head
    app.contact_citizen(c.ContactCitizen.model_validate({"ref": ref, "note": "已联系"}), head)
    app.report_result(c.ReportResult.model_validate({"ref": ref, "result": "已处理"}), head)
    app.record_callback(c.RecordCallback.model_validate({"ref": ref, "satisfied": True, "note": "满意"}), SUPERVISOR)
    app.close_case(c.CloseCase.model_validate({"ref": ref, "resolution": "群众认可"}), SUPERVISOR)
    page = citizen_world.client.post(f"/track/{ref}?lang=en", data={"last4": PHONE[-4:]})
    assert re.search(r'id="state" class="state closed">Closed<', page.text)
    assert "The case was closed (resolved)" in page.text


def test_a_code_revoked_by_another_process_is_refused_by_the_ratings_own_transaction(citizen_world: World) -> None:
    path = f"/s/{token(citizen_world)}"
    assert citizen_world.client.get(path).status_code == 200  # this process now knows the code
    other = bootstrap(citizen_world.rt.settings, observers=[], configure_logging=False)
    try:
        revoke = c.RevokeQr.model_validate({"subject": "officer", "key": "100102", "reason": "证件遗失"})
        other.app.revoke_qr(revoke, ADMIN)
    finally:
        other.close()
    before = citizen_world.head()
    page = submit(citizen_world, rating(), path=path)
    assert page.status_code == 410
    assert "已停用" in message_of(page.text)
    assert citizen_world.head() == before


# -- the thank-you page of a rating that opens no case ------------------------------------------


def test_the_thanks_for_a_rating_that_opens_no_case_is_made_once_per_code_and_language_and_set_cookies_still(
    citizen_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It is the same page for everyone who rates this officer (nothing of the rater is on it): made once,
    answered from memory after; each answer still sets its own cookies and the headers of every page."""
    made: list[str] = []
    real = Jinja2Templates.TemplateResponse

    def counting(self: Jinja2Templates, request: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        made.append(name)
        return real(self, request, name, *args, **kwargs)

    monkeypatch.setattr(Jinja2Templates, "TemplateResponse", counting)
    satisfied = rating(verdict="satisfied", service_score="5", attitude_score="5", efficiency_score="5")

    first = submit(citizen_world, satisfied, device="a" * 22)
    citizen_world.client.cookies.clear()
    second = citizen_world.client.post(f"/s/{token(citizen_world)}", data=satisfied)  # a device never seen
    english = submit(citizen_world, satisfied, device="b" * 22, path=f"/s/{token(citizen_world)}?lang=en")
    unit = submit(citizen_world, satisfied, device="c" * 22, path=f"/s/{token(citizen_world, QrSubject.UNIT, 'PS1')}")
    complaint = submit(citizen_world, rating(complaint=COMPLAINT, phone=PHONE), device="d" * 22)

    assert [r.status_code for r in (first, second, english, unit, complaint)] == [200] * 5
    assert second.content == first.content
    assert case_ref_of(first.text) is None
    assert f"{COOKIE}=" in second.headers["set-cookie"], "a new device still gets its cookie"
    assert "set-cookie" not in first.headers
    assert second.headers["cache-control"] == "no-store"
    assert second.headers["referrer-policy"] == "no-referrer"
    assert english.content != first.content
    assert "pj_lang=en" in english.headers["set-cookie"]
    assert case_ref_of(complaint.text) is not None
    assert made == ["thanks.html.j2"] * 4, "first, English, the unit's, and the one that opened a case"
