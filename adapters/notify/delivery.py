"""Delivering due notifications: claim each attempt, send it through its channel, record how it went.

Claims come first and in one batch: an attempt claimed by another outbox is refused to
this one, which then leaves it alone. An attempt whose claimant recorded nothing before
its lease ended is recorded as abandoned (a failure, with its backoff). Sends never raise:
whatever a channel does wrong becomes a failed attempt, recorded and logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import structlog

from adapters.notify.channels import DeliveryError, LogChannel, Outgoing, Sender, SmtpChannel, WebhookChannel
from adapters.notify.config import NotificationConfig
from domain import commands as c
from domain.application import Context, PingjingApp
from domain.errors import PingjingError
from domain.notifications import DeliveryChannel, Notification, NotificationStatus
from domain.values import Actor, Channel

log = structlog.get_logger("pingjing.notify")


@dataclass
class Tally:
    """What a round of deliveries did."""

    delivered: int = 0
    failed: int = 0  # failed attempts that will be retried
    dead: int = 0  # failed attempts that dead-lettered their notification
    abandoned: int = 0  # attempts whose claimant recorded nothing before its lease ended
    refused: int = 0  # outcomes that could not be recorded (logged)


def default_channels(config: NotificationConfig, app: PingjingApp) -> dict[DeliveryChannel, Sender]:
    """The channels the configuration makes possible (the log always)."""
    channels: dict[DeliveryChannel, Sender] = {DeliveryChannel.LOG: LogChannel()}
    webhook, smtp = config.file.webhook, config.file.smtp
    if webhook is not None and config.webhook_secret:
        channels[DeliveryChannel.WEBHOOK] = WebhookChannel(
            config.webhook_secret, timeout=webhook.timeout_seconds, clock=app.clock
        )
    if smtp is not None:
        channels[DeliveryChannel.EMAIL] = SmtpChannel(
            smtp.host, smtp.port, smtp.sender, starttls=smtp.starttls, username=smtp.username,
            password=config.smtp_password, timeout=smtp.timeout_seconds, clock=app.clock,
        )
    return channels


class Delivery:
    """Sends due notifications through their channels and records every attempt."""

    def __init__(
        self, app: PingjingApp, config: NotificationConfig, channels: Mapping[DeliveryChannel, Sender] | None = None
    ) -> None:
        self.app = app
        self.config = config
        self.channels = dict(channels) if channels is not None else default_channels(config, app)

    def deliver(self, ids: Sequence[UUID], moment: datetime, now: datetime | None) -> Tally:
        """Attempt each notification of ``ids`` that is still due at ``moment`` (reloaded first)."""
        tally = Tally()
        claims: list[tuple[Notification, str, c.Command, Context]] = []
        abandons: list[tuple[c.RecordDeliveryAttempt, Context]] = []
        with self.app.reading():
            loaded = [(nid, self.app.get_aggregate(nid)) for nid in ids]
        for nid, notification in loaded:
            if not isinstance(notification, Notification):
                continue
            context = Context(Actor.system(), Channel.SYSTEM, at=now, correlation_id=nid.hex)
            lease_end = notification.lease_until
            if notification.status is NotificationStatus.SENDING and lease_end is not None and lease_end <= moment:
                abandons.append((outcome_of(notification, notification.attempts, "abandoned",
                                            "the outbox that claimed it stopped or hung"), context))
            elif notification.status is NotificationStatus.PENDING and (
                notification.next_attempt_at is None or notification.next_attempt_at <= moment
            ):
                address = self.config.address(notification.recipient, notification.channel)
                address = notification.address if address is None else address
                command = c.StartDeliveryAttempt(
                    notification_id=str(nid), attempt=notification.attempts + 1, address=address,
                    lease_seconds=self._lease_seconds(notification.channel, len(ids)),
                )
                claims.append((notification, address, command, context))
        self._record(abandons, tally)
        if not claims:
            return tally
        outcomes = self.app.execute_batch([(cmd, ctx) for _, _, cmd, ctx in claims], all_or_nothing=False)
        results: list[tuple[c.RecordDeliveryAttempt, Context]] = []
        for (notification, address, _, context), claimed in zip(claims, outcomes, strict=True):
            if isinstance(claimed, PingjingError):  # another outbox has this attempt, or it moved on
                log.info("notification_attempt_skipped", notification_id=str(notification.id), reason=str(claimed))
                continue
            attempt = notification.attempts + 1
            outcome, detail = self.send(Outgoing.of(notification, address, attempt))
            results.append((outcome_of(notification, attempt, outcome, detail), context))
        self._record(results, tally)
        return tally

    def send(self, outgoing: Outgoing) -> tuple[str, str]:
        """``("delivered" | "failed", detail)``: a channel's failure, or its bug, is a failed attempt."""
        sender = self.channels.get(DeliveryChannel(outgoing.channel))
        if sender is None:
            return "failed", f"the {outgoing.channel} channel is not configured ({self.config.source})"
        try:
            return "delivered", sender.send(outgoing) or "sent"
        except DeliveryError as error:
            return "failed", str(error) or "delivery failed"
        except Exception as error:  # noqa: BLE001 - a broken channel is a failed attempt, recorded, not a crash
            return "failed", f"{type(error).__name__}: {error}"

    def _record(self, items: Sequence[tuple[c.RecordDeliveryAttempt, Context]], tally: Tally) -> None:
        if not items:
            return
        for (command, _), outcome in zip(items, self.app.execute_batch(items, all_or_nothing=False), strict=True):
            fields = {"notification_id": command.notification_id, "attempt": command.attempt}
            if isinstance(outcome, PingjingError):
                tally.refused += 1
                log.error("notification_outcome_not_recorded", **fields, outcome=command.outcome, reason=str(outcome))
                continue
            channel, recipient = outcome.extra["channel"], outcome.extra["recipient"]
            fields |= {"channel": channel, "recipient": recipient}
            if command.outcome == "abandoned":
                tally.abandoned += 1
            if outcome.state == NotificationStatus.DELIVERED.value:
                tally.delivered += 1
                if channel != DeliveryChannel.LOG.value:
                    log.info("notification_sent", **fields, detail=command.detail)
            elif outcome.state == NotificationStatus.DEAD.value:
                tally.dead += 1
                log.error("notification_dead_lettered", **fields, error=command.detail)
            else:
                tally.failed += 1
                log.warning("notification_attempt_failed", **fields, error=command.detail)

    def _lease_seconds(self, channel: DeliveryChannel, claims: int) -> int:
        """Long enough for every send of the batch (each may take a few round trips) to end."""
        per_send = 3 * self.config.retry(channel).timeout_seconds + 10
        return int(min(claims * per_send + 60, 86400))


def outcome_of(notification: Notification, attempt: int, outcome: str, detail: str) -> c.RecordDeliveryAttempt:
    """The command recording how ``attempt`` ended (the detail cut to what the record keeps)."""
    return c.RecordDeliveryAttempt.model_validate(
        {"notification_id": str(notification.id), "attempt": attempt, "outcome": outcome,
         "detail": detail.strip()[:1000] or outcome}
    )
