"""The clinic's campaigns: steps on a timeline, the step editor with preview, versions.

Every change is saved as a draft version (`campaign_versions.save_draft`); publishing, the
safety check and roll back are the domain functions too, so these handlers only read forms and
pick the page. Another clinic's campaign, step or version answers 404.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from dripcare.config import get_settings
from dripcare.content import campaign_editing as edit
from dripcare.content import campaign_versions as versions
from dripcare.content.campaign_spec import CampaignSpec
from dripcare.content.campaigns import check_default_campaign, find_campaign, list_campaigns
from dripcare.content.previews import (
    TEST_SENDS_PER_HOUR,
    check_test_recipient,
    checked_preview,
    send_test_email,
)
from dripcare.content.rendering import RenderError
from dripcare.content.template_checks import Problem, ProblemsFound
from dripcare.errors import NotFound, UserError
from dripcare.models import Campaign, CampaignVersion, Clinic
from dripcare.people.audit import Actor
from dripcare.rate_limits import Limiter, make_limiter
from dripcare.web.admin.deps import AdminContext, AdminDep, AdminNotFound, CsrfFormDep
from dripcare.web.admin.views import render
from dripcare.web.deps import SessionDep

router = APIRouter()
Line = Annotated[str, Form(max_length=300)]
Body = Annotated[str, Form(max_length=200_000)]
Number = Annotated[int, Form(ge=0, le=10_000)]
Flag = Annotated[bool, Form()]  # a checkbox: sent only when ticked
# negative: a pre-care step, that long before the treatment
Offset = Annotated[int, Form(ge=-10_000, le=10_000)]


def _campaign(session: Session, admin: AdminContext, slug: str) -> Campaign:
    try:
        return find_campaign(session, admin.clinic_id, slug)
    except UserError as exc:
        raise AdminNotFound from exc


def _working(session: Session, campaign: Campaign) -> tuple[CampaignSpec, int]:
    version = versions.working_version(session, campaign)
    return versions.spec_of(version), version.number


def _back(slug: str, message: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(
        f"/admin/campaigns/{quote(slug)}?msg={quote(message)}{anchor}", status_code=303
    )


# ---- the list and one campaign ----------------------------------------------------------------


@router.get("/campaigns", response_class=HTMLResponse)
def campaign_list(request: Request, admin: AdminDep, session: SessionDep) -> HTMLResponse:
    campaigns = list_campaigns(session, admin.clinic_id)
    drafts = {c.slug: versions.current_draft(session, c) for c in campaigns}
    default = session.get_one(Clinic, admin.clinic_id).default_campaign
    context = {"campaigns": campaigns, "drafts": drafts, "default_campaign": default}
    return render(request, admin, "admin/campaigns.html", context)


@router.post("/campaigns/default")
def set_default_campaign(
    admin: CsrfFormDep,
    session: SessionDep,
    default_campaign: Annotated[str, Form(max_length=64)] = "",
) -> RedirectResponse:
    """The campaign an enrollment that names none follows ("": none, enrolling must name one)."""
    clinic = session.get_one(Clinic, admin.clinic_id)
    try:
        clinic.default_campaign = check_default_campaign(session, clinic.id, default_campaign)
    except UserError as exc:  # not one of the choices the page offered
        raise AdminNotFound from exc
    session.commit()
    return RedirectResponse("/admin/campaigns", status_code=303)


def _campaign_page(
    request: Request,
    admin: AdminContext,
    session: Session,
    campaign: Campaign,
    *,
    problems: list[Problem] | None = None,
    error: str = "",
    msg: str = "",
) -> HTMLResponse:
    spec, number = _working(session, campaign)
    context: dict[str, Any] = {
        "campaign": campaign,
        "spec": spec,
        "working": number,
        "draft": versions.current_draft(session, campaign),
        "history": versions.history(session, campaign),
        "problems": problems or [],
        "error": error,
        "msg": msg,
    }
    status = 422 if problems or error else 200
    return render(request, admin, "admin/campaign.html", context, status_code=status)


@router.get("/campaigns/{slug}", response_class=HTMLResponse)
def campaign_page(
    request: Request, admin: AdminDep, session: SessionDep, slug: str, msg: str = ""
) -> HTMLResponse:
    return _campaign_page(request, admin, session, _campaign(session, admin, slug), msg=msg[:300])


def _change(
    request: Request,
    admin: AdminContext,
    session: Session,
    slug: str,
    change: Callable[[CampaignSpec], CampaignSpec],
    note: str,
) -> Response:
    """Apply an edit to the working version and save it as a draft, or show why not."""
    campaign = _campaign(session, admin, slug)
    spec, _ = _working(session, campaign)
    try:
        saved = versions.save_draft(session, campaign, change(spec), author=_who(admin), note=note)
    except ProblemsFound as exc:
        return _campaign_page(request, admin, session, campaign, problems=exc.problems)
    except UserError as exc:
        return _campaign_page(request, admin, session, campaign, error=str(exc))
    session.commit()
    return _back(slug, f"{note}: {_saved(saved)}")


def _saved(version: CampaignVersion) -> str:
    if version.published_at is not None:  # save_draft found nothing new to record
        return f"no changes: this is version {version.number} as it is"
    return f"saved as draft version {version.number}"


def _who(admin: AdminContext) -> str:
    return admin.user.email


@router.post("/campaigns/{slug}/steps", response_class=HTMLResponse)
def add_step(
    request: Request,
    admin: CsrfFormDep,
    session: SessionDep,
    slug: str,
    *,
    key: Line,
    subject: Line,
    offset_days: Offset = 0,
    send_time: Line = "",
) -> Response:
    def change(spec: CampaignSpec) -> CampaignSpec:
        return edit.add_step(
            spec, key, offset_days=offset_days, subject=subject, send_time=send_time
        )

    return _change(request, admin, session, slug, change, f"added step {key.strip().lower()}")


@router.post("/campaigns/{slug}/steps/{key}/remove", response_class=HTMLResponse)
def remove_step(
    request: Request, admin: CsrfFormDep, session: SessionDep, slug: str, key: str
) -> Response:
    return _change(
        request, admin, session, slug, lambda s: edit.remove_step(s, key), f"removed step {key}"
    )


@router.post("/campaigns/{slug}/steps/{key}/move", response_class=HTMLResponse)
def move_step(
    request: Request,
    admin: CsrfFormDep,
    session: SessionDep,
    slug: str,
    key: str,
    by: Annotated[int, Form(ge=-100, le=100)],
) -> Response:
    return _change(
        request, admin, session, slug, lambda s: edit.move_step(s, key, by), f"moved step {key}"
    )


@router.post("/campaigns/{slug}/steps/{key}/timing", response_class=HTMLResponse)
def retime_step(
    request: Request,
    admin: CsrfFormDep,
    session: SessionDep,
    slug: str,
    *,
    key: str,
    offset_days: Offset = 0,
    offset_hours: Offset = 0,
    offset_minutes: Offset = 0,
    send_time: Line = "",
    send_until: Line = "",
) -> Response:
    def change(spec: CampaignSpec) -> CampaignSpec:
        return edit.update_step(
            spec,
            key,
            offset_days=offset_days,
            offset_hours=offset_hours,
            offset_minutes=offset_minutes,
            send_time=send_time,
            send_until=send_until,
        )

    return _change(request, admin, session, slug, change, f"changed the timing of {key}")


# ---- publishing, history, roll back -----------------------------------------------------------


@router.post("/campaigns/{slug}/publish", response_class=HTMLResponse)
def publish(
    request: Request, admin: CsrfFormDep, session: SessionDep, slug: str, number: Number
) -> Response:
    campaign = _campaign(session, admin, slug)
    try:
        done = versions.publish(session, campaign, number, author=Actor.admin(admin.user))
    except ProblemsFound as exc:
        return _campaign_page(
            request, admin, session, campaign, problems=exc.problems, error=exc.summary
        )
    except UserError as exc:
        return _campaign_page(request, admin, session, campaign, error=str(exc))
    session.commit()
    return _back(slug, _published(done))


@router.post("/campaigns/{slug}/rollback", response_class=HTMLResponse)
def roll_back(
    request: Request, admin: CsrfFormDep, session: SessionDep, slug: str, number: Number
) -> Response:
    campaign = _campaign(session, admin, slug)
    try:
        done = versions.roll_back(session, campaign, number, author=Actor.admin(admin.user))
    except NotFound as exc:
        raise AdminNotFound from exc
    except ProblemsFound as exc:
        session.rollback()
        return _campaign_page(
            request, admin, session, campaign, problems=exc.problems, error=exc.summary
        )
    session.commit()
    return _back(slug, f"rolled back to version {number}: " + _published(done))


def _published(done: versions.Published) -> str:
    follow = done.follow
    return (
        f"version {done.version.number} is live; unsent emails: {follow.retimed} moved, "
        f"{follow.cancelled} cancelled, {follow.added} added"
    )


@router.get("/campaigns/{slug}/diff", response_class=HTMLResponse)
def diff_page(
    request: Request, admin: AdminDep, session: SessionDep, slug: str, old: int, new: int
) -> HTMLResponse:
    campaign = _campaign(session, admin, slug)
    try:
        text = versions.diff(session, campaign, old, new)
    except NotFound as exc:
        raise AdminNotFound from exc
    context = {"campaign": campaign, "old": old, "new": new, "diff": text}
    return render(request, admin, "admin/campaign_diff.html", context)


@router.get("/campaigns/{slug}/versions/{number}", response_class=HTMLResponse)
def version_page(
    request: Request,
    admin: AdminDep,
    session: SessionDep,
    slug: str,
    number: int,
    step: str = "",
) -> HTMLResponse:
    """Any version, draft or published, one step at a time, as patients would get it."""
    campaign = _campaign(session, admin, slug)
    try:
        version = versions.get_version(session, campaign, number)
    except NotFound as exc:
        raise AdminNotFound from exc
    spec = versions.spec_of(version)
    key = step or spec.steps[0].key
    if spec.step(key) is None:
        raise AdminNotFound
    problems, preview = checked_preview(spec, key, admin.clinic)
    context = {
        "campaign": campaign,
        "version": version,
        "spec": spec,
        "key": key,
        "problems": problems,
        "preview": preview,
    }
    return render(request, admin, "admin/campaign_version.html", context)


# ---- the step editor --------------------------------------------------------------------------


def _editor(
    request: Request,
    admin: AdminContext,
    session: Session,
    campaign: Campaign,
    spec: CampaignSpec,
    key: str,
    *,
    problems: list[Problem] | None = None,
    msg: str = "",
    error: str = "",
) -> HTMLResponse:
    step = spec.step(key)
    if step is None:
        raise AdminNotFound
    problems, preview = checked_preview(spec, key, admin.clinic, problems)
    context = {
        "campaign": campaign,
        "step": step,
        "body": spec.sources[step.template],
        "problems": problems,
        "preview": preview,
        "working": versions.working_version(session, campaign).number,
        "msg": msg,
        "error": error,
    }
    status = 422 if error or any(p.kind != "safety" for p in problems) else 200
    return render(request, admin, "admin/step_editor.html", context, status_code=status)


@router.get("/campaigns/{slug}/steps/{key}", response_class=HTMLResponse)
def step_editor(
    request: Request, admin: AdminDep, session: SessionDep, slug: str, key: str, msg: str = ""
) -> HTMLResponse:
    campaign = _campaign(session, admin, slug)
    spec, _ = _working(session, campaign)
    return _editor(request, admin, session, campaign, spec, key, msg=msg[:300])


def _edited(
    spec: CampaignSpec, key: str, subject: str, preheader: str, body: str, safety_only: bool
) -> CampaignSpec:
    if spec.step(key) is None:
        raise AdminNotFound
    changed = edit.update_step(
        spec, key, subject=subject, preheader=preheader, safety_only=safety_only
    )
    return edit.set_body(changed, key, body)


@router.post("/campaigns/{slug}/steps/{key}", response_class=HTMLResponse)
def save_step(
    request: Request,
    admin: CsrfFormDep,
    session: SessionDep,
    slug: str,
    *,
    key: str,
    subject: Line = "",
    preheader: Line = "",
    body: Body = "",
    safety_only: Flag = False,
    action: Line = "save",
) -> Response:
    """Save as a draft, or (action=preview) only show what the form would give."""
    campaign = _campaign(session, admin, slug)
    spec = _edited(_working(session, campaign)[0], key, subject, preheader, body, safety_only)
    if action == "preview":
        return _editor(request, admin, session, campaign, spec, key)
    try:
        saved = versions.save_draft(
            session, campaign, spec, author=_who(admin), note=f"edited step {key}"
        )
    except ProblemsFound as exc:
        problems = [p for p in exc.problems if p.step in (None, key)] or exc.problems
        return _editor(
            request, admin, session, campaign, spec, key, problems=problems, error="Not saved."
        )
    session.commit()
    return RedirectResponse(
        f"/admin/campaigns/{quote(slug)}/steps/{quote(key)}?msg=" + quote(_saved(saved)),
        status_code=303,
    )


@router.post("/campaigns/{slug}/steps/{key}/preview.json")
def preview_json(
    admin: CsrfFormDep,
    session: SessionDep,
    slug: str,
    *,
    key: str,
    subject: Line = "",
    preheader: Line = "",
    body: Body = "",
    safety_only: Flag = False,
) -> JSONResponse:
    """The live preview's refresh: the same render as the form post, as JSON."""
    campaign = _campaign(session, admin, slug)
    spec = _edited(_working(session, campaign)[0], key, subject, preheader, body, safety_only)
    problems, preview = checked_preview(spec, key, admin.clinic)
    listed = [
        {"where": p.where, "line": p.line, "message": p.message, "text": str(p), "kind": p.kind}
        for p in problems
    ]
    shown = dataclasses.asdict(preview) if preview else None
    return JSONResponse({"problems": listed, "preview": shown})


