"""The whole story in real Chromium against a real ``pingjing serve``: scan, rate, handle, call back, close, track.

A citizen scans officer 100102's code and rates dissatisfied with a complaint and a phone;
the case appears on the head of PS1's console board; the head contacts the citizen and
reports the result; the supervision office calls back and closes; the citizen tracks the
case to closed with the last four digits of the phone. Every page is kept as a screenshot
in the artifacts, and each is checked to show Chinese: the page's text holds Chinese, the
fonts Chromium actually drew it with (``CSS.getPlatformFontsForNode``) include a CJK font
that supplied the glyphs, and the screenshot of the heading has ink on it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import png  # type: ignore[import-untyped]
import pytest

from adapters.qr.keys import load_keyring
from adapters.qr.tokens import make_token
from adapters.settings import Settings
from domain import commands as c
from domain.tokens import hash_token
from domain.values import QrSubject
from tests.conftest import ADMIN, County, make_app
from tests.fakes import FakeClock
from tests.http.test_serve import Served, serve

HEAD_TOKEN = "pj_flow_head_of_ps1_token"  # noqa: S105 - test tokens, made below
OFFICE_TOKEN = "pj_flow_supervision_office_token"  # noqa: S105
PHONE = "13912345678"
COMPLAINT = "在城关派出所窗口办理户口迁移，等了两个小时无人处理。"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def flow_server(tmp_path: Path) -> Iterator[tuple[Served, str]]:
    """``pingjing serve`` on the tiny county, with officer 100102's code issued; yields it and the scan path."""
    database = tmp_path / "flow.sqlite3"
    clock = FakeClock(datetime.now(UTC))
    app = make_app(str(database), clock)
    try:
        County(app, clock).setup()
        app.issue_qr(c.IssueQr(subject="officer", key="100102"), ADMIN)
        app.create_api_token(c.CreateApiToken(token_hash=hash_token(HEAD_TOKEN), role="unit_head",
                                              principal="100101", unit_code="PS1"), ADMIN)
        app.create_api_token(c.CreateApiToken(token_hash=hash_token(OFFICE_TOKEN), role="supervisor",
                                              principal="dc-wang"), ADMIN)
    finally:
        app.close()
    # serve runs in tmp_path: its key file is var/qr-keys.json there; made now, read by the server
    keyring = load_keyring(Settings(qr_key_file=tmp_path / "var" / "qr-keys.json"))
    scan = f"/s/{make_token(keyring, QrSubject.OFFICER, '100102', 1)}"
    running = serve(database, "--no-demo")
    yield running, scan
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait(timeout=30)


def shows_chinese(page: Any, artifacts: Path, name: str, selector: str = "h1") -> str:
    """Screenshot the page and check it shows Chinese text drawn with a CJK font; return the page's text."""
    page.screenshot(path=str(artifacts / f"flow-{name}.png"), full_page=True)
    text = str(page.locator("body").inner_text())
    heading = page.locator(selector).first
    assert CJK.search(str(heading.inner_text())), f"{name}: the {selector} holds no Chinese: {heading.inner_text()!r}"
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cjk = [f for f in fonts if "CJK" in f["familyName"] and f["glyphCount"] > 0]
    assert cjk, f"{name}: the heading was drawn without a CJK font: {fonts}"
    # and the heading's pixels have ink on them (not an empty or blank box)
    width, height, rows, _ = png.Reader(file=io.BytesIO(heading.screenshot())).asRGBA8()
    dark = sum(1 for row in rows for i in range(0, len(row), 4) if sum(row[i:i + 3]) < 300)
    assert dark > 50, f"{name}: the heading's screenshot ({width}x{height}) shows almost nothing"
    return text


def sign_in(browser: Any, base: str, token: str) -> Any:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base}/console/login")
    page.fill("#token", token)
    page.click("#login-submit")
    page.wait_for_url(f"{base}/console/")
    return page


