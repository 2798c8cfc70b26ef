"""Who is notified on which channel: the TOML file named by ``PINGJING_NOTIFICATIONS``.

::

    log = true                                   # a structured log line for every recipient (default)

    [office]                                     # the supervision office (扫码评警办公室)
    email = ["ducha@lingshou.example"]
    webhook = true

    [units."LS-PCS-01"]                          # one unit's head
    email = ["head.pcs01@lingshou.example"]
    [units."*"]                                  # every other unit; {code} / {code_lower} fill in the code
    email = ["{code_lower}@units.lingshou.example"]

    [webhook]
    url = "https://hooks.lingshou.example/pingjing"
    secret_env = "PINGJING_WEBHOOK_SECRET"       # the NAME of the variable holding the HMAC secret
    max_attempts = 5                             # then the notification is a dead letter
    backoff_seconds = 30                         # 30 s, 60 s, 120 s, ... after each failure
    max_backoff_seconds = 3600
    timeout_seconds = 10

    [smtp]
    host = "mail.lingshou.example"
    port = 587
    sender = "pingjing@lingshou.example"
    starttls = true
    username = "pingjing"
    password_env = "PINGJING_SMTP_PASSWORD"      # same retry keys as [webhook]

Without a file, every notification goes to the structured log, for the office and each
unit. Secrets never live in the file: it names the environment variables that hold them.
A bad file is refused with its path, the key and what is wrong.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Self, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic import ValidationError as PydanticValidationError

from adapters.store import StoreConfigError
from domain.notifications import OFFICE, DeliveryChannel

UNIT_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,31}$")
MAILBOX = re.compile(r"^[A-Za-z0-9._%+{}-]+@[A-Za-z0-9{}-]+(\.[A-Za-z0-9{}-]+)+$")
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
DEFAULT_UNIT = "*"


class NotificationConfigError(StoreConfigError):
    """The notifications file cannot be used (reported like the store's own settings)."""


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME)]


