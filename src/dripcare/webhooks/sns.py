"""Amazon SNS messages: signature verification and subscription confirmation.

SNS signs each message with a key whose certificate it serves from
`https://sns.<region>.amazonaws.com/...pem` (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA).
The certificate URL arrives inside the message, so its host is checked before anything is
fetched: otherwise anyone could sign with their own certificate. The only seam is `Fetch`,
how an https URL is read; tests give one that serves their own certificate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from threading import Lock
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from dripcare.webhooks.signing import Rejected, b64decode

Fetch = Callable[[str], bytes]
SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
# The fields each type signs, in the order SNS concatenates them ("Key\nValue\n" each).
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


def fetch_https(url: str) -> bytes:
    """GET an SNS URL; no redirects, so the host checked is the host read."""
    response = httpx.get(url, timeout=10.0, follow_redirects=False)
    response.raise_for_status()
    return response.content


def check_sns_url(url: str, what: str) -> None:
    """Only https on an SNS host, no port or credentials in the URL."""
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or parts.hostname is None
        or not SNS_HOST.fullmatch(parts.hostname)
        or parts.port is not None
        or parts.username is not None
    ):
        raise Rejected(f"{what} is not an https URL on sns.<region>.amazonaws.com: {url!r}")


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    fields = SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise Rejected(f"unknown SNS message type {message.get('Type')!r}")
    return "".join(
        f"{key}\n{message[key]}\n" for key in fields if message.get(key) is not None
    ).encode()


class SNSVerifier:
    """Verifies SNS messages; signing certificates are fetched once per URL and kept."""

    def __init__(self, fetch: Fetch = fetch_https) -> None:
        self._fetch = fetch
        self._certificates: dict[str, x509.Certificate] = {}
        self._lock = Lock()

    def certificate(self, url: str) -> x509.Certificate:
        check_sns_url(url, "SigningCertURL")
        if not urlsplit(url).path.endswith(".pem"):
            raise Rejected(f"SigningCertURL is not a .pem file: {url!r}")
        with self._lock:
            if url not in self._certificates:
                try:
                    self._certificates[url] = x509.load_pem_x509_certificate(self._fetch(url))
                except (httpx.HTTPError, ValueError) as error:
                    raise Rejected(f"cannot read the signing certificate: {error}") from None
            return self._certificates[url]

    def verify(self, message: Mapping[str, Any]) -> None:
        """Raise Rejected unless SNS signed this message."""
        hash_for = HASHES.get(str(message.get("SignatureVersion")))
        if hash_for is None:
            raise Rejected(f"unknown SignatureVersion {message.get('SignatureVersion')!r}")
        signed = string_to_sign(message)
        signature = b64decode(str(message.get("Signature", "")), "Signature")
        key = self.certificate(str(message.get("SigningCertURL", ""))).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Rejected("the signing certificate does not hold an RSA key")
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hash_for())
        except InvalidSignature:
            raise Rejected("the SNS signature does not match the message") from None

    def confirm_subscription(self, message: Mapping[str, Any]) -> None:
        """Visit SubscribeURL, which makes SNS start delivering; call only after verify()."""
        url = str(message.get("SubscribeURL", ""))
        check_sns_url(url, "SubscribeURL")
        self._fetch(url)
