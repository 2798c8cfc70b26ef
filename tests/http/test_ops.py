"""``/healthz`` and ``/metrics``: what operations see, without a token and without personal data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from domain import commands as c
from tests.conftest import SYSTEM
from tests.fakes import FakeClock
from tests.http.conftest import World, make_world


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the Prometheus text."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = "^" + re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"no sample {name}{{{wanted}}} in\n{text}"
    return float(found.group(1))


def test_healthz_reports_the_store_the_projections_and_the_scheduler(world: World) -> None:
    world.get("supervisor", "/api/v1/cases")  # a read brings the views up to the log
    r = world.client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["problems"] == []
    assert body["store"] == {"reachable": True, "head": world.head()}
    assert body["projections"] == {
        "cases": {"position": world.head(), "lag": 0},
        "activity": {"position": world.head(), "lag": 0},
    }
    assert body["scheduler_leader"] == "disabled"


@pytest.fixture
def impatient(tmp_path: Path, clock: FakeClock) -> Iterator[World]:
    """An install that is unhealthy as soon as a projection falls behind."""
    made = make_world(str(tmp_path / "lag.sqlite3"), tmp_path, clock, health_max_lag=0)
    yield made
    made.client.close()
    made.rt.close()


def test_healthz_is_503_while_a_projection_lags_beyond_the_limit(impatient: World) -> None:
    impatient.county.open_case()
    r = impatient.client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "unhealthy"
    assert any("projection cases is" in p for p in r.json()["problems"])
    impatient.get("supervisor", "/api/v1/cases")
    assert impatient.client.get("/healthz").status_code == 200


class _AwayRecorder:
    """A recorder whose database is gone."""

    def max_notification_id(self) -> Any:
        raise OperationalError("connection refused")


def test_healthz_and_metrics_say_when_the_store_is_away(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world.rt.app, "recorder", _AwayRecorder())
    r = world.client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["store"] == {"reachable": False}
    assert r.json()["problems"] == ["the event store cannot be read: OperationalError"]
    text = world.client.get("/metrics").text
    assert sample(text, "pingjing_store_up") == 0


def test_a_request_while_the_store_is_away_is_503_not_500(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def away(token_hash: str) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(world.rt.app, "get_api_token", away)
    failed = world.get("supervisor", "/api/v1/me")
    assert failed.status_code == 503
    assert failed.json() == {"error": "unavailable",
                             "message": "the event store cannot be reached; nothing was written; try again later"}


def test_metrics_count_requests_events_lag_deadlines_and_breaches(world: World) -> None:
    ref = world.county.open_case()
    world.rt.app.record_sla_breach(c.RecordSlaBreach(ref=ref, step="contact", round=1), SYSTEM)
    world.get("supervisor", f"/api/v1/cases/{ref}")
    world.get("supervisor", "/api/v1/cases/PJ-20211101-ZZZZZZ")
    world.get(None, "/api/v1/cases")
    world.post("unit_head", f"/api/v1/cases/{ref}/contact", {"note": "已联系"})

    r = world.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    route = "/api/v1/cases/{ref}"
    assert sample(text, "pingjing_http_requests_total", method="GET", route=route, status="200") == 1
    assert sample(text, "pingjing_http_requests_total", method="GET", route=route, status="404") == 1
    assert sample(text, "pingjing_http_requests_total", method="GET", route="/api/v1/cases", status="401") == 1
    assert sample(text, "pingjing_commands_total", command="contact_citizen", outcome="ok") == 1
    assert sample(text, "pingjing_events_appended_total") == world.head()
    assert sample(text, "pingjing_projection_lag_events", projection="cases") == 1  # the contact, not yet read
    assert sample(text, "pingjing_projection_position", projection="activity") == world.head() - 1
    # The case waits on its contact (breached, still running) and feedback; the breach is on record.
    assert sample(text, "pingjing_sla_pending_deadlines") == 2
    assert sample(text, "pingjing_sla_breaches_recorded_total") == 1
    assert sample(text, "pingjing_sla_warnings_recorded_total") == 0
    assert sample(text, "pingjing_scheduler_enabled") == 0
    assert sample(text, "pingjing_scheduler_leader") == 0
    assert "PJ-" not in text  # routes by their template, never a case
    assert "_created" not in text
