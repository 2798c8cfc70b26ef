"""Bad input gets a clear error that names what was wrong, and writes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pydantic
import pytest

from domain import commands as c
from domain.application import Context, PingjingApp
from domain.errors import (
    AlreadyExistsError,
    NotFoundError,
    RuleViolationError,
    ValidationError,
)
from domain.ids import LOCAL_TZ
from domain.usecases.base import CASE_REF_TOKEN_LENGTH
from tests.conftest import ADMIN, CITIZEN, START, SUPERVISOR, SYSTEM, County, head_of, make_app
from tests.fakes import FakeClock

UNKNOWN_REF = "PJ-20211101-" + "Z" * CASE_REF_TOKEN_LENGTH
HEAD = head_of("100101")


@contextmanager
def writes_nothing(app: PingjingApp) -> Iterator[None]:
    """Fail unless the event log ends where it started."""
    before = app.recorder.max_notification_id()
    yield
    assert app.recorder.max_notification_id() == before, "the event log grew"


def rating(**fields: Any) -> c.SubmitRating:
    """A satisfied rating of officer 100102, with ``fields`` changed."""
    data: dict[str, Any] = {
        "target": "officer", "key": "100102", "verdict": "satisfied",
        "service_score": 4, "attitude_score": 4, "efficiency_score": 4,
    }
    data.update(fields)
    return c.SubmitRating.model_validate(data)


def log_code(app: PingjingApp, code: str, *, badge: str | None = "100102",
             unit_code: str | None = None, at: datetime = START) -> None:
    """Log an encounter that hands the citizen the one-time ``code``."""
    encounter = c.LogEncounter(
        kind="reception", happened_at=at, badge=badge, unit_code=unit_code, code=code
    )
    app.log_encounter(encounter, SYSTEM)


# -- unknown keys ---------------------------------------------------------------------------

Make = Callable[[County], tuple[c.Command, Context]]

UNKNOWN_UNIT: dict[str, Make] = {
    "register_unit_parent": lambda k: (c.RegisterUnit(
        code="PS3", unit_name="南关派出所", kind="police_station", parent_code="PS9"), ADMIN),
    "register_officer": lambda k: (c.RegisterOfficer(
        badge="100109", officer_name="王警官", kind="police", unit_code="PS9"), ADMIN),
    "transfer_officer": lambda k: (c.TransferOfficer(badge="100102", unit_code="PS9"), ADMIN),
    "assign_unit_head": lambda k: (c.AssignUnitHead(unit_code="PS9", badge="100102"), ADMIN),
    "issue_qr": lambda k: (c.IssueQr(subject="unit", key="PS9"), ADMIN),
    "log_encounter": lambda k: (c.LogEncounter(
        kind="duty", happened_at=START, unit_code="PS9"), SYSTEM),
    "submit_rating": lambda k: (rating(target="unit", key="PS9", verdict="dissatisfied"), CITIZEN),
    "open_case": lambda k: (c.OpenCase(
        intake="hotline", kind="complaint", unit_code="PS9", summary="出警太慢"), SUPERVISOR),
    "record_commendation": lambda k: (c.RecordCommendation(
        ref=k.open_case(), kind="banner", unit_code="PS9", note="锦旗"), SUPERVISOR),
}

UNKNOWN_BADGE: dict[str, Make] = {
    "submit_rating": lambda k: (rating(key="999999", verdict="dissatisfied"), CITIZEN),
    "transfer_officer": lambda k: (c.TransferOfficer(badge="999999", unit_code="PS2"), ADMIN),
    "record_officer_left": lambda k: (c.RecordOfficerLeft(badge="999999", reason="辞职"), ADMIN),
    "assign_unit_head": lambda k: (c.AssignUnitHead(unit_code="PS1", badge="999999"), ADMIN),
    "issue_qr": lambda k: (c.IssueQr(subject="officer", key="999999"), ADMIN),
    "log_encounter": lambda k: (c.LogEncounter(
        kind="duty", happened_at=START, badge="999999"), SYSTEM),
    "open_case": lambda k: (c.OpenCase(
        intake="letter", kind="complaint", unit_code="PS1", badge="999999", summary="态度差"),
        SUPERVISOR),
    "record_accountability": lambda k: (c.RecordAccountability(
        ref=k.open_case(), badge="999999", measure="criticism_notice", note="通报批评"),
        SUPERVISOR),
}


def _refused_as_unknown(
    county: County, subtests: pytest.Subtests, makes: dict[str, Make], what: str, key: str
) -> None:
    for name, make in makes.items():
        with subtests.test(msg=name):
            command, context = make(county)
            with writes_nothing(county.app), pytest.raises(NotFoundError) as refused:
                county.app.execute(command, context)
            assert (refused.value.what, refused.value.key) == (what, key)
            assert key in str(refused.value)


def test_an_unknown_unit_code_is_not_found_and_named(
    county: County, subtests: pytest.Subtests
) -> None:
    _refused_as_unknown(county, subtests, UNKNOWN_UNIT, "unit", "PS9")


def test_an_unknown_officer_badge_is_not_found_and_named(
    county: County, subtests: pytest.Subtests
) -> None:
    _refused_as_unknown(county, subtests, UNKNOWN_BADGE, "officer", "999999")


#: Every case move on a reference nobody issued, made by the role allowed to make it.
UNKNOWN_CASE: list[tuple[c.CaseCommand, Context]] = [
    (c.ContactCitizen(ref=UNKNOWN_REF, note="已联系"), HEAD),
    (c.ReportResult(ref=UNKNOWN_REF, result="已处理"), HEAD),
    (c.RecordCallback(ref=UNKNOWN_REF, satisfied=True, note="满意"), SUPERVISOR),
    (c.RecordCallbackAttempt(ref=UNKNOWN_REF, note="无人接听"), SUPERVISOR),
    (c.RecordSupervision(ref=UNKNOWN_REF, target="citizen", note="督办"), SUPERVISOR),
    (c.FlagCase(ref=UNKNOWN_REF, reason="挂牌"), SUPERVISOR),
    (c.OrderRectification(ref=UNKNOWN_REF, instructions="整改"), SUPERVISOR),
    (c.ReportRectified(ref=UNKNOWN_REF, note="已整改"), HEAD),
    (c.VerifyRectification(ref=UNKNOWN_REF, implemented=True, note="已落实"), SUPERVISOR),
    (c.CloseCase(ref=UNKNOWN_REF, resolution="办结"), SUPERVISOR),
    (c.ReopenCase(ref=UNKNOWN_REF, reason="重办"), SUPERVISOR),
    (c.RecordAccountability(
        ref=UNKNOWN_REF, badge="100102", measure="criticism_notice", note="通报"), SUPERVISOR),
    (c.RecordCommendation(ref=UNKNOWN_REF, kind="praise", note="点赞"), SUPERVISOR),
    (c.RecordSlaWarning(ref=UNKNOWN_REF, step="contact", round=1), SYSTEM),
    (c.RecordSlaBreach(ref=UNKNOWN_REF, step="contact", round=1), SYSTEM),
]


def test_the_unknown_case_list_covers_every_case_move() -> None:
    case_commands = {k for k in c.ALL_COMMANDS if issubclass(k, c.CaseCommand)}
    assert {type(command) for command, _ in UNKNOWN_CASE} == case_commands


def test_an_unknown_case_ref_is_not_found_and_named(
    county: County, subtests: pytest.Subtests
) -> None:
    county.open_case()  # a real case exists; it is not the one asked for
    for command, context in UNKNOWN_CASE:
        with subtests.test(msg=command.name):
            with writes_nothing(county.app), pytest.raises(NotFoundError) as refused:
                county.app.execute(command, context)
            assert (refused.value.what, refused.value.key) == ("case", UNKNOWN_REF)
            assert UNKNOWN_REF in str(refused.value)


def test_reading_an_unknown_or_malformed_case_ref_is_refused(county: County) -> None:
    with pytest.raises(NotFoundError, match=UNKNOWN_REF):
        county.app.get_case(UNKNOWN_REF)
    with pytest.raises(ValidationError, match="not a case reference"):
        county.app.get_case("12345")


# -- malformed fields (the command model) ------------------------------------------------------
# The model refuses these before any store is touched, so one store is enough.


@pytest.fixture
def model_county(clock: FakeClock) -> Iterator[County]:
    """The tiny county in memory."""
    app = make_app("memory", clock)
    yield County(app, clock).setup()
    app.close()


def _refused_field(county: County, build: Callable[[], c.Command], context: Context) -> Any:
    """Build and run a command whose model must refuse it; return pydantic's error."""
    with writes_nothing(county.app), pytest.raises(pydantic.ValidationError) as refused:
        county.app.execute(build(), context)
    return refused.value


