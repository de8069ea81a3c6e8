"""Versions of a campaign: drafts, publishing, history, diffs and roll back.

Every save records a new version (a draft) holding the whole campaign: steps and template
sources. Publishing a draft makes it the campaign's live version: the `steps` and
`campaign_templates` rows are rewritten to match it, and the outbox follows (see
`campaign_follow_up.follow_campaign_change`). Rolling back records the old content again as a new
version and publishes that, so history only grows. The send path renders unsent messages from
the live version and records the number it used; a sent message is shown again from it
(compiled_campaigns.py compiles a version for that).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dripcare.config import Settings, get_settings
from dripcare.content.campaign_spec import PRE_CARE_FIELDS, CampaignSpec
from dripcare.content.campaigns import (
    apply_spec,
    default_campaign_dirs,
    load_campaign_dir,
    timing_of,
)
from dripcare.content.safety import check_publishable
from dripcare.content.template_checks import ProblemsFound, check_spec
from dripcare.errors import NotFound, UserError
from dripcare.models import Campaign, CampaignVersion, Clinic, utcnow
from dripcare.outbox import campaign_follow_up
from dripcare.people import audit
from dripcare.people.audit import Action, Actor, as_actor

IMPORT_AUTHOR = "import"


@dataclass(frozen=True)
class Published:
    """What publishing changed for patients already enrolled."""

    version: CampaignVersion
    follow: campaign_follow_up.FollowResult


def spec_of(version: CampaignVersion) -> CampaignSpec:
    return CampaignSpec.from_json(version.content)


# ---- reading ----------------------------------------------------------------------------------


def get_version(session: Session, campaign: Campaign, number: int) -> CampaignVersion:
    found = session.scalar(
        select(CampaignVersion).where(
            CampaignVersion.campaign_id == campaign.id, CampaignVersion.number == number
        )
    )
    if found is None:
        raise NotFound(f"campaign {campaign.slug!r} has no version {number}")
    return found


def live_version(session: Session, campaign: Campaign) -> CampaignVersion:
    return get_version(session, campaign, campaign.version)


def current_draft(session: Session, campaign: Campaign) -> CampaignVersion | None:
    """The newest unpublished version saved since the live one, if any."""
    return session.scalar(
        select(CampaignVersion)
        .where(
            CampaignVersion.campaign_id == campaign.id,
            CampaignVersion.number > campaign.version,
            CampaignVersion.published_at.is_(None),
        )
        .order_by(CampaignVersion.number.desc())
        .limit(1)
    )


def working_version(session: Session, campaign: Campaign) -> CampaignVersion:
    """What an editor starts from: the draft if there is one, else the live version."""
    return current_draft(session, campaign) or live_version(session, campaign)


def history(session: Session, campaign: Campaign) -> list[CampaignVersion]:
    return list(
        session.scalars(
            select(CampaignVersion)
            .where(CampaignVersion.campaign_id == campaign.id)
            .order_by(CampaignVersion.number.desc())
        )
    )


def diff(session: Session, campaign: Campaign, old: int, new: int) -> str:
    """A unified diff of two versions: the steps' settings, then each template file."""
    before = spec_of(get_version(session, campaign, old))
    after = spec_of(get_version(session, campaign, new))
    parts = [_unified(_settings_lines(before), _settings_lines(after), old, new, "steps")]
    for name in sorted(before.sources.keys() | after.sources.keys()):
        old_lines = before.sources.get(name, "").splitlines(keepends=True)
        new_lines = after.sources.get(name, "").splitlines(keepends=True)
        parts.append(_unified(old_lines, new_lines, old, new, name))
    return "".join(parts)


