"""The weekly review and monthly bulletin: figures worked out by hand, publication, schedule, verification.

A fortnight in the tiny county (BUR ⊃ PS1, PS2; officer 100102 in PS1), Asia/Shanghai times:

  W44 (Mon 1 .. Sun 7 Nov)
    Mon 1 10:00  100102 satisfied            Mon 1 11:00  100102 satisfied
    Mon 1 12:00  100102 dissatisfied + phone -> case A (PS1, callable)
    Mon 1 13:00  unit PS2 basically satisfied
  W45 (Mon 8 .. Sun 14 Nov)
    Mon 8 10:00  100102 satisfied
    Mon 8 11:00  100102 dissatisfied, no phone -> case B (PS1, not callable)
    Mon 8 12:00  unit PS2 dissatisfied + phone -> case C (PS2, callable)
    Tue 9 09:00  case A flagged (挂牌督办)
    Tue 9 11:30  case B: contact breach recorded (due Tue 9 11:00, 24 h after the push)
    Wed 10 10:00 case A: criticism notice (通报批评) for 100102
    Thu 11 10:00 case C: silk banner (锦旗) for PS2

Satisfaction = (satisfied + basically satisfied) / ratings, by rating time:
  W44: county 3/4, PS1 2/3, PS2 1/1        W45: county 1/3, PS1 1/2, PS2 0/1
Callback rate, callable cases opened in the period reached on a callback:
  W44: county 0/1 (A), PS1 0/1, PS2 n/a    W45: county 0/1 (C), PS1 n/a (B has no phone), PS2 0/1
No encounters and no rectification: scan, rectification and implementation are n/a throughout.
Ranking in W45 by the mean of the available five rates:
  PS1 = satisfaction 1/2 = 0.5;  BUR (all of the county) = (1/3 + 0/1) / 2 = 1/6;  PS2 = (0 + 0) / 2 = 0
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.reports.publish import Reports, due_period
from adapters.store import connect_postgres, resolve
from domain import commands as c
from domain.application import PingjingApp
from domain.errors import NotFoundError, ValidationError
from domain.ids import LOCAL_TZ
from domain.reports import ReportKind
from projections.store import ViewStore
from tests.adapters.support import event_count, run_cli
from tests.conftest import SUPERVISOR, SYSTEM, County, make_app
from tests.fakes import FakeClock

WEEKLY, MONTHLY = ReportKind.WEEKLY, ReportKind.MONTHLY


def local(text: str) -> datetime:
    """A wall-clock moment in Shanghai."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=LOCAL_TZ)


@dataclass
class Fortnight:
    """The story's stores and case references."""

    app: PingjingApp
    clock: FakeClock
    reports: Reports
    refs: dict[str, str]


def tell(county: County, clock: FakeClock) -> dict[str, str]:
    """The fortnight of the module docstring."""
    app = county.app

    def at(moment: str) -> None:
        clock.set(local(moment))

    at("2021-11-01 10:00")
    county.rate("satisfied", phone=None)
    at("2021-11-01 11:00")
    county.rate("satisfied", phone=None)
    at("2021-11-01 12:00")
    a = county.rate("dissatisfied")
    at("2021-11-01 13:00")
    county.rate("basically_satisfied", phone=None, target="unit", key="PS2")
    at("2021-11-08 10:00")
    county.rate("satisfied", phone=None)
    at("2021-11-08 11:00")
    b = county.rate("dissatisfied", phone=None)
    at("2021-11-08 12:00")
    c_ = county.rate("dissatisfied", target="unit", key="PS2")
    assert a
    assert b
    assert c_
    at("2021-11-09 09:00")
    app.execute(c.FlagCase(ref=a, reason="群众反映拖延"), SUPERVISOR)
    at("2021-11-09 11:30")
    app.execute(c.RecordSlaBreach(ref=b, step="contact", round=1), SYSTEM)
    at("2021-11-10 10:00")
    app.execute(
        c.RecordAccountability(ref=a, badge="100102", measure="criticism_notice", note="全局通报批评"), SUPERVISOR
    )
    at("2021-11-11 10:00")
    app.execute(c.RecordCommendation(ref=c_, kind="banner", unit_code="PS2", note="群众赠送锦旗"), SUPERVISOR)
    return {"A": a, "B": b, "C": c_}


@pytest.fixture
def fortnight(county: County, clock: FakeClock, tmp_path: Path) -> Iterator[Fortnight]:
    """The story on each store, with a report service writing under ``tmp_path``."""
    refs = tell(county, clock)
    views = ViewStore.beside(county.app)
    yield Fortnight(county.app, clock, Reports(county.app, views, tmp_path / "reports"), refs)
    if views.description == "memory":
        views.close()


