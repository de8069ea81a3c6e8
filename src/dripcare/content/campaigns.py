"""Campaigns on disk and in the database.

On disk a campaign is one directory: `campaign.toml` (the steps, the care values and the
clinical data of `clinical.py`) and one MJML file per step,
plus shared layouts and partials (files starting with `_`). `dripcare campaign import DIR`
reads that format, so a clinic can add its own treatment types the way the defaults are made.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from dripcare.config import get_settings
from dripcare.content.campaign_spec import CampaignSpec, StepSpec
from dripcare.content.clinical import parse_clinical
from dripcare.content.template_checks import check_spec
from dripcare.errors import UserError
from dripcare.models import Campaign, CampaignTemplate, Clinic, Step
from dripcare.outbox.scheduling import StepTiming, parse_local_time
from dripcare.outbox.skip_conditions import parse_conditions
from dripcare.sending.send_rules import parse_window

MANIFEST = "campaign.toml"

_T = TypeVar("_T")


def timing_of(step: Step) -> StepTiming:
    send_time = parse_local_time(step.send_time) if step.send_time else None
    send_until = parse_window(step.send_until) if step.send_until else None
    return StepTiming(
        step.offset_days, step.offset_hours, step.offset_minutes, send_time, send_until
    )


_LOADED_MAX = 32
_loaded: dict[Path, tuple[str, CampaignSpec]] = {}
_loaded_lock = threading.Lock()


def load_campaign_dir(directory: Path) -> CampaignSpec:
    """Read and validate a campaign directory; every step must render with sample data.

    Parsed once per process while its files say the same (keyed on their content, so an edit
    is seen at once): every new clinic gets the shipped campaigns. Each caller gets its own
    copy of the spec's dicts and lists.
    """
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise UserError(f"{directory} is not a campaign directory: it has no {MANIFEST}")
    key, stamp = directory.resolve(), _content_stamp(directory)
    with _loaded_lock:
        known = _loaded.get(key)
    if known is None or known[0] != stamp:
        known = (stamp, _read_campaign_dir(directory, manifest_path))
        with _loaded_lock:
            _loaded.pop(key, None)
            _loaded[key] = known
            while len(_loaded) > _LOADED_MAX:
                del _loaded[next(iter(_loaded))]
    return _copy(known[1])


def _content_stamp(directory: Path) -> str:
    """A digest of the files a campaign is read from: reading them is cheap, parsing is not."""
    digest = hashlib.sha256()
    for path in [directory / MANIFEST, *sorted(directory.glob("*.mjml"))]:
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _copy(spec: CampaignSpec) -> CampaignSpec:
    """The spec with containers of its own (steps and clinical data are frozen already)."""
    return replace(
        spec,
        variables=copy.deepcopy(spec.variables),
        steps=list(spec.steps),
        sources=dict(spec.sources),
        requires={name: list(values) for name, values in spec.requires.items()},
    )


def _read_campaign_dir(directory: Path, manifest_path: Path) -> CampaignSpec:
    try:
        manifest = tomllib.loads(manifest_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{manifest_path}: {exc}") from exc
    sources = {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.mjml"))}
    variables = dict(manifest.get("variables", {}))
    spec = CampaignSpec(
        slug=_required(manifest, "slug", manifest_path),
        name=_required(manifest, "name", manifest_path),
        treatment=manifest.get("treatment") or _required(manifest, "slug", manifest_path),
        description=manifest.get("description", ""),
        variables=variables,
        steps=[
            _step_spec(raw, manifest_path, n) for n, raw in enumerate(manifest.get("steps", []), 1)
        ],
        sources=sources,
        clinical=parse_clinical(manifest.get("clinical"), variables, str(manifest_path)),
        requires=_requires(manifest.get("requires", {}), manifest_path),
    )
    _validate(spec, manifest_path)
    return spec


def _required(table: dict[str, Any], key: str, where: Path) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: '{key}' is missing or empty")
    return value.strip()


def _requires(table: object, where: Path) -> dict[str, list[str]]:
    """`[requires] peel_depth = ["superficial"]`: the values an enrollment must bring."""
    example = '[requires] peel_depth = ["superficial"]'
    if not isinstance(table, dict):
        raise UserError(f"{where}: requires must be a table such as {example}, got {table!r}")
    requires = {}
    for name, values in table.items():
        if isinstance(values, str):
            values = [values]
        if not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise UserError(
                f"{where}: requires.{name} must list the accepted values, e.g. {example}; "
                f"got {values!r}"
            )
        requires[name] = [v.strip() for v in values]
    return requires


STEP_FIELDS = {
    "key",
    "offset",
    "send_time",
    "send_until",
    "subject",
    "preheader",
    "template",
    "checkin",
    "safety_only",
    "stop_now",
    "late_booking",
    "skip_if",
}


def _offset(raw: dict[str, Any], label: str) -> dict[str, Any]:
    """The step's offset as StepSpec's offset_days, offset_hours and offset_minutes."""
    offset = raw.get("offset", {})
    if not isinstance(offset, dict):
        raise UserError(f"{label}: offset must be a table such as {{ days = 1 }}, got {offset!r}")
    unknown = set(offset) - {"days", "hours", "minutes"}
    if unknown:
        raise UserError(f"{label}: offset takes days, hours and minutes, not {sorted(unknown)}")
    values = {f"offset_{k}": offset.get(k, 0) for k in ("days", "hours", "minutes")}
    if any(type(v) is not int for v in values.values()):
        raise UserError(
            f"{label}: offset values must be whole numbers (negative: before the treatment), "
            f"got {offset}"
        )
    try:
        StepTiming(*values.values())
    except ValueError as exc:
        raise UserError(f"{label}: {exc}") from exc
    return values


def _step_spec(raw: dict[str, Any], where: Path, number: int) -> StepSpec:
    """One [[steps]] entry, strictly typed: a typo must not silently change what is sent."""
    label = f"{where}: step {number}"
    unknown_fields = sorted(set(raw) - STEP_FIELDS)
    if unknown_fields:
        raise UserError(
            f"{label}: unknown field(s) {', '.join(unknown_fields)}; "
            f"a step takes {', '.join(sorted(STEP_FIELDS))}"
        )
    values = _offset(raw, label)
    flags = {
        name: _flag(raw, name, label)
        for name in ("checkin", "safety_only", "stop_now", "late_booking")
    }
    skip_if = _checked(label, parse_conditions, raw.get("skip_if", []))
    send_time = raw.get("send_time")
    if send_time is not None:
        _checked(label, parse_local_time, send_time)
    send_until = raw.get("send_until")
    if send_until is not None:
        _checked(label, parse_window, send_until)
    return StepSpec(
        key=_required(raw, "key", where),
        send_time=send_time,
        send_until=send_until,
        subject=_required(raw, "subject", where),
        preheader=str(raw.get("preheader", "")),
        template=_required(raw, "template", where),
        skip_if=tuple(c.value for c in skip_if),
        **flags,
        **values,
    )


def _flag(raw: dict[str, Any], name: str, label: str) -> bool:
    value = raw.get(name, False)
    if not isinstance(value, bool):
        raise UserError(f"{label}: {name} must be true or false (no quotes), got {value!r}")
    return value


def _validate(spec: CampaignSpec, where: Path) -> None:
    problems = check_spec(spec)
    if problems:
        raise UserError(f"{where}: " + "; ".join(str(p) for p in problems))


def apply_spec(campaign: Campaign, spec: CampaignSpec) -> None:
    """Make the campaign's steps and templates rows say what the spec says."""
    campaign.name, campaign.treatment = spec.name, spec.treatment
    campaign.description, campaign.variables = spec.description, spec.variables
    campaign.requires = spec.requires
    _sync_templates(campaign, spec.sources)
    _sync_steps(campaign, spec.steps)