@pytest.mark.parametrize("score", [0, 6, -1])
def test_a_score_outside_one_to_five_is_refused_naming_the_field(
    model_county: County, score: int
) -> None:
    error = _refused_field(model_county, lambda: rating(attitude_score=score), CITIZEN)
    assert [e["loc"] for e in error.errors()] == [("attitude_score",)]
    assert "attitude_score" in str(error)


@pytest.mark.parametrize("score", [3.5, "3", True, None], ids=["float", "text", "bool", "none"])
def test_a_score_that_is_not_an_integer_is_refused_naming_the_field(
    model_county: County, score: object
) -> None:
    error = _refused_field(model_county, lambda: rating(service_score=score), CITIZEN)
    assert [e["loc"] for e in error.errors()] == [("service_score",)]
    assert "service_score" in str(error)


@pytest.mark.parametrize("verdict", ["", "meh", "SATISFIED "], ids=["empty", "unknown", "capitals"])
def test_an_empty_or_unknown_verdict_is_refused_naming_the_field(
    model_county: County, verdict: str
) -> None:
    error = _refused_field(model_county, lambda: rating(verdict=verdict), CITIZEN)
    assert [e["loc"] for e in error.errors()] == [("verdict",)]
    assert "verdict" in str(error)


def _long_contact_note(k: County) -> Callable[[], c.Command]:
    ref = k.open_case()
    return lambda: c.ContactCitizen(ref=ref, note="联" * 1001)


