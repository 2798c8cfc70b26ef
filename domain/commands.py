"""The use cases' inputs, validated before anything is decided.

Each command names itself (``name``), which is also its ``cmd`` in the import format.
Limits live here, in one place; a violation is a clear pydantic error naming the field.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FiniteFloat,
    StringConstraints,
    model_validator,
)

from domain.values import (
    AccountabilityMeasure,
    CaseKind,
    CommendationKind,
    EncounterKind,
    OfficerKind,
    QrSubject,
    UnitKind,
    Verdict,
)
from domain.workflow import SlaStep, SupervisionTarget


def _upper(value: object) -> object:
    """Keys are case-insensitive: strip and upper-case before the pattern is checked."""
    return value.strip().upper() if isinstance(value, str) else value


_Upper = BeforeValidator(_upper)
UnitCode = Annotated[str, _Upper, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")]
Badge = Annotated[str, _Upper, StringConstraints(pattern=r"^[A-Z0-9]{4,12}$")]
CaseRef = Annotated[str, _Upper, StringConstraints(pattern=r"^PJ-\d{8}-[0-9A-Z]{6}$")]
QrKey = Annotated[str, _Upper, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 -]{4,19}$")]
CitizenName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Score = Annotated[int, Field(ge=1, le=5, strict=True)]
EncounterCodeText = Annotated[str, _Upper, StringConstraints(pattern=r"^[0-9A-Z]{4,16}$")]
ExternalRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
DeviceHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,128}$")]


class Command(BaseModel):
    """Base of every use case input: frozen, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str]


# -- registry (admin) ------------------------------------------------------------------------


class RegisterUnit(Command):
    """Register a unit under an optional parent."""

    name: ClassVar[str] = "register_unit"
    code: UnitCode
    unit_name: Name
    kind: UnitKind
    parent_code: UnitCode | None = None


class AssignUnitHead(Command):
    """Make an officer of the unit its head."""

    name: ClassVar[str] = "assign_unit_head"
    unit_code: UnitCode
    badge: Badge


class RegisterOfficer(Command):
    """Register a police or auxiliary officer in a unit."""

    name: ClassVar[str] = "register_officer"
    badge: Badge
    officer_name: Name
    kind: OfficerKind
    unit_code: UnitCode


class TransferOfficer(Command):
    """Move an officer to another unit."""

    name: ClassVar[str] = "transfer_officer"
    badge: Badge
    unit_code: UnitCode


class RecordOfficerLeft(Command):
    """Record that an officer left; their QR code stops working."""

    name: ClassVar[str] = "record_officer_left"
    badge: Badge
    reason: ShortText


class IssueQr(Command):
    """Issue (or re-issue after revocation) the QR identity of a unit or officer."""

    name: ClassVar[str] = "issue_qr"
    subject: QrSubject
    key: QrKey


class RotateQr(IssueQr):
    """Rotate a QR identity: codes printed before stop working."""

    name: ClassVar[str] = "rotate_qr"


class RevokeQr(IssueQr):
    """Revoke a QR identity."""

    name: ClassVar[str] = "revoke_qr"
    reason: ShortText


# -- encounters --------------------------------------------------------------------------


class LogEncounter(Command):
    """Log one must-scan encounter (from dispatch, a window, a post)."""

    name: ClassVar[str] = "log_encounter"
    kind: EncounterKind
    happened_at: AwareDatetime
    badge: Badge | None = None
    unit_code: UnitCode | None = None
    external_ref: ExternalRef | None = None
    code: EncounterCodeText | None = None

    @model_validator(mode="after")
    def _needs_officer_or_unit(self) -> LogEncounter:
        if self.badge is None and self.unit_code is None:
            raise ValueError("an encounter needs a badge or a unit_code")
        return self


class LogEncounters(Command):
    """Log many encounters at once (one transaction)."""

    name: ClassVar[str] = "log_encounters"
    encounters: Annotated[list[LogEncounter], Field(min_length=1, max_length=5000)]


# -- citizens ----------------------------------------------------------------------------