class RecipientTable(_Table):
    """``[office]`` or ``[units."CODE"]``: the mailboxes and whether the webhook is told."""

    email: list[str] = Field(default_factory=list)
    webhook: bool = False

    @model_validator(mode="after")
    def _mailboxes(self) -> Self:
        for address in self.email:
            bare = address.replace("{code}", "").replace("{code_lower}", "")
            if "{" in bare or "}" in bare:
                raise ValueError(f"{address!r}: the only placeholders are {{code}} and {{code_lower}}")
            if not MAILBOX.match(address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return self


class RetryTable(_Table):
    """How often and how patiently a channel retries."""

    max_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    backoff_seconds: Annotated[float, Field(gt=0, le=86400)] = 30
    max_backoff_seconds: Annotated[float, Field(gt=0, le=7 * 86400)] = 3600
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10

    @model_validator(mode="after")
    def _backoff_order(self) -> Self:
        if self.max_backoff_seconds < self.backoff_seconds:
            raise ValueError("max_backoff_seconds is less than backoff_seconds")
        return self


class WebhookTable(RetryTable):
    """``[webhook]``: where to POST and which variable holds the signing secret."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/\S*)?$")]
    secret_env: EnvName


class SmtpTable(RetryTable):
    """``[smtp]``: the mail server and the sender."""

    host: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    sender: str
    starttls: bool = False
    username: str | None = None
    password_env: EnvName | None = None

    @model_validator(mode="after")
    def _sender_and_login(self) -> Self:
        if not MAILBOX.match(self.sender) or "{" in self.sender:
            raise ValueError(f"sender {self.sender!r} is not an e-mail address")
        if self.username is not None and self.password_env is None:
            raise ValueError("username is set but password_env (the variable holding the password) is not")
        if self.password_env is not None and self.username is None:
            raise ValueError("password_env is set but username is not")
        return self


class NotificationsFile(_Table):
    """The whole file."""

    log: bool = True
    office: RecipientTable = Field(default_factory=RecipientTable)
    units: dict[str, RecipientTable] = Field(default_factory=dict)
    webhook: WebhookTable | None = None
    smtp: SmtpTable | None = None

    @model_validator(mode="after")
    def _channels_exist(self) -> Self:
        for name, table in (("office", self.office), *((f'units."{k}"', v) for k, v in self.units.items())):
            if table.webhook and self.webhook is None:
                raise ValueError(f"{name}.webhook is true but there is no [webhook] table")
            if table.email and self.smtp is None:
                raise ValueError(f"{name}.email is set but there is no [smtp] table")
        if any("{" in address for address in self.office.email):
            raise ValueError("office.email: {code} placeholders belong to units, not the office")
        for code in self.units:
            if code != DEFAULT_UNIT and not UNIT_CODE.match(code):
                raise ValueError(f'units."{code}": not a unit code (upper-case letters, digits, "-"; or "*")')
        return self


@dataclass(frozen=True)
class Retry:
    """A channel's retry policy and send timeout."""

    max_attempts: int = 5
    backoff_seconds: float = 30
    max_backoff_seconds: float = 3600
    timeout_seconds: float = 10


@dataclass(frozen=True)
class NotificationConfig:
    """The file, checked, with the secrets read from the environment."""

    file: NotificationsFile = field(default_factory=NotificationsFile)
    source: str = "no notifications file (structured log only)"
    webhook_secret: bytes | None = field(default=None, repr=False)
    smtp_password: str | None = field(default=None, repr=False)

    def routes(self, recipient: str) -> list[tuple[DeliveryChannel, str]]:
        """Every channel ``recipient`` (``office`` or ``unit:CODE``) is told on, with its address."""
        routes: list[tuple[DeliveryChannel, str]] = [(DeliveryChannel.LOG, "")] if self.file.log else []
        for channel in (DeliveryChannel.WEBHOOK, DeliveryChannel.EMAIL):
            address = self.address(recipient, channel)
            if address:
                routes.append((channel, address))
        return routes

    def address(self, recipient: str, channel: DeliveryChannel) -> str | None:
        """Where ``recipient`` gets ``channel`` now (``""`` for the log), or None if it does not."""
        if channel is DeliveryChannel.LOG:
            return "" if self.file.log else None
        table, code = self._table(recipient)
        if table is None:
            return None
        if channel is DeliveryChannel.WEBHOOK:
            return self.file.webhook.url if table.webhook and self.file.webhook else None
        mailboxes = [a.replace("{code}", code).replace("{code_lower}", code.lower()) for a in table.email]
        return ", ".join(mailboxes) or None

    def retry(self, channel: DeliveryChannel) -> Retry:
        """The retry policy of ``channel`` (the log channel uses the defaults)."""
        table: RetryTable | None = {
            DeliveryChannel.WEBHOOK: self.file.webhook,
            DeliveryChannel.EMAIL: self.file.smtp,
        }.get(channel)
        if table is None:
            return Retry()
        return Retry(table.max_attempts, table.backoff_seconds, table.max_backoff_seconds, table.timeout_seconds)

    def _table(self, recipient: str) -> tuple[RecipientTable | None, str]:
        if recipient == OFFICE:
            return self.file.office, ""
        code = recipient.removeprefix("unit:")
        return self.file.units.get(code) or self.file.units.get(DEFAULT_UNIT), code


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> NotificationConfig:
    """The configuration in ``path`` (None: log only); a bad file raises :class:`NotificationConfigError`."""
    if path is None:
        return NotificationConfig()
    environ = os.environ if environ is None else environ
    where = f"PINGJING_NOTIFICATIONS {path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise NotificationConfigError(f"{where}: cannot be read: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise NotificationConfigError(f"{where}: not valid TOML: {error}") from None
    if isinstance(data.get("units"), dict):
        # Unit codes are case-insensitive, as everywhere else.
        data["units"] = {str(code).strip().upper(): table for code, table in data["units"].items()}
    try:
        parsed = NotificationsFile.model_validate(data)
    except PydanticValidationError as error:
        raise NotificationConfigError(f"{where}: {_first_problem(error)}") from None
    secret = _secret(where, "webhook", parsed.webhook.secret_env, environ) if parsed.webhook else None
    password = None
    if parsed.smtp is not None and parsed.smtp.password_env is not None:
        password = _secret(where, "smtp", parsed.smtp.password_env, environ)
    return NotificationConfig(
        file=parsed,
        source=str(path),
        webhook_secret=secret.encode("utf-8") if secret is not None else None,
        smtp_password=password,
    )


def _secret(where: str, table: str, name: str, environ: Mapping[str, str]) -> str:
    value = environ.get(name, "")
    if not value:
        key = "secret_env" if table == "webhook" else "password_env"
        raise NotificationConfigError(f"{where}: [{table}] {key}: the environment variable {name} is not set or empty")
    return value


def _first_problem(error: PydanticValidationError) -> str:
    """``key: what is wrong`` for the first problem pydantic found, in the file's own terms."""
    problem = error.errors()[0]
    loc = tuple(problem["loc"])
    key = _key(loc)
    message = str(problem["msg"]).removeprefix("Value error, ")
    if problem["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        message = "unknown key" + (f" (expected one of: {', '.join(known)})" if known else "")
    elif problem["type"] == "missing":
        message = "required key is missing"
    elif "input" in problem and problem["type"] not in ("value_error", "model_type"):
        message = f"{message} (got {problem['input']!r})"
    return f"{key}: {message}" if key else message


def _key(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif i > 0 and loc[i - 1] == "units":
            parts.append(f'."{part}"')
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the table at ``loc`` accepts (walking the models the file is checked with)."""
    model: Any = NotificationsFile
    skip_key = False
    for part in loc:
        if skip_key:
            skip_key = False
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return []
        annotation = fields[part].annotation
        args = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) is dict:
            model, skip_key = args[1], True
        elif args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            model = args[0]
        else:
            model = annotation
    fields = getattr(model, "model_fields", None)
    return sorted(fields) if fields else []