def _test_sends(request: Request) -> Limiter:
    """Test emails per admin, kept with the app; shared between API processes through
    DRIPCARE_RATELIMIT_URL when it is set."""
    if not hasattr(request.app.state, "test_sends"):
        rate, burst = TEST_SENDS_PER_HOUR / 3600, TEST_SENDS_PER_HOUR
        request.app.state.test_sends = make_limiter(get_settings(), rate, burst)
    limiter: Limiter = request.app.state.test_sends
    return limiter


@router.post("/campaigns/{slug}/steps/{key}/test-email", response_class=HTMLResponse)
def test_email(
    request: Request, admin: CsrfFormDep, session: SessionDep, slug: str, key: str, to: Line
) -> Response:
    """Send the working version of the step (the draft, if any) to the admin's address."""
    campaign = _campaign(session, admin, slug)
    spec, number = _working(session, campaign)
    if spec.step(key) is None:
        raise AdminNotFound
    try:
        check_test_recipient(admin.clinic, admin.user.email, to)
        if _test_sends(request).acquire(f"test-email:{admin.user.id}"):
            raise UserError(f"at most {TEST_SENDS_PER_HOUR} test emails an hour: try again later")
        send_test_email(spec, key, admin.clinic, to, get_settings())
    except (UserError, RenderError) as exc:
        return _editor(request, admin, session, campaign, spec, key, error=str(exc))
    return RedirectResponse(
        f"/admin/campaigns/{quote(slug)}/steps/{quote(key)}?msg="
        + quote(f"test email of version {number} sent to {to.strip()}"),
        status_code=303,
    )