class SubmitRating(Command):
    """A citizen's rating of an officer or a unit (扫码评警)."""

    name: ClassVar[str] = "submit_rating"
    target: QrSubject
    key: QrKey
    verdict: Verdict
    service_score: Score
    attitude_score: Score
    efficiency_score: Score
    comment: ShortText | None = None
    complaint: LongText | None = None
    suggestion: LongText | None = None
    phone: Phone | None = None
    citizen_name: CitizenName | None = None
    encounter_code: EncounterCodeText | None = None
    device_hash: DeviceHash | None = None
    #: The version of the QR code scanned: a rating from a rotated or revoked code is refused.
    qr_version: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _name_needs_phone(self) -> SubmitRating:
        if self.citizen_name is not None and self.phone is None:
            raise ValueError("a name is only kept together with a phone for the callback")
        return self


class OpenCase(Command):
    """Open a case from a hotline call, an evaluation meeting, a letter or a home visit."""

    name: ClassVar[str] = "open_case"
    intake: Literal["hotline", "meeting", "letter", "home_visit"]
    kind: CaseKind
    unit_code: UnitCode
    badge: Badge | None = None
    summary: LongText
    phone: Phone | None = None
    citizen_name: CitizenName | None = None


# -- case moves --------------------------------------------------------------------------


class CaseCommand(Command):
    """A move on an existing case."""

    ref: CaseRef


class ContactCitizen(CaseCommand):
    """The unit head contacted the citizen."""

    name: ClassVar[str] = "contact_citizen"
    note: Note


class ReportResult(CaseCommand):
    """The unit reports its handling result."""

    name: ClassVar[str] = "report_result"
    result: LongText


class RecordCallback(CaseCommand):
    """The office reached the citizen on a callback."""

    name: ClassVar[str] = "record_callback"
    satisfied: bool
    note: Note


class RecordCallbackAttempt(CaseCommand):
    """A callback attempt that did not reach the citizen."""

    name: ClassVar[str] = "record_callback_attempt"
    note: Note


class RecordSupervision(CaseCommand):
    """The office's own contact with the citizen or the unit while supervising."""

    name: ClassVar[str] = "record_supervision"
    target: SupervisionTarget
    note: Note


class FlagCase(CaseCommand):
    """Put a case under listed supervision (挂牌督办)."""

    name: ClassVar[str] = "flag_case"
    reason: Note


class OrderRectification(CaseCommand):
    """Order rectification by a due date (default: 15 days)."""

    name: ClassVar[str] = "order_rectification"
    instructions: LongText
    due_at: AwareDatetime | None = None


class ReportRectified(CaseCommand):
    """The unit reports the rectification done."""

    name: ClassVar[str] = "report_rectified"
    note: Note


class VerifyRectification(CaseCommand):
    """The office verified the rectification on the spot."""

    name: ClassVar[str] = "verify_rectification"
    implemented: bool
    note: Note
    new_due_at: AwareDatetime | None = None


class CloseCase(CaseCommand):
    """Close a case with its resolution."""

    name: ClassVar[str] = "close_case"
    resolution: LongText
    citizen_accepted: bool | None = None


class ReopenCase(CaseCommand):
    """Reopen a case for a new round."""

    name: ClassVar[str] = "reopen_case"
    reason: Note


class RecordAccountability(CaseCommand):
    """Record an accountability measure against an officer."""

    name: ClassVar[str] = "record_accountability"
    badge: Badge
    measure: AccountabilityMeasure
    note: Note


class RecordCommendation(CaseCommand):
    """Record a commendation for an officer or a unit."""

    name: ClassVar[str] = "record_commendation"
    kind: CommendationKind
    badge: Badge | None = None
    unit_code: UnitCode | None = None
    note: Note


class RecordSlaWarning(CaseCommand):
    """The scheduler records that a step reached 80 % of its limit."""

    name: ClassVar[str] = "record_sla_warning"
    step: SlaStep
    round: Annotated[int, Field(ge=1)]


class RecordSlaBreach(RecordSlaWarning):
    """The scheduler records that a step passed its limit."""

    name: ClassVar[str] = "record_sla_breach"


# -- reports (supervision office, scheduler) ---------------------------------------------------


