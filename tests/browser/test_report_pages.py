"""The demo county's weekly review and monthly bulletin, opened in real Chromium.

The pages must show their Chinese titles and three drawn charts each (bars per unit, the
trend lines, the on-time bars), load nothing from the network, and the publications must
verify against the events, until one stored event of the period is altered.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.demo import load_demo
from adapters.reports.publish import Published, Reports
from adapters.store import resolve
from domain.application import PingjingApp
from domain.reports import ReportKind
from projections.store import ViewStore


@dataclass
class Demo:
    """The demo store and its two publications."""

    database: Path
    out: Path
    weekly: Published
    monthly: Published


def _app(database: Path) -> PingjingApp:
    return PingjingApp(env=resolve(str(database)).env, observers=[])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo county (November 2021) with its W47 review and November bulletin published."""
    base = tmp_path_factory.mktemp("demo-reports")
    database, out = base / "events.sqlite3", base / "reports"
    app = _app(database)
    load_demo(app)
    reports = Reports(app, ViewStore.beside(app), out)
    weekly = reports.publish(ReportKind.WEEKLY, "2021-W47")
    monthly = reports.publish(ReportKind.MONTHLY, "2021-11")
    app.close()
    return Demo(database, out, weekly, monthly)


def _open(browser: Any, path: Path, artifacts: Path, name: str) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": 1100, "height": 900}, device_scale_factor=1)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    found: dict[str, Any] = {"title": page.locator("h1").inner_text(), "charts": {}}
    for chart in ("chart-units", "chart-trend", "chart-on-time"):
        svg = page.locator(f"#{chart} svg")
        svg.scroll_into_view_if_needed()
        box = svg.bounding_box()
        drawn = page.locator(f"#{chart} svg .plot .series").count()
        marks = page.locator(f"#{chart} svg .plot .series rect, #{chart} svg .plot .series path, "
                             f"#{chart} svg .plot .series circle").count()
        found["charts"][chart] = {"visible": svg.is_visible(), "box": box, "series": drawn, "marks": marks}
    found["text"] = page.locator("body").inner_text()
    found["requests"] = [url for url in requests if not url.startswith("file://")]
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    page.close()
    return found


@pytest.mark.parametrize("which", ["weekly", "monthly"])
def test_the_published_page_shows_its_charts_in_a_real_browser(
    demo: Demo, browser: Any, artifacts: Path, which: str
) -> None:
    published: Published = getattr(demo, which)
    page = _open(browser, published.files["html"], artifacts, f"report-{published.name}")
    expected = "灵寿县公安局扫码评警周点评 2021-W47" if which == "weekly" else "灵寿县公安局扫码评警月通报 2021-11"
    assert page["title"] == expected
    for name, chart in page["charts"].items():
        assert chart["visible"], name
        assert chart["box"]["width"] > 600, (name, chart["box"])
        assert chart["box"]["height"] > 200, (name, chart["box"])
        assert chart["series"] >= 2, (name, chart)  # at least two data series drawn
        assert chart["marks"] >= 5, (name, chart)  # bars, lines or dots actually drawn
    assert "单位排名" in page["text"]
    assert "全县五个率" in page["text"]
    assert published.content_hash in page["text"]
    assert page["requests"] == [], "the page must be self-contained"
    assert (artifacts / f"report-{published.name}.png").stat().st_size > 50_000


def test_report_verify_succeeds_on_the_demo_reports_and_fails_after_an_event_is_altered(
    demo: Demo, tmp_path: Path
) -> None:
    # On a copy, so that the browser tests above keep the untouched store.
    database = tmp_path / "events.sqlite3"
    with sqlite3.connect(demo.database) as source, sqlite3.connect(database) as target:
        source.backup(target)
    app = _app(database)
    reports = Reports(app, ViewStore.beside(app), demo.out)
    assert reports.verify(demo.weekly.name).matches
    assert reports.verify(demo.monthly.name).matches
    app.close()

    with sqlite3.connect(database) as conn:  # one satisfied rating of W47 (22-28 Nov 2021) turns dissatisfied
        rows = conn.execute(
            "SELECT rowid, state FROM stored_events WHERE topic = 'domain.ratings:Rating.Submitted'"
        ).fetchall()
        rowid, state = next(
            (rowid, bytes(state)) for rowid, state in rows
            if b'"verdict":"satisfied"' in bytes(state) and b'"occurred_at":"2021-11-24' in bytes(state)
        )
        altered = state.replace(b'"verdict":"satisfied"', b'"verdict":"dissatisfied"')
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (altered, rowid))

    app = _app(database)
    reports = Reports(app, ViewStore.beside(app), demo.out)
    weekly, monthly = reports.verify(demo.weekly.name), reports.verify(demo.monthly.name)
    app.close()
    assert not weekly.matches
    assert not monthly.matches  # the same rating counts in November
    assert weekly.published_hash == demo.weekly.content_hash
