"""Symptom check-ins: "How is your skin today?" answered from an email.

The questions and the guidance are the red flags and timeline of the clinical fact sheet
(shared/content/microneedling-aftercare.md §1 and §4), worded as symptoms, never as a
diagnosis. A red-flag answer alerts the clinic through the alert outbox (`alerts.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare import escalation, red_flags, staff_links
from dripcare.errors import UserError
from dripcare.models import (
    CheckIn,
    CheckInLevel,
    Clinic,
    ClinicAlert,
    Enrollment,
    Message,
    utcnow,
)


@dataclass(frozen=True)
class RedFlag:
    code: str
    text: str
    level: CheckInLevel


RED_FLAGS = (
    RedFlag(
        "airway",
        "Swelling of your lips, face, tongue or throat, trouble breathing or "
        "swallowing, wheezing, or feeling dizzy or confused",
        CheckInLevel.EMERGENCY,
    ),
    RedFlag(
        "spreading",
        "Redness spreading quickly, or a fever of 38 °C (100.4 °F) or more, "
        "vomiting, a fast heartbeat or fast breathing",
        CheckInLevel.EMERGENCY,
    ),
    RedFlag(
        "face-hot",
        "Painful, hot, swollen skin on your face, especially around the eye, or "
        "skin that is getting worse quickly",
        CheckInLevel.EMERGENCY,
    ),
    RedFlag("eye", "Eye pain or any change in your vision", CheckInLevel.EMERGENCY),
    RedFlag(
        "worse", "Redness, warmth or itching that is getting worse, or pus", CheckInLevel.URGENT
    ),
    RedFlag(
        "blisters",
        "Tingling or burning, then a group of blisters, sores or crusts, especially near your lips",
        CheckInLevel.URGENT,
    ),
    RedFlag(
        "not-better",
        "Redness or swelling that is not getting better by day 3, or is still there on day 7",
        CheckInLevel.URGENT,
    ),
    RedFlag(
        "rash",
        "A new itchy, red, bumpy or scaly rash, or lumps, where you were treated",
        CheckInLevel.URGENT,
    ),
    RedFlag("pimples", "Many pimples, or pimples that hurt or have pus", CheckInLevel.URGENT),
    RedFlag(
        "patches",
        "Dark or light patches, or grid or track marks that last more than a week",
        CheckInLevel.URGENT,
    ),
)
_BY_CODE = {flag.code: flag for flag in RED_FLAGS}

# What is normal by day since treatment (§1), for a worried patient with no red flag.
EXPECTED_COURSE = (
    (
        1,
        "Redness like a sunburn, tightness, tenderness, some swelling, stinging or itching are "
        "normal today. Tiny spots of blood or clear fluid can happen; press gently with clean "
        "gauze.",
    ),
    (2, "Redness and swelling usually ease within 1 to 2 days."),
    (
        3,
        "Redness, swelling and flaking usually settle within about 3 days. Small crusts can "
        "form: do not pick them.",
    ),
    (7, "Dryness, peeling, itching and small bruises usually clear within 7 days."),
    (10_000, "By now your skin should look healed. Keep using sunscreen every day."),
)


def expected_course(days_since_treatment: int) -> str:
    return next(text for last_day, text in EXPECTED_COURSE if days_since_treatment < last_day)


def level_of(codes: list[str]) -> CheckInLevel:
    levels = {_BY_CODE[code].level for code in codes}
    for level in (CheckInLevel.EMERGENCY, CheckInLevel.URGENT):
        if level in levels:
            return level
    return CheckInLevel.EXPECTED


def record(session: Session, message: Message, *, worried: bool, codes: list[str]) -> CheckIn:
    """Store the answer; a red flag queues one alert per channel the clinic has set up."""
    unknown = sorted(set(codes) - set(_BY_CODE))
    if unknown:
        raise UserError(f"unknown answer(s): {', '.join(unknown)}")
    level = level_of(codes) if worried else CheckInLevel.FINE
    check_in = CheckIn(
        clinic_id=message.clinic_id,
        enrollment_id=message.enrollment_id,
        message_id=message.id,
        level=level,
        answers=sorted(set(codes)),
    )
    session.add(check_in)
    session.flush()
    if level in (CheckInLevel.URGENT, CheckInLevel.EMERGENCY):
        _queue_alerts(session, check_in)
        red_flags.hold(session, check_in)
    return check_in


def shown_to_patient(level: CheckInLevel, clinic: Clinic) -> str:
    """What the answer page tells the patient to do first; the clinic's alert quotes it."""
    if level == CheckInLevel.EMERGENCY:
        return f"Call {clinic.emergency_number} now"
    if level == CheckInLevel.URGENT:
        return f"Call {clinic.name} now"
    return ""


def _queue_alerts(session: Session, check_in: CheckIn) -> None:
    clinic = session.get(Clinic, check_in.clinic_id)
    assert clinic is not None
    channels = ["email"] + (["webhook"] if clinic.webhook_url else [])
    red_flags.open_alert(check_in)
    check_in.ack_jti = staff_links.new_jti()
    check_in.escalate_at = escalation.first_escalation(clinic, check_in.created_at)
    session.add_all(
        ClinicAlert(
            clinic_id=clinic.id,
            check_in_id=check_in.id,
            channel=channel,
            due_at=utcnow(),
            attempts=0,
        )
        for channel in channels
    )
    session.flush()


def days_since_treatment(session: Session, message: Message) -> int:
    enrollment = session.get(Enrollment, message.enrollment_id)
    assert enrollment is not None
    return max((utcnow() - enrollment.treated_at).days, 0)


def list_check_ins(
    session: Session,
    clinic_id: int,
    *,
    level: CheckInLevel | None = None,
    enrollment_id: int | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> list[CheckIn]:
    query = select(CheckIn).where(CheckIn.clinic_id == clinic_id, CheckIn.id > after_id)
    if level is not None:
        query = query.where(CheckIn.level == level)
    if enrollment_id is not None:
        query = query.where(CheckIn.enrollment_id == enrollment_id)
    return list(session.scalars(query.order_by(CheckIn.id).limit(limit)))


def flag_text(code: str) -> str:
    """The words the patient ticked, for the clinic to read."""
    flag = _BY_CODE.get(code)
    return flag.text if flag else code
