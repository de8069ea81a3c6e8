"""What clinic staff see in the admin after a bounce or complaint report was applied."""

from __future__ import annotations

from collections.abc import Callable

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Message
from dripcare.sending.feedback import FeedbackEvent, FeedbackKind, apply
from tests.admin_fixtures import AdminBrowser, ClinicWithHistory

Browse = Callable[..., AdminBrowser]


def report(settings: Settings, message_pk: int, event: FeedbackEvent) -> None:
    with session_scope() as session:
        message = session.get(Message, message_pk)
        assert message is not None
        event = FeedbackEvent(**{**event.__dict__, "message_id": message.message_id})
        apply(session, event, settings)


def test_a_complaint_shows_in_the_emails_history_and_in_needs_attention(
    browser_for: Browse, settings: Settings, a: ClinicWithHistory
) -> None:
    report(settings, a.sent_id, FeedbackEvent(FeedbackKind.COMPLAINT, "arf"))
    browser = browser_for(a.admin_email)

    message = browser.get(f"/admin/messages/{a.sent_id}").text
    patient = browser.get(f"/admin/patients/{a.patient_id}").text
    dashboard = browser.get("/admin").text
    attention = dashboard.split('id="attention"')[1].split('id="activity"')[0]

    history = message.split("Delivery attempts")[1]
    assert "complaint" in history and "arf" in history
    assert f'<a href="/admin/patients/{a.patient_id}">Ana Patient</a>' in attention
    assert "marked as spam (arf)" in attention
    assert "marked as spam (arf). They miss the safety information" in patient


def test_a_delay_is_in_the_history_and_not_in_needs_attention(
    browser_for: Browse, settings: Settings, a: ClinicWithHistory
) -> None:
    delay = FeedbackEvent(FeedbackKind.DELAY, "dsn", status="4.4.1", diagnostic="timed out")
    report(settings, a.sent_id, delay)
    browser = browser_for(a.admin_email)

    message = browser.get(f"/admin/messages/{a.sent_id}").text
    attention = browser.get("/admin").text.split('id="attention"')[1].split('id="activity"')[0]

    assert "dsn: 4.4.1 timed out" in message.split("Delivery attempts")[1]
    assert "Patients emails cannot reach (0)" in attention
