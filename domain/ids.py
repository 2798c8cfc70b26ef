"""Deterministic aggregate ids for things that have a natural key.

A unit is found by its code, an officer by badge number, a case by its reference,
a one-time encounter code by the code itself: the id is a UUID5 of the key, so a
lookup needs no index and a duplicate key collides in the event store.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from domain.errors import ValidationError
from domain.values import QrSubject

NAMESPACE = uuid.UUID("5c1e7a3e-9d0b-4a53-9a57-70696e676a69")
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
CASE_REF_PATTERN = re.compile(r"^PJ-\d{8}-[0-9A-Z]{6}$")


@lru_cache(maxsize=65536)
def unit_id(code: str) -> uuid.UUID:
    """The aggregate id of the unit with this code."""
    return uuid.uuid5(NAMESPACE, f"unit:{code}")


@lru_cache(maxsize=65536)
def officer_id(badge: str) -> uuid.UUID:
    """The aggregate id of the officer with this badge number."""
    return uuid.uuid5(NAMESPACE, f"officer:{badge}")


def case_id(ref: str) -> uuid.UUID:
    """The aggregate id of the case with this reference."""
    return uuid.uuid5(NAMESPACE, f"case:{ref}")


def encounter_id(external_ref: str) -> uuid.UUID:
    """The aggregate id of an encounter with a reference from the feeding system."""
    return uuid.uuid5(NAMESPACE, f"encounter:{external_ref}")


def encounter_code_id(code: str) -> uuid.UUID:
    """The aggregate id of a one-time encounter code."""
    return uuid.uuid5(NAMESPACE, f"encounter-code:{code.upper()}")


@lru_cache(maxsize=65536)
def qr_identity_id(subject: QrSubject, key: str) -> uuid.UUID:
    """The aggregate id of the QR identity of a unit (by code) or officer (by badge)."""
    return uuid.uuid5(NAMESPACE, f"qr:{subject.value}:{key}")


def device_ballot_id(device_hash: str, target_id: uuid.UUID) -> uuid.UUID:
    """The aggregate id of one device's ballot for one officer or unit (the hash is keyed; the id keeps no more)."""
    return uuid.uuid5(NAMESPACE, f"ballot:{device_hash}:{target_id}")


def make_case_ref(opened_at: datetime, token: str) -> str:
    """A case reference citizens can read out: ``PJ-<local date>-<6 characters>``, e.g. ``PJ-20211109-7K3M9Q``."""
    return f"PJ-{opened_at.astimezone(LOCAL_TZ):%Y%m%d}-{token}"


def check_case_ref(ref: str) -> str:
    """Return ``ref`` normalised, or refuse it when it is not a case reference."""
    norm = ref.strip().upper()
    if not CASE_REF_PATTERN.match(norm):
        raise ValidationError(f"{ref!r} is not a case reference (expected the form PJ-20211109-7K3M9Q)")
    return norm
