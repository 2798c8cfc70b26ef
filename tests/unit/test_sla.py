"""SLA deadlines of DESIGN §5: limits, China's working days, warnings and the policy file.

Every expected time below is worked out by hand from the official calendar in the
comment next to it, never by calling the code under test. The weeks used:

    2021-09  Thu 16  Fri 17  Sat 18 (make-up, works)  Sun 19 - Tue 21 (Mid-Autumn, off)  Wed 22 ...
             Sat 25 (off)  Sun 26 (make-up, works)  Mon 27 - Thu 30
    2021-10  Fri 1 - Thu 7 (National Day, off)  Fri 8  Sat 9 (make-up, works)  Sun 10 (off)  Mon 11
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from domain.errors import ValidationError
from domain.sla import (
    CalendarKind,
    SlaPolicy,
    StepLimit,
    WorkingCalendar,
    deadline,
    limit_for,
    warning_at,
)
from domain.workflow import SlaStep

CST = timezone(timedelta(hours=8))  # a plain +08:00 offset, independent of the module's LOCAL_TZ
SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = SlaPolicy.default()
CALENDAR = WorkingCalendar()  # one shared cache of years, as the application would hold


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2021) -> datetime:
    """A moment in Shanghai time, written as the tests think of it."""
    return datetime(year, month, day, hour, minute, tzinfo=CST)


def due(step: SlaStep, start: datetime, *, flagged: bool = False, due_at: datetime | None = None) -> datetime:
    """The deadline under the default policy."""
    return deadline(POLICY, CALENDAR, step, start, flagged=flagged, due_at=due_at)


def warn(step: SlaStep, start: datetime, *, flagged: bool = False, due_at: datetime | None = None) -> datetime:
    """The warning time under the default policy."""
    return warning_at(POLICY, CALENDAR, step, start, flagged=flagged, due_at=due_at)


# --- the official calendar ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (at(9, 17), True),  # Friday
        (at(9, 18), True),  # Saturday, made up for Mid-Autumn
        (at(9, 19), False),  # Sunday, Mid-Autumn break
        (at(9, 20), False),  # Monday, Mid-Autumn break
        (at(9, 21), False),  # Tuesday, Mid-Autumn festival
        (at(9, 22), True),  # Wednesday
        (at(9, 25), False),  # an ordinary Saturday
        (at(9, 26), True),  # Sunday, made up for National Day
        (at(10, 1), False),  # National Day
        (at(10, 7), False),  # last day of the National Day week
        (at(10, 9), True),  # Saturday, made up for National Day
        (at(10, 10), False),  # an ordinary Sunday
    ],
)
def test_working_days_follow_the_official_calendar_with_make_up_weekends(day: datetime, working: bool) -> None:
    assert CALENDAR.is_working_day(day.date()) is working


def test_a_moment_is_on_a_working_day_by_its_shanghai_date() -> None:
    # Sat 18th 23:30 in Shanghai is still the make-up Saturday; 16:30 UTC that day is Sunday in Shanghai.
    assert CALENDAR.is_working_day(at(9, 18, 23, 30))
    assert not CALENDAR.is_working_day(datetime(2021, 9, 18, 16, 30, tzinfo=UTC))


# --- the examples of DESIGN §5 ----------------------------------------------------------------


def test_feedback_pushed_thursday_before_mid_autumn_is_due_the_next_wednesday_at_the_same_time() -> None:
    # Fri 17th (1), make-up Sat 18th (2), Sun-Tue off, Wed 22nd (3).
    assert due(SlaStep.FEEDBACK, at(9, 16, 10)) == at(9, 22, 10)


def test_a_flagged_verification_of_two_and_a_half_working_days_ends_on_the_make_up_saturday_evening() -> None:
    # 5 x 0.5 = 2.5 days = 60 h of working time: Thu 10:00-24:00 14 h, Fri 24 h (38 h), Sat 22 h (60 h).
    assert limit_for(POLICY, SlaStep.VERIFICATION, flagged=True) == StepLimit(CalendarKind.WORKING, 2.5)
    assert due(SlaStep.VERIFICATION, at(9, 16, 10), flagged=True) == at(9, 18, 22)
    assert CALENDAR.add_working_time(at(9, 16, 10), 60) == at(9, 18, 22)


def test_the_case_is_pushed_within_ten_minutes_and_five_when_flagged() -> None:
    assert due(SlaStep.PUSH, at(9, 16, 10)) == at(9, 16, 10, 10)
    assert warn(SlaStep.PUSH, at(9, 16, 10)) == at(9, 16, 10, 8)  # 80 % of 10 min
    assert due(SlaStep.PUSH, at(9, 16, 10), flagged=True) == at(9, 16, 10, 5)


def test_contact_warns_at_nineteen_point_two_hours_and_breaches_at_twenty_four() -> None:
    # Wall clock: 0.8 x 24 h = 19 h 12 min after Thu 10:00 is Fri 05:12, whatever the calendar says.
    assert warn(SlaStep.CONTACT, at(9, 16, 10)) == at(9, 17, 5, 12)
    assert due(SlaStep.CONTACT, at(9, 16, 10)) == at(9, 17, 10)


def test_contact_on_a_holiday_counts_every_wall_clock_hour() -> None:
    assert due(SlaStep.CONTACT, at(10, 1, 8)) == at(10, 2, 8)


def test_a_flagged_contact_is_due_in_twelve_hours_and_warns_at_nine_point_six() -> None:
    # 12 h after Thu 10:00 is 22:00; 0.8 x 12 h = 9 h 36 min gives 19:36.
    assert due(SlaStep.CONTACT, at(9, 16, 10), flagged=True) == at(9, 16, 22)
    assert warn(SlaStep.CONTACT, at(9, 16, 10), flagged=True) == at(9, 16, 19, 36)


def test_feedback_warns_after_two_point_four_working_days_of_working_time() -> None:
    # 0.8 x 3 x 24 = 57.6 h: Thu 14 h, Fri 24 h (38 h), then 19.6 h into the make-up Saturday = 19:36.
    assert warn(SlaStep.FEEDBACK, at(9, 16, 10)) == at(9, 18, 19, 36)


def test_a_flagged_feedback_of_a_day_and_a_half_counts_working_time() -> None:
    # 36 h: Thu 14 h, then 22 h into Friday.
    assert due(SlaStep.FEEDBACK, at(9, 16, 10), flagged=True) == at(9, 17, 22)


# --- National Day 2021 --------------------------------------------------------------------


def test_a_callback_reported_on_the_eve_of_national_day_is_due_on_the_make_up_saturday() -> None:
    # After Thu 30th: Oct 1-7 off, Fri 8th (1), make-up Sat 9th (2).
    assert due(SlaStep.CALLBACK, at(9, 30, 10)) == at(10, 9, 10)


def test_a_callback_reported_on_the_eve_of_national_day_warns_just_after_midnight_on_the_make_up_saturday() -> None:
    # 0.8 x 2 x 24 = 38.4 h: Thu 30th 14 h, Oct 1-7 nothing, Fri 8th 24 h (38 h), 0.4 h = 24 min into Sat 9th.
    assert warn(SlaStep.CALLBACK, at(9, 30, 10)) == at(10, 9, 0, 24)


def test_a_callback_counts_the_make_up_sunday_before_national_day() -> None:
    # After Fri 24th: Sat 25th off, make-up Sun 26th (1), Mon 27th (2).
    assert due(SlaStep.CALLBACK, at(9, 24, 16)) == at(9, 27, 16)
    # 38.4 h: Fri 8 h, Sat nothing, Sun 24 h (32 h), 6.4 h = 6 h 24 min into Monday.
    assert warn(SlaStep.CALLBACK, at(9, 24, 16)) == at(9, 27, 6, 24)


def test_a_verification_across_national_day_skips_the_whole_week() -> None:
    # After Tue 28th: Wed 29th (1), Thu 30th (2), Fri Oct 8th (3), Sat 9th (4), Sun 10th off, Mon 11th (5).
    assert due(SlaStep.VERIFICATION, at(9, 28, 9)) == at(10, 11, 9)


# --- moments on a day off ---------------------------------------------------------------------


def test_a_whole_day_limit_from_a_day_off_counts_working_days_after_that_date() -> None:
    # From Sun 19th: Wed 22nd is the 1st working day after it, Fri 24th the 3rd; same time of day.
    assert due(SlaStep.CALLBACK, at(9, 19, 15), flagged=True) == at(9, 22, 15)  # 2 x 0.5 = 1 day
    assert due(SlaStep.FEEDBACK, at(9, 19, 15)) == at(9, 24, 15)


def test_working_time_from_a_day_off_starts_at_the_next_working_midnight() -> None:
    assert CALENDAR.add_working_time(at(9, 19, 15), 1) == at(9, 22, 1)
    # Flagged feedback, 1.5 days = 36 h from Wed 00:00: all of Wednesday, then 12 h into Thursday.
    assert due(SlaStep.FEEDBACK, at(9, 19, 15), flagged=True) == at(9, 23, 12)
    assert CALENDAR.working_hours_between(at(9, 19, 15), at(9, 22, 1)) == 1


def test_a_warning_from_a_day_off_still_comes_before_the_breach() -> None:
    # Flagged callback from Sun 15:00 is due Wed 15:00: only 15 h of working time lie between,
    # so 80 % of it is 12 h, Wed 12:00 (80 % of a full 24 h would land after the deadline, at 19:12).
    assert warn(SlaStep.CALLBACK, at(9, 19, 15), flagged=True) == at(9, 22, 12)


def test_a_whole_day_deadline_can_come_earlier_for_a_start_just_after_midnight_into_a_day_off() -> None:
    # The consequence of DESIGN's same-time-of-day rule, pinned so that changing it is a decision:
    # one day from the make-up Saturday 23:30 ends Wed 23:30, from Sunday 00:30 it ends Wed 00:30.
    assert due(SlaStep.CALLBACK, at(9, 18, 23, 30), flagged=True) == at(9, 22, 23, 30)
    assert due(SlaStep.CALLBACK, at(9, 19, 0, 30), flagged=True) == at(9, 22, 0, 30)


def test_working_time_that_runs_out_at_midnight_before_a_day_off_ends_at_that_midnight() -> None:
    assert CALENDAR.add_working_time(at(9, 18, 10), 14) == at(9, 19)


def test_no_working_time_added_is_the_start_itself_on_a_working_day() -> None:
    assert CALENDAR.add_working_time(at(9, 17, 15), 0) == at(9, 17, 15)


def test_no_working_time_added_on_a_day_off_lands_on_the_next_working_midnight() -> None:
    # The working clock has not started yet on a day off; it starts Wed 22nd 00:00.
    assert CALENDAR.add_working_time(at(9, 20, 15), 0) == at(9, 22)


def test_a_warning_from_midnight_into_a_day_off_comes_with_the_breach_not_at_once() -> None:
    # Flagged callback (1 day) from Sun 19th 00:00 is due Wed 22nd 00:00, with no working time
    # in between: the warning cannot fire on Sunday for a clock that has not started.
    assert due(SlaStep.CALLBACK, at(9, 19), flagged=True) == at(9, 22)
    assert warn(SlaStep.CALLBACK, at(9, 19), flagged=True) == at(9, 22)


def test_working_hours_between_is_negative_when_the_end_comes_first() -> None:
    # Thu 22:00 to Fri 02:00: 2 h on Thursday and 2 h on Friday.
    assert CALENDAR.working_hours_between(at(9, 17, 2), at(9, 16, 22)) == -4


def test_zero_working_days_later_is_the_same_moment() -> None:
    assert CALENDAR.add_working_days(at(9, 19, 15), 0) == at(9, 19, 15)


@pytest.mark.parametrize("days", [-1, 1.5, True])
def test_a_negative_or_fractional_number_of_whole_working_days_is_refused(days: Any) -> None:
    with pytest.raises(ValidationError, match="days"):
        CALENDAR.add_working_days(at(9, 16, 10), days)


def test_negative_working_time_is_refused() -> None:
    with pytest.raises(ValidationError, match="hours"):
        CALENDAR.add_working_time(at(9, 16, 10), -1)


# --- time zones ------------------------------------------------------------------------------


def test_a_utc_start_gives_the_same_instant_as_the_shanghai_start() -> None:
    thursday_10_in_utc = datetime(2021, 9, 16, 2, 0, tzinfo=UTC)
    assert due(SlaStep.FEEDBACK, thursday_10_in_utc) == at(9, 22, 10)
    assert warn(SlaStep.FEEDBACK, thursday_10_in_utc) == at(9, 18, 19, 36)
    assert due(SlaStep.CONTACT, thursday_10_in_utc) == at(9, 17, 10)


def test_a_utc_start_late_in_the_evening_counts_from_the_next_shanghai_date() -> None:
    # Fri 17th 16:30 UTC is Sat 18th 00:30 in Shanghai: the 1st working day after the 18th is Wed 22nd.
    assert due(SlaStep.CALLBACK, datetime(2021, 9, 17, 16, 30, tzinfo=UTC), flagged=True) == at(9, 22, 0, 30)


def test_results_are_in_shanghai_time() -> None:
    result = due(SlaStep.FEEDBACK, datetime(2021, 9, 16, 2, 0, tzinfo=UTC))
    assert result.tzinfo == SHANGHAI
    assert (result.hour, result.minute) == (10, 0)


NAIVE = datetime(2021, 9, 16, 10, 0)  # noqa: DTZ001 - the point of these tests


@pytest.mark.parametrize(
    "call",
    [
        lambda: due(SlaStep.CONTACT, NAIVE),
        lambda: warn(SlaStep.FEEDBACK, NAIVE),
        lambda: due(SlaStep.RECTIFICATION, at(9, 16, 10), due_at=NAIVE + timedelta(days=15)),
        lambda: CALENDAR.add_working_days(NAIVE, 1),
        lambda: CALENDAR.add_working_time(NAIVE, 1),
        lambda: CALENDAR.working_hours_between(at(9, 16), NAIVE),
    ],
    ids=["deadline", "warning", "due_at", "add_working_days", "add_working_time", "working_hours_between"],
)
def test_a_time_without_a_zone_is_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ValidationError, match="time zone"):
        call()


# --- rectification -----------------------------------------------------------------------------


def test_rectification_is_due_when_the_order_says_and_warns_eighty_percent_of_the_way() -> None:
    # Ordered Thu 16th 10:00, due 15 days later on Fri Oct 1st 10:00; 80 % of 15 days = 12 days: Tue 28th.
    ordered, due_at = at(9, 16, 10), at(10, 1, 10)
    assert due(SlaStep.RECTIFICATION, ordered, due_at=due_at) == due_at
    assert warn(SlaStep.RECTIFICATION, ordered, due_at=due_at) == at(9, 28, 10)
    # The order fixed the date: flagging the case does not move it.
    assert due(SlaStep.RECTIFICATION, ordered, flagged=True, due_at=due_at) == due_at


def test_rectification_without_a_due_date_is_refused() -> None:
    with pytest.raises(ValidationError, match="due_at"):
        due(SlaStep.RECTIFICATION, at(9, 16, 10))


def test_a_rectification_due_before_its_order_is_refused() -> None:
    with pytest.raises(ValidationError, match="not after"):
        due(SlaStep.RECTIFICATION, at(9, 16, 10), due_at=at(9, 16, 9))


def test_a_due_date_for_another_step_is_refused() -> None:
    with pytest.raises(ValidationError, match="only to rectification"):
        due(SlaStep.FEEDBACK, at(9, 16, 10), due_at=at(10, 1, 10))


def test_rectification_has_no_policy_limit() -> None:
    with pytest.raises(ValidationError, match="comes with the order"):
        limit_for(POLICY, SlaStep.RECTIFICATION, flagged=False)


# --- the policy ----------------------------------------------------------------------------


def test_the_default_policy_is_the_one_of_design_section_five() -> None:
    assert dict(POLICY.limits) == {
        SlaStep.PUSH: StepLimit(CalendarKind.WALL, 10 / 60),
        SlaStep.CONTACT: StepLimit(CalendarKind.WALL, 24),
        SlaStep.FEEDBACK: StepLimit(CalendarKind.WORKING, 3),
        SlaStep.CALLBACK: StepLimit(CalendarKind.WORKING, 2),
        SlaStep.VERIFICATION: StepLimit(CalendarKind.WORKING, 5),
    }
    assert (POLICY.flagged_factor, POLICY.warning_fraction, POLICY.rectification_days) == (0.5, 0.8, 15)


def test_flagged_limits_are_half_the_normal_ones() -> None:
    assert limit_for(POLICY, SlaStep.CONTACT, flagged=True) == StepLimit(CalendarKind.WALL, 12)
    assert limit_for(POLICY, SlaStep.FEEDBACK, flagged=True) == StepLimit(CalendarKind.WORKING, 1.5)
    assert limit_for(POLICY, SlaStep.CALLBACK, flagged=True) == StepLimit(CalendarKind.WORKING, 1)
    assert limit_for(POLICY, SlaStep.CALLBACK, flagged=False) == StepLimit(CalendarKind.WORKING, 2)


def test_the_policy_limits_cannot_be_changed_in_place() -> None:
    with pytest.raises(TypeError):
        POLICY.limits[SlaStep.CONTACT] = StepLimit(CalendarKind.WALL, 1)  # type: ignore[index]


CUSTOM = """
flagged_factor = 0.25
warning_fraction = 0.5
rectification_days = 30