TOO_LONG: dict[str, tuple[Callable[[County], Callable[[], c.Command]], Context, str]] = {
    "complaint": (lambda k: lambda: rating(complaint="慢" * 2001), CITIZEN, "complaint"),
    "comment": (lambda k: lambda: rating(comment="好" * 501), CITIZEN, "comment"),
    "case_summary": (lambda k: lambda: c.OpenCase(
        intake="hotline", kind="complaint", unit_code="PS1", summary="慢" * 2001),
        SUPERVISOR, "summary"),
    "contact_note": (_long_contact_note, HEAD, "note"),
    "unit_name": (lambda k: lambda: c.RegisterUnit(
        code="PS3", unit_name="所" * 65, kind="police_station"), ADMIN, "unit_name"),
}


@pytest.mark.parametrize("case", TOO_LONG.values(), ids=TOO_LONG.keys())
def test_a_text_over_its_limit_is_refused_naming_the_field(
    model_county: County, case: tuple[Callable[[County], Callable[[], c.Command]], Context, str]
) -> None:
    prepare, context, field = case
    error = _refused_field(model_county, prepare(model_county), context)
    assert [e["loc"] for e in error.errors()] == [(field,)]
    assert "at most" in str(error)


def test_a_text_at_its_limit_is_accepted(model_county: County) -> None:
    receipt = model_county.app.submit_rating(rating(complaint="慢" * 2000), CITIZEN)
    assert receipt.case_ref is not None


def test_a_blank_note_is_refused_naming_the_field(model_county: County) -> None:
    ref = model_county.open_case()
    error = _refused_field(model_county, lambda: c.ContactCitizen(ref=ref, note="   "), HEAD)
    assert [e["loc"] for e in error.errors()] == [("note",)]


def test_a_name_without_a_phone_is_refused(model_county: County) -> None:
    error = _refused_field(
        model_county, lambda: rating(verdict="dissatisfied", citizen_name="曹某"), CITIZEN
    )
    assert "phone" in str(error)


def test_an_encounter_time_without_a_zone_is_refused_naming_the_field(
    model_county: County,
) -> None:
    naive = START.replace(tzinfo=None)
    error = _refused_field(
        model_county, lambda: c.LogEncounter(kind="duty", happened_at=naive, badge="100102"), SYSTEM
    )
    assert [e["loc"] for e in error.errors()] == [("happened_at",)]


