"""Publishing and verifying reports.

A report is computed from the views at one log position: the views are caught up to the
head, and the figures are read only when every projection stands exactly there (another
runner moving them on meanwhile means reading again). The files (HTML, Markdown, JSON)
are written first, then the publication is recorded as an event with the content hash
and the position. ``verify`` rebuilds every view privately from the events up to that
position, computes the report again and compares the hashes: a stored event altered,
removed or inserted before that position shows as a mismatch.

A monthly bulletin also carries the latest seal of the log at or before its position (the
chain hash at a sealed position, see :mod:`adapters.audit.seals`); its publication seals
the log first, so the printed hash covers everything up to the month's end. The seal is
part of the hashed content and is found again from the events up to the same position,
so ``verify`` stays deterministic. Whoever holds the printed bulletin can check the live
log against it with ``pingjing audit verify --expect POSITION:HASH``.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.audit.log import AuditNotSupportedError
from adapters.audit.seals import latest_seal, seal
from adapters.reports.render import render_html, render_json, render_markdown
from domain import commands as c
from domain.application import Context, PingjingApp
from domain.ids import LOCAL_TZ
from domain.rates import period_before
from domain.reports import Report, ReportKind, report_id
from domain.sla import SlaPolicy
from domain.values import Actor, Channel
from projections import ALL
from projections.reports import build_report, check_period, content_hash, period_kind, title_of
from projections.runner import Runner
from projections.store import ViewStore

SCHEDULER = Context(Actor.system(), Channel.SYSTEM)
#: Attempts at reading the live views at one position before rebuilding privately.
_READ_TRIES = 3
#: The local hour at which the schedule publishes (周一 09:00 周点评, 每月1日 09:00 月通报).
PUBLISH_HOUR = 9


@dataclass(frozen=True)
class Computed:
    """A report's content at a position, with its hash."""

    kind: ReportKind
    period: str
    position: int
    data: dict[str, Any]
    content_hash: str


@dataclass(frozen=True)
class Published:
    """A recorded publication and where its files are."""

    name: str
    kind: ReportKind
    period: str
    edition: int
    position: int
    content_hash: str
    files: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Verification:
    """What ``report verify`` found."""

    name: str
    position: int
    published_hash: str
    recomputed_hash: str
    file_hash: str | None  # the hash of the JSON file on disk, when there is one

    @property
    def matches(self) -> bool:
        """The events up to the position still give exactly the published report."""
        return self.published_hash == self.recomputed_hash

    @property
    def file_matches(self) -> bool | None:
        """Whether the report file on disk still holds the published content (None: no file)."""
        return None if self.file_hash is None else self.file_hash == self.published_hash


def due_period(kind: ReportKind, now: datetime) -> str:
    """The latest period whose report is due by ``now``: published at 09:00 on the first day of the
    following period (Monday for a week, the 1st for a month), Asia/Shanghai."""
    local = now.astimezone(LOCAL_TZ)
    if local.hour < PUBLISH_HOUR:
        local -= timedelta(days=1)  # before 09:00, the schedule stands where it stood yesterday
    return period_before(local, period_kind(kind)).key