[limits.push]
calendar = "wall"
hours = 1

[limits.contact]
calendar = "working"
days = 1

[limits.feedback]
calendar = "working"
days = 5

[limits.callback]
calendar = "wall"
minutes = 90

[limits.verification]
calendar = "working"
days = 10
"""


def test_a_custom_policy_overrides_the_limits_and_factors() -> None:
    policy = SlaPolicy.from_toml(CUSTOM)
    assert policy.rectification_days == 30
    # Contact on working days now: 1 day after Thu 16th is Fri 17th; warning at half, 12 h, Thu 22:00.
    assert deadline(policy, CALENDAR, SlaStep.CONTACT, at(9, 16, 10), flagged=False) == at(9, 17, 10)
    assert warning_at(policy, CALENDAR, SlaStep.CONTACT, at(9, 16, 10), flagged=False) == at(9, 16, 22)
    # Callback 90 minutes on the wall clock, a quarter of it when flagged: 22.5 minutes.
    assert deadline(policy, CALENDAR, SlaStep.CALLBACK, at(10, 1, 10), flagged=False) == at(10, 1, 11, 30)
    flagged_callback = deadline(policy, CALENDAR, SlaStep.CALLBACK, at(10, 1, 10), flagged=True)
    assert flagged_callback == at(10, 1, 10, 22) + timedelta(seconds=30)
    # Feedback 5 days x 0.25 = 1.25 days = 30 h of working time: Thu 14 h, then 16 h into Friday.
    assert deadline(policy, CALENDAR, SlaStep.FEEDBACK, at(9, 16, 10), flagged=True) == at(9, 17, 16)


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("[limits.push]", "[limits.complaint]", "limits.complaint"),
        ("hours = 1\n", "hours = -1\n", "limits.push.hours"),
        ("days = 5", "days = 0", "limits.feedback.days"),
        ("minutes = 90", 'minutes = "90"', "limits.callback.minutes"),
        ('calendar = "working"\ndays = 10', 'calendar = "business"\ndays = 10', "limits.verification.calendar"),
        ("hours = 1\n", "days = 1\n", "limits.push.days"),
        ("hours = 1\n", "hours = 1\nminutes = 5\n", "limits.push"),
        ("minutes = 90", "", "limits.callback"),
        ("flagged_factor = 0.25", "flagged_factor = 1.5", "flagged_factor"),
        ("flagged_factor = 0.25", "flagged_factor = 0", "flagged_factor"),
        ("flagged_factor = 0.25", "flaged_factor = 0.25", "flaged_factor"),
        ("warning_fraction = 0.5", "warning_fraction = 1", "warning_fraction"),
        ("warning_fraction = 0.5", "warning_fraction = true", "warning_fraction"),
        ("rectification_days = 30", "rectification_days = -15", "rectification_days"),
        ('[limits.verification]\ncalendar = "working"\ndays = 10', "", "limits.verification"),
        ("[limits.push]", '[limits.rectification]\ncalendar = "wall"\nhours = 1\n\n[limits.push]', "rectification"),
        ("[limits.push]", "[limits.push", "not valid TOML"),
    ],
)
def test_a_bad_policy_file_is_refused_naming_the_bad_key(old: str, new: str, named: str) -> None:
    assert old in CUSTOM
    with pytest.raises(ValidationError, match=named.replace(".", r"\.")):
        SlaPolicy.from_toml(CUSTOM.replace(old, new, 1))


def test_a_policy_without_limits_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"\[limits\]"):
        SlaPolicy.from_toml("flagged_factor = 0.5\n")


# --- properties over 2020-2026 ------------------------------------------------------------------

ZONES = st.sampled_from([UTC, CST, SHANGHAI, timezone(timedelta(hours=-5)), ZoneInfo("America/New_York")])
# Hypothesis takes naive bounds and attaches the zones itself.
EARLIEST, LATEST = datetime(2020, 1, 1), datetime(2026, 12, 31, 23, 59)  # noqa: DTZ001
STARTS = st.datetimes(min_value=EARLIEST, max_value=LATEST, timezones=ZONES)
POLICY_STEPS = [step for step in SlaStep if step is not SlaStep.RECTIFICATION]


def whole_working_days(step: SlaStep, flagged: bool) -> bool:
    """Whether the step's limit is a whole number of working days (same-time-of-day rule)."""
    limit = limit_for(POLICY, step, flagged=flagged)
    return limit.calendar is CalendarKind.WORKING and float(limit.amount).is_integer()


