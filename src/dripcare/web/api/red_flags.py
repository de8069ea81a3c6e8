"""/api/v1/red-flags: the alerts a red-flag check-in raised, to acknowledge and resolve from
the clinic's own systems. The same functions as the admin pages (red_flags.py); the key's name
is recorded as who acted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from dripcare.config import get_settings
from dripcare.errors import NotFound
from dripcare.models import ActorKind, ApiKey, Clinic, RedFlagState
from dripcare.outbox import red_flags
from dripcare.people.audit import Actor
from dripcare.web.deps import ApiRoute, ClinicDep, SessionDep
from dripcare.web.errors import COMMON_RESPONSES, NOT_FOUND, ApiError
from dripcare.web.pagination import Id
from dripcare.web.schemas import Page, Problem, RedFlagOut, RedFlagResolution

router = APIRouter(
    prefix="/red-flags", tags=["red-flags"], responses=COMMON_RESPONSES, route_class=ApiRoute
)
ALREADY_RESOLVED: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The red flag is already resolved"}
}


@router.get(
    "", operation_id="listRedFlags", response_model=Page[RedFlagOut], summary="List red flags"
)
def search(clinic: ClinicDep, session: SessionDep) -> Page[RedFlagOut]:
    """Every red flag not yet resolved: open ones (nobody has acknowledged) first, then the
    acknowledged ones; oldest first within each."""
    found = red_flags.views(session, _clinic(session, clinic))
    return Page[RedFlagOut](data=[_out(v) for v in found], has_more=False, next_cursor=None)


@router.get(
    "/{check_in_id}",
    operation_id="getRedFlag",
    response_model=RedFlagOut,
    responses=NOT_FOUND,
    summary="A red flag",
)
def read(check_in_id: Id, clinic: ClinicDep, session: SessionDep) -> RedFlagOut:
    return _out(_one(session, clinic, check_in_id))


@router.post(
    "/{check_in_id}/acknowledge",
    operation_id="acknowledgeRedFlag",
    response_model=RedFlagOut,
    responses=NOT_FOUND,
    summary="Acknowledge a red flag",
)
def acknowledge(
    check_in_id: Id, request: Request, clinic: ClinicDep, session: SessionDep
) -> RedFlagOut:
    """Say someone has it in hand: escalation stops. Acknowledging again changes nothing and
    answers who acknowledged it first."""
    flag = _one(session, clinic, check_in_id)
    red_flags.acknowledge(session, flag.check_in, _key_actor(request, session))
    session.commit()
    return _out(_one(session, clinic, check_in_id))


@router.post(
    "/{check_in_id}/resolve",
    operation_id="resolveRedFlag",
    response_model=RedFlagOut,
    responses={**NOT_FOUND, **ALREADY_RESOLVED},
    summary="Resolve a red flag: resume or stop the held emails",
)
def resolve(
    check_in_id: Id,
    payload: RedFlagResolution,
    request: Request,
    clinic: ClinicDep,
    session: SessionDep,
) -> RedFlagOut:
    """`resume` puts the patient's held emails back (those too late to be useful are skipped);
    `stop` cancels them. Acknowledges it too if nobody had. A resolved red flag answers 409."""
    flag = _one(session, clinic, check_in_id)
    if flag.check_in.alert_state == RedFlagState.RESOLVED:
        detail = (
            f"red flag {check_in_id} was already resolved ({flag.check_in.outcome}) by "
            f"{flag.check_in.resolved_by}; see GET /api/v1/red-flags/{check_in_id}"
        )
        raise ApiError(409, "conflict", detail)
    actor = _key_actor(request, session)
    red_flags.resolve(session, flag.check_in, actor, payload.outcome, payload.note, get_settings())
    session.commit()
    return _out(_one(session, clinic, check_in_id))


def _clinic(session: SessionDep, clinic_id: int) -> Clinic:
    clinic = session.get(Clinic, clinic_id)
    assert clinic is not None  # the key's clinic
    return clinic


def _one(session: SessionDep, clinic_id: int, check_in_id: int) -> red_flags.RedFlagView:
    found = red_flags.views(session, _clinic(session, clinic_id), check_in_id)
    if not found:
        raise NotFound(f"no red flag with id {check_in_id}")
    return found[0]


def _key_actor(request: Request, session: SessionDep) -> Actor:
    """The key that signed the request, by its name (`apikey create --name`) when it has one."""
    key_id: int = request.state.api_key_id
    key = session.get(ApiKey, key_id)
    name = key.name if key is not None and key.name else f"API key {key_id}"
    return Actor(ActorKind.API_KEY, name, key_id)


def _out(view: red_flags.RedFlagView) -> RedFlagOut:
    c = view.check_in
    assert c.alert_state is not None
    return RedFlagOut(
        id=c.id,
        state=c.alert_state.value,
        level=c.level.value,
        answers=c.answers,
        patient_id=view.patient.id,
        enrollment_id=c.enrollment_id,
        step_key=view.step_key,
        created_at=c.created_at,
        escalations=c.escalations,
        acknowledged_at=c.acknowledged_at,
        acknowledged_by=c.acknowledged_by,
        resolved_at=c.resolved_at,
        resolved_by=c.resolved_by,
        outcome=c.outcome.value if c.outcome else "",
        note=c.resolution_note,
    )
