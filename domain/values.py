"""Value objects and enumerations shared by the aggregates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.errors import ValidationError


class Role(StrEnum):
    """Who an actor is (DESIGN §1)."""

    CITIZEN = "citizen"
    OFFICER = "officer"
    UNIT_HEAD = "unit_head"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"
    SYSTEM = "system"


class Channel(StrEnum):
    """How a command reached the system."""

    QR = "qr"
    HOTLINE = "hotline"
    MEETING = "meeting"
    LETTER = "letter"
    HOME_VISIT = "home_visit"
    API = "api"
    CONSOLE = "console"
    IMPORT = "import"
    SYSTEM = "system"


class UnitKind(StrEnum):
    """Kinds of unit in a county bureau."""

    BUREAU = "bureau"
    POLICE_STATION = "police_station"
    TRAFFIC_BRIGADE = "traffic_brigade"
    SERVICE_WINDOW = "service_window"
    SUPERVISION_OFFICE = "supervision_office"


class OfficerKind(StrEnum):
    """Police officer (民警) or auxiliary officer (辅警)."""

    POLICE = "police"
    AUXILIARY = "auxiliary"


class EncounterKind(StrEnum):
    """The four must-scans (四必扫)."""

    DISPATCH = "dispatch"
    RECEPTION = "reception"
    SERVICE = "service"
    DUTY = "duty"


class Verdict(StrEnum):
    """A citizen's overall verdict."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"


class CaseKind(StrEnum):
    """Why a case was opened."""

    DISSATISFACTION = "dissatisfaction"
    COMPLAINT = "complaint"
    SUGGESTION = "suggestion"


class AccountabilityMeasure(StrEnum):
    """Accountability measures recorded against an officer."""

    CRITICISM_NOTICE = "criticism_notice"  # 通报批评
    ADMONITION_TALK = "admonition_talk"  # 诫勉谈话
    WRITTEN_SELF_EXAMINATION = "written_self_examination"  # 书面检查
    REMINDER_TALK = "reminder_talk"  # 提醒谈话


class CommendationKind(StrEnum):
    """Commendations a citizen or the bureau gives."""

    BANNER = "banner"  # 锦旗
    PRAISE = "praise"  # 点赞
    THANK_YOU_LETTER = "thank_you_letter"  # 感谢信


class QrSubject(StrEnum):
    """What a QR identity identifies."""

    UNIT = "unit"
    OFFICER = "officer"


SYSTEM_PRINCIPAL = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a principal id and the role they act in."""

    principal: str
    role: Role

    @classmethod
    def system(cls) -> Actor:
        """The system itself (pushes, SLA events)."""
        return cls(SYSTEM_PRINCIPAL, Role.SYSTEM)

    @classmethod
    def parse(cls, text: str) -> Actor:
        """Parse ``ROLE:PRINCIPAL`` (or ``system``) as used by the CLI and the import format."""
        if text == SYSTEM_PRINCIPAL:
            return cls.system()
        role, sep, principal = text.partition(":")
        if not sep or not principal.strip():
            raise ValidationError(f"actor {text!r} must be ROLE:PRINCIPAL, e.g. supervisor:dc-wang")
        try:
            return cls(principal.strip(), Role(role.strip()))
        except ValueError:
            roles = ", ".join(r.value for r in Role)
            raise ValidationError(f"actor {text!r} has unknown role {role!r} (one of {roles})") from None

    def __str__(self) -> str:
        return SYSTEM_PRINCIPAL if self.role is Role.SYSTEM else f"{self.role}:{self.principal}"


@dataclass(frozen=True, slots=True)
class Meta:
    """What every event carries besides its own facts (DESIGN §3)."""

    actor: str
    role: Role
    occurred_at: datetime
    channel: Channel
    correlation_id: str

    def as_dict(self) -> dict[str, str]:
        """The stored form: plain strings, the time in ISO 8601 with its zone."""
        return {
            "actor": self.actor,
            "role": self.role.value,
            "occurred_at": self.occurred_at.isoformat(),
            "channel": self.channel.value,
            "correlation_id": self.correlation_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Meta:
        """Inverse of :meth:`as_dict`."""
        return cls(
            actor=data["actor"],
            role=Role(data["role"]),
            occurred_at=datetime.fromisoformat(data["occurred_at"]),
            channel=Channel(data["channel"]),
            correlation_id=data["correlation_id"],
        )


@dataclass(frozen=True, slots=True)
class Contact:
    """A citizen's contact for a callback; personal data, never logged.

    Stored sealed with the citizen's own key (:mod:`domain.personal`). Once that key is
    erased, the contact still names its citizen reference (a pseudonym, not personal data)
    but has neither phone nor name: ``phone is None`` says so, as :attr:`erased`. The case
    keeps its contact (it *had* one: it stays callable for the rates), only the data is gone.
    """

    citizen_ref: str
    #: None once the citizen's data were erased.
    phone: str | None
    name: str | None = None

    @classmethod
    def erased_for(cls, citizen_ref: str) -> Contact:
        """The contact of ``citizen_ref`` after its data were erased."""
        return cls(citizen_ref, None, None)

    @property
    def erased(self) -> bool:
        """True once the phone and name are gone for good."""
        return self.phone is None