def unit(data: dict, code: str) -> dict:  # type: ignore[type-arg]
    return next(u for u in data["units"] if u["code"] == code)


def fraction(rate: dict) -> tuple[int, int]:  # type: ignore[type-arg]
    return rate["numerator"], rate["denominator"]


# -- the figures -----------------------------------------------------------------------------------


def test_the_weekly_figures_and_their_change_from_the_previous_week(fortnight: Fortnight) -> None:
    data = fortnight.reports.compute(WEEKLY, "2021-W45").data
    assert (data["period"], data["previous_period"]) == ("2021-W45", "2021-W44")
    assert (data["period_start"], data["period_end"]) == ("2021-11-08", "2021-11-15")
    county = data["county"]["rates"]
    assert fraction(county["satisfaction"]) == (1, 3)
    assert county["satisfaction"]["previous"] == pytest.approx(3 / 4)
    assert county["satisfaction"]["change"] == pytest.approx(1 / 3 - 3 / 4)
    ps1, ps2 = unit(data, "PS1")["rates"], unit(data, "PS2")["rates"]
    assert (fraction(ps1["satisfaction"]), fraction(ps2["satisfaction"])) == ((1, 2), (0, 1))
    assert ps1["satisfaction"]["change"] == pytest.approx(1 / 2 - 2 / 3)  # down 16.7 points
    assert ps2["satisfaction"]["change"] == pytest.approx(0 - 1)
    assert (fraction(county["callback"]), fraction(ps1["callback"]), fraction(ps2["callback"])) == (
        (0, 1),
        (0, 0),
        (0, 1),
    )
    # n/a stays n/a: no value and no change.
    assert (ps1["callback"]["value"], ps1["callback"]["change"]) == (None, None)
    assert ps2["callback"]["previous"] is None  # W44: PS2 had no callable case
    for name in ("scan", "rectification", "implementation"):
        assert county[name]["value"] is None
    assert unit(data, "PS1")["counts"] | {} == {
        "encounters": 0,
        "ratings": 2,
        "cases_opened": 1,
        "flagged": 1,
        "breaches": 1,
        "accountability": 1,
        "commendations": 0,
    }
    assert unit(data, "PS2")["counts"]["commendations"] == 1


def test_units_rank_by_the_mean_of_their_available_rates(fortnight: Fortnight) -> None:
    data = fortnight.reports.compute(WEEKLY, "2021-W45").data
    ranking = [(r["rank"], r["code"]) for r in data["ranking"]]
    assert ranking == [(1, "PS1"), (2, "BUR"), (3, "PS2")]
    scores = {r["code"]: r["score"] for r in data["ranking"]}
    assert scores == {"PS1": pytest.approx(0.5), "BUR": pytest.approx(1 / 6), "PS2": pytest.approx(0.0)}
    assert unit(data, "PS2")["rank"] == 3


def test_the_period_lists_flagged_cases_breaches_accountability_and_commendations(fortnight: Fortnight) -> None:
    refs = fortnight.refs
    data = fortnight.reports.compute(WEEKLY, "2021-W45").data
    assert [(f["case_ref"], f["unit"], f["at"]) for f in data["flagged"]] == [(refs["A"], "PS1", "2021-11-09 09:00")]
    assert [(b["case_ref"], b["step"], b["round"], b["deadline"], b["breached_at"]) for b in data["breaches"]] == [
        (refs["B"], "contact", 1, "2021-11-09 11:00", "2021-11-09 11:30")
    ]
    [accountability] = data["accountability"]
    assert (accountability["case_ref"], accountability["at"]) == (refs["A"], "2021-11-10 10:00")
    assert "criticism_notice" in accountability["details"]
    assert "100102" in accountability["details"]
    [commendation] = data["commendations"]
    assert commendation["case_ref"] == refs["C"]
    assert "banner" in commendation["details"]
    # None of it happened in W44.
    before = fortnight.reports.compute(WEEKLY, "2021-W44").data
    assert (before["flagged"], before["breaches"], before["accountability"], before["commendations"]) == (
        [],
        [],
        [],
        [],
    )
    # Nor does a citizen's phone appear anywhere in a report.
    assert "13800138000" not in json.dumps(data, ensure_ascii=False)


