"""The citizen's pages: rate from a scanned code (``/s/{token}``), track a case (``/track/{ref}``).

Server-rendered, usable without JavaScript (plain forms, the answer is the next page),
mobile first, Chinese by default with an English switch. Every refusal is a page that says
what was wrong in the citizen's language, with the status a machine would expect:

=========================================  ======
refusal                                    status
=========================================  ======
a forged code (names no one)               404
a rotated or withdrawn code                410
a form field out of range (form again)     422
a honeypot field filled in                 400
too many posts from one address            429
this device rated this target in 24 h      429
a used, expired or another's rating code   409
tracking: unknown case                     404
tracking: wrong digits, no phone on case   403
tracking: the citizen's data were erased   410
tracking: too many wrong digits            429
the store cannot be reached                503
=========================================  ======

A refused form writes nothing. The rating's page never says anything the officer could use
to find the rater; the tracking page shows a case's milestones, never staff notes, names or
the other party's words, and only after the last four digits of the phone left with it.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import structlog
from eventsourcing.persistence import PersistenceError
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from adapters.http.citizen.devices import COOKIE, COOKIE_MAX_AGE, DeviceHasher
from adapters.http.citizen.i18n import LANG_COOKIE, TEXTS, Lang, pick_lang, text
from adapters.http.limits import AddressLimiter
from adapters.http.services import Services, services
from adapters.qr.errors import ForgedToken, QrCodeError, RevokedCode, StaleCode
from adapters.qr.keys import Keyring, load_keyring
from adapters.qr.lookup import QrTarget, known_target, resolve_token
from adapters.qr.tokens import QrClaim, verify_token
from domain import commands as c
from domain.application import Context
from domain.case import Case
from domain.errors import (
    EncounterCodeError,
    NotFoundError,
    PingjingError,
    QrCodeRefusedError,
    RepeatRatingError,
    RuleViolationError,
    ValidationError,
)
from domain.ids import LOCAL_TZ
from domain.usecases import Receipt
from domain.values import Actor, Channel, OfficerKind, QrSubject, Role

log = structlog.get_logger("pingjing.citizen")
TEMPLATES = Path(__file__).parent / "templates"
#: The form field no person sees or fills in (hidden by CSS and from screen readers); robots do.
HONEYPOT = "website"
CITIZEN = Actor("anonymous", Role.CITIZEN)
#: Form fields, in the order their errors are listed.
RATING_FIELDS = ("verdict", "service_score", "attitude_score", "efficiency_score", "comment", "complaint",
                 "suggestion", "phone", "citizen_name", "encounter_code")
SCORES = ("service_score", "attitude_score", "efficiency_score")
#: What a citizen sees of a case's history: these events, in these words (``ev_*`` texts).
MILESTONES = frozenset({"Opened", "Pushed", "CitizenContacted", "ResultReported", "CallbackRecorded",
                        "CallbackAttemptFailed", "RectificationOrdered", "RectificationReported", "Verified",
                        "Closed", "Reopened"})
_LAST4 = re.compile(r"^[0-9]{4}$")
_TEXT_LIMITS = {"comment": 500, "complaint": 2000, "suggestion": 2000, "citizen_name": 32}
#: At most this many pages kept by :meth:`Page.render_same` (then they are made again).
RENDERED_PAGES = 4096


@dataclass
class CitizenPages:
    """What the citizen pages need besides the app: the QR keys, the device hasher and the limits."""

    keyring: Keyring
    devices: DeviceHasher
    posts: AddressLimiter
    wrong_digits: AddressLimiter
    templates: Jinja2Templates = field(init=False)
    #: Pages made by :meth:`Page.render_same`, by what they depend on.
    rendered: dict[tuple[Any, ...], bytes] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        # Templates ship with the code: compiled once, not checked on disk at every render.
        self.templates = Jinja2Templates(
            env=Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, auto_reload=False)
        )

    @classmethod
    def from_services(cls, svc: Services) -> CitizenPages:
        """Built from the runtime's settings."""
        settings = svc.rt.settings
        return cls(
            keyring=load_keyring(settings),
            devices=DeviceHasher.from_settings(settings),
            posts=AddressLimiter(settings.citizen_posts_per_minute),
            wrong_digits=AddressLimiter(per_hour=settings.track_attempts_per_hour),
        )


_MAKING = threading.Lock()


async def pages(request: Request) -> CitizenPages:
    """The app's citizen pages (a FastAPI dependency), made on first use: the keys are read or created then."""
    state = request.app.state
    found: CitizenPages | None = getattr(state, "citizen", None)
    if found is None:
        with _MAKING:
            found = getattr(state, "citizen", None)
            if found is None:
                found = state.citizen = CitizenPages.from_services(state.services)
    return found


