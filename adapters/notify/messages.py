"""What each triggering event says, and to whom: subject (中文), body (中文 and English), payload.

A case pushed, an SLA warning and an SLA breach go to the head of the case's unit and to
the supervision office; a unit's reported result goes back to the office (三个一); a
published report goes to the office and every unit. Texts and payloads name the case,
the unit, the step and the deadline; they never carry a citizen's phone, name or words.
A case whose citizen's data were erased is told as such (no callback is possible); the
message never needed the data, and composing it opens nothing it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.application import PingjingApp
from domain.case import Case
from domain.ids import LOCAL_TZ
from domain.notifications import OFFICE, TriggerKind, unit_recipient
from domain.registry import Unit
from domain.reports import Report, ReportKind, report_name
from domain.sla import SlaPolicy, WorkingCalendar, step_clock
from domain.values import UnitKind
from domain.workflow import SlaStep

_PAGE = 5000

#: The events that notify someone, and what each is called in a notification.
TRIGGERS: dict[type, TriggerKind] = {
    Case.Pushed: TriggerKind.CASE_PUSHED,  # type: ignore[attr-defined]
    Case.ResultReported: TriggerKind.RESULT_REPORTED,  # type: ignore[attr-defined]
    Case.SlaWarned: TriggerKind.SLA_WARNING,  # type: ignore[attr-defined]
    Case.SlaBreached: TriggerKind.SLA_BREACH,  # type: ignore[attr-defined]
    Report.Published: TriggerKind.REPORT_PUBLISHED,  # type: ignore[attr-defined]
}
TRIGGER_TOPICS = tuple(sorted(get_topic(cls) for cls in TRIGGERS))

CASE_KINDS = {"dissatisfaction": "不满意评价", "complaint": "投诉", "suggestion": "建议"}
STEPS = {
    SlaStep.PUSH: "推送",
    SlaStep.CONTACT: "联系当事人",
    SlaStep.FEEDBACK: "反馈结果",
    SlaStep.CALLBACK: "回访",
    SlaStep.RECTIFICATION: "整改",
    SlaStep.VERIFICATION: "落实核查",
}
REPORT_KINDS = {"weekly": "周点评", "monthly": "月通报"}
DETAILS = "详情 Details: pingjing case show {ref}"


@dataclass(frozen=True)
class UnitInfo:
    """What a notification needs of a unit."""

    code: str
    name: str
    kind: UnitKind
    position: int


class UnitBook:
    """The units, folded from ``Unit.Registered`` as far as the outbox has read."""

    TOPICS = (get_topic(Unit.Registered),)  # type: ignore[attr-defined]

    def __init__(self) -> None:
        self.units: dict[UUID, UnitInfo] = {}
        self.position = 0

    def catch_up(self, app: PingjingApp, until: int) -> None:
        """Read the units registered up to log position ``until``."""
        while self.position < until:
            page = app.recorder.select_notifications(
                start=self.position + 1, limit=_PAGE, stop=until, topics=self.TOPICS
            )
            for n in page:
                event: Any = app.mapper.to_domain_event(n)
                self.units[event.originator_id] = UnitInfo(event.code, event.name, UnitKind(event.kind), n.id)
            self.position = page[-1].id if len(page) == _PAGE else until

    def unit(self, unit_id: UUID) -> UnitInfo:
        """The unit with this id; a case's unit is always registered before the case."""
        found = self.units.get(unit_id)
        if found is None:
            raise LookupError(f"unit {unit_id} is not registered")
        return found

    def receivers(self, position: int) -> list[UnitInfo]:
        """Units registered by ``position`` that receive the bureau's reports (not the office itself)."""
        return sorted(
            (u for u in self.units.values() if u.position <= position and u.kind is not UnitKind.SUPERVISION_OFFICE),
            key=lambda u: u.code,
        )


@dataclass(frozen=True)
class Message:
    """What one triggering event tells, and to which recipients."""

    kind: TriggerKind
    trigger_id: UUID
    trigger_version: int
    position: int
    correlation_id: str
    subject: str
    body: str
    payload: dict[str, str | int | float | bool | None]
    recipients: tuple[str, ...]


def local(moment: datetime) -> str:
    """A moment as people in the county read it: ``2021-11-02 09:00`` (Asia/Shanghai)."""
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