class PublishReport(Command):
    """Publish a weekly review or monthly bulletin computed at a log position."""

    name: ClassVar[str] = "publish_report"
    kind: Literal["weekly", "monthly"]
    period: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{4}-(W\d{2}|\d{2})$")]
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    position: Annotated[int, Field(ge=0, strict=True)]
    content_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

    @model_validator(mode="after")
    def _period_fits_kind(self) -> PublishReport:
        weekly = "W" in self.period
        if weekly != (self.kind == "weekly"):
            expected = "an ISO week like 2021-W47" if self.kind == "weekly" else "a month like 2021-11"
            raise ValueError(f"a {self.kind} report covers {expected}, not {self.period}")
        return self


# -- notifications (the outbox, admin) ---------------------------------------------------------


def _lower(value: object) -> object:
    """Ids are case-insensitive: strip and lower-case before the pattern is checked."""
    return value.strip().lower() if isinstance(value, str) else value


_UUID_PATTERN = r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"
UuidText = Annotated[str, BeforeValidator(_lower), StringConstraints(pattern=_UUID_PATTERN)]
Recipient = Annotated[str, StringConstraints(pattern=r"^(office|unit:[A-Z0-9][A-Z0-9-]{1,31})$")]
DeliveryAddress = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
PayloadValue = str | int | FiniteFloat | bool | None  # NaN and the infinities are not JSON: refused
#: Keys a notification's payload must never carry: a citizen's personal data stays in the case.
PERSONAL_KEYS = frozenset({"phone", "citizen_name", "name", "contact", "citizen_ref"})


class RequestNotification(Command):
    """Ask for one notification of an event to one recipient on one channel (the outbox)."""

    name: ClassVar[str] = "request_notification"
    trigger_id: UuidText
    trigger_version: Annotated[int, Field(ge=1, strict=True)]
    trigger_position: Annotated[int, Field(ge=1, strict=True)]
    kind: Literal["case_pushed", "result_reported", "sla_warning", "sla_breach", "report_published"]
    recipient: Recipient
    channel: Literal["log", "webhook", "email"]
    address: DeliveryAddress = ""
    subject: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
    payload: Annotated[dict[str, PayloadValue], Field(max_length=50)] = Field(default_factory=dict)
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    backoff_seconds: Annotated[float, Field(gt=0, le=86400)] = 30
    max_backoff_seconds: Annotated[float, Field(gt=0, le=7 * 86400)] = 3600

    @model_validator(mode="after")
    def _consistent(self) -> RequestNotification:
        personal = PERSONAL_KEYS & set(self.payload)
        if personal:
            raise ValueError(f"the payload must not carry personal data ({', '.join(sorted(personal))})")
        if self.channel == "log" and self.address:
            raise ValueError("a log notification has no address")
        if self.channel == "webhook" and not self.address.startswith(("http://", "https://")):
            raise ValueError("a webhook notification needs an http:// or https:// address")
        mailboxes = [a.strip() for a in self.address.split(",") if a.strip()]
        if self.channel == "email" and not (mailboxes and all("@" in a for a in mailboxes)):
            raise ValueError("an email notification needs e-mail addresses, separated by commas")
        if self.max_backoff_seconds < self.backoff_seconds:
            raise ValueError("max_backoff_seconds must not be less than backoff_seconds")
        return self


class StartDeliveryAttempt(Command):
    """Claim the next delivery attempt of a notification for a while (the lease)."""

    name: ClassVar[str] = "start_delivery_attempt"
    notification_id: UuidText
    attempt: Annotated[int, Field(ge=1)]
    address: DeliveryAddress = ""
    lease_seconds: Annotated[int, Field(ge=1, le=86400)] = 300


class RecordDeliveryAttempt(Command):
    """The outcome of the attempt under way: delivered, failed, or abandoned after its lease."""

    name: ClassVar[str] = "record_delivery_attempt"
    notification_id: UuidText
    attempt: Annotated[int, Field(ge=1)]
    outcome: Literal["delivered", "failed", "abandoned"]
    detail: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class RetryNotification(Command):
    """Give a dead-lettered notification another round of attempts."""

    name: ClassVar[str] = "retry_notification"
    notification_id: UuidText
    reason: Note


