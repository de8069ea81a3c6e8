"""Delivering clinic alerts (red-flag check-ins) by email and webhook, until acknowledged.

Alerts are outbox rows claimed with a lease like patient emails. An email alert has a fixed
Message-ID and a webhook carries a fixed event id (Standard Webhooks' `webhook-id`), so the
rare resend after a crash, or a replayed request, can be recognised by the receiver. A
webhook counts as delivered on any 2xx answer; anything else is retried with backoff, without
limit, because a missed red flag is the one thing that must not happen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from datetime import datetime, timedelta
from html import escape
from typing import Any

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from dripcare.config import Settings, get_settings
from dripcare.db import SessionScope
from dripcare.models import (
    AlertChannel,
    AlertKind,
    AlertStatus,
    CheckIn,
    Clinic,
    ClinicAlert,
    Enrollment,
    Patient,
    utcnow,
)
from dripcare.outbox.checkins import flag_texts, shown_to_patient
from dripcare.outbox.dispatch import claim_rows
from dripcare.people import staff_links
from dripcare.redaction import webhook_origin, without_passwords
from dripcare.sending import backoff, escalation, transport_alerts, unreachable
from dripcare.sending.composing import Envelope, compose
from dripcare.sending.transports import DeliveryError, Transport

log = logging.getLogger(__name__)
# httpx logs every request's full URL at INFO, and a webhook URL's path or query is often the
# receiver's token: only its warnings reach our logs.
logging.getLogger("httpx").setLevel(logging.WARNING)
RETRY_BASE_SECONDS, RETRY_MAX_SECONDS = 30.0, 900.0


def claim_due(
    session: Session, limit: int, lease: timedelta, now: datetime | None = None
) -> tuple[str, list[int]]:
    now = now or utcnow()
    token = uuid.uuid4().hex
    ids = claim_rows(
        session,
        ClinicAlert,
        [
            ClinicAlert.status == AlertStatus.PENDING,
            ClinicAlert.due_at <= now,
            or_(ClinicAlert.lease_until.is_(None), ClinicAlert.lease_until < now),
        ],
        limit,
        {"lease_token": token, "lease_until": now + lease},
    )
    return token, list(ids)


def deliver_due(
    scope: SessionScope,
    transport: Transport,
    http: httpx.Client,
    lease: timedelta = timedelta(minutes=5),
    settings: Settings | None = None,
) -> dict[str, int]:
    """Deliver every alert that is due; returns how many were delivered and deferred.

    `transport` is the platform's; an email may take another (transport_alerts.route).
    Red flags nobody acknowledged in time get their next round first (escalation.py)."""
    settings = settings or get_settings()
    totals = {"delivered": 0, "deferred": 0}
    with scope() as session:
        if escalated := escalation.escalate_due(session):
            totals["escalated"] = escalated
    while True:
        with scope() as session:
            token, ids = claim_due(session, 50, lease)
        if not ids:
            return totals
        for alert_id in ids:
            ok = _deliver_one(scope, alert_id, token, transport, http, settings)
            totals["delivered" if ok else "deferred"] += 1


def _deliver_one(
    scope: SessionScope,
    alert_id: int,
    token: str,
    platform: Transport,
    http: httpx.Client,
    settings: Settings,
) -> bool:
    with scope() as session:
        alert, event = _load(session, alert_id, settings)
        clinic: Clinic | None = event["_email"]["clinic"]
        transport = transport_alerts.route(session, settings, clinic, platform)
    error, url = "", ""
    try:
        if alert.channel == AlertChannel.OPERATOR_HOOK:
            url, secret = settings.operator_webhook_url, settings.operator_webhook_secret
            _post_webhook(event, url, secret, http)
        elif alert.kind in transport_alerts.KINDS and alert.channel != AlertChannel.WEBHOOK:
            _send_transport_email(alert, clinic, settings.operator_email, transport)
        elif alert.channel == AlertChannel.EMAIL:
            _send_email(alert, event, transport)
        else:
            assert clinic is not None
            url = alert.recipient or clinic.webhook_url
            _post_webhook(event, url, clinic.webhook_secret, http)
    except (DeliveryError, httpx.HTTPError, WebhookRefused) as exc:
        error = without_passwords(f"{type(exc).__name__}: {exc}")
        if url:
            error = error.replace(url, webhook_origin(url))
        log.warning("clinic alert %s via %s not delivered: %s", alert_id, alert.channel, error)
    with scope() as session:
        _record(session, alert_id, token, error)
    return not error


class WebhookRefused(Exception):
    pass


def _load(
    session: Session, alert_id: int, settings: Settings
) -> tuple[ClinicAlert, dict[str, Any]]:
    alert = session.get(ClinicAlert, alert_id)
    assert alert is not None
    if alert.kind == AlertKind.UNREACHABLE:
        return alert, unreachable.event(session, alert)
    if alert.kind in transport_alerts.KINDS:  # the operator's rows have no clinic
        clinic = None if alert.clinic_id is None else session.get(Clinic, alert.clinic_id)
        event = transport_alerts.event(alert, alert.due_at)
        return alert, event | {"_email": {"clinic": clinic}}
    alert, check_in, enrollment, patient, clinic = session.execute(
        select(ClinicAlert, CheckIn, Enrollment, Patient, Clinic)
        .join(CheckIn, ClinicAlert.check_in_id == CheckIn.id)
        .join(Enrollment, CheckIn.enrollment_id == Enrollment.id)
        .join(Patient, Enrollment.patient_id == Patient.id)
        .join(Clinic, ClinicAlert.clinic_id == Clinic.id)
        .where(ClinicAlert.id == alert_id)
    ).one()
    shown = shown_to_patient(check_in.level, clinic)
    event = {
        "id": f"alert_{alert.id}",
        "type": "check_in.red_flag" + ("_escalated" if alert.escalation else ""),
        "created_at": check_in.created_at.isoformat(),
        "data": {
            "check_in_id": check_in.id,
            "level": check_in.level.value,
            "shown_to_patient": shown,
            "escalation": alert.escalation,
            "answers": [
                {"code": code, "text": text}
                for code, text in zip(check_in.answers, flag_texts(session, check_in), strict=True)
            ],
            "enrollment_id": enrollment.id,
            "patient_id": patient.id,
            "message_id": check_in.message_pk,
            "treated_at": enrollment.treated_at.isoformat(),
        },
    }
    # Only the email, which goes to the clinic's own address, names the patient.
    event["_email"] = {
        "clinic": clinic,
        "patient": patient,
        "to": (to := alert.recipient or clinic.alert_email or clinic.sender_email),
        "ack_url": staff_links.ack_url(settings, check_in, to),
    }
    return alert, event


def _send_email(alert: ClinicAlert, event: dict[str, Any], transport: Transport) -> None:
    clinic: Clinic = event["_email"]["clinic"]
    if "text" in event["_email"]:  # written by the module that queued it (unreachable.py)
        email = event["_email"]
        to = clinic.alert_email or clinic.sender_email
        _email(alert, clinic, to, email["subject"], email["text"], transport)
        return
    patient: Patient = event["_email"]["patient"]
    data = event["data"]
    level = "EMERGENCY" if data["level"] == "emergency" else "Call today"
    name = f"{patient.first_name} {patient.last_name}".strip() or "(no name)"
    again = f" (escalation {alert.escalation}: not acknowledged yet)" if alert.escalation else ""
    lines = [
        f"{level}: a patient reported red-flag symptoms in a check-in{again}.",
        "",
        "Acknowledge that you are taking care of it (the link asks you to confirm):",
        event["_email"]["ack_url"],
        "",
        f"Patient: {name} <{patient.email}> (patient {patient.id}, "
        f"enrollment {data['enrollment_id']})",
        f"Treated: {data['treated_at']}",
        f"Reported: {event['created_at']}",
        "",
        "They ticked:",
        *(f"- {answer['text']}" for answer in data["answers"]),
        "",
        f'The patient was shown: "{data["shown_to_patient"]}".',
        "Their other aftercare emails are held until you resume or stop them in the admin.",
    ]
    text = "\n".join(lines) + "\n"
    subject = f"[{level}] red-flag check-in, patient {patient.id}" + (
        f" (escalation {alert.escalation})" if alert.escalation else ""
    )
    _email(alert, clinic, event["_email"]["to"], subject, text, transport)


def _send_transport_email(
    alert: ClinicAlert, clinic: Clinic | None, operator_email: str, transport: Transport
) -> None:
    """To the clinic's staff from the clinic's address; to the operator from their own."""
    subject, text = transport_alerts.email_text(alert, clinic)
    if clinic is None:
        sender = ("dripcare", operator_email)
        _email(alert, sender, operator_email, subject, text, transport)
        return
    to = clinic.alert_email or clinic.sender_email
    _email(alert, clinic, to, subject, text, transport)


def _email(
    alert: ClinicAlert,
    sender: Clinic | tuple[str, str],
    to: str,
    subject: str,
    text: str,
    transport: Transport,
) -> None:
    name, address = (
        (f"{sender.name} (dripcare)", sender.sender_email) if isinstance(sender, Clinic) else sender
    )
    envelope = Envelope(
        from_name=name,
        from_addr=address,
        to_addr=to,
        subject=subject,
        message_id=f"<alert-{alert.id}@{address.rpartition('@')[2]}>",
        date=utcnow(),
    )
    html = f'<pre style="font: 15px/1.5 sans-serif; white-space: pre-wrap">{escape(text)}</pre>'
    with transport:
        transport.send(
            address, envelope.to_addr, compose(envelope, text, html), envelope.message_id
        )


def _post_webhook(event: dict[str, Any], url: str, secret: str, http: httpx.Client) -> None:
    """A signed JSON POST (a clinic's webhook or the operator's), without the email-only keys."""
    body = json.dumps({k: v for k, v in event.items() if not k.startswith("_")}).encode()
    headers = {"Content-Type": "application/json", "Dripcare-Event-Id": event["id"]}
    headers |= signed_headers(event["id"], utcnow(), body, secret)
    if secret:  # the signature before Standard Webhooks; dropped in the release after next
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["Dripcare-Signature"] = f"sha256={signature}"
    response = http.post(url, content=body, headers=headers)
    if not response.is_success:
        raise WebhookRefused(f"HTTP {response.status_code}")


def signed_headers(event_id: str, at: datetime, body: bytes, secret: str) -> dict[str, str]:
    """Standard Webhooks headers: the id is the alert's, the same on every retry, so a receiver
    can drop a replay; the timestamp is this attempt's, so it can refuse an old one.

    A `whsec_<base64>` secret is the spec's; any other string (clinics' secrets from before) is
    the key as it is, so a receiver passes its UTF-8 bytes to `Webhook(...)`."""
    headers = {"webhook-id": event_id, "webhook-timestamp": str(int(at.timestamp()))}
    if secret:
        key = secret if secret.startswith("whsec_") else secret.encode()
        headers["webhook-signature"] = Webhook(key).sign(event_id, at, body.decode())
    return headers


def _record(session: Session, alert_id: int, token: str, error: str) -> None:
    alert = session.get(ClinicAlert, alert_id)
    if alert is None or alert.lease_token != token:
        return  # the lease ran out and someone else owns the alert now
    alert.attempts += 1
    alert.lease_token, alert.lease_until = None, None
    if not error:
        alert.status, alert.delivered_at, alert.last_error = AlertStatus.DELIVERED, utcnow(), ""
        return
    alert.due_at = utcnow() + backoff.delay(alert.attempts, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS)
    alert.last_error = error[:1000]