class Composer:
    """Turns triggering events into messages."""

    def __init__(self, app: PingjingApp, units: UnitBook, policy: SlaPolicy, calendar: WorkingCalendar) -> None:
        self.app = app
        self.units = units
        self.policy = policy
        self.calendar = calendar

    def compose(self, position: int, event: Any) -> Message | None:
        """The message of ``event``, or None when it notifies nobody."""
        kind = TRIGGERS.get(type(event))
        if kind is None:
            return None
        if kind is TriggerKind.REPORT_PUBLISHED:
            subject, body, payload, recipients = self._report(position, event)
        else:
            subject, body, payload, recipients = self._case(kind, event)
        return Message(
            kind, event.originator_id, event.originator_version, position, event.meta.correlation_id,
            subject, body, payload, recipients,
        )

    # -- cases -------------------------------------------------------------------------------

    def _case(self, kind: TriggerKind, event: Any) -> tuple[str, str, dict[str, Any], tuple[str, ...]]:
        case, clocks = self._case_as_of(event.originator_id, event.originator_version)
        unit = self.units.unit(case.unit_id)
        ref, at = case.ref, event.meta.occurred_at
        payload: dict[str, Any] = {
            "case_ref": ref, "case_kind": case.kind.value, "unit_code": unit.code, "round": case.round,
            "occurred_at": at.isoformat(),
        }
        both = (unit_recipient(unit.code), OFFICE)
        if kind is TriggerKind.CASE_PUSHED:
            contact, feedback = clocks[SlaStep.CONTACT][1], clocks[SlaStep.FEEDBACK][1]
            payload |= {"contact_due": contact.isoformat(), "feedback_due": feedback.isoformat()}
            what = f"{CASE_KINDS[case.kind.value]}，第 {case.round} 轮"
            subject = f"【扫码评警】新督办件 {ref} 已推送至{unit.name}"
            body = (
                f"督办件 {ref}（{what}）已推送至{unit.name}（{unit.code}），请单位负责人立即联系当事群众。\n"
                f"联系时限：{local(contact)}；反馈时限：{local(feedback)}（北京时间）。\n"
                f"Case {ref} ({case.kind.value}, round {case.round}) was pushed to unit {unit.code}: "
                f"the unit head should contact the citizen at once.\n"
                f"Contact due {local(contact)}, feedback due {local(feedback)} (Asia/Shanghai).\n"
            )
            return subject, body + DETAILS.format(ref=ref), payload, both
        if kind is TriggerKind.RESULT_REPORTED:
            callback = clocks.get(SlaStep.CALLBACK)  # running only when the citizen left a contact
            # The citizen's data may have been erased since (on request): nobody can be called back then.
            erased = case.contact is not None and case.contact.phone is None
            payload |= {
                "callable": case.callable, "contact_erased": erased,
                "callback_due": callback[1].isoformat() if callback else None,
            }
            subject = f"【扫码评警】{unit.name}已反馈督办件 {ref} 的办理结果"
            if erased:
                then = (
                    "群众的联系方式已按规定删除，无法回访，可记录回访未接通后办结，或责令整改。\n"
                    "The citizen's contact was erased: record the unreachable callbacks and close, "
                    "or order rectification."
                )
            elif callback:
                by = local(callback[1])
                then = f"请回访群众，回访时限：{by}。\nPlease call the citizen back by {by}."
            else:
                then = (
                    "群众未留联系方式，无需回访，可办结或责令整改。\n"
                    "The citizen left no contact: close the case or order rectification."
                )
            body = (
                f"{unit.name}（{unit.code}）已反馈督办件 {ref}（第 {case.round} 轮）的办理结果。\n{then}\n"
                f"Unit {unit.code} reported its result on case {ref} (round {case.round}).\n"
            )
            return subject, body + DETAILS.format(ref=ref), payload, (OFFICE,)
        step = SlaStep(event.step)
        warn_at, due = clocks[step]
        payload |= {"step": step.value, "warn_at": warn_at.isoformat(), "deadline": due.isoformat()}
        if kind is TriggerKind.SLA_WARNING:
            subject = f"【扫码评警】督办件 {ref}「{STEPS[step]}」即将超时（时限 {local(due)}）"
            body = (
                f"督办件 {ref}（{unit.name}）的「{STEPS[step]}」环节将于 {local(due)} 超时，请抓紧办理。\n"
                f"Case {ref} (unit {unit.code}): step {step.value} of round {event.round} is due {local(due)}.\n"
            )
        else:
            flagged = "；已自动挂牌督办" if step is SlaStep.FEEDBACK else ""
            subject = f"【扫码评警】督办件 {ref}「{STEPS[step]}」已超时"
            body = (
                f"督办件 {ref}（{unit.name}）的「{STEPS[step]}」环节已于 {local(due)} 超时{flagged}。\n"
                f"Case {ref} (unit {unit.code}): step {step.value} of round {event.round} "
                f"breached its deadline {local(due)}.\n"
            )
        return subject, body + DETAILS.format(ref=ref), payload, both

    def _case_as_of(self, case_id: UUID, version: int) -> tuple[Case, dict[SlaStep, tuple[datetime, datetime]]]:
        """The case at ``version``, with the (warning, deadline) of each step running then.

        A step's limit depends on whether the case was flagged when the step started, so the
        case's history is folded event by event, as the SLA ledger does.
        """
        case: Any = None
        clocks: dict[SlaStep, tuple[datetime, datetime]] = {}
        history: Any = self.app.events.get(case_id, lte=version)
        for event in history:
            before = dict(case.running) if case is not None else {}
            case = event.mutate(case)
            for step, started in case.running.items():
                if before.get(step) != started:
                    due = case.rectification_due if step is SlaStep.RECTIFICATION else None
                    clocks[step] = step_clock(
                        self.policy, self.calendar, step, started, flagged=case.flagged_at is not None, due_at=due
                    )
        if not isinstance(case, Case):
            raise LookupError(f"case {case_id} has no events up to version {version}")
        return case, {step: clocks[step] for step in case.running if step in clocks}

    # -- reports -----------------------------------------------------------------------------

    def _report(self, position: int, event: Any) -> tuple[str, str, dict[str, Any], tuple[str, ...]]:
        kind = ReportKind(event.kind).value
        name = report_name(ReportKind(kind), event.period, event.edition)
        payload: dict[str, Any] = {
            "report_name": name, "report_kind": kind, "period": event.period, "edition": event.edition,
            "title": event.title, "position": event.position, "content_hash": event.content_hash,
            "published_at": event.meta.occurred_at.isoformat(),
        }
        subject = f"【扫码评警】{REPORT_KINDS.get(kind, kind)}已发布：{event.title}"
        body = (
            f"{event.title}（{name}）已发布，统计截至事件日志位置 {event.position}，内容哈希 {event.content_hash}。\n"
            f"The {kind} report {name} was published, computed at log position {event.position}; "
            f"SHA-256 {event.content_hash}.\n"
            f"核验 Verify: pingjing report verify {name}"
        )
        recipients = (OFFICE, *(unit_recipient(u.code) for u in self.units.receivers(position)))
        return subject, body, payload, recipients
