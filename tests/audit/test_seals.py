"""Seals: ``pingjing audit seal``, the scheduler's daily seal, and the seal every monthly bulletin prints."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from adapters.audit.seals import SEAL_TOPIC, chain_head, latest_seal, seal_if_changed
from adapters.reports.publish import Reports
from domain.reports import ReportKind
from domain.seals import LogSeal, seal_id
from projections.store import ViewStore
from tests.adapters.support import run_cli
from tests.audit.conftest import Raw, Story, tell
from tests.conftest import SUPERVISOR, County, make_app
from tests.fakes import FakeClock

RATING = "domain.ratings:Rating.Submitted"


def test_audit_seal_records_the_head_and_says_how_to_check_it(
    story: Story, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--database", story.database, "audit", "seal", "--by", "supervisor:dc-wang",
                   "--format", "json") == 0
    made = json.loads(capsys.readouterr().out)
    assert (made["position"], made["recorded_at"], made["sealed_by"]) == (story.head, story.head + 1, "dc-wang")
    assert made["check"] == f"pingjing audit verify --expect {story.head}:{made['chain_hash']}"

    app = make_app(story.database, clock)
    try:
        recorded = app.get_aggregate(seal_id(story.head))
        assert isinstance(recorded, LogSeal)
        assert recorded.chain_hash == made["chain_hash"]
    finally:
        app.close()
    assert run_cli("--database", story.database, "audit", "verify", "--expect",
                   f"{made['position']}:{made['chain_hash']}") == 0
    assert "intact" in capsys.readouterr().out

    assert run_cli("--database", story.database, "audit", "seal", "--by", "officer:100102") == 1
    assert "may not seal_log" in capsys.readouterr().err
    assert run_cli("--database", story.database, "audit", "seal") == 0  # the table, by the system
    out = capsys.readouterr().out
    assert f"sealed the log at position {story.head + 1}" in out
    assert "pingjing audit verify --expect" in out


def test_sealing_refuses_an_empty_log_and_a_memory_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--database", str(tmp_path / "empty.sqlite3"), "audit", "seal") == 1
    assert "the log is empty" in capsys.readouterr().err
    assert run_cli("--database", "memory", "audit", "seal") == 2
    assert "memory store keeps no chain" in capsys.readouterr().err


def test_the_daily_seal_skips_a_log_where_nothing_happened_since(story: Story, clock: FakeClock) -> None:
    app = make_app(story.database, clock)
    try:
        first = seal_if_changed(app)
        assert first is not None
        assert first.position == story.head
        assert first.sealed_by == "system"
        assert seal_if_changed(app) is None, "only the seal itself was written since"
        County(app, clock).rate("satisfied")
        second = seal_if_changed(app)
        assert second is not None
        assert second.position == story.head + 2
        head = chain_head(app)
        assert head is not None
        assert head[0] == second.recorded_at
        assert app.recorder.select_notifications(start=head[0], limit=1)[0].topic == SEAL_TOPIC
    finally:
        app.close()


# -- the monthly bulletin --------------------------------------------------------------------------------------


def publish_monthly(database: str, clock: FakeClock, out: Path) -> tuple[Any, Reports, Any]:
    app = make_app(database, clock)
    reports = Reports(app, ViewStore.beside(app), out)
    return app, reports, reports.publish(ReportKind.MONTHLY, "2021-11", SUPERVISOR)


def test_the_monthly_bulletin_seals_the_log_first_and_prints_the_seal(
    story: Story, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app, reports, published = publish_monthly(story.database, clock, tmp_path / "reports")
    try:
        sealed = latest_seal(app, published.position)
        assert sealed is not None
        assert sealed.position == story.head, "the publication sealed the whole log first"
        assert sealed.recorded_at == story.head + 1 <= published.position
        document = json.loads(published.files["json"].read_text(encoding="utf-8"))
        assert document["report"]["seal"] == {
            "position": sealed.position,
            "chain_hash": sealed.chain_hash,
            "sealed_at": "2021-11-01 11:20",  # the story's clock when the bulletin was published
            "recorded_at": sealed.recorded_at,
        }
        check = f"pingjing audit verify --expect {sealed.position}:{sealed.chain_hash}"
        assert check in published.files["md"].read_text(encoding="utf-8")
        assert check in published.files["html"].read_text(encoding="utf-8")
        assert reports.verify(published.name).matches, "the seal is part of the content, found again at the position"
        weekly = reports.compute(ReportKind.WEEKLY, "2021-W44")
        assert "seal" not in weekly.data
    finally:
        app.close()

    # Anyone holding the bulletin checks the live log with the line it prints.
    markdown = published.files["md"].read_text(encoding="utf-8")
    match = re.search(r"--expect (\d+):([0-9a-f]{64})", markdown)
    assert match
    assert run_cli("--database", story.database, "audit", "verify", "--expect", f"{match[1]}:{match[2]}") == 0


def test_a_history_rewritten_after_the_bulletin_fails_against_the_printed_hash(
    story: Story, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app, _, published = publish_monthly(story.database, clock, tmp_path / "reports")
    app.close()
    printed = json.loads(published.files["json"].read_text(encoding="utf-8"))["report"]["seal"]
    raw = Raw(story.database)
    position = raw.position_of(RATING, 0)
    _, _, _, state = raw.row(position)
    raw.set_state(position, state.replace(b'"verdict":"satisfied"', b'"verdict":"dissatisfied"'))
    raw.rechain()

    code = run_cli("--database", story.database, "audit", "verify", "--format", "json",
                   "--expect", f"{printed['position']}:{printed['chain_hash']}")
    found = json.loads(capsys.readouterr().out)["problem"]
    assert code == 1
    # The earliest seal the rewrite contradicts is named first: the story's own, before the bulletin's.
    assert (found["kind"], found["position"]) == ("seal", story.seal.position)
    assert story.seal.position < printed["position"]


def test_a_bulletin_on_a_memory_store_has_no_seal(tmp_path: Path, clock: FakeClock) -> None:
    app = make_app("memory", clock)
    try:
        County(app, clock).setup().rate()
        reports = Reports(app, ViewStore.in_memory(), tmp_path / "reports")
        published = reports.publish(ReportKind.MONTHLY, "2021-11", SUPERVISOR)
        document = json.loads(published.files["json"].read_text(encoding="utf-8"))
        assert document["report"]["seal"] is None
        assert "audit verify" not in published.files["md"].read_text(encoding="utf-8")
        assert reports.verify(published.name).matches
    finally:
        app.close()


def test_the_latest_seal_is_the_one_at_or_before_a_position(tmp_path: Path, clock: FakeClock) -> None:
    story = tell(str(tmp_path / "events.sqlite3"), clock)
    app = make_app(story.database, clock)
    try:
        assert latest_seal(app, story.seal.recorded_at - 1) is None
        assert latest_seal(app, story.seal.recorded_at) == story.seal
        assert latest_seal(app, story.head) == story.seal
    finally:
        app.close()