def test_the_monthly_bulletin_covers_the_month_and_its_trend(fortnight: Fortnight) -> None:
    data = fortnight.reports.compute(MONTHLY, "2021-11").data
    assert fraction(data["county"]["rates"]["satisfaction"]) == (4, 7)  # (3 + 1) / (4 + 3)
    assert data["county"]["rates"]["satisfaction"]["previous"] is None  # nothing in October
    assert data["trend"]["periods"] == ["2021-06", "2021-07", "2021-08", "2021-09", "2021-10", "2021-11"]
    assert data["trend"]["county"]["satisfaction"] == [None] * 5 + [pytest.approx(4 / 7)]
    weekly = fortnight.reports.compute(WEEKLY, "2021-W45").data
    assert weekly["trend"]["periods"][-2:] == ["2021-W44", "2021-W45"]
    assert weekly["trend"]["county"]["satisfaction"][-2:] == [pytest.approx(3 / 4), pytest.approx(1 / 3)]
    assert weekly["trend"]["unit_satisfaction"]["PS2"][-2:] == [pytest.approx(1.0), pytest.approx(0.0)]


def test_a_period_that_does_not_fit_the_report_is_refused(fortnight: Fortnight) -> None:
    before = fortnight.app.recorder.max_notification_id()
    with pytest.raises(ValidationError, match="weekly report covers an ISO week"):
        fortnight.reports.compute(WEEKLY, "2021-11")
    with pytest.raises(ValidationError, match="monthly report covers a month"):
        fortnight.reports.publish(MONTHLY, "2021-W45")
    with pytest.raises(ValidationError, match="must be an ISO week"):
        fortnight.reports.compute(WEEKLY, "last week")
    assert fortnight.app.recorder.max_notification_id() == before, "a refused report records nothing"
    with pytest.raises(NotFoundError):
        fortnight.app.get_report("weekly-2021-W45")


# -- publishing and verifying ------------------------------------------------------------------------


def test_a_publication_records_its_hash_and_position_and_writes_three_files(fortnight: Fortnight) -> None:
    head = fortnight.app.recorder.max_notification_id()
    published = fortnight.reports.publish(WEEKLY, "2021-W45", SUPERVISOR)
    assert (published.name, published.edition, published.position) == ("weekly-2021-W45", 1, head)
    report = fortnight.app.get_report("weekly-2021-W45")
    assert (report.content_hash, report.position, report.title) == (
        published.content_hash,
        head,
        "县公安局扫码评警周点评 2021-W45",
    )
    assert report.published_by == "dc-wang"
    document = json.loads(published.files["json"].read_text(encoding="utf-8"))
    assert document["content_hash"] == published.content_hash
    assert document["report"]["position"] == head
    html = published.files["html"].read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in html
    assert html.count("<svg") == 3
    assert "http://" not in html.replace("http://www.w3.org", "").replace("http://pygal.org", "").replace(
        "http://github.com/Kozea/pygal", ""
    ), "the page must load nothing from the network"
    assert published.content_hash in html
    assert "县公安局扫码评警周点评 2021-W45" in html
    markdown = published.files["md"].read_text(encoding="utf-8")
    assert "| 1 | 城关派出所 (PS1) |" in markdown
    assert "33.3%" in markdown


def test_publishing_again_makes_a_new_edition_and_each_verifies(fortnight: Fortnight) -> None:
    first = fortnight.reports.publish(WEEKLY, "2021-W45")
    fortnight.clock.set(local("2021-11-16 10:00"))
    fortnight.app.execute(c.FlagCase(ref=fortnight.refs["C"], reason="逾期未反馈"), SUPERVISOR)  # W46: not in W45
    second = fortnight.reports.publish(WEEKLY, "2021-W45")
    assert (second.name, second.edition) == ("weekly-2021-W45-2", 2)
    assert second.position > first.position
    assert second.content_hash != first.content_hash  # the position is part of the content
    assert fortnight.app.get_report("weekly-2021-W45").edition == 2  # the name alone means the latest
    for name in ("weekly-2021-W45-1", "weekly-2021-W45-2"):
        result = fortnight.reports.verify(name)
        assert result.matches, name
        assert result.file_matches, name


def test_the_schedule_publishes_the_previous_week_from_monday_0900_and_the_month_from_the_first(
    fortnight: Fortnight,
) -> None:
    assert due_period(WEEKLY, local("2021-11-15 08:59")) == "2021-W44"
    assert due_period(WEEKLY, local("2021-11-15 09:00")) == "2021-W45"
    assert due_period(MONTHLY, local("2021-12-01 08:59")) == "2021-10"
    assert due_period(MONTHLY, local("2021-12-01 09:00")) == "2021-11"
    assert due_period(WEEKLY, local("2021-01-04 09:00")) == "2020-W53"
    done = fortnight.reports.publish_due(local("2021-11-15 09:00"))
    assert sorted(p.name for p in done) == ["monthly-2021-10", "weekly-2021-W45"]
    # Already published: the schedule does not publish the same period again.
    assert fortnight.reports.publish_due(local("2021-11-15 09:05")) == []
    assert [p.name for p in fortnight.reports.publish_due(local("2021-12-01 09:00"), (MONTHLY,))] == ["monthly-2021-11"]


