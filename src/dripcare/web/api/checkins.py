"""/api/v1/check-ins: what patients answered to "How is your skin today?"."""

from __future__ import annotations

from fastapi import APIRouter

from dripcare.models import CheckInLevel
from dripcare.outbox.checkins import list_check_ins
from dripcare.web.deps import ApiRoute, ClinicDep, SessionDep
from dripcare.web.errors import COMMON_RESPONSES
from dripcare.web.pagination import Cursor, IdFilter, Limit, page_of
from dripcare.web.schemas import CheckInOut, Page

router = APIRouter(
    prefix="/check-ins", tags=["check-ins"], responses=COMMON_RESPONSES, route_class=ApiRoute
)


@router.get(
    "", operation_id="listCheckIns", response_model=Page[CheckInOut], summary="List check-ins"
)
def search(
    clinic: ClinicDep,
    session: SessionDep,
    cursor: Cursor = None,
    level: CheckInLevel | None = None,
    enrollment_id: IdFilter = None,
    limit: Limit = 50,
) -> Page[CheckInOut]:
    """Newest last; poll with `cursor`, or filter `level=urgent` / `level=emergency`."""
    rows = list_check_ins(
        session,
        clinic,
        level=level,
        enrollment_id=enrollment_id,
        after_id=cursor or 0,
        limit=limit + 1,
    )
    return page_of(
        [
            CheckInOut(
                id=c.id,
                enrollment_id=c.enrollment_id,
                message_id=c.message_pk,
                level=c.level.value,
                answers=c.answers,
                created_at=c.created_at,
            )
            for c in rows
        ],
        limit,
    )