# -- API tokens (admin) and personal data reads (supervisor, unit head) ---------------------------

TokenRole = Literal["officer", "unit_head", "supervisor", "auditor", "admin"]
Principal = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
TokenHash = Annotated[str, BeforeValidator(_lower), StringConstraints(pattern=r"^[0-9a-f]{64}$")]
PersonalField = Literal["phone", "citizen_name"]


class CreateApiToken(Command):
    """Record a new API token by the SHA-256 of its secret (the secret itself never comes here)."""

    name: ClassVar[str] = "create_api_token"
    token_hash: TokenHash
    role: TokenRole
    #: Who holds it: an officer's or unit head's badge, another member of staff's id.
    principal: Principal
    #: A unit head's unit (required for them, refused for the other roles).
    unit_code: UnitCode | None = None
    label: ShortText | None = None

    @model_validator(mode="before")
    @classmethod
    def _badges_upper(cls, data: object) -> object:
        # An officer or unit head acts under their badge, which is upper case everywhere else.
        if isinstance(data, dict) and data.get("role") in {"officer", "unit_head"}:
            return {**data, "principal": _upper(data.get("principal"))}
        return data

    @model_validator(mode="after")
    def _unit_for_heads_only(self) -> CreateApiToken:
        if self.role == "unit_head" and self.unit_code is None:
            raise ValueError("a unit head's token needs the unit_code of their unit")
        if self.role != "unit_head" and self.unit_code is not None:
            raise ValueError(f"a {self.role} token is not bound to a unit; unit_code is for unit heads only")
        return self


class RevokeApiToken(Command):
    """Revoke an API token: requests carrying it are refused from now on."""

    name: ClassVar[str] = "revoke_api_token"
    token_id: UuidText
    reason: Note


class RecordPersonalDataRead(Command):
    """Record that a member of staff is about to read a case's contact (before it is shown); a read, not a move."""

    name: ClassVar[str] = "record_personal_data_read"
    ref: CaseRef
    fields: Annotated[list[PersonalField], Field(min_length=1, max_length=2)]
    token_id: UuidText | None = None


class EraseContact(CaseCommand):
    """Record that a case's contact was erased (its citizen's key deleted); never personal data in ``reason``.

    Not in :data:`ALL_COMMANDS`: an import line or an API body could record the erasure without
    deleting the key. Only ``adapters.privacy`` runs it, right after deleting the key.
    """

    name: ClassVar[str] = "erase_contact"
    reason: ShortText


# -- the tamper-evident log (supervision office, scheduler) ------------------------------------------

ChainHash = Annotated[str, BeforeValidator(_lower), StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class SealLog(Command):
    """Record a seal of the log: its chain hash at a position, both read from the store by the adapter."""

    name: ClassVar[str] = "seal_log"
    position: Annotated[int, Field(ge=1, strict=True)]
    chain_hash: ChainHash


ALL_COMMANDS: tuple[type[Command], ...] = (
    RegisterUnit,
    AssignUnitHead,
    RegisterOfficer,
    TransferOfficer,
    RecordOfficerLeft,
    IssueQr,
    RotateQr,
    RevokeQr,
    LogEncounter,
    LogEncounters,
    SubmitRating,
    OpenCase,
    ContactCitizen,
    ReportResult,
    RecordCallback,
    RecordCallbackAttempt,
    RecordSupervision,
    FlagCase,
    OrderRectification,
    ReportRectified,
    VerifyRectification,
    CloseCase,
    ReopenCase,
    RecordAccountability,
    RecordCommendation,
    RecordSlaWarning,
    RecordSlaBreach,
    PublishReport,
    RequestNotification,
    StartDeliveryAttempt,
    RecordDeliveryAttempt,
    RetryNotification,
    CreateApiToken,
    RevokeApiToken,
    RecordPersonalDataRead,
    SealLog,
)
COMMANDS_BY_NAME: dict[str, type[Command]] = {c.name: c for c in ALL_COMMANDS}

