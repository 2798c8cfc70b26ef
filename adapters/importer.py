"""Bulk import: one command per JSON line, as dispatch systems and back-filling use it.

Line format::

    {"cmd": "submit_rating", "at": "2021-11-09T20:40:00+08:00",
     "actor": "citizen:anonymous", "args": {...}}

``actor`` is ``ROLE:PRINCIPAL`` (or ``system``), or ``{"role": ..., "principal": ...}``.
A bad line is reported with its number and reason and writes nothing; the other
lines still apply, or, with ``atomic``, nothing does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, create_model
from pydantic import ValidationError as PydanticValidationError

from domain.application import Context, PingjingApp
from domain.commands import ALL_COMMANDS, Command
from domain.errors import PingjingError
from domain.usecases import Receipt
from domain.values import Actor, Channel, Role

BATCH_LINES = 500
MAX_LINE_BYTES = 1_000_000


class ActorObject(BaseModel):
    """The long form of an actor."""

    model_config = ConfigDict(extra="forbid")
    principal: Annotated[str, Field(min_length=1, max_length=64)]
    role: Role


ActorText = Annotated[str, Field(pattern=r"^(system|[a-z_]+:.+)$")]


def _line_model(command: type[Command]) -> type[BaseModel]:
    return create_model(
        f"Import_{command.name}",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"Import line for {command.name}: {command.__doc__}",
        cmd=(Literal[command.name], ...),  # type: ignore[arg-type]  # a Literal built at run time
        at=(AwareDatetime, Field(description="when it happened, ISO 8601 with a time zone")),
        actor=(
            ActorText | ActorObject,
            Field(description="ROLE:PRINCIPAL, 'system', or {role, principal}"),
        ),
        args=(command, ...),
        channel=(Channel, Field(default=Channel.IMPORT, description="how it originally came in (default: import)")),
    )


_LINE_MODELS = tuple(_line_model(cmd) for cmd in ALL_COMMANDS)
ImportLine: TypeAdapter[Any] = TypeAdapter(
    Annotated[Union[_LINE_MODELS], Field(discriminator="cmd")]  # type: ignore[arg-type]  # noqa: UP007
)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one import line, generated from the command models."""
    schema = ImportLine.json_schema()
    schema["title"] = "pingjing import line"
    schema["description"] = __doc__.split("\n\n")[0] if __doc__ else ""
    return schema


@dataclass
class LineResult:
    """What became of one line."""

    number: int
    command: str | None
    receipt: Receipt | None = None
    error: str | None = None


@dataclass
class ImportReport:
    """The outcome of an import."""

    lines: list[LineResult] = field(default_factory=list)
    written: bool = True

    @property
    def applied(self) -> int:
        """Lines that took effect (or would have, in a dry run)."""
        return sum(1 for line in self.lines if line.error is None)

    @property
    def refused(self) -> list[LineResult]:
        """Lines that were refused, with their reasons."""
        return [line for line in self.lines if line.error is not None]


def _describe(error: PydanticValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"] if not str(p).startswith("Import_"))
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts)


def parse_line(text: str, number: int, run_id: str) -> tuple[Command, Context]:
    """Turn one line into a command and its context, or raise ValueError with the reason."""
    if len(text.encode()) > MAX_LINE_BYTES:
        raise ValueError(f"line is longer than {MAX_LINE_BYTES} bytes")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(raw, dict):
        raise ValueError("a line must be a JSON object with cmd, at, actor and args")
    try:
        line = ImportLine.validate_python(raw)
    except PydanticValidationError as error:
        raise ValueError(_describe(error)) from None
    try:
        actor = (
            Actor(line.actor.principal, line.actor.role)
            if isinstance(line.actor, ActorObject)
            else Actor.parse(line.actor)
        )
    except PingjingError as error:
        raise ValueError(str(error)) from None
    context = Context(actor=actor, channel=line.channel, at=line.at, correlation_id=f"{run_id}-L{number}")
    return line.args, context


def _cmd_name(text: str) -> str | None:
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    cmd = raw.get("cmd") if isinstance(raw, dict) else None
    return cmd if isinstance(cmd, str) and cmd in _NAMES else None


_NAMES = frozenset(cmd.name for cmd in ALL_COMMANDS)


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, text in enumerate(lines, start=1):
        if text.strip():
            yield number, text


def run_import(
    app: PingjingApp,
    lines: Iterable[str],
    *,
    run_id: str,
    atomic: bool = False,
    dry_run: bool = False,
    committed: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Apply the lines through the application; see the module docstring for the rules.

    ``committed(first, last)`` is called after each batch of lines is durably written (not for a
    dry run, nor for an atomic import that wrote nothing): from then on those lines' accepted
    commands are in the log whatever happens to this process.
    """
    report = ImportReport(written=not dry_run)
    pending: list[tuple[int, Command, Context]] = []
    parse_failed = False

    def flush() -> None:
        if not pending:
            return
        outcomes = app.execute_batch([(cmd, ctx) for _, cmd, ctx in pending], all_or_nothing=atomic, dry_run=dry_run)
        for (number, cmd, _), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, PingjingError):
                report.lines.append(LineResult(number, cmd.name, error=str(outcome)))
            else:
                report.lines.append(LineResult(number, cmd.name, receipt=outcome))
        failed = any(isinstance(outcome, PingjingError) for outcome in outcomes)
        if committed is not None and not dry_run and not (atomic and failed):
            committed(pending[0][0], pending[-1][0])
        pending.clear()

    for number, text in _numbered(lines):
        try:
            command, context = parse_line(text, number, run_id)
        except ValueError as error:
            report.lines.append(LineResult(number, _cmd_name(text), error=str(error)))
            parse_failed = True
            continue
        pending.append((number, command, context))
        if not atomic and not dry_run and len(pending) >= BATCH_LINES:
            flush()
    if atomic and parse_failed:
        # Nothing may be written; still decide the rest so every bad line is reported.
        dry_run = True
    flush()
    report.lines.sort(key=lambda line: line.number)
    if (atomic and report.refused) or dry_run:
        report.written = False
    return report
