"""Everything dripcare holds about one patient, as JSON: what a patient's access request needs.

Emails are listed with their status and delivery history, not their bodies: bodies are never
stored (they are rendered at send time), and the campaign version each one used is listed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.models import (
    AlertKind,
    Campaign,
    CheckIn,
    ClinicAlert,
    DeliveryAttempt,
    Enrollment,
    Message,
    Step,
    SubscriptionEvent,
    Suppression,
)
from dripcare.outbox import suppression
from dripcare.people import audit
from dripcare.people.audit import Action, Actor
from dripcare.people.patients import get_patient

FORMAT = "dripcare.patient-export/1"


def export_patient(
    session: Session, clinic_id: int, patient_id: int, actor: Actor
) -> dict[str, Any]:
    """One of the clinic's patients and all their rows; the export itself is audited."""
    patient = get_patient(session, clinic_id, patient_id)
    data = {
        "format": FORMAT,
        "patient": {
            "id": patient.id,
            "clinic_id": patient.clinic_id,
            "email": patient.email,
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "timezone": patient.timezone,
            "locale": patient.locale,
            "phone": patient.phone,
            "created_at": _iso(patient.created_at),
            "erased_at": _iso(patient.erased_at),
        },
        "enrollments": _enrollments(session, patient.id),
        "messages": _messages(session, patient.id),
        "check_ins": _check_ins(session, patient.id),
        "subscription_history": _subscription_history(session, patient.id),
        "suppressions": _suppressions(session, clinic_id, patient.email),
        "unreachable_alerts": _unreachable_alerts(session, clinic_id, patient.id),
    }
    audit.record(
        session, actor, Action.PATIENT_EXPORT, clinic_id=clinic_id, target=("patient", patient.id)
    )
    return data


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _enrollment_ids(patient_id: int) -> Any:
    return select(Enrollment.id).where(Enrollment.patient_id == patient_id)


def _enrollments(session: Session, patient_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Enrollment, Campaign.slug)
        .join(Campaign, Enrollment.campaign_id == Campaign.id)
        .where(Enrollment.patient_id == patient_id)
        .order_by(Enrollment.id)
    )
    return [
        {
            "id": e.id,
            "campaign": slug,
            "treatment": e.treatment,
            "treated_at": _iso(e.treated_at),
            "timezone": e.timezone,
            "external_id": e.external_id,
            "status": e.status.value,
            "created_at": _iso(e.created_at),
            "cancelled_at": _iso(e.cancelled_at),
        }
        for e, slug in rows
    ]


def _messages(session: Session, patient_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Message, Step.key)
        .join(Step, Message.step_id == Step.id)
        .where(Message.enrollment_id.in_(_enrollment_ids(patient_id)))
        .order_by(Message.due_at, Message.id)
    ).all()
    attempts = session.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.message_pk.in_([m.id for m, _ in rows]))
        .order_by(DeliveryAttempt.id)
    ).all()
    return [
        {
            "id": m.id,
            "enrollment_id": m.enrollment_id,
            "step": key,
            "due_at": _iso(m.due_at),
            "status": m.status.value,
            "status_reason": m.status_reason,
            "sent_at": _iso(m.sent_at),
            "campaign_version": m.campaign_version,
            "message_id": m.message_id,
            "deliveries": [
                {"at": _iso(a.at), "outcome": a.outcome.value, "smtp_code": a.smtp_code}
                for a in attempts
                if a.message_pk == m.id
            ],
        }
        for m, key in rows
    ]


def _check_ins(session: Session, patient_id: int) -> list[dict[str, Any]]:
    check_ins = session.scalars(
        select(CheckIn)
        .where(CheckIn.enrollment_id.in_(_enrollment_ids(patient_id)))
        .order_by(CheckIn.id)
    ).all()
    alerts = session.scalars(
        select(ClinicAlert).where(ClinicAlert.check_in_id.in_([c.id for c in check_ins]))
    ).all()
    return [
        {
            "id": c.id,
            "enrollment_id": c.enrollment_id,
            "message_id": c.message_pk,
            "level": c.level.value,
            "answers": list(c.answers),
            "created_at": _iso(c.created_at),
            "clinic_alerts": [
                {"channel": a.channel.value, "status": a.status.value}
                for a in alerts
                if a.check_in_id == c.id
            ],
        }
        for c in check_ins
    ]


def _unreachable_alerts(session: Session, clinic_id: int, patient_id: int) -> list[dict[str, Any]]:
    """The clinic was told this patient can no longer be emailed (unreachable.py)."""
    alerts = session.scalars(
        select(ClinicAlert)
        .where(
            ClinicAlert.clinic_id == clinic_id,
            ClinicAlert.patient_id == patient_id,
            ClinicAlert.kind == AlertKind.UNREACHABLE,
        )
        .order_by(ClinicAlert.id)
    )
    return [
        {
            "channel": a.channel.value,
            "status": a.status.value,
            "due_at": _iso(a.due_at),
            "delivered_at": _iso(a.delivered_at),
        }
        for a in alerts
    ]


def _subscription_history(session: Session, patient_id: int) -> list[dict[str, Any]]:
    events = session.scalars(
        select(SubscriptionEvent)
        .where(SubscriptionEvent.patient_id == patient_id)
        .order_by(SubscriptionEvent.id)
    )
    return [
        {
            "change": e.change.value,
            "source": e.source.value,
            "message_id": e.message_pk,
            "at": _iso(e.at),
        }
        for e in events
    ]


def _suppressions(session: Session, clinic_id: int, email: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Suppression).where(
            Suppression.clinic_id == clinic_id, Suppression.email.in_(suppression.keys(email))
        )
    )
    return [
        {"reason": s.reason, "source": s.source.value, "created_at": _iso(s.created_at)}
        for s in rows
    ]