def _sync_templates(campaign: Campaign, sources: dict[str, str]) -> None:
    existing = {t.name: t for t in campaign.templates}
    for name, source in sources.items():
        if name in existing:
            existing[name].source = source
        else:
            campaign.templates.append(CampaignTemplate(name=name, source=source))
    campaign.templates[:] = [t for t in campaign.templates if t.name in sources]


def _sync_steps(campaign: Campaign, specs: list[StepSpec]) -> None:
    """Steps no longer in the spec are deactivated, not deleted: sent messages refer to them."""
    existing = {s.key: s for s in campaign.steps}
    for position, spec in enumerate(specs, 1):
        step = existing.get(spec.key)
        if step is None:
            step = Step(key=spec.key)
            campaign.steps.append(step)
        step.position, step.active = position, True
        step.offset_days, step.offset_hours = spec.offset_days, spec.offset_hours
        step.offset_minutes = spec.offset_minutes
        step.send_time, step.subject, step.preheader = spec.send_time, spec.subject, spec.preheader
        step.template, step.checkin = spec.template, spec.checkin
        step.send_until, step.safety_only = spec.send_until, spec.safety_only
        step.stop_now, step.late_booking = spec.stop_now, spec.late_booking
        step.skip_if = list(spec.skip_if)
    wanted = {s.key for s in specs}
    for step in existing.values():
        if step.key not in wanted:
            step.active = False


