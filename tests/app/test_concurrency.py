"""Two writers on one store acting on the same case at once: one wins, nothing is lost.

Each writer is its own :class:`PingjingApp` (as two API processes would be) on the same
SQLite file or PostgreSQL schema. To make the race deterministic, a writer is held at the
moment it hands its events to the store, after it has loaded and decided.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from domain import commands as c
from domain.application import PingjingApp
from domain.errors import ConflictError, PingjingError
from domain.ids import encounter_code_id
from domain.usecases import Receipt
from domain.workflow import CaseState
from tests.conftest import CITIZEN, START, SUPERVISOR, SYSTEM, County, make_app
from tests.fakes import FakeClock, SequentialIds

Apps = tuple[PingjingApp, PingjingApp]


@pytest.fixture
def shared_store(durable_database: str) -> str:
    """One SQLite file or PostgreSQL schema for both writers."""
    return durable_database


@pytest.fixture
def apps(shared_store: str, clock: FakeClock) -> Iterator[Apps]:
    """Two applications on the same store, like two API processes."""
    first = make_app(shared_store, clock)
    second = make_app(shared_store, clock)
    second.ids = SequentialIds(seed=1_000_000)  # another process never mints the same ids
    yield first, second
    second.close()
    first.close()


@pytest.fixture
def county(apps: Apps, clock: FakeClock) -> County:
    """The tiny county, registered through the first writer."""
    return County(apps[0], clock).setup()


def before_first_write(monkeypatch: pytest.MonkeyPatch, app: PingjingApp,
                       hook: Callable[[], object]) -> None:
    """Run ``hook`` once, when ``app`` is about to store its next events."""
    insert = app.recorder.insert_events
    pending = [hook]

    def held_insert(*args: Any, **kwargs: Any) -> Any:
        while pending:
            pending.pop()()
        return insert(*args, **kwargs)

    monkeypatch.setattr(app.recorder, "insert_events", held_insert)


def outcome_of(run: Callable[[], Receipt]) -> Receipt | PingjingError:
    """The receipt, or the domain error instead of raising it."""
    try:
        return run()
    except PingjingError as error:
        return error


def case_event_names(app: PingjingApp, ref: str) -> list[str]:
    """The case's event names, oldest first, as stored."""
    return [type(e).__name__ for e in app.case_events(ref)]


