"""E-mail delivery to a real SMTP server on 127.0.0.1 (aiosmtpd): recipients, Chinese subjects, Message-ID."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from adapters.notify.config import NotificationConfig
from domain.ids import case_id
from domain.notifications import NotificationStatus, notification_id
from tests.conftest import County
from tests.notifications.conftest import SmtpServer, config_from, free_port, outbox_for
from tests.notifications.test_outbox import notification, notification_events

SMTP_PASSWORD_ENV = "PJ_TEST_SMTP_PASSWORD"  # noqa: S105 - the name of a variable, not a secret


def mail_config(tmp_path: Path, port: int) -> NotificationConfig:
    """The office and every unit by e-mail; the log off."""
    return config_from(
        tmp_path / "notifications.toml",
        f"""
        log = false

        [office]
        email = ["ducha@lingshou.example.org", "office2@lingshou.example.org"]

        [units."*"]
        email = ["{{code_lower}}@units.lingshou.example.org"]

        [smtp]
        host = "127.0.0.1"
        port = {port}
        sender = "pingjing@lingshou.example.org"
        backoff_seconds = 60
        timeout_seconds = 5
        """,
    )


def parsed(envelope: Any) -> EmailMessage:
    """The message the server got, parsed."""
    message = email.message_from_bytes(envelope.original_content, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def test_a_pushed_case_is_mailed_to_the_unit_head_and_the_office_with_a_chinese_subject(
    county: County, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    ref = county.open_case()
    summary = outbox_for(county.app, mail_config(tmp_path, smtp_server.port)).run_once()
    assert summary.delivered == 2
    by_recipients = {tuple(sorted(e.rcpt_tos)): e for e in smtp_server.mailbox.delivered}
    assert set(by_recipients) == {
        ("ducha@lingshou.example.org", "office2@lingshou.example.org"),
        ("ps1@units.lingshou.example.org",),
    }
    unit_mail = by_recipients[("ps1@units.lingshou.example.org",)]
    assert unit_mail.mail_from == "pingjing@lingshou.example.org"
    message = parsed(unit_mail)
    assert message["Subject"] == f"【扫码评警】新督办件 {ref} 已推送至城关派出所"
    assert message["To"] == "ps1@units.lingshou.example.org"
    nid = notification_id(case_id(ref), 2, "unit:PS1", "email")
    assert message["Message-ID"] == f"<pingjing.{nid.hex}@lingshou.example.org>"
    assert message["X-Pingjing-Notification"] == str(nid)
    body = message.get_content()
    assert "请单位负责人立即联系当事群众" in body
    assert "13800138000" not in unit_mail.original_content.decode("ascii")
    assert notification(county.app, nid).detail == "SMTP 250 2.0.0 Ok: queued"


def test_a_mail_refused_for_now_is_sent_again_after_the_backoff_with_the_same_message_id(
    county: County, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    smtp_server.mailbox.refuse_first = 1
    ref = county.open_case()
    outbox = outbox_for(county.app, mail_config(tmp_path, smtp_server.port))
    first = outbox.run_once()
    assert (first.failed, first.delivered) == (1, 1)
    county.clock.advance(seconds=60)
    assert outbox.run_once().delivered == 1
    county.clock.advance(hours=1)
    outbox.run_once()

    handed = smtp_server.mailbox.handed
    assert len(handed) == 3  # the refused mail, the other recipient's mail, the retried mail
    ids = [parsed(e)["Message-ID"] for e in handed]
    refused_id = ids[0]
    assert ids.count(refused_id) == 2  # the retry carries the Message-ID of the refused mail
    assert len(smtp_server.mailbox.delivered) == 2
    [retried] = [
        nid for nid, names in notification_events(county.app).items() if names.count("AttemptStarted") == 2
    ]
    assert notification_events(county.app)[retried] == [
        "Requested", "AttemptStarted", "AttemptFailed", "AttemptStarted", "Delivered"
    ]
    failed = notification(county.app, retried)
    assert failed.status is NotificationStatus.DELIVERED
    assert refused_id == f"<pingjing.{retried.hex}@lingshou.example.org>"
    assert ref in failed.subject


def test_no_smtp_server_is_a_failed_attempt(county: County, tmp_path: Path) -> None:
    ref = county.open_case()
    summary = outbox_for(county.app, mail_config(tmp_path, free_port())).run_once()
    assert summary.failed == 2
    n = notification(county.app, notification_id(case_id(ref), 2, "office", "email"))
    assert str(n.last_error).startswith("SMTP 127.0.0.1:")


def test_a_login_is_sent_when_configured_and_its_refusal_is_a_failed_attempt(
    county: County, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    ref = county.open_case()
    config = config_from(
        tmp_path / "login.toml",
        f"""
        log = false
        [office]
        email = ["ducha@lingshou.example.org"]
        [smtp]
        host = "127.0.0.1"
        port = {smtp_server.port}
        sender = "pingjing@lingshou.example.org"
        username = "pingjing"
        password_env = "{SMTP_PASSWORD_ENV}"
        """,
        {SMTP_PASSWORD_ENV: "mail-password"},
    )
    outbox_for(county.app, config).run_once()
    # The test server offers no AUTH on a plain connection, so the login is refused.
    n = notification(county.app, notification_id(case_id(ref), 2, "office", "email"))
    assert n.status is NotificationStatus.PENDING
    assert "AUTH" in str(n.last_error)
    assert smtp_server.mailbox.handed == []
