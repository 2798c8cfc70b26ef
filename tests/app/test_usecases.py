"""Happy paths through the application: intake, the Cao story, batches (DESIGN §2-§4)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain import commands as c
from domain.application import PingjingApp
from domain.errors import (
    AlreadyExistsError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from domain.ids import encounter_code_id, officer_id, unit_id
from domain.usecases import Receipt
from domain.values import (
    AccountabilityMeasure,
    CaseKind,
    Channel,
    CommendationKind,
    Role,
)
from domain.workflow import CaseState, CloseOutcome
from tests.conftest import ADMIN, CITIZEN, START, SUPERVISOR, SYSTEM, County


def rating(**fields: Any) -> c.SubmitRating:
    """A rating of officer 100102 (PS1), with ``fields`` changed."""
    data: dict[str, Any] = {
        "target": "officer", "key": "100102", "verdict": "satisfied",
        "service_score": 4, "attitude_score": 4, "efficiency_score": 4,
    }
    data.update(fields)
    return c.SubmitRating.model_validate(data)


def events_since(app: PingjingApp, position: int | None) -> list[tuple[int, Any]]:
    """Every stored event after ``position``, with its log position."""
    return list(app.iter_events(start=(position or 0) + 1))


def names(events: list[tuple[int, Any]]) -> list[str]:
    """``Aggregate.Event`` names of the events, in log order."""
    return [type(e).__qualname__ for _, e in events]


def stored(app: PingjingApp, text: str) -> bool:
    """Whether ``text`` appears in any stored event, raw or JSON-escaped."""
    forms = {text.encode(), json.dumps(text)[1:-1].encode()}
    notifications = app.recorder.select_notifications(start=1, limit=10_000)
    return any(form in n.state for n in notifications for form in forms)


# -- ratings and the cases they open (三个一) ----------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"verdict": "dissatisfied"}, CaseKind.DISSATISFACTION),
        ({"verdict": "satisfied", "complaint": "民警出警太慢"}, CaseKind.COMPLAINT),
        ({"verdict": "basically_satisfied", "suggestion": "窗口增加叫号机"}, CaseKind.SUGGESTION),
    ],
    ids=["dissatisfied", "complaint", "suggestion"],
)
def test_a_rating_that_calls_for_it_opens_a_case_pushed_to_the_unit_in_the_same_transaction(
    county: County, fields: dict[str, Any], kind: CaseKind
) -> None:
    app = county.app
    before = app.recorder.max_notification_id()
    receipt = app.submit_rating(rating(**fields), CITIZEN)

    assert receipt.case_ref is not None
    assert receipt.state == CaseState.PUSHED
    case = app.get_case(receipt.case_ref)
    assert case.kind is kind
    assert case.state is CaseState.PUSHED
    assert case.unit_id == unit_id("PS1")
    assert case.officer_id == officer_id("100102")
    assert case.rating_id == receipt.aggregate_id
    assert case.intake is Channel.QR

    written = events_since(app, before)
    assert sorted(names(written)) == ["Case.Opened", "Case.Pushed", "Rating.Submitted"]
    positions = [position for position, _ in written]
    assert positions == list(range(positions[0], positions[0] + 3)), "not adjacent in the log"
    by_name = {name: e for name, (_, e) in zip(names(written), written, strict=True)}
    opened, pushed = by_name["Case.Opened"], by_name["Case.Pushed"]
    submitted = by_name["Rating.Submitted"]
    assert names(written).index("Case.Opened") < names(written).index("Case.Pushed")
    assert len({opened.meta.correlation_id, pushed.meta.correlation_id,
                submitted.meta.correlation_id}) == 1
    assert (opened.meta.actor, opened.meta.role) == ("anonymous", Role.CITIZEN)
    assert (pushed.meta.actor, pushed.meta.role) == ("system", Role.SYSTEM)
    assert pushed.meta.occurred_at == opened.meta.occurred_at  # pushed at once
    assert app.get_aggregate(receipt.aggregate_id).case_ref == receipt.case_ref  # type: ignore[union-attr]


def test_a_dissatisfied_unit_rating_opens_a_case_of_that_unit_without_an_officer(
    county: County,
) -> None:
    receipt = county.app.submit_rating(
        rating(target="unit", key="PS2", verdict="dissatisfied"), CITIZEN
    )
    assert receipt.case_ref is not None
    case = county.app.get_case(receipt.case_ref)
    assert (case.unit_id, case.officer_id) == (unit_id("PS2"), None)


@pytest.mark.parametrize("verdict", ["satisfied", "basically_satisfied"])
def test_a_satisfied_rating_opens_no_case(county: County, verdict: str) -> None:
    app = county.app
    before = app.recorder.max_notification_id()
    receipt = app.submit_rating(rating(verdict=verdict, comment="态度很好"), CITIZEN)
    assert receipt.case_ref is None
    assert receipt.state is None
    assert names(events_since(app, before)) == ["Rating.Submitted"]


def test_a_phone_given_with_a_satisfied_rating_is_stored_nowhere(county: County) -> None:
    app = county.app
    app.submit_rating(
        rating(verdict="satisfied", comment="窗口服务周到", phone="139 1234 5678",
               citizen_name="曹某某"),
        CITIZEN,
    )
    assert stored(app, "窗口服务周到"), "the search does not see what the rating stored"
    for personal in ("139 1234 5678", "13912345678", "曹某某"):
        assert not stored(app, personal), f"{personal!r} was stored"


def test_a_phone_given_with_a_dissatisfied_rating_is_kept_on_the_case_for_the_callback(
    county: County,
) -> None:
    ref = county.rate("dissatisfied", phone="13912345678", citizen_name="曹某某")
    assert ref is not None
    case = county.app.get_case(ref)
    assert case.callable
    assert case.contact is not None
    assert (case.contact.phone, case.contact.name) == ("13912345678", "曹某某")


# -- cases opened by the office ----------------------------------------------------------------


def test_hotline_meeting_letter_and_home_visit_cases_record_their_intake_channel(
    county: County, subtests: pytest.Subtests
) -> None:
    app = county.app
    for intake in ("hotline", "meeting", "letter", "home_visit"):
        with subtests.test(msg=intake):
            before = app.recorder.max_notification_id()
            receipt = app.open_case(
                c.OpenCase(intake=intake, kind="complaint", unit_code="PS2", badge="100201",
                           summary="群众反映办事拖延", phone="13800000000"),
                SUPERVISOR,
            )
            assert receipt.case_ref is not None
            case = app.get_case(receipt.case_ref)
            assert case.intake is Channel(intake)
            assert case.state is CaseState.PUSHED
            assert (case.unit_id, case.officer_id) == (unit_id("PS2"), officer_id("100201"))
            assert case.rating_id is None
            assert case.callable
            written = events_since(app, before)
            assert names(written) == ["Case.Opened", "Case.Pushed"]
            assert written[0][1].meta.role is Role.SUPERVISOR
            assert written[1][1].meta.role is Role.SYSTEM


# -- encounter codes -------------------------------------------------------------------------


def test_an_encounter_code_links_and_verifies_the_rating_and_cannot_be_used_again(
    county: County,
) -> None:
    app = county.app
    logged = app.log_encounter(
        c.LogEncounter(kind="reception", happened_at=START, badge="100102", code="W1X2Y3Z4"),
        SYSTEM,
    )
    county.clock.advance(minutes=20)
    receipt = app.submit_rating(rating(encounter_code="W1X2Y3Z4"), CITIZEN)
    assert receipt.extra["verified"] is True
    submitted = app.get_aggregate(receipt.aggregate_id)  # type: ignore[arg-type]
    assert submitted is not None
    assert submitted.encounter_id == logged.aggregate_id  # type: ignore[attr-defined]

    before = app.recorder.max_notification_id()
    with pytest.raises(RuleViolationError, match="already been used"):
        app.submit_rating(rating(verdict="dissatisfied", encounter_code="W1X2Y3Z4"), CITIZEN)
    assert app.recorder.max_notification_id() == before


def test_a_rating_without_a_code_is_not_verified(county: County) -> None:
    receipt = county.app.submit_rating(rating(), CITIZEN)
    assert receipt.extra["verified"] is False


# -- the Cao case (seed, Nov 2021) --------------------------------------------------------------


def test_the_cao_story_from_complaint_to_silk_banner_is_told_by_the_case_events(
    county: County,
) -> None:
    app, clock, head = county.app, county.clock, county.station_head
    complaint = c.SubmitRating(
        target="unit", key="PS1", verdict="dissatisfied",
        service_score=1, attitude_score=2, efficiency_score=1,
        complaint="户籍业务办理拖延，多次往返未果", phone="13912345678", citizen_name="曹某",
    )
    ref = app.submit_rating(complaint, CITIZEN).case_ref
    assert ref is not None
    story: list[tuple[c.Command, Any, float]] = [
        (c.RecordSupervision(ref=ref, target="citizen", note="督察大队回访了解情况"), SUPERVISOR, 2),
        (c.FlagCase(ref=ref, reason="群众反映办事拖延，挂牌督办"), SUPERVISOR, 1),
        (c.ContactCitizen(ref=ref, note="所长上门当面沟通"), head, 3),
        (c.ReportResult(ref=ref, result="已为群众办结户籍业务并致歉"), head, 20),
        (c.RecordCallback(ref=ref, satisfied=True, note="群众表示满意"), SUPERVISOR, 4),
        (c.RecordAccountability(ref=ref, badge="100102", measure="criticism_notice",
                                note="全局通报批评"), SUPERVISOR, 24),
        (c.CloseCase(ref=ref, resolution="问题解决，群众认可", citizen_accepted=True),
         SUPERVISOR, 1),
        (c.RecordCommendation(ref=ref, kind="banner", note="曹某送来锦旗"), SUPERVISOR, 72),
    ]
    for command, context, hours_later in story:
        clock.advance(hours=hours_later)
        app.execute(command, context)

    case = app.get_case(ref)
    assert case.state is CaseState.CLOSED
    assert case.outcome is CloseOutcome.RESOLVED
    assert case.citizen_accepted is True
    assert case.flagged
    assert case.kind is CaseKind.COMPLAINT
    assert case.accountability == [(officer_id("100102"), AccountabilityMeasure.CRITICISM_NOTICE)]
    assert case.commendations == [CommendationKind.BANNER]

    events = app.case_events(ref)
    assert [type(e).__name__ for e in events] == [
        "Opened", "Pushed", "Supervised", "Flagged", "CitizenContacted", "ResultReported",
        "CallbackRecorded", "AccountabilityRecorded", "Closed", "CommendationRecorded",
    ]
    assert [e.meta.role for e in events] == [
        Role.CITIZEN, Role.SYSTEM, Role.SUPERVISOR, Role.SUPERVISOR, Role.UNIT_HEAD,
        Role.UNIT_HEAD, Role.SUPERVISOR, Role.SUPERVISOR, Role.SUPERVISOR, Role.SUPERVISOR,
    ]
    moments = [e.meta.occurred_at for e in events]
    assert moments == sorted(moments)
    assert moments[-1] == clock.now()


# -- batches ------------------------------------------------------------------------------------


def test_a_batch_saves_the_good_commands_and_returns_each_bad_ones_error_in_place(
    county: County,
) -> None:
    app = county.app
    before = app.recorder.max_notification_id()
    outcomes = app.execute_batch([
        (c.RegisterUnit(code="PS3", unit_name="南关派出所", kind="police_station",
                        parent_code="BUR"), ADMIN),
        (c.RegisterUnit(code="PS1", unit_name="重复", kind="police_station"), ADMIN),
        (c.RegisterOfficer(badge="100301", officer_name="孙警官", kind="police",
                           unit_code="PS3"), ADMIN),
        (rating(key="100301"), ADMIN),
        (c.RegisterOfficer(badge="100302", officer_name="周警官", kind="police",
                           unit_code="PS9"), ADMIN),
        (rating(key="100301", verdict="dissatisfied"), CITIZEN),
    ])
    assert [type(o) for o in outcomes] == [
        Receipt, AlreadyExistsError, Receipt, PermissionDeniedError, NotFoundError, Receipt,
    ]
    assert isinstance(outcomes[5], Receipt)
    assert names(events_since(app, before)) == [
        "Unit.Registered", "Officer.Registered", "Case.Opened", "Case.Pushed", "Rating.Submitted",
    ]
    assert app.get_officer("100301").unit_id == unit_id("PS3")
    assert outcomes[5].case_ref is not None
    assert app.get_case(outcomes[5].case_ref).unit_id == unit_id("PS3")


def test_a_second_rating_with_the_same_code_in_one_batch_fails_alone(county: County) -> None:
    app = county.app
    app.log_encounter(
        c.LogEncounter(kind="dispatch", happened_at=START, badge="100102", code="ONCE0001"),
        SYSTEM,
    )
    before = app.recorder.max_notification_id()
    first, second = app.execute_batch([
        (rating(verdict="dissatisfied", encounter_code="ONCE0001"), CITIZEN),
        (rating(verdict="dissatisfied", encounter_code="ONCE0001"), CITIZEN),
    ])
    assert isinstance(second, RuleViolationError)
    assert isinstance(first, Receipt)
    assert first.extra["verified"] is True
    written = events_since(app, before)
    assert sorted(names(written)) == [
        "Case.Opened", "Case.Pushed", "EncounterCode.Redeemed", "Rating.Submitted",
    ]
    redeemed = [e for _, e in written if e.originator_id == encounter_code_id("ONCE0001")]
    assert len(redeemed) == 1
    assert redeemed[0].rating_id == first.aggregate_id


def test_a_failed_command_in_a_batch_leaves_none_of_its_own_partial_changes(
    county: County,
) -> None:
    app = county.app
    ref = county.open_case()
    app.log_encounter(c.LogEncounter(kind="duty", happened_at=START, badge="100102",
                                     external_ref="JJ-1", code="TAKEN001"), SYSTEM)
    before = app.recorder.max_notification_id()
    outcomes = app.execute_batch([
        # Its first encounter is fine; its second clashes, so neither may be kept.
        (c.LogEncounters(encounters=[
            c.LogEncounter(kind="dispatch", happened_at=START, badge="100102", external_ref="JJ-2"),
            c.LogEncounter(kind="dispatch", happened_at=START, badge="100102", external_ref="JJ-1"),
        ]), SYSTEM),
        (c.FlagCase(ref=ref, reason="挂牌督办"), SUPERVISOR),
        # The encounter is added before its code is found taken: it must not be kept either.
        (c.LogEncounter(kind="service", happened_at=START, badge="F10103", external_ref="JJ-3",
                        code="TAKEN001"), SYSTEM),
    ])
    assert [type(o) for o in outcomes][0::2] == [AlreadyExistsError, AlreadyExistsError]
    assert names(events_since(app, before)) == ["Case.Flagged"]
    # Both references are still free.
    for ref_, badge in (("JJ-2", "100102"), ("JJ-3", "F10103")):
        app.log_encounter(
            c.LogEncounter(kind="duty", happened_at=START, badge=badge, external_ref=ref_), SYSTEM
        )


def test_a_batch_in_which_every_command_fails_writes_nothing(county: County) -> None:
    app = county.app
    ref = county.open_case()
    before = app.recorder.max_notification_id()
    outcomes = app.execute_batch([
        (c.ReportResult(ref=ref, result="尚未联系就报告"), county.station_head),  # illegal move
        (c.FlagCase(ref=ref, reason="挂牌"), CITIZEN),  # wrong role
        (c.RecordOfficerLeft(badge="999999", reason="辞职"), ADMIN),  # unknown officer
    ])
    assert all(isinstance(o, Exception) for o in outcomes)
    assert app.recorder.max_notification_id() == before
