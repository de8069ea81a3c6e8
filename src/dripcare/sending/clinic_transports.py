"""Each clinic's own SMTP server, when it has one; the platform's (DRIPCARE_SMTP_URL) otherwise.

The URL, password included, is stored sealed (secrets_box) or as an "env:NAME" reference. A
clinic whose server cannot be used here (its variable is not set in this process, the secrets
key changed) has its emails deferred with that reason, never sent through another server or
dropped: the clinic chose where its mail goes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Protocol, Self, TypeVar
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from dripcare import secrets_box
from dripcare.config import Settings
from dripcare.errors import UserError
from dripcare.models import Clinic, ClinicTransport, utcnow
from dripcare.redaction import url_without_password
from dripcare.sending import circuit
from dripcare.sending.clinic_cache import PerClinic
from dripcare.sending.transports import ConnectionFailure, Transport, transport_from_url


def set_smtp_url(session: Session, settings: Settings, clinic: Clinic, url: str) -> None:
    """The clinic sends through this server from now on (within a minute on every worker)."""
    url = url.strip()
    if secrets_box.is_reference(url):
        if not url.removeprefix(secrets_box.ENV).isidentifier():
            raise UserError(f"{url!r}: name an environment variable, e.g. env:CLINIC_7_SMTP_URL")
    else:
        transport_from_url(url)  # a URL that cannot work is refused now, not at send time
    row = session.get(ClinicTransport, clinic.id)
    if row is None:
        row = ClinicTransport(clinic_id=clinic.id, smtp_url="")
        session.add(row)
    row.smtp_url = secrets_box.seal(settings, url)
    session.flush()
    _stored.forget(clinic.id)
    circuit.probe_now(session, circuit.key_for(clinic.id), utcnow())  # paused? try the new one


def clear_smtp_url(session: Session, clinic: Clinic) -> bool:
    """Back to the platform's server; False when the clinic had none of its own."""
    row = session.get(ClinicTransport, clinic.id)
    if row is not None:
        session.delete(row)
        session.flush()
    _stored.forget(clinic.id)
    circuit.forget(session, circuit.key_for(clinic.id))
    return row is not None


def describe(session: Session, settings: Settings, clinic: Clinic) -> str:
    """Where the clinic's email goes, without its password: safe to print or show."""
    row = session.get(ClinicTransport, clinic.id)
    if row is None:
        return "the platform's server (DRIPCARE_SMTP_URL)"
    if secrets_box.is_reference(row.smtp_url):
        return f"the URL in the environment variable {row.smtp_url.removeprefix(secrets_box.ENV)}"
    return url_without_password(secrets_box.open_secret(settings, row.smtp_url))


def own_server(session: Session, settings: Settings, clinic: Clinic) -> str | None:
    """The host (and port) of the clinic's own server, None when it uses the platform's: what
    clinic staff may see of it (no user name, no password)."""
    row = session.get(ClinicTransport, clinic.id)
    if row is None:
        return None
    if secrets_box.is_reference(row.smtp_url):
        return "a server set by the platform operator"
    parts = urlsplit(secrets_box.open_secret(settings, row.smtp_url))
    return f"{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _load(session: Session, clinic_id: int) -> str | None:
    row = session.get(ClinicTransport, clinic_id)
    return None if row is None else row.smtp_url


_stored: PerClinic[str | None] = PerClinic(_load)


class _Unusable:
    """Stands for a clinic's server that cannot be used here: every send is deferred."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def send(self, sender: str, recipient: str, data: bytes, message_id: str) -> None:
        raise ConnectionFailure(self.reason)


def transport_for(clinic: Clinic, settings: Settings, platform: Transport) -> Transport:
    """The clinic's own transport, or `platform` when it has none."""
    stored = _stored.get(clinic)
    if stored is None:
        return platform
    try:
        url = secrets_box.open_secret(settings, stored)
        return transport_from_url(url, settings.smtp_timeout)
    except UserError as exc:
        return _Unusable(f"clinic {clinic.id}'s own SMTP server cannot be used: {exc}")


def has_own(clinic: Clinic) -> bool:
    return _stored.get(clinic) is not None


def circuit_key(clinic: Clinic) -> str:
    """The circuit the clinic's emails go through: its own server's, or the platform's."""
    return circuit.key_for(clinic.id if has_own(clinic) else None)


class _HasClinic(Protocol):
    @property
    def clinic(self) -> Clinic: ...


J = TypeVar("J", bound=_HasClinic)


def grouped(
    jobs: Iterable[J], settings: Settings, platform: Transport
) -> Iterator[tuple[Transport, list[J]]]:
    """The jobs by the server they go through, each group with its transport (one connection):
    every clinic without its own server shares the platform's, in one group."""

    own: dict[int, bool] = {}  # looked up once per clinic, not once per email

    def server(job: J) -> tuple[bool, int]:
        clinic = job.clinic
        if clinic.id not in own:
            own[clinic.id] = has_own(clinic)
        return own[clinic.id], clinic.id if own[clinic.id] else 0

    for _, group in groupby(sorted(jobs, key=server), server):
        members = list(group)
        yield transport_for(members[0].clinic, settings, platform), members
