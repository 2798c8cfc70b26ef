"""Real local receivers for the notification tests: a webhook server and an SMTP server on 127.0.0.1.

The webhook receiver checks each request's HMAC signature with its own copy of the secret
(recomputed here, not with the code under test) and can be told to fail the first K
requests; the SMTP server collects every message it is handed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from adapters.notify.config import NotificationConfig, load_config
from adapters.notify.outbox import Outbox
from domain.application import PingjingApp
from projections.store import ViewStore

SECRET = "webhook-secret-for-tests"  # noqa: S105 - a test secret for the local receiver
SECRET_ENV = "PJ_TEST_WEBHOOK_SECRET"  # noqa: S105 - the name of a variable, not a secret


@dataclass
class Received:
    """One request the webhook receiver got, and how it answered."""

    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> dict[str, Any]:
        """The parsed body."""
        return dict(json.loads(self.body.decode("utf-8")))


@dataclass
class WebhookReceiver:
    """A receiver that checks signatures, fails the first ``fail_first`` good requests, and keeps the rest."""

    secret: bytes
    fail_first: int = 0
    requests: list[Received] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        """401 for a bad signature, 500 while still failing, else 200 (and the body is accepted)."""
        timestamp = headers.get("X-Pingjing-Timestamp", "")
        expected = "sha256=" + hmac.new(self.secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        with self.lock:
            if not hmac.compare_digest(expected, headers.get("X-Pingjing-Signature", "")):
                status = 401
            elif self.fail_first > 0:
                self.fail_first -= 1
                status = 500
            else:
                status = 200
                self.accepted.append(json.loads(body.decode("utf-8")))
            self.requests.append(Received(headers, body, status))
        return status


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver on 127.0.0.1 and a free port, in a thread."""
    state = WebhookReceiver(SECRET.encode())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = state.answer(dict(self.headers.items()), body)
            reply = {200: b"accepted", 401: b"bad signature", 500: b"try again"}[status]
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/pingjing"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


class Mailbox:
    """An aiosmtpd handler that keeps every message; it can refuse the first ``refuse_first`` with a 451."""

    def __init__(self) -> None:
        self.handed: list[Any] = []  # every envelope offered, refused or not
        self.delivered: list[Any] = []
        self.refuse_first = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.handed.append(envelope)
        if self.refuse_first > 0:
            self.refuse_first -= 1
            return "451 4.3.0 try again later"
        self.delivered.append(envelope)
        return "250 2.0.0 Ok: queued"


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpServer:
    """The running server: where it listens and what it got."""

    port: int
    mailbox: Mailbox


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1 that keeps what it is handed."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield SmtpServer(controller.port, mailbox)
    controller.stop()


def write_config(path: Path, text: str) -> Path:
    """A notifications file with ``text``."""
    path.write_text(text, encoding="utf-8")
    return path


def config_from(path: Path, text: str, environ: dict[str, str] | None = None) -> NotificationConfig:
    """Write ``text`` to ``path`` and load it, with the test secret in the environment."""
    return load_config(write_config(path, text), {SECRET_ENV: SECRET} if environ is None else environ)


def webhook_config(tmp_path: Path, url: str, *, max_attempts: int = 5, backoff: int = 30) -> NotificationConfig:
    """The office told by webhook (and the log); units by the log only."""
    return config_from(
        tmp_path / "notifications.toml",
        f"""
        [office]
        webhook = true

        [webhook]
        url = "{url}"
        secret_env = "{SECRET_ENV}"
        max_attempts = {max_attempts}
        backoff_seconds = {backoff}
        max_backoff_seconds = 600
        timeout_seconds = 5
        """,
    )


def outbox_for(app: PingjingApp, config: NotificationConfig | None = None, **kwargs: Any) -> Outbox:
    """An outbox with its table beside the app's events."""
    return Outbox(app, ViewStore.beside(app), config, **kwargs)
