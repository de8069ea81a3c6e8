"""Telling clinics and the platform operator that a transport paused their emails, and resumed.

A transport is the platform's SMTP server (circuit `platform`) or a clinic's own (`clinic:<id>`,
clinic_transports.py). When its circuit opens (circuit.py), rows go into the clinic alert outbox
(alerts.py), kind `transport`: email and webhook to each clinic whose patients wait, and the
operator's own rows (no clinic): `operator` (an email to DRIPCARE_OPERATOR_EMAIL) and
`operator-hook` (a signed JSON POST to DRIPCARE_OPERATOR_WEBHOOK_URL). When the circuit closes,
the same people get a `resumed` note the same way (and an ERROR/WARNING log and the
`dripcare_transport_circuit_open` metric mark both).

So that an alert never waits for the very transport it is about, alert emails take the first of
these that works (`route`): DRIPCARE_ALERT_SMTP_URL when set (a server kept for alerts only);
else the platform's server while its circuit is closed (so a clinic whose own server refuses us
hears it through the platform's); else, while the platform's is paused, the clinic's own server
if it has a working one. Only when none works does an alert email wait, retried with backoff;
the operator's webhook does not depend on SMTP at all, which is why it exists.

The text says which transport and what its server said, with any URL's password masked
(redaction.without_passwords): no patient is involved, so none is named.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.models import AlertChannel, AlertKind, Clinic, ClinicAlert
from dripcare.redaction import without_passwords
from dripcare.sending import circuit, clinic_transports
from dripcare.sending.transports import Transport, TransportFailure, transport_from_url

KINDS = (AlertKind.TRANSPORT, AlertKind.RESUMED)


def queue(
    session: Session,
    transport: str,
    failure: TransportFailure,
    clinic_ids: Iterable[int],
    now: datetime,
    settings: Settings,
) -> None:
    """Sending through `transport` just paused: tell its clinics and the operator, once."""
    detail = f"transport {transport} refused us at {failure.stage or 'connect'}: {failure}"
    _add(session, AlertKind.TRANSPORT, detail, set(clinic_ids), now, settings)


def resumed(session: Session, transport: str, now: datetime, settings: Settings) -> None:
    """Sending through `transport` works again: tell whoever was told it paused."""
    told = session.scalars(
        select(ClinicAlert.clinic_id)
        .where(
            ClinicAlert.kind == AlertKind.TRANSPORT,
            ClinicAlert.clinic_id.is_not(None),
            ClinicAlert.detail.startswith(f"transport {transport} ", autoescape=True),
        )
        .distinct()
    )
    clinics = {c for c in told if c is not None}
    detail = f"transport {transport} works again: paused emails are being sent"
    _add(session, AlertKind.RESUMED, detail, clinics, now, settings)


def _add(
    session: Session,
    kind: AlertKind,
    detail: str,
    clinic_ids: set[int],
    now: datetime,
    settings: Settings,
) -> None:
    clinics = session.scalars(select(Clinic).where(Clinic.id.in_(clinic_ids)).order_by(Clinic.id))
    rows = [
        ClinicAlert(clinic_id=c.id, channel=channel)
        for c in clinics
        for channel in AlertChannel.of_clinic(c)
    ]
    if settings.operator_email:
        rows.append(ClinicAlert(clinic_id=None, channel=AlertChannel.OPERATOR))
    if settings.operator_webhook_url:
        rows.append(ClinicAlert(clinic_id=None, channel=AlertChannel.OPERATOR_HOOK))
    for row in rows:
        row.kind, row.detail = kind, without_passwords(detail)[:2000]
        row.due_at, row.attempts = now, 0
    session.add_all(rows)
    session.flush()


def route(
    session: Session, settings: Settings, clinic: Clinic | None, platform: Transport
) -> Transport:
    """The transport an alert email goes through: one that is not paused, if any is."""
    if settings.alert_smtp_url:
        return transport_from_url(settings.alert_smtp_url, settings.smtp_timeout)
    if clinic is None or not clinic_transports.has_own(clinic):
        return platform
    paused = circuit.open_keys(session)
    if circuit.PLATFORM in paused and circuit.key_for(clinic.id) not in paused:
        return clinic_transports.transport_for(clinic, settings, platform)
    return platform


def event(alert: ClinicAlert, created_at: datetime) -> dict[str, Any]:
    """The webhook body (clinic's or operator's): no patient data, none is involved."""
    kind = "transport.paused" if alert.kind == AlertKind.TRANSPORT else "transport.resumed"
    return {
        "id": f"alert_{alert.id}",
        "type": kind,
        "created_at": created_at.isoformat(),
        "data": {"clinic_id": alert.clinic_id, "detail": alert.detail},
    }


def email_text(alert: ClinicAlert, clinic: Clinic | None) -> tuple[str, str]:
    """Subject and body of the email, in words the clinic's staff (or the operator) can act on."""
    if alert.kind == AlertKind.RESUMED:
        subject = "Aftercare emails are being sent again"
        text = [
            "The mail server accepts aftercare emails again: the ones that were paused are",
            "going out now, each once. Nothing else is needed.",
            "",
            f"Detail: {alert.detail}",
        ]
    else:
        subject = "[Action needed] aftercare emails are paused: the mail server refuses them"
        text = [
            "Aftercare emails to your patients are paused: the mail server refused to send",
            "them for a reason that is not about the patients (the sender address, the",
            "login or the sending domain). No email is lost or cancelled and no patient was",
            "taken off the list; they go out as soon as the mail server accepts them again.",
            "",
            f"What the server said: {alert.detail}",
            "",
        ]
        if clinic is None:
            text.append(
                "Fix that server's settings, or press 'retry now' in the admin's dashboard."
            )
        else:
            text += [
                f"If {clinic.sender_email} is your own domain, check that it is verified with",
                "your mail provider (SPF, DKIM). Otherwise, the dripcare operator has been told.",
            ]
    return subject, "\n".join(text) + "\n"