@given(STARTS, st.sampled_from(list(SlaStep)), st.booleans(), st.timedeltas(timedelta(minutes=1), timedelta(days=60)))
@example(at(9, 19), SlaStep.CALLBACK, True, timedelta(days=1))  # no working time before the deadline
def test_a_warning_never_comes_after_its_deadline_which_always_comes_after_the_start(
    start: datetime, step: SlaStep, flagged: bool, period: timedelta
) -> None:
    due_at = start + period if step is SlaStep.RECTIFICATION else None
    end = due(step, start, flagged=flagged, due_at=due_at)
    assert start < warn(step, start, flagged=flagged, due_at=due_at) <= end


@given(STARTS, st.timedeltas(timedelta(0), timedelta(days=10)), st.sampled_from(POLICY_STEPS), st.booleans())
def test_a_later_start_never_gives_an_earlier_deadline(
    start: datetime, later_by: timedelta, step: SlaStep, flagged: bool
) -> None:
    later = (start.astimezone(UTC) + later_by).astimezone(start.tzinfo)
    # Under the same-time-of-day rule a start just after midnight into a day off can end earlier
    # than one just before it (pinned above); from a later start on a working day it never does.
    if whole_working_days(step, flagged):
        assume(CALENDAR.is_working_day(later.astimezone(SHANGHAI).date()))
    assert due(step, start, flagged=flagged) <= due(step, later, flagged=flagged)


