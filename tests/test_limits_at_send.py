"""A template over a limit, as admins and patients meet it (issue 12): one patient's email fails
with the reason while the others go out, and the editor shows the error instead of a 500."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from dripcare.config import Settings
from dripcare.content import campaign_editing as edit
from dripcare.content import isolation
from dripcare.models import MessageStatus
from tests.admin_fixtures import AdminBrowser, make_admin
from tests.factories import make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer
from tests.test_admin_campaigns import STEP, body_of, post
from tests.test_campaign_versions import publish, save, working_spec
from tests.test_delivery import rows

# 100,000 characters per letter of the first name: "Alex" (the sample) and "Pat" stay under
# the 1,000,000-character limit on values, an 11-letter name goes over it.
PER_NAME = "{% set pad = 'x' * (patient.first_name|length * 100000) %}{{ pad|length }}"


@pytest.mark.usefixtures("daytime")
def test_a_limit_only_one_patient_reaches_fails_that_email_and_sends_the_others(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic()
    spec = working_spec(clinic)
    day0 = spec.steps[0]
    publish(
        clinic, save(clinic, edit.set_body(spec, day0.key, spec.sources[day0.template] + PER_NAME))
    )
    treated = datetime.now(UTC) - timedelta(hours=3)
    long_name = make_enrollment(settings, clinic, treated, first_name="Bartholomew")
    make_enrollment(settings, clinic, treated, email="one@example.com", first_name="Pat")
    make_enrollment(settings, clinic, treated, email="two@example.com", first_name="Jo")

    result = send_due(smtp_server)
    again = send_due(smtp_server, days_later=0)

    assert (result["sent"], result["failed"]) == (2, 1)
    assert again == {**again, "sent": 0, "failed": 0}  # failed for good, not retried
    assert sorted(m["To"] for m in smtp_server.recorder.messages) == [
        "one@example.com",
        "two@example.com",
    ]
    (failed,) = [m for m in rows(long_name) if m.step.key == day0.key]
    assert failed.status == MessageStatus.FAILED
    assert failed.status_reason == "template error"
    assert "1000000 characters" in (failed.last_error or "")


@pytest.fixture
def admin(admin_now: datetime, browser_for: Callable[..., AdminBrowser]) -> AdminBrowser:
    return browser_for(make_admin(clinic_id=make_clinic()))


@pytest.mark.parametrize("action", ["preview", "save"])
def test_a_template_over_a_value_limit_shows_the_error_in_the_editor(
    admin: AdminBrowser, action: str
) -> None:
    body = body_of(admin).replace("Small crusts", "{{ ('x' * 900000 ~ 'x' * 900000)|length }}")
    answer = post(admin, STEP, subject="S", preheader="P", body=body, action=action)
    text = answer.text  # type: ignore[attr-defined]
    assert answer.status_code in (200, 422)  # type: ignore[attr-defined]
    assert "would build a value over 1000000 characters" in text


@pytest.mark.parametrize("action", ["preview", "save"])
def test_a_render_stopped_by_the_renderer_limits_shows_the_error_in_the_editor(
    admin: AdminBrowser,
    action: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """No render answers within 0 seconds: the renderer is killed, as for a runaway template.
    (New content each time: checks that passed are remembered per process.)"""
    body = body_of(admin).replace("Small crusts", f"Small crusts ({request.node.name})")
    monkeypatch.setattr(isolation, "WALL_SECONDS", 0.0)
    answer = post(admin, STEP, subject="S", preheader="P", body=body, action=action)
    text = answer.text  # type: ignore[attr-defined]
    assert answer.status_code in (200, 422)  # type: ignore[attr-defined]
    assert "took longer than 0 seconds and was stopped" in text
    monkeypatch.setattr(isolation, "WALL_SECONDS", 120.0)
    again = post(admin, STEP, subject="S", preheader="P", body=body, action=action)
    assert again.status_code in (200, 303)  # type: ignore[attr-defined]