def citizen_rates(phone: Any, base: str, scan: str, artifacts: Path) -> tuple[Any, str]:
    """The citizen scans the code on a phone and rates dissatisfied, with a complaint and a phone."""
    citizen = phone.new_page()
    citizen.goto(f"{base}{scan}")
    text = shows_chinese(citizen, artifacts, "1-scan")
    assert "李警官" in text
    assert "被评价的民警看不到您的评价" in text
    citizen.check("#verdict-dissatisfied")
    for score, value in (("service_score", 2), ("attitude_score", 1), ("efficiency_score", 1)):
        citizen.check(f"#{score}-{value}")
    citizen.fill("#complaint", COMPLAINT)
    citizen.fill("#phone", PHONE)
    citizen.click("#submit")
    text = shows_chinese(citizen, artifacts, "2-thanks")
    assert "感谢您的评价" in text
    ref = str(citizen.locator("#case-ref").inner_text()).strip()
    assert re.fullmatch(r"PJ-\d{8}-[0-9A-Z]{6}", ref)
    return citizen, ref


def move(page: Any, ref: str, slug: str, **fields: str) -> None:
    """Fill a move's form on the case page (``select:`` values choose an option) and make it."""
    for name, value in fields.items():
        selector = f"#{slug}-{name.replace('_', '-')}"
        if value.startswith("select:"):
            page.select_option(selector, value.removeprefix("select:"))
        else:
            page.fill(selector, value)
    page.click(f"#{slug}-submit")
    page.wait_for_url(re.compile(rf".*/console/cases/{ref}\?done={slug}"))


def head_handles(browser: Any, base: str, ref: str, artifacts: Path) -> Any:
    """The head of PS1 finds the case on the board, contacts the citizen and reports the result."""
    head = sign_in(browser, base, HEAD_TOKEN)
    shows_chinese(head, artifacts, "3-head-dashboard")
    head.goto(f"{base}/console/board")
    assert ref in shows_chinese(head, artifacts, "4-head-board")
    head.click(f"a:has-text('{ref}')")
    head.wait_for_url(f"{base}/console/cases/{ref}")
    assert COMPLAINT in shows_chinese(head, artifacts, "5-head-case")
    move(head, ref, "contact", note="已电话联系群众，了解情况并致歉")
    move(head, ref, "result", result="窗口人员已批评教育，已为群众办结户口迁移")
    shows_chinese(head, artifacts, "6-head-reported")
    assert head.locator("#move-callback").count() == 0  # the callback is the office's, not the unit's
    return head


def office_closes(browser: Any, base: str, ref: str, artifacts: Path) -> Any:
    """The supervision office calls the citizen back and closes the case."""
    office = sign_in(browser, base, OFFICE_TOKEN)
    office.goto(f"{base}/console/cases/{ref}")
    move(office, ref, "callback", satisfied="select:yes", note="群众对处理结果表示满意")
    move(office, ref, "close", resolution="问题已解决，群众认可", citizen_accepted="select:yes")
    assert "已办结" in shows_chinese(office, artifacts, "7-office-closed")
    return office


def test_a_complaint_goes_from_the_scan_to_closed_through_the_console_and_the_citizen_sees_it(
    flow_server: tuple[Served, str], browser: Any, artifacts: Path
) -> None:
    served, scan = flow_server
    base = served.base
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
    citizen, ref = citizen_rates(phone, base, scan, artifacts)
    head = head_handles(browser, base, ref, artifacts)
    office = office_closes(browser, base, ref, artifacts)

    # The citizen tracks the case to closed.
    citizen.goto(f"{base}/track/{ref}")
    shows_chinese(citizen, artifacts, "8-track-ask")
    citizen.fill("#last4", PHONE[-4:])
    citizen.click("#track")
    text = shows_chinese(citizen, artifacts, "9-track-closed")
    assert citizen.locator("#state").inner_text() == "已办结"
    for milestone in ("您的投诉已受理", "责任单位已与您联系", "责任单位已反馈处理结果", "督察大队回访", "案件办结"):
        assert milestone in text
    assert "批评教育" not in text  # staff wording stays on the staff side
    for context in (phone, head.context, office.context):
        context.close()