def _unified(before: list[str], after: list[str], old: int, new: int, name: str) -> str:
    lines = difflib.unified_diff(before, after, f"version {old}/{name}", f"version {new}/{name}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _settings_lines(spec: CampaignSpec) -> list[str]:
    lines = [f"variables = {json.dumps(spec.variables, sort_keys=True)}\n"]
    if spec.requires:
        lines.append(f"requires = {json.dumps(spec.requires, sort_keys=True)}\n")
    fields = ("offset_days", "offset_hours", "offset_minutes", "send_time", "subject")
    for step in spec.steps:
        for name in (*fields, "preheader", "template", "checkin"):
            lines.append(f"{step.key}: {name} = {getattr(step, name)!r}\n")
        for name in PRE_CARE_FIELDS:  # only when set: older versions' diffs stay as they were
            if getattr(step, name):
                lines.append(f"{step.key}: {name} = {getattr(step, name)!r}\n")
    return lines + _clinical_lines(spec)


def _clinical_lines(spec: CampaignSpec) -> list[str]:
    """The clinical data one line per item, so a diff shows which flag or line changed."""
    data = spec.clinical.to_json()
    single = ("emergency_heading", "emergency_line", "pointer_line", "pointer_days")
    lines = [f"clinical: {name} = {data[name]!r}\n" for name in single]
    lines += [f"red flag: {json.dumps(flag, sort_keys=True)}\n" for flag in data["red_flags"]]
    lines += [f"expected: {json.dumps(s, sort_keys=True)}\n" for s in data["expected_course"]]
    return lines


# ---- saving and publishing --------------------------------------------------------------------


def save_draft(
    session: Session, campaign: Campaign, spec: CampaignSpec, *, author: str, note: str = ""
) -> CampaignVersion:
    """Record an edit as a new draft. Refused, with every problem, if it cannot render."""
    _lock(session, campaign)
    problems = check_spec(spec, _clinic(session, campaign))
    if problems:
        raise ProblemsFound("not saved", problems)
    base = working_version(session, campaign)
    if base.digest == spec.digest():
        return base
    return _record(session, campaign, spec, author=author, note=note, based_on=base.number)


def _record(
    session: Session,
    campaign: Campaign,
    spec: CampaignSpec,
    *,
    author: str,
    note: str,
    based_on: int | None,
) -> CampaignVersion:
    _lock(session, campaign)
    newest = session.scalar(
        select(func.max(CampaignVersion.number)).where(CampaignVersion.campaign_id == campaign.id)
    )
    version = CampaignVersion(
        campaign_id=campaign.id,
        number=max(newest or 0, campaign.version or 0) + 1,
        content=spec.to_json(),
        digest=spec.digest(),
        author=author[:200],
        note=note[:300],
        based_on=based_on,
        published_by="",
    )
    session.add(version)
    session.flush()
    return version


def publish(
    session: Session,
    campaign: Campaign,
    number: int,
    *,
    author: Actor | str,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> Published:
    """Make a draft live. Refused if it cannot render or fails the red-flag safety check.

    Audited as a publish, with `author` (an admin, an operator, or a bare name such as
    "import") as the actor.
    """
    return _publish(
        session, campaign, number, as_actor(author), Action.CAMPAIGN_PUBLISH, settings, now
    )


def _publish(
    session: Session,
    campaign: Campaign,
    number: int,
    actor: Actor,
    action: Action,
    settings: Settings | None,
    now: datetime | None,
) -> Published:
    _lock(session, campaign)
    version = get_version(session, campaign, number)
    if number == campaign.version:
        raise UserError(f"version {number} is already the live version")
    if version.published_at is not None or number < campaign.version:
        raise UserError(
            f"version {number} is older than the live version {campaign.version}; "
            "roll back to it instead, which publishes a copy of it as a new version"
        )
    spec = spec_of(version)
    problems = check_publishable(spec, _clinic(session, campaign))
    if problems:
        raise ProblemsFound(f"version {number} was not published", problems)
    done = _go_live(session, campaign, version, spec, actor.name, settings or get_settings(), now)
    audit.record(
        session,
        actor,
        action,
        clinic_id=campaign.clinic_id,
        target=("campaign", campaign.slug),
        detail=f"version {number} live",
        now=now,
    )
    return done


def roll_back(
    session: Session,
    campaign: Campaign,
    number: int,
    *,
    author: Actor | str,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> Published:
    """Publish the content of any earlier version again, as a new version (audited)."""
    actor = as_actor(author)
    spec = spec_of(get_version(session, campaign, number))
    copy = _record(
        session,
        campaign,
        spec,
        author=actor.name,
        note=f"roll back to version {number}",
        based_on=number,
    )
    rollback = Action.CAMPAIGN_ROLLBACK
    return _publish(session, campaign, copy.number, actor, rollback, settings, now)


def _go_live(
    session: Session,
    campaign: Campaign,
    version: CampaignVersion,
    spec: CampaignSpec,
    author: str,
    settings: Settings,
    now: datetime | None,
) -> Published:
    now = now or utcnow()
    before = {s.key: timing_of(s) for s in campaign.steps if s.active}
    apply_spec(campaign, spec)
    campaign.version = version.number
    version.published_at, version.published_by = now, author[:200]
    session.flush()
    steps = {s.key: s for s in campaign.steps}
    follow = campaign_follow_up.follow_campaign_change(
        session,
        campaign,
        removed=[s for key, s in steps.items() if key in before and not s.active],
        retimed=[
            s for k, s in steps.items() if s.active and k in before and timing_of(s) != before[k]
        ],
        added=[s for key, s in steps.items() if s.active and key not in before],
        settings=settings,
        now=now,
    )
    return Published(version, follow)


def _lock(session: Session, campaign: Campaign) -> None:
    """One writer per campaign at a time (PostgreSQL row lock; SQLite's write lock is already
    held), with the campaign re-read: two admins saving at once get versions n and n+1, and
    a publish sees the live version another one just made."""
    session.scalars(
        select(Campaign)
        .where(Campaign.id == campaign.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    session.expire(campaign, ["steps", "templates"])  # as the previous writer left them


def _clinic(session: Session, campaign: Campaign) -> Clinic:
    clinic = session.get(Clinic, campaign.clinic_id)
    assert clinic is not None
    return clinic


# ---- importing --------------------------------------------------------------------------------


def import_campaign(
    session: Session, clinic: Clinic, spec: CampaignSpec, author: Actor | str = IMPORT_AUTHOR
) -> Campaign:
    """Create or update the clinic's campaign from a spec, as a new published version."""
    campaign = session.scalar(
        select(Campaign).where(Campaign.clinic_id == clinic.id, Campaign.slug == spec.slug)
    )
    if campaign is None:
        campaign = Campaign(
            clinic_id=clinic.id,
            slug=spec.slug,
            name=spec.name,
            treatment=spec.treatment,
            version=0,
        )
        session.add(campaign)
        session.flush()
    name = as_actor(author).name
    version = _record(session, campaign, spec, author=name, note="imported", based_on=None)
    publish(session, campaign, version.number, author=author)
    return campaign


def install_defaults(session: Session, clinic: Clinic) -> list[Campaign]:
    """Give a new clinic the shipped campaigns, so it can enroll patients at once."""
    return [import_campaign(session, clinic, load_campaign_dir(d)) for d in default_campaign_dirs()]