def test_verify_succeeds_and_fails_once_a_stored_event_is_altered(
    tmp_path: Path, clock: FakeClock, database: str
) -> None:
    if database == "memory":
        pytest.skip("a memory store has no stored rows to alter")
    app = make_app(database, clock)
    county = County(app, clock).setup()
    tell(county, clock)
    reports = Reports(app, ViewStore.beside(app), tmp_path / "reports")
    published = reports.publish(WEEKLY, "2021-W45")
    assert reports.verify(published.name).matches
    app.close()

    # Someone rewrites history: the W45 satisfied rating of 100102 becomes dissatisfied.
    alter_first_rating_in(database, "satisfied", "2021-11-08T10:00:00+08:00")

    app = make_app(database, clock)
    try:
        result = Reports(app, ViewStore.beside(app), tmp_path / "reports").verify(published.name)
        assert not result.matches
        assert result.published_hash == published.content_hash != result.recomputed_hash
        assert result.file_matches is True  # the file still holds what was published
    finally:
        app.close()


def alter_first_rating_in(database: str, verdict: str, moment: str) -> None:
    """Change the verdict inside the stored state of the rating submitted at ``moment``."""
    topic = "domain.ratings:Rating.Submitted"
    if database.startswith("postgresql"):
        env = resolve(database).env
        schema = env["POSTGRES_SCHEMA"]
        with connect_postgres(resolve(database).env) as conn:
            rows = conn.execute(
                f"SELECT originator_id, state FROM {schema}.pingjing_events WHERE topic = %s",  # noqa: S608 - test schema
                (topic,),
            ).fetchall()
            oid, state = _pick(rows, verdict, moment)
            conn.execute(
                f"UPDATE {schema}.pingjing_events SET state = %s "  # noqa: S608 - the test's own schema
                "WHERE originator_id = %s AND originator_version = 1",
                (state, oid),
            )
        return
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT originator_id, state FROM stored_events WHERE topic = ?", (topic,)).fetchall()
        oid, state = _pick(rows, verdict, moment)
        conn.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 1", (state, oid)
        )


def _pick(rows: list, verdict: str, moment: str) -> tuple[object, bytes]:  # type: ignore[type-arg]
    for oid, state in rows:
        text = bytes(state).decode("utf-8")
        if f'"verdict":"{verdict}"' in text and f'"occurred_at":"{moment}"' in text:
            return oid, text.replace(f'"verdict":"{verdict}"', '"verdict":"dissatisfied"').encode("utf-8")
    raise AssertionError(f"no {verdict} rating at {moment} among {len(rows)} ratings")


# -- the command line ----------------------------------------------------------------------------------


def test_the_cli_publishes_and_verifies_and_refuses_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "events.sqlite3"
    monkeypatch.setenv("PINGJING_REPORTS_DIR", str(tmp_path / "reports"))
    clock = FakeClock(datetime(2021, 11, 1, 1, 0, tzinfo=UTC))
    app = make_app(str(database), clock)
    tell(County(app, clock).setup(), clock)
    app.close()
    db = ("--database", str(database))
    assert run_cli(*db, "report", "weekly", "2021-W45", "--format", "json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "weekly-2021-W45"
    assert Path(out["files"]["html"]).exists()
    assert run_cli(*db, "report", "monthly", "2021-11", "--by", "supervisor:dc-wang") == 0
    assert "monthly-2021-11" in capsys.readouterr().out
    assert run_cli(*db, "report", "verify", "weekly-2021-W45", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["matches"] is True
    before = event_count(database)
    assert run_cli(*db, "report", "weekly", "2021-13") == 1
    assert "'2021-13' has no month 13" in capsys.readouterr().err
    assert run_cli(*db, "report", "weekly", "2021-W54") == 1
    assert "is not an ISO week of 2021" in capsys.readouterr().err
    assert run_cli(*db, "report", "monthly", "2021-W45") == 1
    assert "monthly report covers a month" in capsys.readouterr().err
    assert run_cli(*db, "report", "verify", "weekly-2021-W44") == 1
    assert "unknown report 'weekly-2021-W44'" in capsys.readouterr().err
    assert run_cli(*db, "report", "verify", "quarterly-2021") == 1
    assert "is not a report name" in capsys.readouterr().err
    assert run_cli(*db, "report", "weekly", "2021-W45", "--by", "officer") == 1
    assert "ROLE:PRINCIPAL" in capsys.readouterr().err
    assert event_count(database) == before, "a refused command writes nothing"