@dataclass
class Page:
    """One page being answered: its language, template values, status and cookies to set."""

    request: Request
    site: CitizenPages
    lang: Lang
    cookies: dict[str, tuple[str, int]] = field(default_factory=dict)

    def t(self, key: str, **values: object) -> str:
        """A text in the page's language."""
        return text(self.lang, key, **values)

    def render(self, template: str, status: int = 200, headers: dict[str, str] | None = None,
               **values: Any) -> HTMLResponse:
        """The page, with the language switch and any cookies it sets."""
        return self._finish(self._made(template, status, headers, values))

    def _made(self, template: str, status: int, headers: dict[str, str] | None,
              values: dict[str, Any]) -> HTMLResponse:
        """The page rendered, with the language switch (not yet its cookies and headers)."""
        other: Lang = "en" if self.lang == "zh" else "zh"
        context = {"t": self.t, "lang": self.lang, "html_lang": "zh-CN" if self.lang == "zh" else "en",
                   "switch_url": f"{self.request.url.path}?lang={other}", **values}
        return self.site.templates.TemplateResponse(self.request, template, context, status_code=status,
                                                    headers=headers)

    def render_same(self, depends: Hashable, template: str, **values: Any) -> HTMLResponse:
        """:meth:`render` of a page that is the same for every visitor of this address in this language,
        whose ``values`` are made of ``depends`` alone: made once, then answered from memory."""
        key = (self.lang, self.request.url.path, template, depends)
        made = self.site.rendered
        body = made.get(key)
        if body is None:
            body = bytes(self._made(template, 200, None, values).body)
            if len(made) >= RENDERED_PAGES:  # a county has a few hundred codes: this only bounds memory
                made.clear()
            made[key] = body
        return self._finish(HTMLResponse(body))

    def _finish(self, response: HTMLResponse) -> HTMLResponse:
        """The response with the cookies the page sets and the headers every citizen page has."""
        secure = self.request.url.scheme == "https"
        if self.request.query_params.get("lang") in ("zh", "en"):
            response.set_cookie(LANG_COOKIE, self.lang, max_age=COOKIE_MAX_AGE, httponly=True, samesite="lax",
                                secure=secure)
        for name, (value, max_age) in self.cookies.items():
            response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def refusal(self, status: int, title: str, message: str, *, retry_after: int | None = None,
                back: bool = False) -> HTMLResponse:
        """A page that says why nothing was done."""
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return self.render("refused.html.j2", status, headers, title=self.t(title), message=message, back=back)


