"""The DSN and ARF samples of tests/samples/, filled in for one sent message."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).parent / "samples"


def report_sample(name: str, verp: str, message_id: str, recipient: str) -> bytes:
    text = (SAMPLES / name).read_text()
    text = text.replace("@@VERP@@", verp).replace("@@MESSAGE_ID@@", message_id)
    return text.replace("@@RECIPIENT@@", recipient).encode()
