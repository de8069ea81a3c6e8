"""Reading SMTP replies: only the recipient's server speaking of the recipient suppresses."""

from __future__ import annotations

import pytest

from dripcare.sending.smtp_replies import Stage, Verdict, classify


@pytest.mark.parametrize(
    ("stage", "code", "text", "verdict"),
    [
        (Stage.RCPT_TO, 550, "550 5.1.1 <gone@example.com>: no such user", Verdict.RECIPIENT),
        (Stage.RCPT_TO, 556, "556 5.1.10 Recipient address has null MX", Verdict.RECIPIENT),
        (Stage.RCPT_TO, 550, "550 5.2.1 mailbox disabled", Verdict.RECIPIENT),
        (Stage.DATA, 550, "550 5.1.1 no such user", Verdict.RECIPIENT),
        (Stage.RCPT_TO, 550, "550 Requested action not taken", Verdict.RECIPIENT),
        (Stage.RCPT_TO, 552, "552 5.2.2 mailbox full", Verdict.TEMPORARY),
        (Stage.RCPT_TO, 451, "451 4.7.1 greylisted", Verdict.TEMPORARY),
        (Stage.DATA, 554, "554 5.6.0 message content rejected", Verdict.PERMANENT),
        (Stage.DATA, 550, "550 5.7.1 message looks like spam", Verdict.PERMANENT),
        (Stage.RCPT_TO, 554, "554 5.7.1 <a@b.example>: Relay access denied", Verdict.TRANSPORT),
        (Stage.DATA, 550, "550 5.7.26 unauthenticated email is not accepted", Verdict.TRANSPORT),
        (Stage.RCPT_TO, 553, "553 5.1.7 bad sender address syntax", Verdict.TRANSPORT),
        (Stage.MAIL_FROM, 550, "550 5.7.1 Sender address not verified", Verdict.TRANSPORT),
        (Stage.MAIL_FROM, 550, "550 5.1.1 no such user", Verdict.TRANSPORT),
        (Stage.MAIL_FROM, 451, "451 4.3.0 try later", Verdict.TRANSPORT),
        (Stage.AUTH, 535, "535 5.7.8 Authentication credentials invalid", Verdict.TRANSPORT),
        (Stage.CONNECT, 554, "554 5.7.1 your IP is listed", Verdict.TRANSPORT),
        (Stage.TLS, None, "certificate verify failed", Verdict.TRANSPORT),
    ],
)
def test_each_reply_is_read_by_its_stage_and_enhanced_code(
    stage: Stage, code: int | None, text: str, verdict: Verdict
) -> None:
    assert classify(stage, code, text) == verdict