class Reports:
    """Computes, writes, publishes and verifies reports for one store."""

    def __init__(self, app: PingjingApp, views: ViewStore, out_dir: Path, *, policy: SlaPolicy | None = None) -> None:
        self.app = app
        self.views = views
        self.out_dir = out_dir
        self.policy = policy
        self.runner = Runner(app, views, ALL, policy=policy)

    # -- computing ---------------------------------------------------------------------------

    def compute(self, kind: ReportKind, period: str) -> Computed:
        """The report from the live views, read at one position (the head when called)."""
        check_period(kind, period)
        for _ in range(_READ_TRIES):
            head = self.runner.head()
            self.runner.catch_up(until_position=head)
            if self._positions() == {head}:
                data = self._with_seal(kind, build_report(self.views, self.runner.context.registry, kind, period, head))
                if self._positions() == {head}:
                    return Computed(kind, period, head, data, content_hash(data))
        # The views keep moving (a busy runner elsewhere): compute privately at a fixed position.
        return self.compute_at(kind, period, self.runner.head())

    def compute_at(self, kind: ReportKind, period: str, position: int) -> Computed:
        """The report from views rebuilt privately from the events up to ``position``."""
        views = ViewStore.in_memory()
        try:
            runner = Runner(self.app, views, ALL, policy=self.policy)
            runner.catch_up(until_position=position)
            data = self._with_seal(kind, build_report(views, runner.context.registry, kind, period, position))
        finally:
            views.close()
        return Computed(kind, period, position, data, content_hash(data))

    def _positions(self) -> set[int]:
        return {self.views.position(p.tracking_name) for p in self.runner.projections}

    def _with_seal(self, kind: ReportKind, data: dict[str, Any]) -> dict[str, Any]:
        """A monthly bulletin's data with the latest seal at or before its position (None: no seal yet)."""
        if kind is not ReportKind.MONTHLY:
            return data
        found = latest_seal(self.app, int(data["position"]))
        data["seal"] = None if found is None else {
            "position": found.position,
            "chain_hash": found.chain_hash,
            "sealed_at": f"{found.sealed_at.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}",
            "recorded_at": found.recorded_at,
        }
        return data

    # -- publishing --------------------------------------------------------------------------

    def publish(self, kind: ReportKind, period: str, context: Context = SCHEDULER) -> Published:
        """Compute the report, write its files, and record the publication (the next edition).

        A monthly bulletin seals the log first (on a store that keeps a chain), so that it
        prints a hash of the whole log up to its publication.
        """
        check_period(kind, period)
        if kind is ReportKind.MONTHLY:
            with contextlib.suppress(AuditNotSupportedError):  # a memory store: nothing to seal
                seal(self.app, context)
        computed = self.compute(kind, period)
        title = title_of(kind, period, self.runner.context.registry)
        receipt = self.app.execute(
            c.PublishReport(
                kind=kind.value,
                period=period,
                title=title,
                position=computed.position,
                content_hash=computed.content_hash,
            ),
            context,
        )
        report = self.app.get_report(str(receipt.extra["name"]))
        files = self.write(computed, report)
        return Published(report.name, kind, period, report.edition, computed.position, computed.content_hash, files)

    def write(self, computed: Computed, report: Report) -> dict[str, Path]:
        """Write the HTML, Markdown and JSON files of a publication (atomically, each)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        published = {
            "name": report.name,
            "edition": report.edition,
            "published_at": f"{report.published_at.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}",
            "published_by": report.published_by,
        }
        renderings = {
            "html": render_html(computed.data, content_hash=computed.content_hash, published=published),
            "md": render_markdown(computed.data, content_hash=computed.content_hash),
            "json": render_json(computed.data, content_hash=computed.content_hash, published=published),
        }
        files = {}
        for suffix, text in renderings.items():
            path = self.out_dir / f"{report.name}.{suffix}"
            partial = path.with_name(path.name + ".partial")
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, path)
            files[suffix] = path
        return files

    def publish_due(self, now: datetime, kinds: tuple[ReportKind, ...] = tuple(ReportKind)) -> list[Published]:
        """What the schedule asks for by ``now`` and is not yet published: the previous week's review
        from Monday 09:00, the previous month's bulletin from the 1st at 09:00 (Asia/Shanghai).

        The schedule publishes a period once, also when the scheduler was down at the moment
        (it catches up); people may publish further editions on demand.
        """
        done = []
        for kind in kinds:
            period = due_period(kind, now)
            if self.app.get_aggregate(report_id(kind, period, 1)) is None:
                done.append(self.publish(kind, period))
        return done

    # -- verifying ---------------------------------------------------------------------------

    def verify(self, name: str) -> Verification:
        """Recompute a publication from the events up to its position and compare the hashes."""
        report = self.app.get_report(name)
        computed = self.compute_at(report.kind, report.period, report.position)
        return Verification(
            report.name, report.position, report.content_hash, computed.content_hash, self._file_hash(report)
        )

    def _file_hash(self, report: Report) -> str | None:
        path = self.out_dir / f"{report.name}.json"
        if not path.exists():
            return None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return content_hash(document["report"])
        except (ValueError, KeyError, TypeError):
            return "unreadable"
