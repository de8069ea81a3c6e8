"""Telling a clinic that a patient can no longer be emailed while aftercare is still ahead.

Aftercare emails carry safety information (when to call a doctor). When a patient's address
bounces for good or the patient marks an email as spam, their remaining emails are stopped;
the patient would then silently miss that information, so the clinic is alerted to phone
them. The alert goes through the clinic alert outbox (alerts.py) like red-flag check-ins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.models import (
    AlertChannel,
    AlertKind,
    Clinic,
    ClinicAlert,
    Enrollment,
    Message,
    MessageStatus,
    Patient,
    StopCause,
    Suppression,
    SuppressionSource,
    utcnow,
)

# Why a patient's unsent emails were cancelled, by suppression source.
STOPPED: dict[str, StopCause] = {
    SuppressionSource.BOUNCE: StopCause.BOUNCED,
    SuppressionSource.COMPLAINT: StopCause.COMPLAINED,
}


def queue(session: Session, clinic_id: int, patient_id: int, now: datetime | None = None) -> None:
    """One alert per channel the clinic has set up, due now."""
    clinic = session.get(Clinic, clinic_id)
    assert clinic is not None
    channels = AlertChannel.of_clinic(clinic)
    session.add_all(
        ClinicAlert(
            clinic_id=clinic_id,
            kind=AlertKind.UNREACHABLE,
            patient_id=patient_id,
            channel=channel,
            due_at=now or utcnow(),
            attempts=0,
        )
        for channel in channels
    )
    session.flush()


def event(session: Session, alert: ClinicAlert) -> dict[str, Any]:
    """The webhook event (no personal data) and, under `_email`, the email to the clinic."""
    patient = session.get(Patient, alert.patient_id)
    clinic = session.get(Clinic, alert.clinic_id)
    assert patient is not None and clinic is not None
    listed = session.execute(
        select(Suppression.source, Suppression.reason).where(
            Suppression.clinic_id == clinic.id, Suppression.email == patient.email
        )
    ).first()
    source, reason = listed if listed is not None else ("", "")
    stopped = list(  # cancelled by the bounce or complaint (feedback.py): what they miss
        session.scalars(
            select(Message.due_at)
            .join(Enrollment, Message.enrollment_id == Enrollment.id)
            .where(
                Enrollment.patient_id == patient.id,
                Message.status == MessageStatus.CANCELLED,
                Message.stop_cause == STOPPED.get(source),
            )
            .order_by(Message.due_at)
        )
    )
    return {
        "id": f"alert_{alert.id}",
        "type": "patient.unreachable",
        "created_at": alert.due_at.isoformat(),
        "data": {
            "patient_id": patient.id,
            "cause": "complaint" if source == "complaint" else "bounce",
            "emails_stopped": len(stopped),
        },
        "_email": {"clinic": clinic, "patient": patient}
        | _email(clinic, patient, source, reason, stopped),
    }


def _email(
    clinic: Clinic, patient: Patient, source: str, reason: str, stopped: list[datetime]
) -> dict[str, str]:
    name = f"{patient.first_name} {patient.last_name}".strip() or "(no name)"
    why = (
        "marked one of the aftercare emails as spam"
        if source == "complaint"
        else "their email address no longer accepts mail"
    )
    lines = [
        "Please phone this patient: they will not receive their remaining aftercare emails,",
        "including the safety information on when to call you or a doctor.",
        "",
        f"Patient: {name} <{patient.email}> (patient {patient.id})",
        f"Why: {why}.",
        *([f"What the mail system said: {reason}"] if reason else []),
        f"Emails stopped: {len(stopped)}" + _next(stopped),
        "",
        "If they want the emails again, the preferences link in any earlier email resubscribes",
        "them; if the address is wrong, enroll them again with the right one.",
    ]
    return {
        "subject": f"[Call the patient] aftercare emails cannot reach patient {patient.id}",
        "text": "\n".join(lines) + "\n",
    }


def _next(stopped: list[datetime]) -> str:
    ahead = [due for due in stopped if due > utcnow()]
    return f", the next was due {ahead[0]:%Y-%m-%d %H:%M} UTC" if ahead else ""