async def _page(request: Request, site: Annotated[CitizenPages, Depends(pages)]) -> Page:
    return Page(request, site, pick_lang(request))


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _local(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


# -- rating ---------------------------------------------------------------------------------


def _target_view(page: Page, target: QrTarget) -> dict[str, Any]:
    officer = target.subject is QrSubject.OFFICER
    kind = None
    if target.officer_kind is not None:
        kind = page.t("kind_auxiliary" if target.officer_kind is OfficerKind.AUXILIARY else "kind_police")
    return {"officer": officer, "name": target.name, "badge": target.badge, "unit_name": target.unit_name,
            "kind": kind}


def _code_refusal(page: Page, error: QrCodeError) -> HTMLResponse:
    status = 404 if isinstance(error, ForgedToken) else 410
    return page.refusal(status, "code_title", error.en if page.lang == "en" else error.zh)


def _resolve(page: Page, svc: Services, token: str) -> QrTarget | HTMLResponse:
    try:
        return resolve_token(svc.app, page.site.keyring, token)
    except QrCodeError as error:
        return _code_refusal(page, error)


async def _claimed(page: Page, svc: Services, token: str) -> tuple[QrClaim, QrTarget] | HTMLResponse:
    """A posted code's claim and whom it names: the signature checked, the directory asked only if it must be."""
    try:
        claim = verify_token(page.site.keyring, token)
    except ForgedToken as error:
        return _code_refusal(page, error)
    target = known_target(svc.app, claim)
    if target is None:  # not known as this version yet, or no longer: ask the store
        resolved = await run_in_threadpool(_resolve, page, svc, token)
        if isinstance(resolved, HTMLResponse):
            return resolved
        target = resolved
    return claim, target


def rate_page(token: str, page: Page, svc: Services) -> Response:
    """The rating form for the officer or unit a scanned code names."""
    target = _resolve(page, svc, token)
    if isinstance(target, HTMLResponse):
        return target
    if page.request.cookies.get(COOKIE) is None:
        device = page.site.devices.identify(page.request)
        if device.new_cookie:
            page.cookies[COOKIE] = (device.new_cookie, COOKIE_MAX_AGE)
    return page.render("rate.html.j2", target=_target_view(page, target), values={}, errors=[], honeypot=HONEYPOT)


def _form_values(form: FormData) -> dict[str, str]:
    values = {}
    for name in RATING_FIELDS:
        raw = form.get(name)
        values[name] = raw.strip() if isinstance(raw, str) else ""
    return values


def _command(claim: QrClaim, values: dict[str, str], device_hash: str) -> c.SubmitRating:
    data: dict[str, Any] = {"target": claim.subject, "key": claim.key, "qr_version": claim.version,
                            "device_hash": device_hash}
    for name, value in values.items():
        if value:
            data[name] = int(value) if name in SCORES and value.isdigit() else value
    return c.SubmitRating.model_validate(data)


def _field_errors(page: Page, error: PydanticValidationError) -> list[str]:
    """What the citizen must correct, one line per field, in the page's language."""
    seen: dict[str, str] = {}
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else ""
        if name in seen:
            continue
        label = page.t(f"f_{name}") if f"f_{name}" in TEXTS else page.t(name) if name in TEXTS else name
        if name == "verdict":
            seen[name] = page.t("bad_verdict")
        elif name in SCORES:
            seen[name] = page.t("bad_score", field=page.t(name))
        elif name == "phone":
            seen[name] = page.t("bad_phone")
        elif name == "encounter_code":
            seen[name] = page.t("bad_code")
        elif name in _TEXT_LIMITS and problem["type"] == "string_too_long":
            seen[name] = page.t("bad_text", field=label, max=_TEXT_LIMITS[name])
        elif not name:  # the whole form's rule: a name only with a phone
            seen["citizen_name"] = page.t("bad_name")
        else:
            seen[name] = page.t("bad_field", field=label)
    return [seen[name] for name in sorted(seen, key=lambda n: RATING_FIELDS.index(n) if n in RATING_FIELDS else 99)]


async def submit_rating(token: str, page: Page, svc: Services) -> Response:  # noqa: PLR0911 - one answer per refusal in the table above
    """Record the rating; the thank-you page names the case a dissatisfied rating, complaint or suggestion opened."""
    site = page.site
    allowance = site.posts.hit("citizen-post", _address(page.request))
    if not allowance.allowed:
        return page.refusal(429, "refused_title", page.t("too_many", seconds=allowance.retry_after),
                            retry_after=allowance.retry_after)
    claimed = await _claimed(page, svc, token)
    if isinstance(claimed, HTMLResponse):
        return claimed
    claim, target = claimed
    form = await page.request.form()
    if str(form.get(HONEYPOT) or "").strip():
        log.info("citizen_honeypot", route="/s/{token}")
        return page.refusal(400, "refused_title", page.t("honeypot"))
    values = _form_values(form)
    device = site.devices.identify(page.request)
    if device.new_cookie:
        page.cookies[COOKIE] = (device.new_cookie, COOKIE_MAX_AGE)
    view = _target_view(page, target)
    try:
        command = _command(claim, values, device.hash)
    except PydanticValidationError as error:
        return page.render("rate.html.j2", 422, target=view, values=values, errors=_field_errors(page, error),
                           honeypot=HONEYPOT)
    context = Context(CITIZEN, Channel.QR, correlation_id=getattr(page.request.state, "request_id", None))
    try:
        receipt = await svc.submit(command, context)
    except RepeatRatingError as error:
        seconds = max(1, int((error.retry_after - svc.app.clock.now()).total_seconds()))
        message = page.t("repeat", who=target.name, last=_local(error.last_at), retry=_local(error.retry_after))
        return page.refusal(429, "refused_title", message, retry_after=seconds)
    except QrCodeRefusedError as error:  # rotated or revoked since the directory last looked
        refused = {"rotated": StaleCode, "revoked": RevokedCode}.get(error.reason, ForgedToken)()
        return _code_refusal(page, refused)
    except EncounterCodeError:
        return page.render("rate.html.j2", 409, target=view, values=values, errors=[page.t("code_used")],
                           honeypot=HONEYPOT)
    except NotFoundError as error:
        if error.what == "encounter code":
            return page.render("rate.html.j2", 422, target=view, values=values, errors=[page.t("code_unknown")],
                               honeypot=HONEYPOT)
        return page.refusal(410, "code_title", page.t("officer_left"))
    except RuleViolationError:  # the officer left between the scan and the submission
        return page.refusal(410, "code_title", page.t("officer_left"))
    except (PingjingError, PersistenceError) as error:
        log.warning("citizen_rating_failed", error=type(error).__name__)
        return page.refusal(503, "error_title", page.t("unavailable"), retry_after=30)
    return _thanks(page, target, receipt, has_phone=command.phone is not None)


def _thanks(page: Page, target: QrTarget, receipt: Receipt, *, has_phone: bool) -> HTMLResponse:
    verified = bool(receipt.extra.get("verified"))
    if receipt.case_ref is None:
        # Most ratings open no case: their page is the same for everyone who rates this officer or unit.
        view = _target_view(page, target)
        return page.render_same((tuple(view.items()), verified), "thanks.html.j2", target=view, case_ref=None,
                                verified=verified, has_phone=False)
    return page.render("thanks.html.j2", target=_target_view(page, target), case_ref=receipt.case_ref,
                       verified=verified, has_phone=has_phone)


# -- tracking -------------------------------------------------------------------------------


def track_page(ref: str, page: Annotated[Page, Depends(_page)]) -> Response:
    """Ask for the last four digits of the phone left with the case."""
    return page.render("track.html.j2", ref=ref.upper(), errors=[])


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


async def track_case(  # noqa: PLR0911 - same
    ref: str,
    page: Annotated[Page, Depends(_page)],
    svc: Annotated[Services, Depends(services)],
) -> Response:
    """The case's progress, once the last four digits of its phone match."""
    ref = ref.upper()
    site = page.site
    allowance = site.posts.hit("citizen-post", _address(page.request))
    if not allowance.allowed:
        return page.refusal(429, "refused_title", page.t("too_many", seconds=allowance.retry_after),
                            retry_after=allowance.retry_after)
    form = await page.request.form()
    last4 = str(form.get("last4") or "").strip()
    if not _LAST4.fullmatch(last4):
        return page.render("track.html.j2", 422, ref=ref, errors=[page.t("bad_last4")])
    paused = site.wrong_digits.check("track", ref)
    if not paused.allowed:
        return page.refusal(429, "refused_title", page.t("track_paused"), retry_after=paused.retry_after)
    try:
        case = await run_in_threadpool(svc.app.get_case, ref)
    except (NotFoundError, ValidationError):  # no such case; or not even the form of a case reference
        return page.refusal(404, "track_title", page.t("track_unknown"))
    except (PingjingError, PersistenceError):
        return page.refusal(503, "error_title", page.t("unavailable"), retry_after=30)
    if case.contact is None:
        return page.refusal(403, "track_title", page.t("track_not_trackable"))
    if case.contact.phone is None:  # erased: no digits left to check, and none to ask for
        return page.refusal(410, "track_title", page.t("track_erased"))
    if not hmac.compare_digest(_digits(case.contact.phone)[-4:], last4):
        site.wrong_digits.hit("track", ref)
        return page.render("track.html.j2", 403, ref=ref, errors=[page.t("track_wrong")])
    return page.render("status.html.j2", case=await run_in_threadpool(_case_view, page, svc, case))


def _case_view(page: Page, svc: Services, case: Case) -> dict[str, Any]:
    kind = page.t(f"kind_{case.kind.value}")
    steps = []
    for event in svc.app.case_events(case.ref):
        name = type(event).__name__
        if name not in MILESTONES:
            continue
        line = page.t(f"ev_{name}", kind=kind)
        outcome = getattr(event, "outcome", None)
        if name == "Closed" and outcome:
            line = f"{line}（{page.t(f'outcome_{outcome}')}）" if page.lang == "zh" else \
                f"{line} ({page.t(f'outcome_{outcome}')})"
        steps.append({"at": _local(event.timestamp), "text": line})
    return {"ref": case.ref, "kind": kind, "state": page.t(f"state_{case.state.value}"),
            "closed": case.state.value == "closed", "opened_at": _local(case.opened_at), "steps": steps}


# The scan and the rating are the busiest routes of all: they are plain Starlette endpoints,
# routed without FastAPI's dependency solving and its per-request machinery around the endpoint
# (a tenth of a serving process's time for a rating); what the endpoint needs is taken from
# the request here, as the dependencies would give it.


async def _scan_route(request: Request) -> Response:
    """``GET /s/{token}``: :func:`rate_page`."""
    page = await _page(request, await pages(request))
    return await run_in_threadpool(rate_page, request.path_params["token"], page, await services(request))


async def _rating_route(request: Request) -> Response:
    """``POST /s/{token}``: :func:`submit_rating`."""
    page = await _page(request, await pages(request))
    return await submit_rating(request.path_params["token"], page, await services(request))


def router() -> APIRouter:
    """The citizen pages (kept out of the staff API's OpenAPI document)."""
    api = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    api.add_route("/s/{token}", _scan_route, methods=["GET"], include_in_schema=False)
    api.add_route("/s/{token}", _rating_route, methods=["POST"], include_in_schema=False)
    api.add_api_route("/track/{ref}", track_page, methods=["GET"])
    api.add_api_route("/track/{ref}", track_case, methods=["POST"])
    return api
