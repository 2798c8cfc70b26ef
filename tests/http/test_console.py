"""The supervision console (/console/): signing in, the rates, the board, a case's page and moves, reports, QR codes.

Each test drives the console as a browser would (its own cookies, forms posted with the
page's CSRF token) and checks what the pages say against the scenario it set up, and what
was written against the event log.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.http.console.pages import STATIC, countdown, iso
from adapters.qr import load_keyring, make_token, png_bytes, scan_url, svg_bytes
from domain import commands as c
from domain.ids import qr_identity_id
from domain.registry import QrIdentity
from domain.tokens import PersonalDataRead, hash_token
from domain.values import QrSubject
from tests.conftest import ADMIN, START, SUPERVISOR
from tests.fakes import FakeClock
from tests.http.conftest import World
from tests.http.console_support import (
    CONSOLE,
    PUBLIC_URL,
    browser,
    console_world_at,
    csrf_of,
    hotline_case,
    issue_codes,
    section,
)

NODE = shutil.which("node")
PHONE = "13912345678"
NAME = "欧阳某某"


@pytest.fixture
def console_world(tmp_path: Path, clock: FakeClock) -> Iterator[World]:
    """The app with the tiny county and a token per role; QR keys and reports under the test's directory."""
    made = console_world_at(tmp_path, clock)
    yield made
    made.client.close()
    made.rt.close()


def last_event(world: World) -> Any:
    """The newest event of the log."""
    return next(event for _, event in world.rt.app.iter_events(start=world.head()))


def forms_on(html: str) -> set[str]:
    """The case moves a page offers as forms (their URL parts)."""
    return set(re.findall(r'id="move-([a-z-]+)"', html))


def without_chart_ids(html: str) -> str:
    """A rendered report without what pygal makes anew on every rendering: its charts' random ids and the date."""
    html = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", html)
    return re.sub(r"(Generated with pygal [^>]*) on \d{4}-\d{2}-\d{2}", r"\1", html)


def cell(html: str, scope: str, rate: str) -> str:
    """The text of one rate's cell in a scope's row of the first rates table on the page."""
    row = section(html, f'<tr data-scope="{scope}"')
    found = re.search(rf'data-rate="{rate}"><span class="pct">([^<]+)</span> <span class="frac">([^<]+)</span>', row)
    assert found is not None, row
    return f"{found.group(1)} {found.group(2)}"


# -- signing in ----------------------------------------------------------------------------------


def test_signing_in_with_a_good_token_keeps_it_in_a_strict_http_only_cookie_and_opens_the_dashboard(
    console_world: World,
) -> None:
    b = browser(console_world)
    form = b.get(f"{CONSOLE}/login")
    assert form.status_code == 200
    assert 'name="token"' in form.text
    assert '<label for="token">' in form.text
    signed = b.sign_in("supervisor")
    assert signed.status_code == 303
    assert signed.headers["location"] == f"{CONSOLE}/"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"pj_console={console_world.secrets['supervisor']};")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie
    home = b.get(f"{CONSOLE}/")
    assert home.status_code == 200
    assert "dc-wang · 督察大队" in home.text


def test_signing_in_over_https_marks_the_cookie_secure(console_world: World) -> None:
    signed = browser(console_world, https=True).sign_in("auditor")
    assert signed.status_code == 303
    assert "Secure" in signed.headers["set-cookie"]


def test_an_unknown_token_gets_the_form_again_with_401_and_no_cookie(console_world: World) -> None:
    b = browser(console_world)
    refused = b.post(f"{CONSOLE}/login", {"token": "pj_not_a_real_token"})
    assert refused.status_code == 401
    assert "令牌无效或已停用" in refused.text
    assert "not a pingjing API token" in refused.text
    assert 'name="token"' in refused.text
    assert "set-cookie" not in refused.headers
    assert b.get(f"{CONSOLE}/board").status_code == 303


def test_a_revoked_token_cannot_sign_in_and_signs_out_a_browser_already_signed_in(console_world: World) -> None:
    w = console_world
    b = browser(w, "unit_head")
    assert b.get(f"{CONSOLE}/board").status_code == 200
    token = w.rt.app.get_api_token(hash_token(w.secrets["unit_head"]))
    w.rt.app.revoke_api_token(c.RevokeApiToken(token_id=str(token.id), reason="调离"), ADMIN)
    bounced = b.get(f"{CONSOLE}/board")
    assert bounced.status_code == 303
    assert bounced.headers["location"] == f"{CONSOLE}/login?next=%2Fconsole%2Fboard"
    assert 'pj_console=""' in bounced.headers["set-cookie"]  # the dead cookie is dropped
    again = browser(w).sign_in("unit_head")
    assert again.status_code == 401
    assert "was revoked" in again.text


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/board"), ("GET", "/cases/PJ-20211101-AAAAAA"), ("GET", "/reports"),
     ("GET", "/reports/weekly-2021-W44"), ("GET", "/qr"), ("GET", "/qr/officer/100102.png"),
     ("POST", "/cases/PJ-20211101-AAAAAA/contact"), ("POST", "/logout"), ("POST", "/qr/unit/PS1/rotate")],
)
def test_every_console_page_sends_a_browser_without_a_cookie_to_the_sign_in_form(
    console_world: World, method: str, path: str
) -> None:
    before = console_world.head()
    answer = browser(console_world).client.request(method, f"{CONSOLE}{path}")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"{CONSOLE}/login")
    assert console_world.head() == before


