"""The case moves the console offers as forms: which, with which fields, and whether the case allows them now.

The moves are the staff API's case routes (:data:`adapters.http.api.COMMAND_ROUTES`): the same
commands, each under the last part of its API path (``contact``, ``rectification-done``). A
form's fields are the command's own fields (less the case reference), drawn by their type:
a yes/no choice for a flag, a list for an enumeration, a date and time (Asia/Shanghai) for a
moment, a text area for a note.

Whether a move is offered is the domain's own answer, not a copy of its rules: the roles come
from :data:`domain.permissions.ALLOWED_ROLES`, and the move is decided with sample values by
:meth:`PingjingApp.decide` (:func:`offered`), which saves nothing and tells no observer. A
refusal for the case's state or the actor's unit hides the form; a refusal of the sample
values themselves (say, an officer's badge the form has yet to be given) does not.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo

from adapters.http.api import COMMAND_ROUTES, staff_roles
from domain import commands as c
from domain.application import Context, PingjingApp
from domain.errors import IllegalMoveError, PermissionDeniedError
from domain.ids import LOCAL_TZ
from domain.values import Actor, Channel, Role
from domain.workflow import DEFAULT_RECTIFICATION_PERIOD

Widget = Literal["text", "textarea", "yesno", "choice", "datetime"]

_CASE_PATH = "/cases/{ref}/"
#: Text longer than this is written in a text area.
_LONG_TEXT = 200
_PROBE_CORRELATION = "console-probe"

#: Each move's button (Chinese, what the browser tests press) and its English name.
BUTTONS: dict[type[c.CaseCommand], tuple[str, str]] = {
    c.ContactCitizen: ("联系群众", "Contact the citizen"),
    c.ReportResult: ("报告结果", "Report the handling result"),
    c.RecordCallback: ("回访", "Call the citizen back"),
    c.RecordCallbackAttempt: ("记录未接通", "Callback attempt, not reached"),
    c.RecordSupervision: ("督办沟通", "Supervision contact"),
    c.FlagCase: ("挂牌督办", "Flag for listed supervision"),
    c.OrderRectification: ("责令整改", "Order rectification"),
    c.ReportRectified: ("整改完成", "Report rectification done"),
    c.VerifyRectification: ("落实核查", "Verify the rectification"),
    c.CloseCase: ("结案", "Close the case"),
    c.ReopenCase: ("重新办理", "Reopen for a new round"),
    c.RecordAccountability: ("追责", "Record accountability"),
    c.RecordCommendation: ("表扬", "Record a commendation"),
}
#: Each command field's label, Chinese first.
FIELD_LABELS: dict[str, str] = {
    "note": "说明 Note",
    "result": "处理结果 Handling result",
    "satisfied": "群众是否满意 Citizen satisfied",
    "target": "沟通对象 Contacted",
    "reason": "原因 Reason",
    "instructions": "整改要求 Instructions",
    "due_at": "整改期限 Due by",
    "implemented": "是否落实 Implemented",
    "new_due_at": "新的整改期限 New due date",
    "resolution": "办结意见 Resolution",
    "citizen_accepted": "群众是否认可 Citizen accepted",
    "badge": "警号 Officer's badge",
    "measure": "追责方式 Measure",
    "kind": "类型 Kind",
    "unit_code": "单位代码 Unit code",
}
#: The Chinese name of each enumeration value a form offers.
CHOICE_LABELS: dict[str, str] = {
    "citizen": "群众",
    "unit": "单位",
    "criticism_notice": "通报批评",
    "admonition_talk": "诫勉谈话",
    "written_self_examination": "书面检查",
    "reminder_talk": "提醒谈话",
    "banner": "锦旗",
    "praise": "点赞",
    "thank_you_letter": "感谢信",
}
_DEFAULT_DAYS = DEFAULT_RECTIFICATION_PERIOD.days
#: What leaving an optional field empty means.
FIELD_HINTS: dict[str, str] = {
    "due_at": f"北京时间；留空则 {_DEFAULT_DAYS} 天后 (Asia/Shanghai; empty: in {_DEFAULT_DAYS} days)",
    "new_due_at": f"北京时间；核查未落实时留空则 {_DEFAULT_DAYS} 天后 (Asia/Shanghai; empty: in {_DEFAULT_DAYS} days)",
    "citizen_accepted": "未回访到群众时留空 (leave empty when the citizen was not reached)",
    "badge": "表扬单位时留空 (empty for a unit)",
    "unit_code": "留空则为本案单位 (empty: the case's unit)",
}
_YES_NO = (("yes", "是 yes"), ("no", "否 no"))


@dataclass(frozen=True)
class FormField:
    """One field of a move's form."""

    name: str
    label: str
    widget: Widget
    required: bool
    choices: tuple[tuple[str, str], ...] = ()
    max_length: int | None = None
    hint: str = ""


