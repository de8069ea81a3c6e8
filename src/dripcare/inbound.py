"""Mail sent to the unsubscribe mailbox (the mailto: in List-Unsubscribe).

The mailto link pre-fills the subject `unsubscribe <token>`; the token is looked for in the
subject first, then in the plain-text body, since some clients drop or rewrite subjects.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.links import read_token
from dripcare.suppression import Unsubscribed, unsubscribe_by_message

_CANDIDATE = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


def process_unsubscribe_mail(raw: bytes, settings: Settings) -> Unsubscribed | None:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    for text in (str(message.get("Subject", "")), _plain_body(message)):
        for candidate in _CANDIDATE.findall(text):
            pk = read_token(settings, candidate)
            if pk is None:
                continue
            with session_scope() as session:
                result = unsubscribe_by_message(session, pk, "mailto")
            if result is not None:
                return result
    return None


def _plain_body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    return part.get_content() if part is not None else ""  # type: ignore[union-attr]