def test_after_signing_in_the_browser_goes_on_to_the_page_it_asked_for_and_never_off_the_console(
    console_world: World,
) -> None:
    b = browser(console_world)
    asked = b.get(f"{CONSOLE}/board?state=all")
    assert asked.headers["location"] == f"{CONSOLE}/login?next=%2Fconsole%2Fboard%3Fstate%3Dall"
    form = b.get(asked.headers["location"])
    assert 'name="next" value="/console/board?state=all"' in form.text
    token = console_world.secrets["supervisor"]
    assert b.post(f"{CONSOLE}/login", {"token": token, "next": "/console/board?state=all"}).headers["location"] == (
        "/console/board?state=all"
    )
    for elsewhere in ("https://evil.example/console/", "//evil.example/console", "/api/v1/cases", "/console//x"):
        assert b.post(f"{CONSOLE}/login", {"token": token, "next": elsewhere}).headers["location"] == f"{CONSOLE}/"


def test_a_sign_in_posted_from_another_site_is_refused(console_world: World) -> None:
    b = browser(console_world)
    refused = b.client.post(f"{CONSOLE}/login", data={"token": console_world.secrets["supervisor"]},
                            headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert "set-cookie" not in refused.headers


def test_signing_out_forgets_the_cookie(console_world: World) -> None:
    b = browser(console_world, "supervisor")
    out = b.submit(f"{CONSOLE}/board", f"{CONSOLE}/logout")
    assert out.status_code == 303
    assert out.headers["location"] == f"{CONSOLE}/login?signed_out=1"
    assert 'pj_console=""' in out.headers["set-cookie"]
    assert "已退出登录" in b.get(out.headers["location"]).text
    assert b.get(f"{CONSOLE}/board").status_code == 303


def test_a_form_without_this_sessions_csrf_token_is_refused_with_403_and_changes_nothing(
    console_world: World,
) -> None:
    w = console_world
    ref = w.county.open_case()
    head = browser(w, "unit_head")
    other = browser(w, "supervisor")
    before = w.head()
    for form in ({"note": "已联系"}, {"note": "已联系", "csrf": "0" * 64},
                 {"note": "已联系", "csrf": csrf_of(other.get(f"{CONSOLE}/board").text)}):
        refused = head.post(f"{CONSOLE}/cases/{ref}/contact", form)
        assert refused.status_code == 403
        assert "CSRF" in refused.text
    assert head.post(f"{CONSOLE}/logout").status_code == 403
    assert w.head() == before
    assert w.rt.app.get_case(ref).state.value == "pushed"
    assert head.get(f"{CONSOLE}/board").status_code == 200  # still signed in


def test_pages_are_utf8_chinese_first_and_never_cached(console_world: World) -> None:
    page = browser(console_world, "supervisor").get(f"{CONSOLE}/board")
    assert '<html lang="zh-CN">' in page.text
    assert '<meta charset="utf-8">' in page.text
    assert "案件看板 <span lang=\"en\">Case board</span>" in page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    nav = section(page.text, "<nav", "</nav>")
    assert [re.sub(r"<[^>]+>", "", a) for a in re.findall(r'<a href="[^"]+" id="nav-\w+"[^>]*>(.*?)</a>', nav)] == [
        "看板 Board", "五率 Rates", "报告 Reports", "二维码 QR"]
    css = browser(console_world).get(f"{CONSOLE}/static/console.css")
    assert css.status_code == 200
    assert "@media (max-width" in css.text


def test_the_console_stays_out_of_the_openapi_document(console_world: World) -> None:
    paths = console_world.client.get("/openapi.json").json()["paths"]
    assert [p for p in paths if p.startswith(CONSOLE)] == []
    assert "/api/v1/cases" in paths


# -- the dashboard: the five rates -----------------------------------------------------------------


def test_the_dashboard_shows_each_units_five_rates_with_numerators_and_denominators_and_a_chart(
    console_world: World,
) -> None:
    w = console_world
    for verdict in ("satisfied", "basically_satisfied", "satisfied", "dissatisfied"):
        w.county.rate(verdict, phone=None)  # officer 100102 of PS1, week 2021-W44, month 2021-11
    page = browser(w, "supervisor").get(f"{CONSOLE}/")
    assert page.status_code == 200
    week = section(page.text, 'id="rates-week"', "</section>")
    assert "本周 This week · 2021-W44" in week
    assert cell(week, "unit:PS1", "satisfaction") == "75.0% 3/4"
    assert cell(week, "unit:PS1", "scan") == "n/a 0/0"  # no encounter logged: nothing to divide by
    assert cell(week, "unit:PS1", "callback") == "n/a 0/0"  # the dissatisfied citizen left no phone
    assert cell(week, "unit:PS2", "satisfaction") == "n/a 0/0"
    assert cell(week, "county", "satisfaction") == "75.0% 3/4"
    assert "<svg" in week
    assert "城关派出所 (PS1)" in section(week, "<svg", "</svg>")
    month = section(page.text, 'id="rates-month"', "</section>")
    assert "本月 This month · 2021-11" in month
    assert cell(month, "unit:PS1", "satisfaction") == "75.0% 3/4"


def test_other_periods_are_shown_by_query_and_reached_by_links_to_the_previous_ones(console_world: World) -> None:
    w = console_world
    w.county.rate("satisfied", phone=None)
    b = browser(w, "auditor")
    page = b.get(f"{CONSOLE}/")
    previous = re.search(r'id="previous-week" href="([^"]+)"', page.text)
    assert previous is not None
    link = previous.group(1).replace("&amp;", "&")
    assert link == f"{CONSOLE}/?week=2021-W43&month=2021-11"
    earlier = b.get(link)
    week = section(earlier.text, 'id="rates-week"', "</section>")
    assert "2021-W43" in week
    assert "本周" not in week
    assert cell(week, "unit:PS1", "satisfaction") == "n/a 0/0"
    assert 'id="next-week" href="/console/?week=2021-W44&amp;month=2021-11"' in earlier.text
    assert 'id="next-week"' not in page.text  # nothing after the current week
    assert b.get(f"{CONSOLE}/?week=2021-11").status_code == 422


def test_an_officer_sees_only_their_own_rates_of_a_closed_period_with_at_least_k_ratings(
    console_world: World,
) -> None:
    w = console_world
    for verdict in ("satisfied", "satisfied", "dissatisfied", "satisfied", "basically_satisfied", "satisfied"):
        w.county.rate(verdict, phone=None)  # six ratings of officer 100102 in 2021-W44
    b = browser(w, "officer")
    during = b.get(f"{CONSOLE}/?week=2021-W44")
    assert "is not over yet" in section(during.text, 'id="rates-week"', "</section>")
    assert 'data-scope="officer:100102"' not in during.text
    w.clock.set(datetime(2021, 11, 8, 2, 0, tzinfo=UTC))  # Monday of 2021-W45: 2021-W44 is over
    after = b.get(f"{CONSOLE}/")
    week = section(after.text, 'id="rates-week"', "</section>")
    assert "2021-W44" in week
    assert cell(week, "officer:100102", "satisfaction") == "83.3% 5/6"
    assert re.findall(r'data-scope="([^"]+)"', after.text) == ["officer:100102"]  # October: refused, no row
    assert "fewer than 5 ratings" in section(after.text, 'id="rates-month"', "</section>")
    assert "城关派出所" not in after.text
    assert "青同派出所" not in after.text
    w.county.rate("satisfied", phone=None)  # now in 2021-W45, which is not over
    current = b.get(f"{CONSOLE}/?week=2021-W45")
    assert "is not over yet" in current.text


def test_an_officer_below_k_ratings_sees_the_reason_instead_of_rates(console_world: World) -> None:
    w = console_world
    for _ in range(4):
        w.county.rate("satisfied", phone=None)
    w.clock.set(datetime(2021, 11, 8, 2, 0, tzinfo=UTC))
    week = section(browser(w, "officer").get(f"{CONSOLE}/").text, 'id="rates-week"', "</section>")
    assert "rest on fewer than 5 ratings" in week
    assert "data-rate" not in week


def test_an_administrator_reads_no_rates(console_world: World) -> None:
    page = browser(console_world, "admin").get(f"{CONSOLE}/")
    assert page.status_code == 200
    assert 'id="rates-refused"' in page.text
    assert "may not read rates" in page.text
    assert 'id="nav-board"' not in page.text
    assert 'id="nav-qr"' in page.text


# -- the board -------------------------------------------------------------------------------------


def test_the_board_lists_overdue_and_flagged_cases_first_then_by_nearest_deadline(console_world: World) -> None:
    w = console_world
    refs = []
    for _ in range(4):  # contact deadlines at 09:00, 10:00, 11:00 and 12:00 the next day
        refs.append(w.county.open_case())
        w.clock.advance(hours=1)
    oldest, second, flagged, newest = refs
    w.rt.app.flag_case(c.FlagCase(ref=flagged, reason="群众反映强烈"), SUPERVISOR)
    w.clock.set(START + timedelta(hours=24, minutes=30))  # only the oldest case's contact is overdue
    page = browser(w, "supervisor").get(f"{CONSOLE}/board")
    assert page.status_code == 200
    assert re.findall(r'<tr class="[^"]*" data-ref="([^"]+)"', page.text) == [oldest, flagged, second, newest]
    first = section(page.text, f'data-ref="{oldest}"')
    assert "已超时 30分 / 30 min overdue" in first
    assert 'data-deadline="2021-11-02T09:00:00+08:00"' in first
    assert "联系当事人 contact" in first
    assert "已推送 pushed" in first
    assert "李警官 (100102)" in first
    assert "剩余 30分 / 30 min left" in section(page.text, f'data-ref="{second}"')
    assert "挂牌督办" in section(page.text, f'data-ref="{flagged}"')
    overdue = browser(w, "supervisor").get(f"{CONSOLE}/board?overdue=1")
    assert re.findall(r'data-ref="([^"]+)"', overdue.text) == [oldest]


def test_a_unit_head_sees_only_their_own_units_cases(console_world: World) -> None:
    w = console_world
    own = w.county.open_case()
    other = hotline_case(w, "PS2")
    b = browser(w, "unit_head")
    page = b.get(f"{CONSOLE}/board")
    assert re.findall(r'data-ref="([^"]+)"', page.text) == [own]
    assert '<option value="PS2"' not in page.text
    assert b.get(f"{CONSOLE}/board?unit=PS2").status_code == 403
    refused = b.get(f"{CONSOLE}/cases/{other}")
    assert refused.status_code == 403
    assert "not of unit PS2" in refused.text
    office = browser(w, "supervisor").get(f"{CONSOLE}/board?unit=PS2&state=all")
    assert re.findall(r'data-ref="([^"]+)"', office.text) == [other]


def test_roles_that_read_no_cases_get_a_403_page(console_world: World) -> None:
    for who in ("officer", "admin"):
        refused = browser(console_world, who).get(f"{CONSOLE}/board")
        assert refused.status_code == 403
        assert "无权操作" in refused.text
        assert "may not read the case board" in refused.text


def test_the_countdown_reads_in_chinese_and_english_and_the_script_says_the_same() -> None:
    due = START
    assert countdown(due, due - timedelta(hours=3, minutes=12, seconds=40)) == "剩余 3小时12分 / 3 h 12 min left"
    assert countdown(due, due + timedelta(hours=2)) == "已超时 2小时 / 2 h overdue"
    assert countdown(due, due - timedelta(days=1, hours=3)) == "剩余 1天3小时 / 1 d 3 h left"
    assert countdown(due, due + timedelta(seconds=42)) == "已超时 42秒 / 42 s overdue"
    assert countdown(due, due) == "剩余 0秒 / 0 s left"


def test_the_countdown_script_is_served(console_world: World) -> None:
    script = browser(console_world).get(f"{CONSOLE}/static/console.js")
    assert script.status_code == 200
    assert script.text == (STATIC / "console.js").read_text(encoding="utf-8")


#: Runs the page's script once per case against a stand-in for the page: one ``data-deadline`` element,
#: the server's time on ``body[data-now]``; prints what the element then says and whether it is overdue.
NODE_HARNESS = """
const script = require("fs").readFileSync(process.argv[2], "utf8");
const shown = JSON.parse(process.argv[3]).map(([deadline, now]) => {
  const element = {textContent: "", overdue: null, getAttribute: () => deadline,
                   classList: {toggle(name, on) { element.overdue = on; }}};
  const document = {querySelectorAll: () => [element], body: {getAttribute: () => now}};
  new Function("document", "window", script)(document, {setInterval: () => 0});
  return [element.textContent, element.overdue];
});
console.log(JSON.stringify(shown));
"""


@pytest.mark.skipif(NODE is None, reason="no Node.js to run the page's script with")
def test_the_countdown_script_says_what_the_server_says_and_marks_overdue_steps(tmp_path: Path) -> None:
    deadline = datetime(2021, 11, 2, 1, 0, tzinfo=UTC)
    nows = [deadline - timedelta(hours=3, minutes=12, seconds=30), deadline + timedelta(hours=2, seconds=5),
            deadline - timedelta(days=1, hours=3, seconds=30), deadline + timedelta(seconds=42),
            deadline - timedelta(minutes=7, seconds=30)]
    harness = tmp_path / "harness.js"
    harness.write_text(NODE_HARNESS, encoding="utf-8")
    cases = json.dumps([[iso(deadline), iso(now)] for now in nows])
    ran = subprocess.run(  # noqa: S603 - Node.js running the app's own script with the test's own data
        [str(NODE), str(harness), str(STATIC / "console.js"), cases], capture_output=True, text=True, check=True,
        timeout=60,
    )
    assert json.loads(ran.stdout) == [[countdown(deadline, now), now > deadline] for now in nows]


# -- a case's page and its moves ------------------------------------------------------------------


def test_the_case_page_tells_the_whole_story_with_its_sla_steps_and_audit_score(console_world: World) -> None:
    w = console_world
    ref = w.county.open_case()
    w.clock.advance(hours=25)
    browser(w, "unit_head").submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/contact", {"note": "已电话联系"})
    page = browser(w, "supervisor").get(f"{CONSOLE}/cases/{ref}")
    assert page.status_code == 200
    assert re.findall(r'<li data-event="(\w+)">', page.text) == ["Opened", "Pushed", "CitizenContacted"]
    for text in ("立案", "推送至单位", "pushed to unit", "单位联系当事人", "unit contacted citizen",
                 "note: 已电话联系"):
        assert text in page.text
    assert 'id="case-state" data-state="contacted"' in page.text
    sla = section(page.text, 'id="sla"', "</table>")
    assert "超时办理 late" in section(sla, 'data-step="contact"')  # contacted after its 24 hours
    assert "进行中 running" in section(sla, 'data-step="feedback"')
    assert '<p class="score" id="audit-score"><strong>95</strong> / 100</p>' in page.text
    assert "环节超时办理" in page.text


SUPERVISOR_ON_PUSHED = {"callback-attempts", "supervision", "flag", "accountability", "commendations"}


@pytest.mark.parametrize(
    ("steps", "who", "offered"),
    [
        ((), "supervisor", SUPERVISOR_ON_PUSHED),
        ((), "unit_head", {"contact"}),
        ((), "auditor", set()),
        ((("unit_head", "contact", {"note": "已联系"}),), "unit_head", {"result"}),
        ((("unit_head", "contact", {"note": "已联系"}), ("unit_head", "result", {"result": "已处理"})), "supervisor",
         {"callback", "callback-attempts", "supervision", "flag", "accountability", "commendations"}),
        ((("unit_head", "contact", {"note": "已联系"}), ("unit_head", "result", {"result": "已处理"}),
          ("supervisor", "callback", {"satisfied": "yes", "note": "满意"})), "supervisor",
         {"callback-attempts", "supervision", "flag", "rectification", "close", "accountability", "commendations"}),
        ((("unit_head", "contact", {"note": "已联系"}), ("unit_head", "result", {"result": "已处理"}),
          ("supervisor", "callback", {"satisfied": "no", "note": "不满意"})), "supervisor",
         {"callback-attempts", "supervision", "flag", "rectification", "reopen", "accountability", "commendations"}),
        ((("supervisor", "flag", {"reason": "督办"}),), "supervisor", SUPERVISOR_ON_PUSHED - {"flag"}),
    ],
    ids=["pushed-office", "pushed-head", "pushed-auditor", "contacted-head", "reported-office",
         "satisfied-office", "dissatisfied-office", "flagged-office"],
)
def test_the_case_page_offers_the_moves_this_role_may_make_in_the_cases_state(
    console_world: World, steps: tuple[tuple[str, str, dict[str, str]], ...], who: str, offered: set[str]
) -> None:
    w = console_world
    ref = w.county.open_case()
    for actor, move, data in steps:
        done = browser(w, actor).submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/{move}", data)
        assert done.status_code == 303, done.text
    page = browser(w, who).get(f"{CONSOLE}/cases/{ref}")
    assert page.status_code == 200
    assert forms_on(page.text) == offered
    if not offered:
        assert 'id="no-moves"' in page.text


def test_the_buttons_the_browser_tests_press_carry_their_chinese_names(console_world: World) -> None:
    w = console_world
    ref = w.county.open_case()
    head = browser(w, "unit_head")
    assert '<button type="submit" id="contact-submit" class="primary">联系群众</button>' in head.get(
        f"{CONSOLE}/cases/{ref}").text
    head.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/contact", {"note": "已联系"})
    assert ">报告结果</button>" in head.get(f"{CONSOLE}/cases/{ref}").text
    head.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/result", {"result": "已处理"})
    office = browser(w, "supervisor")
    assert ">回访</button>" in office.get(f"{CONSOLE}/cases/{ref}").text
    office.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/callback", {"satisfied": "yes", "note": "满意"})
    page = office.get(f"{CONSOLE}/cases/{ref}").text
    assert ">结案</button>" in page
    assert '<label for="close-resolution">办结意见 Resolution' in page
    assert '<select id="close-citizen-accepted" name="citizen_accepted"' in page


def test_a_move_posted_from_the_case_page_changes_the_state_on_the_console_channel(console_world: World) -> None:
    w = console_world
    ref = w.county.open_case()
    head = browser(w, "unit_head")
    before = w.head()
    done = head.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/contact", {"note": "已电话联系群众"})
    assert done.status_code == 303
    assert done.headers["location"] == f"{CONSOLE}/cases/{ref}?done=contact"
    assert w.rt.app.get_case(ref).state.value == "contacted"
    assert w.head() == before + 1
    event = last_event(w)
    assert type(event).__qualname__ == "Case.CitizenContacted"
    assert (event.meta.channel.value, event.meta.actor, event.note) == ("console", "100101", "已电话联系群众")
    assert event.meta.correlation_id == done.headers["x-request-id"]
    back = head.get(done.headers["location"])
    assert "已办理：联系群众。 Done: Contact the citizen." in back.text
    assert 'data-state="contacted"' in back.text


def test_an_ordered_rectification_takes_its_due_date_in_shanghai_time(console_world: World) -> None:
    w = console_world
    ref = w.county.open_case()
    head, office = browser(w, "unit_head"), browser(w, "supervisor")
    head.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/contact", {"note": "已联系"})
    head.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/result", {"result": "已处理"})
    office.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/callback", {"satisfied": "no", "note": "不满意"})
    done = office.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/rectification",
                         {"instructions": "规范接警流程", "due_at": "2021-11-20T18:00"})
    assert done.status_code == 303, done.text
    case = w.rt.app.get_case(ref)
    assert case.state.value == "rectifying"
    assert case.rectification_due == datetime(2021, 11, 20, 10, 0, tzinfo=UTC)


