"""Ratings resist stuffing: one per device per officer or unit per 24 hours, only from a current code (DESIGN §7)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import commands as c
from domain.application import PingjingApp
from domain.errors import QrCodeRefusedError, RepeatRatingError
from domain.ids import device_ballot_id, officer_id
from domain.ratings import DeviceBallot
from tests.conftest import ADMIN, CITIZEN, County
from tests.fakes import FakeClock

DEVICE = "ab" * 32
OTHER_DEVICE = "cd" * 32


def rate(app: PingjingApp, device: str | None, key: str = "100102", target: str = "officer") -> str:
    receipt = app.submit_rating(
        c.SubmitRating.model_validate({"target": target, "key": key, "verdict": "satisfied", "service_score": 5,
                                       "attitude_score": 5, "efficiency_score": 5, "device_hash": device}),
        CITIZEN,
    )
    return str(receipt.aggregate_id)


def log_length(app: PingjingApp) -> int:
    return int(app.recorder.max_notification_id() or 0)


def test_a_device_that_rated_an_officer_is_refused_a_second_rating_within_24_hours(county: County) -> None:
    app = county.app
    rate(app, DEVICE)
    county.clock.advance(hours=23, minutes=59)
    before = log_length(app)
    with pytest.raises(RepeatRatingError) as refused:
        rate(app, DEVICE)
    assert log_length(app) == before
    assert refused.value.retry_after - refused.value.last_at == timedelta(hours=24)
    assert "officer 100102" in str(refused.value)


def test_the_same_device_may_rate_again_once_24_hours_have_passed(county: County) -> None:
    app = county.app
    first = rate(app, DEVICE)
    county.clock.advance(hours=24)
    second = rate(app, DEVICE)
    ballot = app.repository.get(device_ballot_id(DEVICE, officer_id("100102")))
    assert isinstance(ballot, DeviceBallot)
    assert ballot.ratings == 2
    assert str(ballot.last_rating_id) == second != first


def test_the_window_is_per_target_and_per_device(county: County) -> None:
    app = county.app
    rate(app, DEVICE)
    rate(app, DEVICE, key="F10103")
    rate(app, DEVICE, key="PS1", target="unit")
    rate(app, OTHER_DEVICE)


def test_a_rating_without_a_device_is_not_limited(county: County) -> None:
    rate(county.app, None)
    rate(county.app, None)


def test_two_ratings_from_one_device_in_one_batch_let_only_the_first_through(county: County) -> None:
    command = c.SubmitRating.model_validate({"target": "officer", "key": "100102", "verdict": "dissatisfied",
                                             "service_score": 1, "attitude_score": 1, "efficiency_score": 1,
                                             "complaint": "没人管", "device_hash": DEVICE})
    first, second = county.app.execute_batch([(command, CITIZEN), (command, CITIZEN)])
    assert not isinstance(first, Exception)
    assert first.case_ref is not None
    assert isinstance(second, RepeatRatingError)


def test_a_shorter_window_refuses_within_it_and_allows_after_it(clock: FakeClock) -> None:
    app = PingjingApp(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, rating_window=timedelta(hours=1))
    County(app, clock).setup()
    rate(app, DEVICE)
    clock.advance(minutes=59)
    with pytest.raises(RepeatRatingError):
        rate(app, DEVICE)
    clock.advance(minutes=1)
    rate(app, DEVICE)


def test_a_zero_window_turns_the_limit_off(clock: FakeClock) -> None:
    app = PingjingApp(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, rating_window=timedelta(0))
    County(app, clock).setup()
    rate(app, DEVICE)
    rate(app, DEVICE)


def test_the_ballot_keeps_no_device_data(county: County) -> None:
    rate(county.app, DEVICE)
    events = [event for _, event in county.app.iter_events()]
    ballot_events = [event for event in events if type(event).__qualname__.startswith("DeviceBallot")]
    assert ballot_events
    assert all(DEVICE not in repr(vars(event)) for event in ballot_events)


def rate_with_code(app: PingjingApp, version: int) -> None:
    app.submit_rating(
        c.SubmitRating.model_validate({"target": "officer", "key": "100102", "verdict": "satisfied",
                                       "qr_version": version, "service_score": 5, "attitude_score": 5,
                                       "efficiency_score": 5}),
        CITIZEN,
    )


def test_a_rating_names_the_code_version_it_was_scanned_from_and_a_rotated_or_revoked_one_is_refused(
    county: County,
) -> None:
    app = county.app
    with pytest.raises(QrCodeRefusedError) as never:
        rate_with_code(app, 1)
    assert never.value.reason == "unknown"
    app.issue_qr(c.IssueQr.model_validate({"subject": "officer", "key": "100102"}), ADMIN)
    rate_with_code(app, 1)
    app.rotate_qr(c.RotateQr.model_validate({"subject": "officer", "key": "100102"}), ADMIN)
    before = log_length(app)
    with pytest.raises(QrCodeRefusedError) as rotated:
        rate_with_code(app, 1)
    assert rotated.value.reason == "rotated"
    with pytest.raises(QrCodeRefusedError) as ahead:
        rate_with_code(app, 3)
    assert ahead.value.reason == "unknown"
    rate_with_code(app, 2)
    app.revoke_qr(c.RevokeQr.model_validate({"subject": "officer", "key": "100102", "reason": "遗失"}), ADMIN)
    with pytest.raises(QrCodeRefusedError) as revoked:
        rate_with_code(app, 2)
    assert revoked.value.reason == "revoked"
    assert log_length(app) == before + 2  # the one accepted rating and the revocation
