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
from dripcare.links import message_for_token
from dripcare.models import SuppressionSource
from dripcare.suppression import Unsubscribed, unsubscribe_by_message

_CANDIDATE = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


def process_unsubscribe_mail(raw: bytes, settings: Settings) -> Unsubscribed | None:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    texts = (str(message.get("Subject", "")), _plain_body(message))
    with session_scope() as session:
        for candidate in (found for text in texts for found in _CANDIDATE.findall(text)):
            named = message_for_token(session, settings, candidate)
            if named is not None:
                return unsubscribe_by_message(session, named.id, SuppressionSource.MAILTO)
    return None


def _plain_body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    return part.get_content() if part is not None else ""  # type: ignore[union-attr]