def test_an_illegal_move_shows_the_reason_with_409_and_writes_nothing(console_world: World) -> None:
    w = console_world
    ref = w.county.open_case()
    office = browser(w, "supervisor")
    before = w.head()
    refused = office.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/close", {"resolution": "办结"})
    assert refused.status_code == 409
    assert f"case {ref} is pushed; cannot close" in section(refused.text, 'id="error"', "</div>")
    assert 'id="case-state" data-state="pushed"' in refused.text  # the case's page, shown again
    assert w.head() == before
    assert w.rt.app.get_case(ref).state.value == "pushed"


def test_input_a_command_refuses_shows_the_field_with_422_and_keeps_what_was_typed(console_world: World) -> None:
    w = console_world
    ref = w.county.open_case()
    office = browser(w, "supervisor")
    before = w.head()
    refused = office.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/accountability",
                            {"badge": "not a badge!", "measure": "criticism_notice", "note": "通报批评"})
    assert refused.status_code == 422
    assert "badge:" in section(refused.text, 'id="error"', "</div>")
    assert 'class="move failed"' in refused.text
    assert '<option value="criticism_notice" selected>' in refused.text
    assert ">通报批评</textarea>" in refused.text
    assert w.head() == before


def test_a_move_the_role_may_not_make_is_refused_with_403_and_writes_nothing(console_world: World) -> None:
    w = console_world
    ref = w.county.open_case()
    before = w.head()
    refused = browser(w, "auditor").submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/flag", {"reason": "x"})
    assert refused.status_code == 403
    assert "may not flag_case" in refused.text
    other = hotline_case(w, "PS2")
    before = w.head()
    head = browser(w, "unit_head")
    refused = head.submit(f"{CONSOLE}/board", f"{CONSOLE}/cases/{other}/contact", {"note": "已联系"})
    assert refused.status_code == 403
    assert "not the head of unit PS2" in refused.text
    assert w.head() == before


