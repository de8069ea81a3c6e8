"""/api/v1/messages: what was and will be sent, with each delivery attempt."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from dripcare.config import get_settings
from dripcare.errors import NotFound
from dripcare.models import Message, MessageStatus
from dripcare.outbox.reporting import list_messages
from dripcare.sending.message_view import attempts_of, shown
from dripcare.web.deps import ApiRoute, ClinicDep, SessionDep
from dripcare.web.errors import COMMON_RESPONSES, NOT_FOUND
from dripcare.web.pagination import Cursor, Id, Limit, page_of
from dripcare.web.schemas import Delivery, MessageOut, MessageSummary, Page
from dripcare.web.serialize import message_summary

Since = Annotated[
    datetime | None,
    Query(description="Only messages changed at or after this time (UTC without an offset)"),
]

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

router = APIRouter(
    prefix="/messages", tags=["messages"], responses=COMMON_RESPONSES, route_class=ApiRoute
)


@router.get(
    "", operation_id="listMessages", response_model=Page[MessageSummary], summary="List messages"
)
def search(
    clinic: ClinicDep,
    session: SessionDep,
    cursor: Cursor = None,
    status: MessageStatus | None = None,
    since: Since = None,
    limit: Limit = 50,
) -> Page[MessageSummary]:
    if since is not None:
        # Nothing changed before dripcare existed; clamping keeps extreme dates storable.
        aware = since if since.tzinfo else since.replace(tzinfo=UTC)
        try:
            since = max(aware.astimezone(UTC), EPOCH)
        except OverflowError:  # beyond year 9999 in UTC: nothing can have changed since
            since = datetime.max.replace(tzinfo=UTC)
    rows = list_messages(
        session, clinic, status=status, since=since, after_id=cursor or 0, limit=limit + 1
    )
    return page_of([message_summary(m, m.enrollment.timezone) for m in rows], limit)


@router.get(
    "/{message_id}",
    operation_id="getMessage",
    response_model=MessageOut,
    responses=NOT_FOUND,
    summary="A message, its subject and delivery history",
)
def read(message_id: Id, clinic: ClinicDep, session: SessionDep) -> MessageOut:
    """One message: the subject as the patient sees it, and every delivery attempt."""
    message = session.get(Message, message_id)
    if message is None or message.clinic_id != clinic:
        raise NotFound(f"no message with id {message_id}")
    summary = message_summary(message, message.enrollment.timezone)
    return MessageOut(
        **summary.model_dump(),
        enrollment_id=message.enrollment_id,
        patient_id=message.enrollment.patient_id,
        subject=_subject(session, message.id),
        message_id=message.message_id,
        last_error=message.last_error,
        deliveries=[
            Delivery(at=a.at, outcome=a.outcome.value, smtp_code=a.smtp_code, detail=a.detail)
            for a in attempts_of(session, message.id)
        ],
    )


def _subject(session: SessionDep, message_pk: int) -> str:
    rendered, problem = shown(session, message_pk, get_settings())
    return rendered.subject if rendered else f"(cannot render: {problem})"
