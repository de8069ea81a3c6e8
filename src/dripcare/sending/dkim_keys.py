"""DKIM: a clinic's signing keys, the DNS record to publish, and signing at send time.

Messages are signed for the domain of the clinic's From address (so DKIM aligns with From for
DMARC), with the newest key the clinic has for that domain; a clinic without one sends
unsigned, as before. Signing happens once the message bytes are final, once per composed
message. A retry composes anew (its Date changes) and so is signed anew: the signature covers
Date.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric import utils as asym_utils
from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare import secrets_box
from dripcare.config import Settings
from dripcare.errors import UserError
from dripcare.models import Clinic, DkimKey, utcnow
from dripcare.sending.clinic_cache import PerClinic

KEY_BITS = 2048
# RFC 8058: receivers offer one-click unsubscribe only when both List-Unsubscribe headers are
# signed; dkimpy's default list lacks List-Unsubscribe-Post.
SIGNED_HEADERS = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
]
_SELECTOR = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def sender_domain(clinic: Clinic) -> str:
    return clinic.sender_email.rsplit("@", 1)[-1].lower()


def dns_name(key: DkimKey) -> str:
    return f"{key.selector}._domainkey.{key.domain}"


def dns_value(key: DkimKey) -> str:
    return f"v=DKIM1; k=rsa; p={key.public_key}"


def record_fields(key: DkimKey) -> dict[str, str]:
    """The record to publish, field by field, as DNS hosts' forms ask for it."""
    return {
        "domain": key.domain,
        "selector": key.selector,
        "name": dns_name(key),
        "type": "TXT",
        "value": dns_value(key),
    }


def dns_record(key: DkimKey) -> str:
    """The TXT record to publish, as a line of a zone file."""
    return f'{dns_name(key)} TXT "{dns_value(key)}"'


def generate(
    session: Session, settings: Settings, clinic: Clinic, domain: str = "", selector: str = ""
) -> DkimKey:
    """A new RSA key for the clinic's domain (its sender's, by default); signing starts with it
    at once, so publish its record before sending under it, or receivers see a failed signature.
    """
    domain = (domain or sender_domain(clinic)).lower().rstrip(".")
    selector = (selector or f"dc{utcnow():%Y%m%d}").lower()
    if not _SELECTOR.fullmatch(selector):
        raise UserError(f"selector {selector!r}: use letters, digits and hyphens (e.g. dc2026)")
    taken = session.scalar(
        select(DkimKey.id).where(DkimKey.domain == domain, DkimKey.selector == selector)
    )
    if taken is not None:
        raise UserError(
            f"{selector}._domainkey.{domain} already has a key; choose another --selector "
            "(rotating keys: a new selector, publish it, then retire the old record)"
        )
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = DkimKey(
        clinic_id=clinic.id,
        domain=domain,
        selector=selector,
        private_key=secrets_box.seal(settings, pem),
        public_key=base64.b64encode(public).decode(),
    )
    session.add(key)
    session.flush()
    _keys.forget(clinic.id)
    return key


def keys_of(session: Session, clinic_id: int) -> list[DkimKey]:
    """A clinic's keys, newest first."""
    return list(
        session.scalars(
            select(DkimKey)
            .where(DkimKey.clinic_id == clinic_id)
            .order_by(DkimKey.created_at.desc(), DkimKey.id.desc())
        )
    )


def keys_for(session: Session, clinic_id: int | None, domains: list[str]) -> list[DkimKey]:
    """The keys for these domains: the clinic's, or every clinic's when none is named."""
    query = select(DkimKey).where(DkimKey.domain.in_(domains)).order_by(DkimKey.id)
    if clinic_id is not None:
        query = query.where(DkimKey.clinic_id == clinic_id)
    return list(session.scalars(query))


@dataclass(frozen=True)
class Signer:
    domain: str
    selector: str
    sealed_key: str

    def sign(self, settings: Settings, data: bytes) -> bytes:
        """The message with its DKIM-Signature header first (relaxed/relaxed)."""
        pem = secrets_box.open_secret(settings, self.sealed_key).encode()
        header: bytes = _OpenSSLSigning(data, _private_key(pem)).sign(
            self.selector.encode(),
            self.domain.encode(),
            pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=SIGNED_HEADERS,
        )
        return header + data


@lru_cache(maxsize=256)
def _private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """Loading checks the key (~ms): once per key and process."""
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


class _OpenSSLSigning(dkim.DKIM):  # type: ignore[misc]
    """dkimpy, with the RSA operation done by OpenSSL instead of Python integers.

    dkimpy computes RSA with `pow()`: ~10 ms per 2048-bit signature, more than the rest of the
    send path together (bench/dkim_signing.py). Everything else (canonicalization, the header,
    which headers are hashed) stays dkimpy's; this is its gen_header for RSA, non-standardized,
    with the signature step replaced. Tied to dkimpy 1.1's internals (pinned in pyproject).
    """

    def __init__(self, message: bytes, key: rsa.RSAPrivateKey) -> None:
        super().__init__(message, linesep=b"\r\n")
        self._key = key

    def gen_header(
        self,
        fields: list[tuple[bytes, bytes]],
        include_headers: tuple[bytes, ...],
        canon_policy: Any,
        header_name: bytes,
        pk: object,
        standardize: bool = False,
    ) -> bytes:
        value = b"; ".join(b"=".join(x) for x in fields)
        value = dkim.RE_BTAG.sub(b"\\1", dkim.fold(value, namelen=len(header_name)))
        hashed = dkim.HashThrough(self.hasher(), self.debug_content)
        headers = canon_policy.canonicalize_headers(self.headers)
        self.signed_headers = dkim.hash_headers(
            hashed,
            canon_policy,
            headers,
            include_headers,
            (header_name, b" " + value),
            dict(fields),
        )
        signature = self._key.sign(
            hashed.digest(), padding.PKCS1v15(), asym_utils.Prehashed(hashes.SHA256())
        )
        signed = [(k, base64.b64encode(signature) if k == b"b" else v) for k, v in fields]
        value = b"; ".join(b"=".join(x) for x in signed) + self.linesep
        return bytes(dkim.fold(value, namelen=len(header_name), linesep=self.linesep))


def _load_signers(session: Session, clinic_id: int) -> dict[str, Signer]:
    signers: dict[str, Signer] = {}
    for key in reversed(keys_of(session, clinic_id)):  # the newest per domain wins
        signers[key.domain] = Signer(key.domain, key.selector, key.private_key)
    return signers


_keys: PerClinic[dict[str, Signer]] = PerClinic(_load_signers)


def signed(settings: Settings, clinic: Clinic, data: bytes) -> bytes:
    """The final bytes of a message from this clinic: DKIM-signed when it has a key."""
    signer = _keys.get(clinic).get(sender_domain(clinic))
    return data if signer is None else signer.sign(settings, data)
