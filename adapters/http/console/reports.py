"""Published reports: the list, one publication with its page, and publishing the due report.

The list and a publication are read through the staff API's own functions
(:func:`adapters.http.queries.list_reports`, :func:`~adapters.http.queries.read_report`:
auditors get them scrubbed of personal data); a publication's page is drawn from its JSON file
by the reports adapter's renderer, exactly as it was published. The office publishes through
:func:`adapters.http.api.publish_report` (the weekly review or monthly bulletin, by default the
one due now).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError as PydanticValidationError

from adapters.http.api import PublishRequest, publish_report, staff_roles
from adapters.http.auth import allow
from adapters.http.console.auth import ConsoleStaff, form_checked, posted, signed_in
from adapters.http.console.pages import PREFIX, invalid_messages, page, with_query
from adapters.http.errors import domain_status
from adapters.http.queries import REPORT_READERS, list_reports, read_report
from adapters.http.services import Services, services
from adapters.reports.publish import due_period
from adapters.reports.render import render_html
from domain import commands as c
from domain.errors import NotFoundError, PingjingError
from domain.reports import ReportKind

PUBLISHERS = staff_roles(c.PublishReport)
UNPUBLISHED = "输入有误，未发布。 Invalid input; nothing was published."
KIND_LABELS = {ReportKind.WEEKLY.value: "周点评 Weekly review", ReportKind.MONTHLY.value: "月通报 Monthly bulletin"}


def _list(
    request: Request,
    staff: ConsoleStaff,
    svc: Services,
    *,
    status_code: int = 200,
    error: str | None = None,
    error_details: list[str] | None = None,
) -> HTMLResponse:
    allow(REPORT_READERS, "list the reports")(staff)
    publications = list(reversed(list_reports(staff, svc)))
    now = svc.app.clock.now()
    due = {kind.value: due_period(kind, now) for kind in ReportKind}
    return page(request, "reports.html.j2", status_code, publications=publications, due=due,
                kinds=KIND_LABELS, may_publish=staff.role in PUBLISHERS, error=error, error_details=error_details or [])


def reports_page(
    request: Request,
    staff: Annotated[ConsoleStaff, Depends(signed_in)],
    svc: Annotated[Services, Depends(services)],
) -> HTMLResponse:
    """报告: every publication, newest first; the office's publish form."""
    return _list(request, staff, svc)


def publish(
    request: Request,
    staff: Annotated[ConsoleStaff, Depends(form_checked)],
    svc: Annotated[Services, Depends(services)],
    form: Annotated[dict[str, str], Depends(posted)],
) -> Response:
    """Publish a weekly review or monthly bulletin (default: the one due now); to its page (303)."""
    allow(PUBLISHERS, "publish_report")(staff)
    try:
        period = form.get("period", "").strip() or None
        body = PublishRequest.model_validate({"kind": form.get("kind", ""), "period": period})
        done = publish_report(request, staff, svc, body)
    except PydanticValidationError as invalid:
        return _list(request, staff, svc, status_code=422, error=UNPUBLISHED,
                     error_details=invalid_messages(list(invalid.errors())))
    except PingjingError as refused:
        return _list(request, staff, svc, status_code=domain_status(refused)[0], error=f"未发布：{refused}")
    return RedirectResponse(with_query(f"{PREFIX}/reports/{done.name}", published="1"), status_code=303)


def report_page(
    request: Request,
    name: str,
    staff: Annotated[ConsoleStaff, Depends(signed_in)],
    svc: Annotated[Services, Depends(services)],
    published: str | None = None,
) -> HTMLResponse:
    """One publication: its details, whether its file still matches, and the report itself."""
    allow(REPORT_READERS, "read a report")(staff)
    report = read_report(name, staff, svc)
    notice = "报告已发布。 The report is published." if published else None
    return page(request, "report.html.j2", report=report.publication, has_document=report.document is not None,
                file_matches=report.file_matches, kinds=KIND_LABELS, notice=notice)


def report_document(
    name: str,
    staff: Annotated[ConsoleStaff, Depends(signed_in)],
    svc: Annotated[Services, Depends(services)],
) -> HTMLResponse:
    """The report's own page, rendered from its published JSON file by the reports adapter."""
    allow(REPORT_READERS, "read a report")(staff)
    report = read_report(name, staff, svc)
    document = report.document
    if document is None:
        raise NotFoundError("report file", report.publication.name)
    html = render_html(document["report"], content_hash=document["content_hash"], published=document["publication"])
    return HTMLResponse(html)


def register(router: APIRouter) -> None:
    """Add the reports' routes."""
    router.add_api_route("/reports", reports_page, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/reports", publish, methods=["POST"], response_class=HTMLResponse)
    router.add_api_route("/reports/{name}", report_page, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/reports/{name}/document", report_document, methods=["GET"], response_class=HTMLResponse)