# -- the command's time (Context.at) ---------------------------------------------------------


def test_a_command_time_without_a_zone_is_refused(county: County) -> None:
    naive = START.replace(tzinfo=None)
    with writes_nothing(county.app), pytest.raises(ValidationError, match="no time zone"):
        county.app.submit_rating(rating(verdict="dissatisfied"), Context(CITIZEN.actor, at=naive))


def test_a_command_time_in_the_future_is_refused(county: County) -> None:
    later = START + timedelta(hours=1)
    ref = county.open_case()
    with writes_nothing(county.app), pytest.raises(ValidationError, match="in the future"):
        county.app.contact_citizen(
            c.ContactCitizen(ref=ref, note="已联系"), Context(HEAD.actor, at=later)
        )


def test_a_command_time_a_few_minutes_ahead_is_accepted_as_clock_skew(county: County) -> None:
    ahead = START + timedelta(minutes=4)
    receipt = county.app.submit_rating(rating(), Context(CITIZEN.actor, at=ahead))
    assert receipt.aggregate_id is not None


def test_a_back_filled_command_time_is_recorded_as_when_it_happened(county: County) -> None:
    # A letter received on Friday, entered on Monday: any zone, stored as given.
    friday = datetime(2021, 10, 29, 16, 30, tzinfo=LOCAL_TZ)
    receipt = county.app.open_case(
        c.OpenCase(intake="letter", kind="complaint", unit_code="PS1", summary="来信反映"),
        Context(SUPERVISOR.actor, at=friday),
    )
    assert receipt.case_ref is not None
    assert county.app.get_case(receipt.case_ref).opened_at == friday


# -- rules about who can be rated and codes ---------------------------------------------------


def test_an_officer_who_has_left_cannot_be_rated(county: County) -> None:
    app = county.app
    app.record_officer_left(c.RecordOfficerLeft(badge="F10103", reason="辞职"), ADMIN)
    with writes_nothing(app), pytest.raises(RuleViolationError, match=r"F10103.*left"):
        app.submit_rating(rating(key="F10103", verdict="dissatisfied"), CITIZEN)


def test_an_officer_who_has_left_cannot_log_encounters(county: County) -> None:
    app = county.app
    app.record_officer_left(c.RecordOfficerLeft(badge="F10103", reason="辞职"), ADMIN)
    with writes_nothing(app), pytest.raises(RuleViolationError, match="F10103"):
        app.log_encounter(c.LogEncounter(kind="duty", happened_at=START, badge="F10103"), SYSTEM)


def test_a_used_encounter_code_is_refused(county: County) -> None:
    app = county.app
    log_code(app, "CAO2021")
    app.submit_rating(rating(encounter_code="CAO2021"), CITIZEN)
    with writes_nothing(app), pytest.raises(RuleViolationError, match="already been used"):
        app.submit_rating(rating(verdict="dissatisfied", encounter_code="CAO2021"), CITIZEN)


def test_an_expired_encounter_code_is_refused(county: County) -> None:
    app = county.app
    log_code(app, "LATE0001")
    county.clock.advance(hours=72, minutes=1)
    with writes_nothing(app), pytest.raises(RuleViolationError, match="expired"):
        app.submit_rating(rating(encounter_code="LATE0001"), CITIZEN)


def test_an_encounter_code_still_works_just_before_it_expires(county: County) -> None:
    app = county.app
    log_code(app, "LATE0002")
    county.clock.advance(hours=71, minutes=59)
    assert app.submit_rating(rating(encounter_code="LATE0002"), CITIZEN).extra["verified"] is True


def test_another_officers_encounter_code_is_refused_and_stays_unused(county: County) -> None:
    app = county.app
    log_code(app, "LI000001", badge="100102")
    with writes_nothing(app), pytest.raises(RuleViolationError, match="another officer"):
        app.submit_rating(rating(key="F10103", encounter_code="LI000001"), CITIZEN)
    # The refusal did not spend the code: its own officer's citizen can still use it.
    assert app.submit_rating(rating(encounter_code="LI000001"), CITIZEN).extra["verified"] is True