def test_an_unknown_move_is_404(console_world: World) -> None:
    ref = console_world.county.open_case()
    answer = browser(console_world, "supervisor").submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/escalate")
    assert answer.status_code == 404
    assert "unknown case move &#39;escalate&#39;" in answer.text


# -- personal data ---------------------------------------------------------------------------------


def test_revealing_the_contact_records_a_personal_data_read_before_showing_it(console_world: World) -> None:
    w = console_world
    ref = hotline_case(w, phone=PHONE, name=NAME)
    office = browser(w, "supervisor")
    page = office.get(f"{CONSOLE}/cases/{ref}")
    assert PHONE not in page.text
    assert NAME not in page.text
    assert '<button type="submit" id="reveal-contact">查看联系方式' in page.text
    before = w.head()
    shown = office.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/personal-data")
    assert shown.status_code == 200
    assert f'<dd id="contact-phone">{PHONE}</dd>' in shown.text
    assert f'<dd id="contact-name">{NAME}</dd>' in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert w.head() == before + 1
    event = last_event(w)
    assert type(event).__qualname__ == "PersonalDataRead.Recorded"
    assert event.meta.channel.value == "console"
    read = w.rt.app.get_aggregate(event.originator_id)
    assert isinstance(read, PersonalDataRead)
    assert (read.case_ref, sorted(read.fields), read.read_by, read.role.value) == (
        ref, ["citizen_name", "phone"], "dc-wang", "supervisor")
    assert str(read.id) in shown.text
    assert PHONE not in office.get(f"{CONSOLE}/cases/{ref}").text  # shown once, for that read only


