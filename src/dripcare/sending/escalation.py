"""Escalating a red flag nobody has acknowledged, and the clinic settings that say how.

A clinic's settings (`Clinic.settings["red_flags"]`) hold: the acknowledgement window
(`ack_minutes`, default 15), the weekly opening hours (`open_hours`, e.g.
"Mon-Fri 09:00-18:00; Sat 10:00-14:00" in the clinic's time zone), the escalation list
(`escalation_emails`, `escalation_webhook`) and the after-hours contact (`after_hours_email`).

During opening hours an unacknowledged alert is sent again to the escalation list once the
window has passed, and again every window after that, until someone acknowledges it. Outside
opening hours nobody is at the desk to see the first alert, so the after-hours contact (and
the escalation list) is alerted at once. Each round adds alert rows (`escalation` = round,
`recipient`), so every step is recorded and delivered by the same outbox as the first alert.
This runs from the periodic alert task (tasks.deliver_alerts): no far-future broker eta.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.errors import UserError
from dripcare.models import (
    AlertChannel,
    AlertKind,
    CheckIn,
    Clinic,
    ClinicAlert,
    RedFlagState,
    utcnow,
)
from dripcare.outbox.scheduling import parse_local_time
from dripcare.validation import normalize_email

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_ACK_MINUTES = 15
_RANGE = re.compile(r"\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\S+)\s*-\s*(\S+)\s*", re.I)


@dataclass(frozen=True)
class OpeningHours:
    """Per weekday (0 = Monday) the local (start, end) ranges the clinic is staffed."""

    ranges: dict[int, list[tuple[time, time]]] = field(default_factory=dict)

    def is_open(self, at: datetime, zone: ZoneInfo) -> bool:
        if not self.ranges:  # no hours set: treated as always staffed
            return True
        local = at.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        return any(start <= clock < end for start, end in self.ranges.get(local.weekday(), []))


def parse_opening_hours(text: str) -> OpeningHours:
    """Read "Mon-Fri 09:00-18:00; Sat 10:00-14:00"; "" means always open (no after-hours)."""
    hours: dict[int, list[tuple[time, time]]] = {}
    for part in filter(str.strip, text.split(";")):
        match = _RANGE.fullmatch(part)
        if match is None:
            raise UserError(
                f"opening hours {part.strip()!r} must look like 'Mon-Fri 09:00-18:00' "
                "(ranges separated by ';')"
            )
        first, last, start_text, end_text = match.groups()
        days = [d.lower() for d in (first, last or first)]
        if any(d not in DAYS for d in days):
            raise UserError(f"opening hours {part.strip()!r}: days are {', '.join(DAYS)}")
        try:
            start, end = parse_local_time(start_text), parse_local_time(end_text)
        except ValueError as exc:
            raise UserError(f"opening hours {part.strip()!r}: {exc}") from exc
        if end <= start:
            raise UserError(f"opening hours {part.strip()!r}: the end must be after the start")
        a, b = DAYS.index(days[0]), DAYS.index(days[1])
        for day in range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]:
            hours.setdefault(day, []).append((start, end))
    return OpeningHours(hours)


@dataclass(frozen=True)
class EscalationSettings:
    ack_minutes: int = DEFAULT_ACK_MINUTES
    open_hours: str = ""
    escalation_emails: tuple[str, ...] = ()
    escalation_webhook: str = ""
    after_hours_email: str = ""

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.ack_minutes)

    def to_json(self) -> dict[str, Any]:
        return {
            "ack_minutes": self.ack_minutes,
            "open_hours": self.open_hours,
            "escalation_emails": list(self.escalation_emails),
            "escalation_webhook": self.escalation_webhook,
            "after_hours_email": self.after_hours_email,
        }


def settings_of(clinic: Clinic) -> EscalationSettings:
    raw = (clinic.settings or {}).get("red_flags") or {}
    return EscalationSettings(
        ack_minutes=int(raw.get("ack_minutes", DEFAULT_ACK_MINUTES)),
        open_hours=str(raw.get("open_hours", "")),
        escalation_emails=tuple(raw.get("escalation_emails", ())),
        escalation_webhook=str(raw.get("escalation_webhook", "")),
        after_hours_email=str(raw.get("after_hours_email", "")),
    )


def set_escalation(clinic: Clinic, wanted: EscalationSettings) -> None:
    """Validate and store; every problem is said in words the clinic can act on."""
    if not 1 <= wanted.ack_minutes <= 24 * 60:
        raise UserError(
            f"the acknowledgement window must be 1 to 1440 minutes, got {wanted.ack_minutes}"
        )
    parse_opening_hours(wanted.open_hours)
    emails = tuple(normalize_email(a) for a in wanted.escalation_emails if a.strip())
    after_hours = normalize_email(wanted.after_hours_email) if wanted.after_hours_email else ""
    if wanted.escalation_webhook and not wanted.escalation_webhook.startswith(
        ("https://", "http://")
    ):
        raise UserError(
            f"the escalation webhook {wanted.escalation_webhook!r} must be an https:// URL"
        )
    clean = dataclasses.replace(wanted, escalation_emails=emails, after_hours_email=after_hours)
    clinic.settings = {**(clinic.settings or {}), "red_flags": clean.to_json()}


def is_open(clinic: Clinic, at: datetime) -> bool:
    return parse_opening_hours(settings_of(clinic).open_hours).is_open(
        at, ZoneInfo(clinic.timezone)
    )


def first_escalation(clinic: Clinic, now: datetime) -> datetime:
    """When an alert raised now escalates: after the window, or at once when closed."""
    return now + settings_of(clinic).window if is_open(clinic, now) else now


def escalate_due(session: Session, now: datetime | None = None) -> int:
    """Add the next round of alert rows for every open red flag whose time has come."""
    now = now or utcnow()
    due = session.execute(
        select(CheckIn, Clinic)
        .join(Clinic, CheckIn.clinic_id == Clinic.id)
        .where(CheckIn.alert_state == RedFlagState.OPEN, CheckIn.escalate_at <= now)
        .with_for_update(of=CheckIn, skip_locked=True)
    ).all()
    for check_in, clinic in due:
        check_in.escalations += 1
        session.add_all(_round(check_in, clinic, check_in.escalations, now))
        check_in.escalate_at = now + settings_of(clinic).window
    session.flush()
    return len(due)


def _round(check_in: CheckIn, clinic: Clinic, number: int, now: datetime) -> list[ClinicAlert]:
    wanted = settings_of(clinic)
    emails = list(wanted.escalation_emails)
    if wanted.after_hours_email and not is_open(clinic, now):
        emails.insert(0, wanted.after_hours_email)
    targets = [(AlertChannel.EMAIL, a) for a in dict.fromkeys(emails)]
    if wanted.escalation_webhook:
        targets.append((AlertChannel.WEBHOOK, wanted.escalation_webhook))
    if not targets:  # no list: remind the clinic's own alert channels
        targets = [(AlertChannel.EMAIL, "")]
    return [
        ClinicAlert(
            clinic_id=clinic.id,
            check_in_id=check_in.id,
            kind=AlertKind.RED_FLAG,
            channel=channel,
            recipient=recipient,
            escalation=number,
            due_at=now,
            attempts=0,
        )
        for channel, recipient in targets
    ]