def test_another_units_encounter_code_is_refused(county: County) -> None:
    app = county.app
    log_code(app, "PS2WIN01", badge=None, unit_code="PS2")
    with writes_nothing(app), pytest.raises(RuleViolationError, match="another unit"):
        app.submit_rating(rating(target="unit", key="PS1", encounter_code="PS2WIN01"), CITIZEN)


def test_an_unknown_encounter_code_is_not_found_and_named(county: County) -> None:
    with writes_nothing(county.app), pytest.raises(NotFoundError) as refused:
        county.app.submit_rating(rating(encounter_code="NOSUCH01"), CITIZEN)
    assert refused.value.key == "NOSUCH01"


# -- duplicates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["PS1", " PS1 "])
def test_a_unit_code_that_is_taken_already_exists(county: County, code: str) -> None:
    command = c.RegisterUnit(code=code, unit_name="城关派出所", kind="police_station")
    with writes_nothing(county.app), pytest.raises(AlreadyExistsError) as refused:
        county.app.register_unit(command, ADMIN)
    assert (refused.value.what, refused.value.key) == ("unit", "PS1")


@pytest.mark.parametrize("badge", ["100102", " F10103"])
def test_a_badge_that_is_taken_already_exists(county: County, badge: str) -> None:
    command = c.RegisterOfficer(badge=badge, officer_name="重名", kind="police", unit_code="PS2")
    with writes_nothing(county.app), pytest.raises(AlreadyExistsError) as refused:
        county.app.register_officer(command, ADMIN)
    assert (refused.value.what, refused.value.key) == ("officer", badge.strip())


def test_an_external_encounter_ref_that_is_taken_already_exists(county: County) -> None:
    app = county.app
    first = c.LogEncounter(kind="dispatch", happened_at=START, badge="100102", external_ref="JJ-1")
    app.log_encounter(first, SYSTEM)
    with writes_nothing(app), pytest.raises(AlreadyExistsError) as refused:
        app.log_encounter(first.model_copy(update={"kind": "duty"}), SYSTEM)
    assert (refused.value.what, refused.value.key) == ("encounter", "JJ-1")


def test_an_external_ref_repeated_within_one_import_writes_none_of_it(county: County) -> None:
    app = county.app
    repeated = c.LogEncounters(encounters=[
        c.LogEncounter(kind="dispatch", happened_at=START, badge="100102", external_ref="JJ-2"),
        c.LogEncounter(kind="duty", happened_at=START, badge="F10103", external_ref="JJ-3"),
        c.LogEncounter(kind="duty", happened_at=START, badge="F10103", external_ref="JJ-2"),
    ])
    with writes_nothing(app), pytest.raises(AlreadyExistsError, match="JJ-2"):
        app.log_encounters(repeated, SYSTEM)


def test_an_encounter_code_that_is_taken_already_exists_and_its_encounter_is_not_kept(
    county: County,
) -> None:
    app = county.app
    log_code(app, "DUP00001")
    second = c.LogEncounter(
        kind="service", happened_at=START, badge="F10103", external_ref="JJ-4", code="DUP00001"
    )
    with writes_nothing(app), pytest.raises(AlreadyExistsError) as refused:
        app.log_encounter(second, SYSTEM)
    assert (refused.value.what, refused.value.key) == ("encounter code", "DUP00001")
    # The encounter added before the code clashed was dropped: its reference is still free.
    app.log_encounter(second.model_copy(update={"code": None}), SYSTEM)


def test_codes_badges_and_case_refs_typed_in_lowercase_mean_the_same_record(
    county: County,
) -> None:
    app = county.app
    log_code(app, "CAO2021")
    ref = county.open_case()
    receipt = app.submit_rating(rating(key="100102", encounter_code="cao2021"), CITIZEN)
    assert receipt.extra["verified"] is True
    app.contact_citizen(c.ContactCitizen(ref=ref.lower(), note="已联系"), HEAD)
    with writes_nothing(app), pytest.raises(AlreadyExistsError):
        app.register_unit(c.RegisterUnit(code="ps1", unit_name="城关", kind="police_station"), ADMIN)