def test_an_auditor_never_sees_personal_data_and_cannot_reveal_it(console_world: World) -> None:
    w = console_world
    ref = hotline_case(w, phone=PHONE, name=NAME)
    browser(w, "unit_head").submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/contact",
                                   {"note": f"已拨打{PHONE}联系{NAME}"})
    rated = w.county.open_case(phone=PHONE)
    auditor = browser(w, "auditor")
    page = auditor.get(f"{CONSOLE}/cases/{ref}")
    assert page.status_code == 200
    assert PHONE not in page.text
    assert NAME not in page.text
    assert "1391234" not in page.text
    assert "note: 已拨打139****5678联系[redacted]" in page.text
    assert 'id="contact-redacted"' in page.text
    assert 'id="reveal-contact"' not in page.text
    assert set(re.findall(r'data-ref="([^"]+)"', auditor.get(f"{CONSOLE}/board").text)) == {ref, rated}
    story = auditor.get(f"{CONSOLE}/cases/{rated}").text
    assert "citizen:anonymous" not in story
    assert "· citizen</div>" in story
    before = w.head()
    refused = auditor.submit(f"{CONSOLE}/cases/{ref}", f"{CONSOLE}/cases/{ref}/personal-data")
    assert refused.status_code == 403
    assert PHONE not in refused.text
    assert w.head() == before


