"""What DKIM signing adds per message: RSA-2048, relaxed/relaxed, an ~8 KB email.

    .venv/bin/python bench/dkim_signing.py [--messages 2000]

No database: one key is made in memory, a realistic message is composed once per iteration
(the send path composes every message anyway) and signed with dkim_keys.Signer, the code the
send path runs (RSA by OpenSSL). Prints the cost of composing alone, of composing + signing,
and of signing with dkimpy's own pure-Python RSA.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dripcare import secrets_box
from dripcare.config import Settings
from dripcare.sending.composing import Envelope, compose
from dripcare.sending.dkim_keys import SIGNED_HEADERS, Signer

OPTIONS = {"canonicalize": (b"relaxed", b"relaxed"), "include_headers": SIGNED_HEADERS}
HTML = "<p>" + "Keep the treated skin clean and avoid direct sun for two weeks. " * 120 + "</p>"
TEXT = "Keep the treated skin clean and avoid direct sun for two weeks.\n" * 60


def message(n: int) -> bytes:
    envelope = Envelope(
        from_name="Riverside Skin Clinic",
        from_addr="care@riverside.example",
        to_addr=f"patient{n}@example.com",
        subject="Day 3: how your skin should look",
        message_id=f"{n}.bench@riverside.example",
        date=datetime.now(UTC),
        list_unsubscribe=("https://care.test/u/abc", "mailto:unsubscribe@riverside.example"),
        reply_to="front-desk@riverside.example",
    )
    return compose(envelope, TEXT, HTML)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    count = parser.parse_args().messages
    settings = Settings(secret_key="bench-secret-" * 4)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    signer = Signer("riverside.example", "bench", secrets_box.seal(settings, pem))
    size = len(message(0))

    start = time.perf_counter()
    for n in range(count):
        message(n)
    composed = (time.perf_counter() - start) / count

    start = time.perf_counter()
    for n in range(count):
        signer.sign(settings, message(n))
    signed = (time.perf_counter() - start) / count

    start = time.perf_counter()
    for n in range(count // 10):  # dkimpy alone (RSA in Python) is slow: a tenth of the count
        dkim.sign(message(n), b"bench", b"riverside.example", pem.encode(), **OPTIONS)
    plain = (time.perf_counter() - start) / (count // 10)

    print(f"{count} messages of {size} bytes")
    print(f"compose:          {composed * 1e6:8.0f} µs per message")
    print(f"compose + sign:   {signed * 1e6:8.0f} µs per message")
    print(
        f"signing adds:     {(signed - composed) * 1e6:8.0f} µs per message "
        f"(~{1 / max(signed - composed, 1e-9):,.0f} signatures per second, one core)"
    )
    print(f"dkimpy's own RSA: {(plain - composed) * 1e6:8.0f} µs per message, for comparison")


if __name__ == "__main__":
    main()
