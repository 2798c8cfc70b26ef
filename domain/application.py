"""The pingjing application: one method per use case, on top of the event store.

A use case is: check the role, load through a unit of work, let the aggregates decide,
save their new events in one transaction, return a :class:`Receipt`. Many commands can
share one transaction (:meth:`PingjingApp.execute_batch`); each still succeeds or fails
on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import perf_counter
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoder
from eventsourcing.utils import resolve_topic

from domain import commands as c
from domain import transcodings
from domain.case import Case
from domain.clock import Clock, IdSource, RandomIdSource, SystemClock
from domain.directory import Directory
from domain.errors import ConflictError, NotFoundError, OutOfOrderError, PingjingError, ValidationError
from domain.ids import case_id, check_case_ref, officer_id, unit_id
from domain.permissions import check_role
from domain.personal import PersonalData
from domain.ratings import RATING_WINDOW
from domain.registry import Officer, Unit
from domain.reports import Report, parse_report_name, report_id
from domain.tokens import ApiToken, api_token_id
from domain.uow import UnitOfWork
from domain.usecases import HANDLERS, Receipt, Work
from domain.usecases.reports import MAX_EDITIONS
from domain.values import Actor, Channel, Contact, Meta

#: A command may say it happened up to this long after the clock's now (clock skew).
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Context:
    """Who sends a command, how, and (for back-filled records) when it happened."""

    actor: Actor
    channel: Channel = Channel.API
    at: datetime | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class Executed:
    """What one command did, for observers (logs, metrics)."""

    command: c.Command
    context: Context
    meta: Meta | None
    outcome: Receipt | PingjingError
    seconds: float
    saved: bool


Observer = Callable[[Executed], None]
Outcome = Receipt | PingjingError


class PingjingApp(Application[UUID]):
    """Event-sourced application with the use cases of DESIGN §4.

    ``personal`` seals and opens citizens' contacts (:mod:`domain.personal`). Without one, the
    application builds it from the topic ``PERSONAL_DATA_TOPIC`` of its environment, as the
    library finds its persistence module: the default (``adapters.privacy.vault``) keeps the
    keys in the event store's own database, so every process on that store, a rebuild's worker
    included, opens the same contacts; on the memory store it is in-memory. Nothing of it is
    imported before an application is built.
    """

    name = "pingjing"
    env = {  # noqa: RUF012 - eventsourcing's class-level settings
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "PERSONAL_DATA_TOPIC": "adapters.privacy.vault:personal_data_for",
    }

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock | None = None,
        ids: IdSource | None = None,
        observers: Sequence[Observer] = (),
        rating_window: timedelta = RATING_WINDOW,
        personal: PersonalData | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self._personal = personal
        #: One rating per device per officer or unit within this window (zero: no limit).
        self.rating_window = rating_window
        self.ids: IdSource = ids or RandomIdSource()
        self.observers = list(observers)
        super().__init__(env)
        self.directory = Directory(self.recorder, self.mapper)

    def construct_transcoder(self) -> Transcoder:
        """The library's JSON format, read with a faster parser."""
        transcoder = transcodings.FastJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        """Add the domain's value objects to the library's transcodings."""
        super().register_transcodings(transcoder)
        transcodings.register(transcoder, self.personal)

    def close(self) -> None:
        """Release the store's connections, and the personal data's (a key table's connection)."""
        super().close()
        close = getattr(self._personal, "close", None)
        if callable(close):
            close()

    @property
    def personal(self) -> PersonalData:
        """What seals and opens citizens' contacts (built from the environment's topic when not given)."""
        if self._personal is None:
            factory = resolve_topic(self.env.get("PERSONAL_DATA_TOPIC") or "adapters.privacy.vault:personal_data_for")
            self._personal = cast(PersonalData, factory(self.env))
        return self._personal

    # -- running commands -----------------------------------------------------------------

    def execute(self, command: c.Command, context: Context) -> Receipt:
        """Run one command in its own transaction; raise its domain error if it fails."""
        outcome = self.execute_batch([(command, context)])[0]
        if isinstance(outcome, PingjingError):
            raise outcome
        return outcome

    def execute_batch(
        self,
        items: Sequence[tuple[c.Command, Context]],
        *,
        all_or_nothing: bool = False,
        dry_run: bool = False,
    ) -> list[Outcome]:
        """Run commands in one transaction; each gets its own receipt or error.

        If the shared transaction meets a concurrent writer, the commands that changed
        what the other writer changed get a :class:`ConflictError` naming it; the others
        are decided again, each alone.
        ``all_or_nothing`` saves nothing when any command fails; ``dry_run`` decides
        everything and saves nothing.
        """
        runs = self._run(items, all_or_nothing=all_or_nothing, dry_run=dry_run)
        failed = any(isinstance(outcome, PingjingError) for outcome, _, _ in runs)
        saved = not dry_run and not (all_or_nothing and failed)
        for (command, context), (outcome, meta, seconds) in zip(items, runs, strict=True):
            for observer in self.observers:
                observer(Executed(command, context, meta, outcome, seconds, saved))
        return [outcome for outcome, _, _ in runs]

    def decide(self, command: c.Command, context: Context) -> PingjingError | None:
        """Decide ``command`` without saving anything or telling the observers: its error, or None if accepted.

        For showing only the moves a case allows now: the use case's own rules answer, not a copy of them.
        """
        outcome, _, _ = self._run([(command, context)], dry_run=True)[0]
        return outcome if isinstance(outcome, PingjingError) else None

    def _run(
        self,
        items: Sequence[tuple[c.Command, Context]],
        *,
        all_or_nothing: bool = False,
        dry_run: bool = False,
    ) -> list[tuple[Outcome, Meta | None, float]]:
        # Deciding reads (the directory's news, every aggregate loaded) share one read
        # transaction where the store offers it; saving is a transaction of its own.
        with self.reading():
            self.directory.catch_up()
            uow = UnitOfWork(self.repository, self.directory)
            # Alone, a command checks its new case reference is free; in a batch, a clash (about
            # one in a billion) fails the shared transaction and every command is retried alone.
            check_refs = len(items) == 1
            runs: list[tuple[Outcome, Meta | None, float]] = []
            touched: list[frozenset[UUID]] = []
            for command, context in items:
                started = perf_counter()
                uow.begin()
                meta = None
                try:
                    meta = self._meta(context)
                    check_role(command, context.actor)
                    try:
                        receipt = self._handle(uow, command, context, meta, check_refs=check_refs)
                    except OutOfOrderError:
                        if context.at is not None:  # a back-dated record must fit the history as it is
                            raise
                        # Another writer added to an aggregate of this command after it read the clock:
                        # decide it once more, now, against what that writer wrote.
                        uow.rollback()
                        uow.begin()
                        meta = self._meta(context)
                        receipt = self._retry_in_order(uow, command, context, meta, check_refs=check_refs)
                except PingjingError as error:
                    touched.append(uow.rollback())
                    runs.append((error, meta, perf_counter() - started))
                else:
                    touched.append(uow.commit_point())
                    runs.append((receipt, meta, perf_counter() - started))
        changed = uow.changed()
        failed = any(isinstance(outcome, PingjingError) for outcome, _, _ in runs)
        if not changed or dry_run or (all_or_nothing and failed):
            return runs
        loaded = {a.id: a.version - len(a.pending_events) for a in changed}
        try:
            self._save(changed)
        except IntegrityError:
            return self._after_conflict(items, runs, touched, changed, loaded, all_or_nothing=all_or_nothing)
        return runs

    def _after_conflict(
        self,
        items: Sequence[tuple[c.Command, Context]],
        runs: list[tuple[Outcome, Meta | None, float]],
        touched: list[frozenset[UUID]],
        changed: list[Aggregate],
        loaded: dict[UUID, int],
        *,
        all_or_nothing: bool,
    ) -> list[tuple[Outcome, Meta | None, float]]:
        """Someone else wrote first: the commands that changed what they wrote get a conflict.

        The other commands of the batch were sound (or only created what someone else created
        first); they are decided again, each alone.
        """
        stale = {a.id: a for a in changed if self._stored_version(a.id) != loaded[a.id]}
        if all_or_nothing or len(items) == 1:
            conflict = self._conflict(list(stale.values()) or changed)
            return [(conflict, meta, seconds) for _, meta, seconds in runs]
        results = []
        for item, run, ids in zip(items, runs, touched, strict=True):
            # Only a change to an aggregate that existed is a conflict; a new one whose id was taken
            # meanwhile (a registration raced, a random case reference clashed) is decided again
            # alone, against what is stored now: it gets its AlreadyExists, or a fresh reference.
            hit = [stale[i] for i in ids if i in stale and loaded[i] > 0]
            if isinstance(run[0], PingjingError):
                results.append(run)
            elif hit:
                results.append((self._conflict(hit), run[1], run[2]))
            else:
                results.append(self._run([item])[0])
        return results

    def _handle(
        self, uow: UnitOfWork, command: c.Command, context: Context, meta: Meta, *, check_refs: bool
    ) -> Receipt:
        work = Work(uow, meta, context.actor, self.ids, check_refs=check_refs, rating_window=self.rating_window)
        receipt: Receipt = HANDLERS[type(command)](work, command)
        return receipt

    def _retry_in_order(
        self, uow: UnitOfWork, command: c.Command, context: Context, meta: Meta, *, check_refs: bool
    ) -> Receipt:
        try:
            return self._handle(uow, command, context, meta, check_refs=check_refs)
        except OutOfOrderError as error:  # the other writer's clock is ahead of ours
            raise ConflictError(f"{error}: changed by someone else at the same time; reload and retry") from None

    def reading(self) -> AbstractContextManager[None]:
        """A block whose reads of the store share one read transaction (one snapshot), where the
        store offers that (SQLite files); elsewhere each read is its own, as always."""
        reading = getattr(getattr(self.factory, "datastore", None), "reading", None)
        return reading() if reading is not None else nullcontext()

    def _stored_version(self, aggregate_id: UUID) -> int:
        latest = self.recorder.select_events(aggregate_id, desc=True, limit=1)
        return latest[0].originator_version if latest else 0

    def _save(self, changed: list[Aggregate]) -> None:
        # Application.save() without its per-object protocol checks and snapshotting
        # (this application takes no snapshots): the hot path of every write.
        events = [event for aggregate in changed for event in aggregate.collect_events()]
        # The keys of new citizens first, in one go and durably: no event is stored sealed with
        # a key that is not (an orphan key left by a failed save is harmless).
        citizens = [
            contact.citizen_ref
            for e in events
            if type(contact := getattr(e, "contact", None)) is Contact and not contact.erased
        ]
        if citizens:
            self.personal.prepare(citizens)
        # EventStore.put() without the recordings it builds for each event, which nothing here reads.
        self.recorder.insert_events(list(map(self.mapper.to_stored_event, events)))

    @staticmethod
    def _conflict(aggregates: list[Aggregate]) -> ConflictError:
        what = ", ".join(getattr(a, "label", str(a.id)) for a in aggregates)
        return ConflictError(f"{what} was changed by someone else at the same time; reload and retry")

    def _meta(self, context: Context) -> Meta:
        now = self.clock.now()
        at = context.at or now
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValidationError(f"time {at.isoformat()} has no time zone")
        if at > now + FUTURE_TOLERANCE:
            raise ValidationError(f"time {at.isoformat()} is in the future")
        return Meta(
            actor=context.actor.principal,
            role=context.actor.role,
            occurred_at=at,
            channel=context.channel,
            correlation_id=context.correlation_id or self.ids.new_id().hex,
        )

    # -- use cases: registry ----------------------------------------------------------------

    def register_unit(self, cmd: c.RegisterUnit, ctx: Context) -> Receipt:
        """Register a unit."""
        return self.execute(cmd, ctx)

    def assign_unit_head(self, cmd: c.AssignUnitHead, ctx: Context) -> Receipt:
        """Make an officer the head of their unit."""
        return self.execute(cmd, ctx)

    def register_officer(self, cmd: c.RegisterOfficer, ctx: Context) -> Receipt:
        """Register an officer."""
        return self.execute(cmd, ctx)

    def transfer_officer(self, cmd: c.TransferOfficer, ctx: Context) -> Receipt:
        """Move an officer to another unit."""
        return self.execute(cmd, ctx)

    def record_officer_left(self, cmd: c.RecordOfficerLeft, ctx: Context) -> Receipt:
        """Record that an officer left."""
        return self.execute(cmd, ctx)

    def issue_qr(self, cmd: c.IssueQr, ctx: Context) -> Receipt:
        """Issue a QR identity."""
        return self.execute(cmd, ctx)

    def rotate_qr(self, cmd: c.RotateQr, ctx: Context) -> Receipt:
        """Rotate a QR identity."""
        return self.execute(cmd, ctx)

    def revoke_qr(self, cmd: c.RevokeQr, ctx: Context) -> Receipt:
        """Revoke a QR identity."""
        return self.execute(cmd, ctx)

    # -- use cases: intake ------------------------------------------------------------------

    def log_encounter(self, cmd: c.LogEncounter, ctx: Context) -> Receipt:
        """Log a must-scan encounter."""
        return self.execute(cmd, ctx)

    def log_encounters(self, cmd: c.LogEncounters, ctx: Context) -> Receipt:
        """Log many encounters in one go."""
        return self.execute(cmd, ctx)

    def submit_rating(self, cmd: c.SubmitRating, ctx: Context) -> Receipt:
        """Record a citizen's rating; open and push a case when it calls for one."""
        return self.execute(cmd, ctx)

    def open_case(self, cmd: c.OpenCase, ctx: Context) -> Receipt:
        """Open a case from the hotline, a meeting, a letter or a home visit."""
        return self.execute(cmd, ctx)

    # -- use cases: case moves --------------------------------------------------------------

    def contact_citizen(self, cmd: c.ContactCitizen, ctx: Context) -> Receipt:
        """The unit head contacted the citizen."""
        return self.execute(cmd, ctx)

    def report_result(self, cmd: c.ReportResult, ctx: Context) -> Receipt:
        """The unit reports the handling result."""
        return self.execute(cmd, ctx)

    def record_callback(self, cmd: c.RecordCallback, ctx: Context) -> Receipt:
        """The office reached the citizen on a callback."""
        return self.execute(cmd, ctx)

    def record_callback_attempt(self, cmd: c.RecordCallbackAttempt, ctx: Context) -> Receipt:
        """A callback attempt found nobody."""
        return self.execute(cmd, ctx)

    def record_supervision(self, cmd: c.RecordSupervision, ctx: Context) -> Receipt:
        """The office's own contact while supervising."""
        return self.execute(cmd, ctx)

    def flag_case(self, cmd: c.FlagCase, ctx: Context) -> Receipt:
        """Listed supervision (挂牌督办)."""
        return self.execute(cmd, ctx)

    def order_rectification(self, cmd: c.OrderRectification, ctx: Context) -> Receipt:
        """Order rectification."""
        return self.execute(cmd, ctx)

    def report_rectified(self, cmd: c.ReportRectified, ctx: Context) -> Receipt:
        """The unit reports the rectification done."""
        return self.execute(cmd, ctx)

    def verify_rectification(self, cmd: c.VerifyRectification, ctx: Context) -> Receipt:
        """The office verified the rectification."""
        return self.execute(cmd, ctx)

    def close_case(self, cmd: c.CloseCase, ctx: Context) -> Receipt:
        """Close a case."""
        return self.execute(cmd, ctx)

    def reopen_case(self, cmd: c.ReopenCase, ctx: Context) -> Receipt:
        """Reopen a case for a new round."""
        return self.execute(cmd, ctx)

    def record_accountability(self, cmd: c.RecordAccountability, ctx: Context) -> Receipt:
        """Record an accountability measure."""
        return self.execute(cmd, ctx)

    def record_commendation(self, cmd: c.RecordCommendation, ctx: Context) -> Receipt:
        """Record a commendation."""
        return self.execute(cmd, ctx)

    def record_sla_warning(self, cmd: c.RecordSlaWarning, ctx: Context) -> Receipt:
        """Record an SLA warning."""
        return self.execute(cmd, ctx)

    def record_sla_breach(self, cmd: c.RecordSlaBreach, ctx: Context) -> Receipt:
        """Record an SLA breach."""
        return self.execute(cmd, ctx)

    def publish_report(self, cmd: c.PublishReport, ctx: Context) -> Receipt:
        """Record the publication of a weekly review or monthly bulletin."""
        return self.execute(cmd, ctx)

    def request_notification(self, cmd: c.RequestNotification, ctx: Context) -> Receipt:
        """Request a notification of an event to one recipient on one channel."""
        return self.execute(cmd, ctx)

    def start_delivery_attempt(self, cmd: c.StartDeliveryAttempt, ctx: Context) -> Receipt:
        """Claim the next delivery attempt of a notification."""
        return self.execute(cmd, ctx)

    def record_delivery_attempt(self, cmd: c.RecordDeliveryAttempt, ctx: Context) -> Receipt:
        """Record how a delivery attempt ended."""
        return self.execute(cmd, ctx)

    def retry_notification(self, cmd: c.RetryNotification, ctx: Context) -> Receipt:
        """Give a dead-lettered notification another round of attempts."""
        return self.execute(cmd, ctx)

    # -- use cases: API tokens and personal data reads --------------------------------------

    def create_api_token(self, cmd: c.CreateApiToken, ctx: Context) -> Receipt:
        """Record a new API token by the hash of its secret."""
        return self.execute(cmd, ctx)

    def revoke_api_token(self, cmd: c.RevokeApiToken, ctx: Context) -> Receipt:
        """Revoke an API token."""
        return self.execute(cmd, ctx)

    def record_personal_data_read(self, cmd: c.RecordPersonalDataRead, ctx: Context) -> Receipt:
        """Record a read of a case's contact by staff, before the contact is shown."""
        return self.execute(cmd, ctx)

    def erase_contact(self, cmd: c.EraseContact, ctx: Context) -> Receipt:
        """Record that a case's contact was erased (``adapters.privacy`` deletes the citizen's key first)."""
        return self.execute(cmd, ctx)

    # -- use cases: the tamper-evident log -------------------------------------------------

    def seal_log(self, cmd: c.SealLog, ctx: Context) -> Receipt:
        """Record a seal of the log: the chain hash at a position, as the store's adapter read it."""
        return self.execute(cmd, ctx)

    # -- reading ----------------------------------------------------------------------------

    def get_case(self, ref: str) -> Case:
        """The case with this reference."""
        ref = check_case_ref(ref)
        return cast(Case, self._get(Case, case_id(ref), "case", ref))

    def case_events(self, ref: str) -> list[Any]:
        """Every event of the case, oldest first."""
        case = self.get_case(ref)
        return list(self.events.get(case.id))

    def get_unit(self, code: str) -> Unit:
        """The unit with this code."""
        return cast(Unit, self._get(Unit, unit_id(code.upper()), "unit", code))

    def get_officer(self, badge: str) -> Officer:
        """The officer with this badge number."""
        return cast(Officer, self._get(Officer, officer_id(badge.upper()), "officer", badge))

    def get_report(self, name: str) -> Report:
        """A publication by name; without an edition suffix, the latest edition of its period."""
        kind, period, edition = parse_report_name(name)
        if edition is not None:
            return cast(Report, self._get(Report, report_id(kind, period, edition), "report", name))
        latest = None
        for n in range(1, MAX_EDITIONS + 1):
            found = self.get_aggregate(report_id(kind, period, n))
            if not isinstance(found, Report):
                break
            latest = found
        if latest is None:
            raise NotFoundError("report", name)
        return latest

    def get_api_token(self, token_hash: str) -> ApiToken:
        """The API token whose secret has this SHA-256 (hex); its hash is never named in the refusal."""
        return cast(ApiToken, self._get(ApiToken, api_token_id(token_hash.lower()), "API token", "(presented)"))

    def get_aggregate(self, aggregate_id: UUID) -> Aggregate | None:
        """Any aggregate by id, or None."""
        try:
            return cast(Aggregate, self.repository.get(aggregate_id))
        except AggregateNotFoundError:
            return None

    def iter_events(self, start: int = 1, batch: int = 1000) -> Iterator[tuple[int, Any]]:
        """Every stored event with its log position, in log order."""
        while True:
            notifications = self.recorder.select_notifications(start=start, limit=batch)
            for n in notifications:
                yield n.id, self.mapper.to_domain_event(n)
            if len(notifications) < batch:
                return
            start = notifications[-1].id + 1

    def _get(self, cls: type[Any], aggregate_id: UUID, what: str, key: str) -> Any:
        aggregate = self.get_aggregate(aggregate_id)
        if not isinstance(aggregate, cls):
            raise NotFoundError(what, key)
        return aggregate