def test_a_case_without_a_contact_offers_nothing_to_reveal(console_world: World) -> None:
    ref = console_world.county.open_case(phone=None)
    page = browser(console_world, "unit_head").get(f"{CONSOLE}/cases/{ref}")
    assert 'id="contact-none"' in page.text
    assert 'id="reveal-contact"' not in page.text


# -- reports ---------------------------------------------------------------------------------------


def test_the_office_publishes_the_weekly_review_from_a_form_and_it_is_listed_and_shown_as_published(
    console_world: World,
) -> None:
    w = console_world
    w.county.rate("satisfied", phone=None)
    w.clock.set(datetime(2021, 11, 8, 2, 0, tzinfo=UTC))  # Monday 10:00: the review of 2021-W44 is due
    office = browser(w, "supervisor")
    listing = office.get(f"{CONSOLE}/reports")
    assert 'id="reports-empty"' in listing.text
    assert "应发 due 2021-W44" in listing.text
    done = office.submit(f"{CONSOLE}/reports", f"{CONSOLE}/reports", {"kind": "weekly", "period": ""})
    assert done.status_code == 303, done.text
    name = w.rt.app.get_report("weekly-2021-W44").name
    assert done.headers["location"] == f"{CONSOLE}/reports/{name}?published=1"
    listing = office.get(f"{CONSOLE}/reports")
    assert f'<tr data-name="{name}">' in listing.text
    shown = office.get(done.headers["location"])
    assert "报告已发布" in shown.text
    assert "文件与发布内容一致" in shown.text
    document = office.get(f"{CONSOLE}/reports/{name}/document")
    assert document.status_code == 200
    published = (w.rt.settings.reports_dir / f"{name}.html").read_text(encoding="utf-8")
    assert without_chart_ids(document.text) == without_chart_ids(published)
    assert f'<meta name="pingjing-content-hash" content="{w.rt.app.get_report(name).content_hash}">' in document.text