@given(STARTS, st.sampled_from(POLICY_STEPS), st.booleans())
def test_a_whole_working_day_deadline_falls_on_a_working_day_at_the_local_time_of_the_start(
    start: datetime, step: SlaStep, flagged: bool
) -> None:
    assume(whole_working_days(step, flagged))
    local_start, end = start.astimezone(SHANGHAI), due(step, start, flagged=flagged).astimezone(SHANGHAI)
    assert CALENDAR.is_working_day(end.date())
    assert end.date() > local_start.date()
    assert end.time() == local_start.time()


@given(STARTS, st.floats(min_value=0, max_value=500, allow_nan=False))
def test_working_time_added_then_measured_gives_back_the_same_hours(start: datetime, hours: float) -> None:
    end = CALENDAR.add_working_time(start, hours)
    assert CALENDAR.working_hours_between(start, end) == pytest.approx(hours, abs=1e-6)


# --- the remembered days walk exactly as a plain day-by-day walk --------------------------------


def _plain_add_working_time(start: datetime, hours: float) -> datetime:
    """Working time added the plain way: one local day at a time, nothing remembered."""
    remaining, moment = timedelta(hours=hours), start.astimezone(SHANGHAI)
    while True:
        midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)
        if CALENDAR.is_working_day(moment.date()):
            left_today = midnight.astimezone(UTC) - moment.astimezone(UTC)
            if remaining <= left_today:
                return (moment.astimezone(UTC) + remaining).astimezone(SHANGHAI)
            remaining -= left_today
        moment = midnight


