"""The delivery channels: a structured log line, a signed webhook POST, an e-mail over SMTP.

A channel sends one attempt of one notification and either returns what the receiver
answered or raises :class:`DeliveryError` with the reason. It never retries and never
sleeps: retries are decided by the notification (backoff, dead letter) and made by the
outbox on a later run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit
from uuid import UUID

import structlog

from domain.clock import Clock
from domain.notifications import Notification

#: How much of a receiver's answer is kept in the record of an attempt.
DETAIL_CHARS = 300
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class DeliveryError(Exception):
    """The channel could not deliver this attempt; the message says why."""


@dataclass(frozen=True)
class Outgoing:
    """One attempt of one notification, as a channel sends it."""

    id: UUID
    kind: str
    recipient: str
    channel: str
    address: str
    subject: str
    body: str
    payload: Mapping[str, Any]
    requested_at: datetime
    attempt: int

    @classmethod
    def of(cls, notification: Notification, address: str, attempt: int) -> Outgoing:
        """Attempt ``attempt`` of ``notification``, sent to ``address``."""
        return cls(
            id=notification.id,
            kind=notification.kind.value,
            recipient=notification.recipient,
            channel=notification.channel.value,
            address=address,
            subject=notification.subject,
            body=notification.body,
            payload=dict(notification.payload),
            requested_at=notification.requested_at,
            attempt=attempt,
        )

    def as_json(self) -> dict[str, Any]:
        """What a webhook receiver gets."""
        return {
            "id": str(self.id),
            "kind": self.kind,
            "recipient": self.recipient,
            "subject": self.subject,
            "body": self.body,
            "payload": dict(self.payload),
            "requested_at": self.requested_at.isoformat(),
            "attempt": self.attempt,
        }


class Sender(Protocol):
    """A delivery channel."""

    def send(self, message: Outgoing) -> str:
        """Deliver ``message``; return what the receiver said, or raise :class:`DeliveryError`."""
        ...


class LogChannel:
    """Notifications as structured log lines (``notification_delivered``): always available."""

    def __init__(self) -> None:
        self.log = structlog.get_logger("pingjing.notify")

    def send(self, message: Outgoing) -> str:
        """Write the notification as one log line."""
        self.log.info(
            "notification_delivered",
            notification_id=str(message.id),
            kind=message.kind,
            recipient=message.recipient,
            subject=message.subject,
            body=message.body,
            payload=dict(message.payload),
            attempt=message.attempt,
        )
        return "logged"


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``"{timestamp}." + body``: the receiver recomputes it."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would lose its body: a 3xx answer is a failed attempt instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        """Follow nothing."""
        return None


class WebhookChannel:
    """POST the notification as JSON, signed with HMAC-SHA256 of the timestamp and body."""

    def __init__(self, secret: bytes, *, timeout: float, clock: Clock) -> None:
        if not secret:
            raise ValueError("a webhook needs a non-empty secret")
        self._secret = secret
        self.timeout = timeout
        self.clock = clock

    def request(self, message: Outgoing) -> urllib.request.Request:
        """The signed request for ``message``."""
        parts = urlsplit(message.address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DeliveryError(f"{message.address!r} is not an http(s) URL")
        body = json.dumps(message.as_json(), ensure_ascii=False, sort_keys=True).encode("utf-8")
        timestamp = str(int(self.clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "pingjing-notify/1",
            "X-Pingjing-Notification": str(message.id),
            "X-Pingjing-Attempt": str(message.attempt),
            "X-Pingjing-Timestamp": timestamp,
            "X-Pingjing-Signature": signature(self._secret, timestamp, body),
        }
        return urllib.request.Request(message.address, data=body, headers=headers, method="POST")  # noqa: S310 - scheme checked above

    def send(self, message: Outgoing) -> str:
        """POST once; a 2xx answer is a delivery, anything else (or no answer) a failed attempt."""
        request = self.request(message)
        host = urlsplit(message.address).hostname or ""
        # Loopback targets never go through a proxy from the environment.
        proxies = urllib.request.ProxyHandler({} if host in LOOPBACK_HOSTS else None)
        opener = urllib.request.build_opener(proxies, _NoRedirect())
        try:
            with opener.open(request, timeout=self.timeout) as response:
                answer = response.read(DETAIL_CHARS).decode("utf-8", "replace").strip()
                return _clip(f"HTTP {response.status}" + (f": {answer}" if answer else ""))
        except urllib.error.HTTPError as error:
            answer = error.read(DETAIL_CHARS).decode("utf-8", "replace").strip()
            said = f"HTTP {error.code} {error.reason}" + (f": {answer}" if answer else "")
            raise DeliveryError(_clip(said)) from None
        except urllib.error.URLError as error:
            raise DeliveryError(_clip(f"cannot reach {host}: {error.reason}")) from None
        except TimeoutError:
            raise DeliveryError(f"no answer from {host} within {self.timeout:g} s") from None
        except OSError as error:
            raise DeliveryError(_clip(f"connection to {host} failed: {error}")) from None


class SmtpChannel:
    """Send the notification as a UTF-8 mail; its Message-ID comes from the notification id."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10,
        clock: Clock,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.starttls = starttls
        self.username = username
        self._password = password
        self.timeout = timeout
        self.clock = clock

    def message(self, message: Outgoing) -> EmailMessage:
        """The mail: the same Message-ID on every attempt, so a retried mail is recognisable."""
        mail = EmailMessage(policy=SMTP)
        mail["From"] = Address("扫码评警 pingjing", addr_spec=self.sender)
        mail["To"] = message.address
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(self.clock.now())
        mail["Message-ID"] = message_id(message.id, self.sender)
        mail["X-Pingjing-Notification"] = str(message.id)
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.body, charset="utf-8", cte="base64")
        return mail

    def send(self, message: Outgoing) -> str:
        """Hand the mail to the server; refused by every recipient (or no server) is a failed attempt."""
        mail = self.message(message)
        recipients = [a.strip() for a in message.address.split(",") if a.strip()]
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.username is not None:
                    smtp.login(self.username, self._password or "")
                return self._transfer(smtp, mail, recipients)
        except smtplib.SMTPResponseException as error:
            raise DeliveryError(_clip(f"SMTP {error.smtp_code} {_text(error.smtp_error)}")) from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(_clip(f"SMTP {self.host}:{self.port}: {error or type(error).__name__}")) from None

    def _transfer(self, smtp: smtplib.SMTP, mail: EmailMessage, recipients: list[str]) -> str:
        code, answer = smtp.mail(self.sender)
        if code != 250:
            raise DeliveryError(_clip(f"SMTP {code} {_text(answer)} (MAIL FROM {self.sender})"))
        refused = []
        for recipient in recipients:
            code, answer = smtp.rcpt(recipient)
            if code not in (250, 251):
                refused.append(f"{recipient} ({code} {_text(answer)})")
        if len(refused) == len(recipients):
            smtp.rset()
            raise DeliveryError(_clip("every recipient was refused: " + "; ".join(refused)))
        code, answer = smtp.data(mail.as_bytes())
        if code != 250:
            raise DeliveryError(_clip(f"SMTP {code} {_text(answer)}"))
        detail = f"SMTP {code} {_text(answer)}"
        return _clip(detail + (f"; refused {'; '.join(refused)}" if refused else ""))


def message_id(notification: UUID, sender: str) -> str:
    """``<pingjing.HEX@sender's domain>`` (short enough that the header is never folded)."""
    return f"<pingjing.{notification.hex}@{sender.rpartition('@')[2]}>"


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer


def _clip(text: str) -> str:
    return text if len(text) <= 1000 else text[:997] + "..."