def test_an_auditor_reads_reports_but_only_the_office_publishes(console_world: World) -> None:
    w = console_world
    w.clock.set(datetime(2021, 11, 8, 2, 0, tzinfo=UTC))
    office = browser(w, "supervisor")
    office.submit(f"{CONSOLE}/reports", f"{CONSOLE}/reports", {"kind": "monthly", "period": "2021-10"})
    auditor = browser(w, "auditor")
    listing = auditor.get(f"{CONSOLE}/reports")
    assert '<tr data-name="monthly-2021-10">' in listing.text
    assert 'id="publish-form"' not in listing.text
    assert auditor.get(f"{CONSOLE}/reports/monthly-2021-10/document").status_code == 200
    before = w.head()
    refused = auditor.submit(f"{CONSOLE}/reports", f"{CONSOLE}/reports", {"kind": "weekly"})
    assert refused.status_code == 403
    assert w.head() == before
    assert browser(w, "officer").get(f"{CONSOLE}/reports").status_code == 403
    bad = office.submit(f"{CONSOLE}/reports", f"{CONSOLE}/reports", {"kind": "weekly", "period": "2021-10"})
    assert bad.status_code == 422
    assert w.head() == before


# -- QR codes --------------------------------------------------------------------------------------


def expected_url(world: World, subject: QrSubject, key: str, version: int) -> str:
    """The scan URL ``pingjing qr`` prints for a code (the test's own composition of adapters.qr)."""
    keyring = load_keyring(world.rt.settings)
    return scan_url(PUBLIC_URL, make_token(keyring, subject, key, version))