def default_campaign_dirs() -> list[Path]:
    root = get_settings().templates_dir
    return sorted(p.parent for p in root.glob(f"*/{MANIFEST}"))


def list_campaigns(session: Session, clinic_id: int) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign).where(Campaign.clinic_id == clinic_id).order_by(Campaign.slug)
        )
    )


def find_campaign(session: Session, clinic_id: int, slug: str) -> Campaign:
    """The campaign with its steps, in one query (every enrollment needs both)."""
    campaign = (
        session.scalars(
            select(Campaign)
            .where(Campaign.clinic_id == clinic_id, Campaign.slug == slug)
            .options(joinedload(Campaign.steps))
        )
        .unique()
        .one_or_none()
    )
    if campaign is None:
        raise unknown_campaign(session, clinic_id, slug)
    return campaign


def slug_for_unnamed(session: Session, clinic_id: int) -> str:
    """The campaign an enrollment naming none follows: the clinic's default, else its only one.

    No treatment is a default in code: with several campaigns and no default the clinic must
    say which one, and the error lists them."""
    default = session.scalar(select(Clinic.default_campaign).where(Clinic.id == clinic_id))
    known = session.scalars(
        select(Campaign.slug).where(Campaign.clinic_id == clinic_id).order_by(Campaign.slug)
    ).all()
    if default is not None and default in known:
        return default
    if default is None and len(known) == 1:
        return known[0]
    how = (
        "pass the campaign (API: campaign, CLI: --treatment, CSV: a treatment column) or set the "
        "clinic's default campaign (dripcare clinic update --default-campaign SLUG)"
    )
    if not known:
        raise UserError(
            f"clinic {clinic_id} has no campaigns yet; "
            "import one with `dripcare campaign import DIR`"
        )
    if default is not None:
        raise UserError(
            f"clinic {clinic_id}'s default campaign {default!r} does not exist (it has: "
            f"{', '.join(known)}); {how}"
        )
    raise UserError(f"which campaign? this clinic has: {', '.join(known)}; {how}")


def check_default_campaign(session: Session, clinic_id: int, slug: str | None) -> str | None:
    """A default campaign the clinic has ("" or None: no default), or the error naming its own."""
    if not slug:
        return None
    find_campaign(session, clinic_id, slug)
    return slug


def unknown_campaign(session: Session, clinic_id: int, slug: str) -> UserError:
    """Bad input rather than a missing object: the slug is a choice among known values."""
    known = session.scalars(select(Campaign.slug).where(Campaign.clinic_id == clinic_id)).all()
    choices = ", ".join(known) or "none yet; import one with `dripcare campaign import DIR`"
    return UserError(f"clinic {clinic_id} has no campaign {slug!r} (known: {choices})")


@dataclass(frozen=True)
class PlannedStep:
    id: int
    key: str
    timing: StepTiming
    stop_now: bool = False
    late_booking: bool = False
    skip_if: tuple[str, ...] = ()


@dataclass(frozen=True)
class CampaignPlan:
    """What enrolling needs of a campaign: its active steps' timing, fixed per version."""

    id: int
    slug: str
    treatment: str
    version: int
    steps: tuple[PlannedStep, ...]
    requires: tuple[tuple[str, tuple[str, ...]], ...] = ()  # hashable Campaign.requires


_plans: dict[tuple[str, int, int, datetime], CampaignPlan] = {}


def campaign_plan(
    session: Session, campaign_id: int, version: int, updated_at: datetime
) -> CampaignPlan:
    """Cached per database, campaign and version: steps change only with a version bump.

    The update time is part of the key too, so a database that was emptied and filled
    again (ids and versions start over) never meets a plan of its previous life.
    """
    key = (str(session.get_bind().engine.url), campaign_id, version, updated_at)
    plan = _plans.get(key)
    if plan is None:
        campaign = session.get_one(Campaign, campaign_id)
        steps = tuple(
            PlannedStep(
                s.id, s.key, timing_of(s), s.stop_now, s.late_booking, tuple(s.skip_if or ())
            )
            for s in campaign.steps
            if s.active
        )
        requires = tuple((k, tuple(v)) for k, v in sorted((campaign.requires or {}).items()))
        plan = CampaignPlan(
            campaign.id, campaign.slug, campaign.treatment, campaign.version, steps, requires
        )
        _plans[(key[0], campaign_id, campaign.version, campaign.updated_at)] = plan
    return plan


def _checked(label: str, parse: Callable[[Any], _T], value: Any) -> _T:
    """`parse(value)`, its ValueError said as the step's problem."""
    try:
        return parse(value)
    except ValueError as exc:
        raise UserError(f"{label}: {exc}") from exc