def _plain_working_hours_between(start: datetime, end: datetime) -> float:
    """Working time measured the plain way (``start`` <= ``end``)."""
    total, moment, end = timedelta(), start.astimezone(SHANGHAI), end.astimezone(SHANGHAI)
    while moment < end:
        midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)
        if CALENDAR.is_working_day(moment.date()):
            total += min(midnight, end).astimezone(UTC) - moment.astimezone(UTC)
        moment = midnight
    return total / timedelta(hours=1)


# 1986-1991: Shanghai kept summer time, so some local days there last 23 or 25 hours.
DST_FIRST, DST_LAST = datetime(1986, 1, 1), datetime(1992, 1, 1)  # noqa: DTZ001 - hypothesis wants naive bounds
DST_STARTS = st.datetimes(min_value=DST_FIRST, max_value=DST_LAST, timezones=st.just(SHANGHAI))


@given(st.one_of(STARTS, DST_STARTS), st.floats(min_value=0, max_value=500, allow_nan=False))
@example(at(9, 18, 23, 30), 0.5)  # the make-up Saturday, into the holiday
@example(at(9, 19, 10), 0.0)  # from a holiday: the next working day's midnight
@example(at(9, 17, 0), 24.0)  # exactly a working day: ends at the next midnight, not the next working one
def test_working_time_is_added_exactly_as_a_plain_day_by_day_walk_adds_it(start: datetime, hours: float) -> None:
    fast, plain = CALENDAR.add_working_time(start, hours), _plain_add_working_time(start, hours)
    assert (fast, fast.utcoffset(), fast.fold) == (plain, plain.utcoffset(), plain.fold)


@given(st.one_of(STARTS, DST_STARTS), st.timedeltas(timedelta(0), timedelta(days=30)))
def test_working_time_is_measured_exactly_as_a_plain_day_by_day_walk_measures_it(
    start: datetime, length: timedelta
) -> None:
    end = (start.astimezone(UTC) + length).astimezone(start.tzinfo)
    assert CALENDAR.working_hours_between(start, end) == _plain_working_hours_between(start, end)