def test_the_qr_page_downloads_valid_png_and_svg_codes_and_a_units_printable_sheet(console_world: World) -> None:
    w = console_world
    issue_codes(w, ("unit", "PS1"), ("officer", "100102"))
    office = browser(w, "supervisor")
    page = office.get(f"{CONSOLE}/qr")
    assert page.status_code == 200
    assert 'data-key="100102" data-version="1" data-state="有效 active"' in page.text
    assert 'data-key="F10103" data-version="" data-state="未签发 never issued"' in page.text
    assert "<form" not in section(page.text, 'id="qr-units"', "</section>")  # the office reads only
    png = office.get(f"{CONSOLE}/qr/officer/100102.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.headers["content-disposition"] == 'attachment; filename="officer-100102-v1.png"'
    assert png.content == png_bytes(expected_url(w, QrSubject.OFFICER, "100102", 1))
    svg = office.get(f"{CONSOLE}/qr/unit/PS1.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(svg.content).tag.endswith("svg")  # noqa: S314 - the app's own output
    assert svg.content == svg_bytes(expected_url(w, QrSubject.UNIT, "PS1", 1))
    sheet = office.get(f"{CONSOLE}/qr/sheet/PS1")
    assert sheet.status_code == 200
    assert "扫码评警 · 城关派出所" in sheet.text
    assert sheet.text.count("<svg") == 2
    never = office.get(f"{CONSOLE}/qr/officer/F10103.png")
    assert never.status_code == 409
    assert "none was ever issued" in never.text
    assert office.get(f"{CONSOLE}/qr/officer/100102.gif").status_code == 404


def test_an_administrator_rotates_and_revokes_a_code_and_a_supervisor_is_refused(console_world: World) -> None:
    w = console_world
    issue_codes(w, ("officer", "100102"))

    def identity() -> QrIdentity:
        found = w.rt.app.get_aggregate(qr_identity_id(QrSubject.OFFICER, "100102"))
        assert isinstance(found, QrIdentity)
        return found

    office = browser(w, "supervisor")
    before = w.head()
    refused = office.submit(f"{CONSOLE}/qr", f"{CONSOLE}/qr/officer/100102/rotate")
    assert refused.status_code == 403
    assert "may not rotate_qr" in refused.text
    assert w.head() == before
    admin = browser(w, "admin")
    page = admin.get(f"{CONSOLE}/qr").text
    assert 'id="qr-officer-100102-rotate-submit">更换二维码</button>' in page
    rotated = admin.submit(f"{CONSOLE}/qr", f"{CONSOLE}/qr/officer/100102/rotate")
    assert rotated.status_code == 303
    assert rotated.headers["location"] == f"{CONSOLE}/qr?done=rotate&key=100102"
    assert identity().qr_version == 2
    assert last_event(w).meta.channel.value == "console"
    assert 'data-key="100102" data-version="2"' in admin.get(rotated.headers["location"]).text
    png = admin.get(f"{CONSOLE}/qr/officer/100102.png")
    assert png.headers["content-disposition"] == 'attachment; filename="officer-100102-v2.png"'
    assert admin.submit(f"{CONSOLE}/qr", f"{CONSOLE}/qr/officer/100102/revoke", {"reason": ""}).status_code == 422
    revoked = admin.submit(f"{CONSOLE}/qr", f"{CONSOLE}/qr/officer/100102/revoke", {"reason": "警号牌遗失"})
    assert revoked.status_code == 303
    assert identity().active is False
    assert 'data-key="100102" data-version="2" data-state="已停用 revoked"' in admin.get(f"{CONSOLE}/qr").text


def test_roles_other_than_the_office_and_administrators_have_no_qr_page(console_world: World) -> None:
    for who in ("unit_head", "auditor", "officer"):
        assert browser(console_world, who).get(f"{CONSOLE}/qr").status_code == 403