@dataclass(frozen=True)
class MoveForm:
    """A case move as a form: its URL part, command, button, the roles that may make it, its fields."""

    slug: str
    command: type[c.CaseCommand]
    button: str
    english: str
    roles: frozenset[Role]
    fields: tuple[FormField, ...]

    def command_from(self, ref: str, form: Mapping[str, str]) -> c.CaseCommand:
        """The command a posted form asks for (pydantic's error naming the field when it is not valid)."""
        data: dict[str, object] = {"ref": ref}
        for field in self.fields:
            value = form.get(field.name, "").strip()
            if value:
                data[field.name] = local_moment(value) if field.widget == "datetime" else value
        return self.command.model_validate(data)

    def sample(self, ref: str, known: Mapping[str, str]) -> c.CaseCommand | None:
        """The command with plausible values in its required fields (``known``: badge, unit code);
        None when a required field has no plausible value."""
        data: dict[str, object] = {"ref": ref}
        for field in self.fields:
            if not field.required:
                continue
            if field.widget in {"choice", "yesno"}:
                data[field.name] = field.choices[0][0]
            elif field.widget == "textarea":
                data[field.name] = "（核对可办理的操作 checking the moves offered）"
            elif known.get(field.name):
                data[field.name] = known[field.name]
            else:
                return None
        try:
            return self.command.model_validate(data)
        except PydanticValidationError:
            return None


def local_moment(text: str) -> datetime | str:
    """A form's date and time (``2021-11-20T10:00``) as an aware moment, Asia/Shanghai when it names no zone;
    the text itself when it is no date (the command's validation then names the field)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=LOCAL_TZ)


def _unwrapped(annotation: Any) -> tuple[Any, list[Any]]:
    """The type inside ``X | None`` and ``Annotated[X, ...]``, with the annotations' metadata."""
    if get_origin(annotation) in {Union, types.UnionType}:
        (inner,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _unwrapped(inner)
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        inner_base, inner_metadata = _unwrapped(base)
        return inner_base, [*metadata, *inner_metadata]
    return annotation, []


def form_field(name: str, info: FieldInfo) -> FormField:
    """A command field as a form field, drawn by its type."""
    base, metadata = _unwrapped(info.annotation)
    metadata = [*info.metadata, *metadata]
    max_length = next((m.max_length for m in metadata if getattr(m, "max_length", None)), None)
    widget: Widget
    choices: tuple[tuple[str, str], ...] = ()
    if isinstance(base, type) and issubclass(base, Enum):
        widget = "choice"
        choices = tuple((m.value, f"{CHOICE_LABELS[m.value]} {m.value.replace('_', ' ')}") for m in base)
    elif base is bool:
        widget, choices = "yesno", _YES_NO
    elif base is AwareDatetime or (isinstance(base, type) and issubclass(base, datetime)):
        widget = "datetime"
    else:
        widget = "textarea" if max_length and max_length > _LONG_TEXT else "text"
    required = info.is_required()
    hint = "" if required else FIELD_HINTS.get(name, "")  # each hint says what leaving the field empty means
    return FormField(name, FIELD_LABELS[name], widget, required, choices, max_length, hint)


def _moves() -> tuple[MoveForm, ...]:
    moves = []
    for route in COMMAND_ROUTES:
        command = route.command
        if not route.path.startswith(_CASE_PATH) or not issubclass(command, c.CaseCommand):
            continue
        button, english = BUTTONS[command]
        fields = tuple(form_field(name, info) for name, info in command.model_fields.items() if name != "ref")
        slug = route.path.removeprefix(_CASE_PATH).replace("/", "-")
        moves.append(MoveForm(slug, command, button, english, staff_roles(command), fields))
    return tuple(moves)


#: Every case move of the staff API, in the API's order.
MOVES: tuple[MoveForm, ...] = _moves()
MOVES_BY_SLUG: dict[str, MoveForm] = {move.slug: move for move in MOVES}


def offered(app: PingjingApp, actor: Actor, ref: str, known: Mapping[str, str]) -> list[MoveForm]:
    """The moves ``actor`` may make on case ``ref`` now, as the domain decides (see the module's note)."""
    context = Context(actor, Channel.CONSOLE, correlation_id=_PROBE_CORRELATION)
    return [move for move in MOVES if actor.role in move.roles and _allowed(app, context, move.sample(ref, known))]


def _allowed(app: PingjingApp, context: Context, command: c.CaseCommand | None) -> bool:
    """Whether the use case accepts ``command`` now; nothing is kept."""
    if command is None:
        return True  # no plausible values to try: the role may, the domain decides when it is sent
    refused = app.decide(command, context)
    # A refusal of the sample values themselves (not of the move) still offers the form.
    return not isinstance(refused, IllegalMoveError | PermissionDeniedError)
