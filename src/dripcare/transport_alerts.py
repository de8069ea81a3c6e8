"""Telling clinics and the platform operator that a transport paused their emails.

These go through the clinic alert outbox (alerts.py) like red-flag alerts, with kind
`transport`: email and webhook to each clinic whose patients are waiting, and an email to
DRIPCARE_OPERATOR_EMAIL. An email alert through the very transport that refuses us waits, like
every other email, until it works again; the webhook, the ERROR log and the
`dripcare_transport_circuit_open` metric are what reach people meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.models import AlertKind, Clinic, ClinicAlert
from dripcare.transports import TransportFailure

OPERATOR = "operator"  # the channel of the operator's copy: an email to DRIPCARE_OPERATOR_EMAIL


def queue(
    session: Session,
    transport: str,
    failure: TransportFailure,
    clinic_ids: Iterable[int],
    now: datetime,
    operator_email: str,
) -> None:
    """One alert per channel for each clinic, and one for the operator if there is one."""
    detail = f"transport {transport} refused us at {failure.stage or 'connect'}: {failure}"
    clinics = list(
        session.scalars(select(Clinic).where(Clinic.id.in_(set(clinic_ids))).order_by(Clinic.id))
    )
    rows = [
        ClinicAlert(clinic_id=c.id, channel=channel, due_at=now, attempts=0)
        for c in clinics
        for channel in ["email"] + (["webhook"] if c.webhook_url else [])
    ]
    if operator_email and clinics:  # sent from the first clinic's address, as its alerts are
        rows.append(ClinicAlert(clinic_id=clinics[0].id, channel=OPERATOR, due_at=now, attempts=0))
    for row in rows:
        row.kind, row.detail = AlertKind.TRANSPORT, detail[:2000]
    session.add_all(rows)
    session.flush()


def event(alert: ClinicAlert, clinic: Clinic, created_at: datetime) -> dict[str, Any]:
    """The webhook body of a transport alert (no patient data: none is involved)."""
    return {
        "id": f"alert_{alert.id}",
        "type": "transport.paused",
        "created_at": created_at.isoformat(),
        "data": {"clinic_id": clinic.id, "detail": alert.detail},
    }


def email_text(alert: ClinicAlert, clinic: Clinic) -> tuple[str, str]:
    """Subject and body of the email, in words a clinic's staff can act on."""
    subject = "[Action needed] aftercare emails are paused: the mail server refuses them"
    text = "\n".join(
        [
            "Aftercare emails to your patients are paused: the mail server refused to send",
            "them for a reason that is not about the patients (the sender address, the",
            "login or the sending domain). No email is lost or cancelled and no patient was",
            "taken off the list; they go out as soon as the mail server accepts them again.",
            "",
            f"What the server said: {alert.detail}",
            "",
            f"If {clinic.sender_email} is your own domain, check that it is verified with",
            "your mail provider (SPF, DKIM). Otherwise, the dripcare operator has been told.",
        ]
    )
    return subject, text + "\n"
