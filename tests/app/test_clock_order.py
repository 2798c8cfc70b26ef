"""A live command whose aggregate another writer changed after it read the clock is decided again, not refused.

Two processes read their clocks, the later one writes first: the earlier one then finds the
case's latest event after its own moment. Its command was not decided yet, so it is decided
once more with a fresh reading; only if the other writer's clock stays ahead is it a conflict.
A back-dated record (an import's ``at``) that does not fit the history is still bad input.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from domain import commands as c
from domain.application import Context, PingjingApp
from domain.errors import ConflictError, OutOfOrderError
from tests.conftest import START, SUPERVISOR, County, make_app
from tests.fakes import FakeClock


class SteppingClock(FakeClock):
    """A clock that moves on by ``step`` each time it is read."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        super().__init__(start)
        self.step = step

    def now(self) -> datetime:
        """The current moment; the next reading is later."""
        moment = self.current
        self.current += self.step
        return moment


def supervise(ref: str) -> c.RecordSupervision:
    return c.RecordSupervision.model_validate({"ref": ref, "target": "unit", "note": "督办"})


@pytest.fixture
def ahead_and_behind(tmp_path: Path) -> tuple[str, PingjingApp]:
    """A case, and another process whose clock is a second ahead that supervised it just now."""
    path = str(tmp_path / "race.sqlite3")
    clock = FakeClock(START)
    app = make_app(path, clock)
    ref = County(app, clock).setup().open_case()
    app.close()
    ahead = make_app(path, FakeClock(START + timedelta(seconds=1)))
    ahead.record_supervision(supervise(ref), SUPERVISOR)
    return ref, ahead


def test_a_command_that_read_the_clock_before_another_writer_wrote_is_decided_again_with_a_fresh_reading(
    tmp_path: Path, ahead_and_behind: tuple[str, PingjingApp]
) -> None:
    ref, ahead = ahead_and_behind
    behind = make_app(str(tmp_path / "race.sqlite3"), SteppingClock(START + timedelta(milliseconds=500),
                                                                    timedelta(seconds=1)))
    receipt = behind.record_supervision(supervise(ref), SUPERVISOR)
    assert receipt.state == "pushed"
    supervised = [e for e in behind.case_events(ref) if type(e).__qualname__ == "Case.Supervised"]
    assert len(supervised) == 2
    assert supervised[1].timestamp > supervised[0].timestamp
    behind.close()
    ahead.close()


def test_a_writer_whose_clock_stays_behind_gets_a_conflict_not_a_bad_input(
    tmp_path: Path, ahead_and_behind: tuple[str, PingjingApp]
) -> None:
    ref, ahead = ahead_and_behind
    behind = make_app(str(tmp_path / "race.sqlite3"), FakeClock(START + timedelta(milliseconds=500)))
    with pytest.raises(ConflictError, match="changed by someone else"):
        behind.record_supervision(supervise(ref), SUPERVISOR)
    behind.close()
    ahead.close()


def test_a_back_dated_record_before_the_latest_event_is_still_refused_as_out_of_order(
    tmp_path: Path, ahead_and_behind: tuple[str, PingjingApp]
) -> None:
    ref, ahead = ahead_and_behind
    back_dated = Context(SUPERVISOR.actor, at=START + timedelta(milliseconds=500))
    with pytest.raises(OutOfOrderError, match="is before its latest event"):
        ahead.record_supervision(supervise(ref), back_dated)
    ahead.close()
