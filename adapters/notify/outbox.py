"""The outbox: follow the log, request a notification for each triggering event, deliver what is due.

:meth:`Outbox.run_once` does both halves:

1. From its own tracking position (``pingjing.outbox``, kept like a projection's), it reads
   the triggering events and requests one notification per recipient and channel. Their
   ids come from the event, so a restart or a second outbox that requests them again is
   refused (AlreadyExists) and nothing is sent twice. The Notification events it reads on
   the way keep the ``pj_notifications`` table current, in the same transaction as the
   position.
2. Every notification whose next attempt has come (read from that table) is reloaded,
   claimed, sent and its outcome recorded (:mod:`adapters.notify.delivery`); the
   notification decides the backoff and the dead letter. A failure is logged and
   recorded, never raised.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import structlog
from eventsourcing.persistence import IntegrityError
from pydantic import ValidationError as PydanticValidationError

from adapters.bootstrap import Runtime
from adapters.foreground import NO_FOREGROUND, Foreground
from adapters.notify import pending
from adapters.notify.channels import Sender
from adapters.notify.config import NotificationConfig, load_config
from adapters.notify.delivery import Delivery
from adapters.notify.messages import TRIGGER_TOPICS, Composer, Message, UnitBook
from domain import commands as c
from domain.aggregate import event_topics
from domain.application import Context, PingjingApp
from domain.errors import AlreadyExistsError, ConflictError, PingjingError
from domain.notifications import DeliveryChannel, Notification
from domain.sla import SlaPolicy, WorkingCalendar
from domain.values import Actor, Channel
from projections.store import ViewStore

TRACKING = "pingjing.outbox"
PAGE = 500
CHUNK = 20
log = structlog.get_logger("pingjing.notify")


@dataclass
class OutboxSummary:
    """What one run did, and where the outbox stands afterwards."""

    requested: int = 0  # new notifications
    already: int = 0  # requested before (a restart, another outbox)
    refused: int = 0  # triggers or requests that failed (logged)
    delivered: int = 0
    failed: int = 0  # failed attempts that will be retried
    dead: int = 0  # failed attempts that dead-lettered their notification
    abandoned: int = 0  # attempts whose claimant recorded nothing before its lease ended
    position: int = 0
    head: int = 0

    @property
    def lag(self) -> int:
        """Events the outbox has not read yet."""
        return max(self.head - self.position, 0)


@dataclass(frozen=True)
class OutboxStatus:
    """Position, lag and counts per channel and status (``notifications status``)."""

    position: int
    head: int
    counts: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def lag(self) -> int:
        """Events the outbox has not read yet."""
        return max(self.head - self.position, 0)


class Outbox:
    """Turns triggering events into notifications and delivers them; safe to run from one job thread."""

    def __init__(
        self,
        app: PingjingApp,
        views: ViewStore,
        config: NotificationConfig | None = None,
        *,
        policy: SlaPolicy | None = None,
        channels: Mapping[DeliveryChannel, Sender] | None = None,
        page: int = PAGE,
        chunk: int = CHUNK,
        foreground: Foreground = NO_FOREGROUND,
    ) -> None:
        self.app = app
        #: Stepped aside for between pages and chunks (requests served by this process go first).
        self.foreground = foreground
        self.views = views
        self.config = config or NotificationConfig()
        self.delivery = Delivery(app, self.config, channels)
        self.page = page
        self.chunk = chunk
        self.units = UnitBook()
        self.composer = Composer(app, self.units, policy or SlaPolicy.default(), WorkingCalendar())
        self.topics = sorted({*TRIGGER_TOPICS, *event_topics(Notification)})
        self._lock = threading.Lock()
        views.create(pending.SCHEMA)

    @classmethod
    def from_runtime(
        cls, rt: Runtime, *, environ: Mapping[str, str] | None = None, foreground: Foreground = NO_FOREGROUND
    ) -> Outbox:
        """The outbox of a process: views beside the events, recipients from ``PINGJING_NOTIFICATIONS``."""
        config = load_config(rt.settings.notifications, os.environ if environ is None else environ)
        return cls(rt.app, ViewStore.beside(rt.app), config, policy=rt.policy, foreground=foreground)

    # -- running ----------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> OutboxSummary:
        """Request what the log asks for, deliver what is due by ``now`` (default: the app's clock)."""
        with self._lock:
            summary = OutboxSummary()
            self._catch_up(summary, now)
            self._deliver_due(summary, now)
            return summary

    def catch_up(self, now: datetime | None = None) -> OutboxSummary:
        """Only the first half: request notifications for the events not read yet."""
        with self._lock:
            summary = OutboxSummary()
            self._catch_up(summary, now)
            return summary

    def start_at_head(self) -> bool:
        """On a first start, begin at the end of the log instead of notifying its whole history.

        Only when no notification was ever requested (else their rows would be skipped too);
        returns whether the position moved.
        """
        with self._lock:
            if self.views.position(TRACKING) != 0:
                return False
            topics = event_topics(Notification)
            if self.app.recorder.select_notifications(start=1, limit=1, topics=topics):
                return False
            head = self._head()
            if head == 0:
                return False
            try:
                with self.views.transaction(commit=True) as cur:
                    self.views.record_position(cur, TRACKING, 0, head)
            except IntegrityError:
                return False
            return True

    @property
    def channels(self) -> dict[DeliveryChannel, Sender]:
        """The channels deliveries go through, by name."""
        return self.delivery.channels

    def status(self) -> OutboxStatus:
        """Where the outbox stands and what its table holds."""
        return OutboxStatus(self.views.position(TRACKING), self._head(), pending.counts(self.views))

    def _head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    # -- 1. requesting ----------------------------------------------------------------------

    def _catch_up(self, summary: OutboxSummary, now: datetime | None) -> None:
        position, head = self.views.position(TRACKING), self._head()
        decode = self.app.mapper.to_domain_event
        while position < head:
            self.foreground.step_aside()
            page = self.app.recorder.select_notifications(
                start=position + 1, limit=self.page, stop=head, topics=self.topics
            )
            last = page[-1].id if len(page) == self.page else head
            events: list[tuple[int, Any]] = [(n.id, decode(n)) for n in page]
            self.units.catch_up(self.app, last)
            self._request(events, summary, now)
            rows = self._fold(events)
            try:
                with self.views.transaction(commit=True) as cur:
                    pending.write(cur, rows)
                    self.views.record_position(cur, TRACKING, position, last)
            except IntegrityError:
                # Another outbox stored this page first; its requests and ours collided harmlessly.
                position = self.views.position(TRACKING)
            else:
                position = last
            # The requests just made are new events: read them too, so the table lists them.
            head = max(head, self._head())
        summary.position, summary.head = position, self._head()

    def _request(self, events: Sequence[tuple[int, Any]], summary: OutboxSummary, now: datetime | None) -> None:
        items: list[tuple[c.Command, Context]] = []
        with self.app.reading():  # composing reads the cases as they stood: one read transaction
            for position, event in events:
                try:
                    message = self.composer.compose(position, event)
                    if message is not None:
                        items.extend(self._requests(message, now))
                except (LookupError, PydanticValidationError, PingjingError) as error:
                    summary.refused += 1
                    log.error("notification_request_failed", position=position, event=type(event).__qualname__,
                              reason=str(error).splitlines()[0])
        if not items:
            return
        for (command, _), outcome in zip(items, self.app.execute_batch(items, all_or_nothing=False), strict=True):
            if not isinstance(outcome, PingjingError):
                summary.requested += 1
            elif isinstance(outcome, AlreadyExistsError | ConflictError):
                summary.already += 1
            else:
                summary.refused += 1
                log.error("notification_request_failed", command=command.name, reason=str(outcome))

    def _requests(self, message: Message, now: datetime | None) -> list[tuple[c.Command, Context]]:
        context = Context(Actor.system(), Channel.SYSTEM, at=now, correlation_id=message.correlation_id)
        items: list[tuple[c.Command, Context]] = []
        for recipient in message.recipients:
            for channel, address in self.config.routes(recipient):
                retry = self.config.retry(channel)
                command = c.RequestNotification(
                    trigger_id=str(message.trigger_id),
                    trigger_version=message.trigger_version,
                    trigger_position=message.position,
                    kind=message.kind.value,
                    recipient=recipient,
                    channel=channel.value,
                    address=address,
                    subject=message.subject,
                    body=message.body,
                    payload=message.payload,
                    max_attempts=retry.max_attempts,
                    backoff_seconds=retry.backoff_seconds,
                    max_backoff_seconds=retry.max_backoff_seconds,
                )
                items.append((command, context))
        return items

    def _fold(self, events: Sequence[tuple[int, Any]]) -> list[tuple[Any, ...]]:
        """The rows the page's Notification events leave, folded with the aggregate itself."""
        folded: dict[UUID, tuple[Notification, int]] = {}
        for position, event in events:
            if not isinstance(event, Notification.Event):
                continue
            current: Any = folded[event.originator_id][0] if event.originator_id in folded else None
            if current is None and event.originator_version > 1:
                current = self.app.repository.get(event.originator_id, version=event.originator_version - 1)
            folded[event.originator_id] = (cast(Notification, event.mutate(current)), position)
        return [pending.row_of(n, position) for n, position in folded.values()]

    # -- 2. delivering ----------------------------------------------------------------------

    def _deliver_due(self, summary: OutboxSummary, now: datetime | None) -> None:
        moment = now or self.app.clock.now()
        seen: set[UUID] = set()
        while True:
            ids = [i for i in pending.due(self.views, moment, self.chunk + len(seen)) if i not in seen][: self.chunk]
            if not ids:
                return
            seen.update(ids)
            self.foreground.step_aside()
            tally = self.delivery.deliver(ids, moment, now)
            summary.delivered += tally.delivered
            summary.failed += tally.failed
            summary.dead += tally.dead
            summary.abandoned += tally.abandoned
            summary.refused += tally.refused
            self._catch_up(summary, now)  # the table learns what the attempts changed
