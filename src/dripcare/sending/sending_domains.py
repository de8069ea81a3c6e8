"""The domains each clinic may send from, as a platform admin granted them.

A clinic admin edits the sender address on the branding page; without this, one clinic could
send as another's domain (or as a bank's) through the platform's server, which DMARC would
reject and which would harm every clinic's reputation on that server. Creating a clinic (a
platform operator's command) grants the domain of the sender it was created with.
"""

from __future__ import annotations

import contextlib
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.errors import UserError
from dripcare.models import Clinic, ClinicSendingDomain

_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}")


def domain_of(address: str) -> str:
    return _ascii(address.rsplit("@", 1)[-1])


def _ascii(domain: str) -> str:
    """Lower case, IDNA, no trailing dot: the form stored."""
    cleaned = domain.strip().lower().rstrip(".")
    with contextlib.suppress(UnicodeError):  # not a domain: refused by the caller
        cleaned = cleaned.encode("idna").decode("ascii")
    return cleaned


def checked_domain(domain: str) -> str:
    cleaned = _ascii(domain)
    if not _DOMAIN.fullmatch(cleaned):
        raise UserError(f"{domain!r} is not a domain name; give one such as riverside.example")
    return cleaned


def domains_of(session: Session, clinic_id: int) -> list[str]:
    return list(
        session.scalars(
            select(ClinicSendingDomain.domain)
            .where(ClinicSendingDomain.clinic_id == clinic_id)
            .order_by(ClinicSendingDomain.domain)
        )
    )


def holders(session: Session, domain: str, besides: int) -> list[int]:
    """The other clinics that may send from this domain."""
    return list(
        session.scalars(
            select(ClinicSendingDomain.clinic_id)
            .where(ClinicSendingDomain.domain == domain, ClinicSendingDomain.clinic_id != besides)
            .order_by(ClinicSendingDomain.clinic_id)
        )
    )


def assign(session: Session, clinic: Clinic, domain: str) -> str:
    """A platform admin grants a domain: refused while another clinic holds it, since a domain
    (its SPF, DKIM and DMARC records, its reputation) belongs to one clinic."""
    domain = checked_domain(domain)
    others = holders(session, domain, clinic.id)
    if others:
        listed = ", ".join(str(c) for c in others)
        raise UserError(
            f"{domain} is already a sending domain of clinic {listed}; remove it there first "
            "if it now belongs to this clinic"
        )
    return grant(session, clinic, domain)


def grant(session: Session, clinic: Clinic, domain: str) -> str:
    """Without the check of `assign`: clinics created with a shared sender domain keep it."""
    domain = checked_domain(domain)
    if domain not in domains_of(session, clinic.id):
        session.add(ClinicSendingDomain(clinic_id=clinic.id, domain=domain))
        session.flush()
    return domain


def revoke(session: Session, clinic: Clinic, domain: str) -> str:
    """The clinic can no longer choose a sender in this domain; its current sender must not be
    in it (change the sender first), or its emails would go out from a domain it may not use."""
    domain = checked_domain(domain)
    if domain_of(clinic.sender_email) == domain:
        raise UserError(
            f"clinic {clinic.id} sends as {clinic.sender_email}; change its sender address "
            f"(admin branding page) before removing {domain}"
        )
    row = session.scalar(
        select(ClinicSendingDomain).where(
            ClinicSendingDomain.clinic_id == clinic.id, ClinicSendingDomain.domain == domain
        )
    )
    if row is None:
        raise UserError(f"clinic {clinic.id} has no sending domain {domain}")
    session.delete(row)
    session.flush()
    return domain


def sender_problem(session: Session, clinic_id: int, sender: str) -> str | None:
    """Why the clinic may not send as this address, with what to do; None when it may."""
    domain = domain_of(sender)
    granted = domains_of(session, clinic_id)
    if domain in granted:
        return None
    allowed = ", ".join(granted) or "none yet"
    return (
        f"{sender} is not in one of this clinic's sending domains ({allowed}); use one of "
        f"those, or ask the platform administrator to add {domain} "
        f"(dripcare clinic domains --clinic {clinic_id} --add {domain})"
    )