def test_two_writers_contacting_the_same_case_at_once_one_wins_the_other_gets_a_conflict(
    apps: Apps, county: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = county.open_case()
    # Both writers know the case at the same version before either writes.
    assert apps[0].get_case(ref).version == apps[1].get_case(ref).version
    before = apps[0].recorder.max_notification_id() or 0
    both_decided = threading.Barrier(2, timeout=20)
    for app in apps:
        before_first_write(monkeypatch, app, both_decided.wait)

    def contact(app: PingjingApp, note: str) -> Receipt | PingjingError:
        command = c.ContactCitizen(ref=ref, note=note)
        return outcome_of(lambda: app.contact_citizen(command, county.station_head))

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(contact, apps, ["first writer", "second writer"]))

    winners = [i for i, o in enumerate(outcomes) if isinstance(o, Receipt)]
    losers = [o for o in outcomes if isinstance(o, ConflictError)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1, outcomes
    assert ref in str(losers[0])
    assert apps[0].recorder.max_notification_id() == before + 1
    contacted = [e for e in apps[0].case_events(ref) if type(e).__name__ == "CitizenContacted"]
    assert len(contacted) == 1
    assert contacted[0].note == ["first writer", "second writer"][winners[0]]
    for app in apps:
        assert app.get_case(ref).state is CaseState.CONTACTED

    # The loser reloads and carries on from the winner's state.
    loser = apps[1 - winners[0]]
    loser.report_result(c.ReportResult(ref=ref, result="已处理"), county.station_head)
    assert case_event_names(apps[winners[0]], ref) == [
        "Opened", "Pushed", "CitizenContacted", "ResultReported",
    ]


def test_a_writer_that_loaded_the_case_before_another_saved_gets_a_conflict_naming_it(
    apps: Apps, county: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = apps
    ref = county.open_case()
    flag = c.FlagCase(ref=ref, reason="挂牌督办")
    # The second writer has decided; the first flags the case before the second stores it.
    before_first_write(monkeypatch, second, lambda: first.flag_case(flag, SUPERVISOR))
    supervise = c.RecordSupervision(ref=ref, target="unit", note="督促派出所")
    with pytest.raises(ConflictError) as conflict:
        second.record_supervision(supervise, SUPERVISOR)
    assert f"case {ref}" in str(conflict.value)
    assert case_event_names(first, ref) == ["Opened", "Pushed", "Flagged"]
    # Nothing was lost: retried, the second writer's move lands after the first's.
    second.record_supervision(supervise, SUPERVISOR)
    assert case_event_names(second, ref) == ["Opened", "Pushed", "Flagged", "Supervised"]


def test_a_batch_in_which_one_command_conflicts_still_saves_the_others(
    apps: Apps, county: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = apps
    contested, other = county.open_case(), county.open_case()
    head = county.station_head
    before_first_write(monkeypatch, second, lambda: first.contact_citizen(
        c.ContactCitizen(ref=contested, note="first writer"), head))
    outcomes = second.execute_batch([
        (c.ContactCitizen(ref=contested, note="second writer"), head),
        (c.FlagCase(ref=other, reason="挂牌督办"), SUPERVISOR),
        (c.RecordSupervision(ref=contested, target="citizen", note="督察回访"), SUPERVISOR),
    ])
    refused, flagged, supervised = outcomes
    # Both commands decided on the contested case as it was before the other writer's move get
    # a conflict naming it; the command on another case is decided again alone and saved.
    assert isinstance(refused, ConflictError), refused
    assert contested in str(refused)
    assert isinstance(supervised, ConflictError), supervised
    assert contested in str(supervised)
    assert isinstance(flagged, Receipt)
    assert case_event_names(first, other) == ["Opened", "Pushed", "Flagged"]
    assert case_event_names(first, contested) == ["Opened", "Pushed", "CitizenContacted"]
    [contacted] = [e for e in first.case_events(contested) if type(e).__name__ == "CitizenContacted"]
    assert contacted.note == "first writer"


def _race_for_one_code(
    apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> tuple[Receipt, ConflictError, int]:
    """Both writers redeem one encounter code with a dissatisfied rating; the first wins."""
    first, second = apps
    first.log_encounter(
        c.LogEncounter(kind="reception", happened_at=START, badge="100102", code="RACE0001"),
        SYSTEM,
    )
    rating = c.SubmitRating(
        target="officer", key="100102", verdict="dissatisfied", service_score=1,
        attitude_score=1, efficiency_score=1, encounter_code="RACE0001",
    )
    before = first.recorder.max_notification_id() or 0
    won: list[Receipt] = []
    before_first_write(monkeypatch, second, lambda: won.append(first.submit_rating(rating, CITIZEN)))
    with pytest.raises(ConflictError) as conflict:
        second.submit_rating(rating, CITIZEN)
    return won[0], conflict.value, before


def test_a_code_redeemed_by_two_ratings_at_once_counts_once_and_the_loser_leaves_nothing(
    apps: Apps, county: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner, _, before = _race_for_one_code(apps, monkeypatch)
    written = [type(e).__qualname__ for _, e in apps[0].iter_events(start=before + 1)]
    assert sorted(written) == [
        "Case.Opened", "Case.Pushed", "EncounterCode.Redeemed", "Rating.Submitted",
    ]
    code = apps[1].get_aggregate(encounter_code_id("RACE0001"))
    assert code is not None
    assert code.redeemed_by == winner.aggregate_id  # type: ignore[attr-defined]


def test_a_conflict_names_only_what_the_other_writer_changed(
    apps: Apps, county: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, conflict, _ = _race_for_one_code(apps, monkeypatch)
    message = str(conflict)
    assert "case PJ-" not in message, message  # the loser's case was never stored
    assert "rating " not in message, message


class RepeatingTokens(SequentialIds):
    """Case reference tokens that repeat: the first two are the same."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = ["7K3M9Q", "7K3M9Q"]

    def new_token(self, length: int) -> str:
        """The scripted tokens first, then counting ones."""
        return self.tokens.pop(0) if self.tokens else super().new_token(length)


def test_a_batch_whose_new_case_reference_is_already_taken_decides_that_command_again_with_a_fresh_one(
    app: PingjingApp, clock: FakeClock
) -> None:
    County(app, clock).setup()
    app.ids = RepeatingTokens()
    hotline = c.OpenCase(intake="hotline", kind="complaint", unit_code="PS1", summary="窗口办事拖延")
    first = app.execute(hotline, SUPERVISOR)
    # In a batch, a new reference is not looked up (the transaction would refuse a clash): this one clashes.
    outcomes = app.execute_batch([(hotline, SUPERVISOR), (hotline.model_copy(update={"unit_code": "PS2"}), SUPERVISOR)])
    assert all(isinstance(o, Receipt) for o in outcomes), outcomes
    refs = [first.case_ref, *(o.case_ref for o in outcomes if isinstance(o, Receipt))]
    assert len(set(refs)) == 3, refs
    assert first.case_ref is not None
    assert first.case_ref.endswith("7K3M9Q")
    assert app.get_case(first.case_ref).unit_id != app.get_case(str(refs[2])).unit_id
