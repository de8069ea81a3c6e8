"""Symptom check-ins from the email buttons, and the clinic alerts they raise."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import time_machine
from sqlalchemy import select
from standardwebhooks import Webhook as StandardWebhook

from dripcare.config import Settings, get_settings
from dripcare.content.campaign_versions import import_campaign
from dripcare.content.campaigns import load_campaign_dir
from dripcare.content.clinical import CourseStage, RedFlag
from dripcare.db import session_scope
from dripcare.errors import UserError
from dripcare.models import AlertStatus, CheckIn, Clinic, ClinicAlert, Message
from dripcare.outbox import red_flags
from dripcare.outbox.checkins import flag_texts
from dripcare.people import audit
from dripcare.people.links import make_token
from dripcare.sending import alerts
from dripcare.sending.transports import SMTPTransport
from tests.campaign_fixtures import CAMPAIGN_DIR
from tests.conftest import free_port
from tests.factories import DAYTIME, make_clinic, make_enrollment
from tests.smtp_server import SMTPServer


@pytest.fixture(autouse=True)
def daytime() -> Iterator[None]:
    with time_machine.travel(DAYTIME, tick=True):
        yield


class Webhook:
    """A clinic's webhook endpoint that fails the first `failures` deliveries with 500."""

    def __init__(self, failures: int) -> None:
        self.failures, self.requests, self.raw = failures, [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), json.loads(body)))
                outer.raw.append(body)
                failing = len(outer.requests) <= outer.failures
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/dripcare"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(failures=2)
    yield hook
    hook.server.shutdown()


def checkin_token(settings: Settings, **clinic: str) -> str:
    clinic_id = make_clinic(**clinic)
    enrollment = make_enrollment(settings, clinic_id, DAYTIME - timedelta(days=1, hours=2))
    with session_scope() as session:
        day1 = session.scalars(
            select(Message).where(Message.enrollment_id == enrollment).order_by(Message.due_at)
        ).all()[1]
        return make_token(get_settings(), day1.id)


def check_ins() -> list[CheckIn]:
    with session_scope() as session:
        return list(session.scalars(select(CheckIn)))


def clinic_alerts() -> list[ClinicAlert]:
    with session_scope() as session:
        return list(session.scalars(select(ClinicAlert).order_by(ClinicAlert.id)))


def test_healing_as_expected_is_recorded_only_by_the_button(
    settings: Settings, live_server: str
) -> None:
    token = checkin_token(settings)

    page = httpx.get(f"{live_server}/c/{token}/ok")
    recorded_by_opening = check_ins()
    done = httpx.post(f"{live_server}/c/{token}/ok", follow_redirects=True)

    assert page.status_code == 200 and "Yes, healing as expected" in page.text
    assert recorded_by_opening == []  # mail scanners open links; that must record nothing
    assert done.status_code == 200 and "Thank you" in done.text
    assert [c.level for c in check_ins()] == ["fine"]
    assert clinic_alerts() == []


def test_worried_without_red_flags_gets_the_expected_course(
    settings: Settings, live_server: str
) -> None:
    token = checkin_token(settings)

    form = httpx.get(f"{live_server}/c/{token}/worried")
    answer = httpx.post(f"{live_server}/c/{token}/worried", data={}, follow_redirects=True)

    assert form.text.count('type="checkbox"') == 10
    assert '<label for="f-airway">' in form.text
    assert "Redness and swelling usually ease within 1 to 2 days." in answer.text
    assert [c.level for c in check_ins()] == ["expected"]
    assert clinic_alerts() == []


def test_urgent_answers_say_call_the_clinic_now_and_alert_it(
    settings: Settings, live_server: str
) -> None:
    token = checkin_token(settings)

    answer = httpx.post(
        f"{live_server}/c/{token}/worried",
        data={"symptom": ["blisters", "not-a-code"]},
        follow_redirects=True,
    )

    assert "Call Riverside Skin Clinic now" in answer.text
    assert 'href="tel:+15550100100"' in answer.text
    assert "We have told Riverside Skin Clinic" in answer.text
    (check_in,) = check_ins()
    assert (check_in.level, check_in.answers) == ("urgent", ["blisters"])
    assert [(a.channel, a.status) for a in clinic_alerts()] == [("email", AlertStatus.PENDING)]


def test_emergency_answers_put_the_emergency_instruction_first(
    settings: Settings, live_server: str
) -> None:
    token = checkin_token(settings, emergency_number="999")

    answer = httpx.post(
        f"{live_server}/c/{token}/worried",
        data={"symptom": ["airway", "worse"]},
        follow_redirects=True,
    )

    text = answer.text
    assert text.index("Call 999 now") < text.index("We have told")
    assert 'href="tel:999"' in text
    assert [c.level for c in check_ins()] == ["emergency"]


def test_a_red_flag_alerts_the_clinic_exactly_once_per_channel_despite_webhook_failures(
    settings: Settings, live_server: str, smtp_server: SMTPServer, webhook: Webhook
) -> None:
    token = checkin_token(
        settings,
        alert_email="nurse@riverside.example",
        webhook_url=webhook.url,
        webhook_secret="s3cret",
    )
    httpx.post(
        f"{live_server}/c/{token}/worried", data={"symptom": ["spreading"]}, follow_redirects=True
    )
    transport = SMTPTransport("127.0.0.1", smtp_server.port)

    rounds = []
    with httpx.Client(timeout=5) as http:
        for hour in range(5):  # each round an hour later: past any retry backoff
            with time_machine.travel(datetime.now(UTC) + timedelta(hours=hour), tick=True):
                rounds.append(alerts.deliver_due(session_scope, transport, http))
            if hour == 0:  # the nurse takes it in hand, or escalation would email again
                with session_scope() as session:
                    (check_in,) = session.scalars(select(CheckIn))
                    red_flags.acknowledge(session, check_in, audit.SYSTEM)

    (mail,) = smtp_server.recorder.messages
    assert mail["To"] == "nurse@riverside.example"
    assert mail["Subject"].startswith("[EMERGENCY] red-flag check-in")
    assert "Redness spreading quickly" in mail.get_body(("plain",)).get_content()
    assert [r["delivered"] for r in rounds] == [1, 0, 1, 0, 0]
    assert len(webhook.requests) == 3  # 500, 500, then acknowledged
    event_ids = {headers["Dripcare-Event-Id"] for headers, _ in webhook.requests}
    assert len(event_ids) == 1
    headers, body = webhook.requests[-1]
    assert body["type"] == "check_in.red_flag" and body["data"]["level"] == "emergency"
    assert headers["Dripcare-Signature"].startswith("sha256=")
    assert "pat@example.com" not in json.dumps(body)  # webhooks carry ids, not patient data
    assert {a.status for a in clinic_alerts()} == {AlertStatus.DELIVERED}


def test_clinic_webhooks_are_standard_webhooks_with_one_id_across_retries(
    settings: Settings, live_server: str, webhook: Webhook
) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    token = checkin_token(settings, webhook_url=webhook.url, webhook_secret=secret)
    httpx.post(f"{live_server}/c/{token}/worried", data={"symptom": ["spreading"]})
    transport = SMTPTransport("127.0.0.1", free_port())  # the email channel just waits

    with httpx.Client(timeout=5) as http:
        for hour in range(5):
            with time_machine.travel(datetime.now(UTC) + timedelta(hours=hour), tick=True):
                seen = len(webhook.raw)
                alerts.deliver_due(session_scope, transport, http)
                new = zip(webhook.requests[seen:], webhook.raw[seen:], strict=True)
                for (headers, _), raw in new:
                    StandardWebhook(secret).verify(raw, headers)  # raises unless signed now

    assert len(webhook.requests) == 3  # 500, 500, then acknowledged
    assert {h["webhook-id"] for h, _ in webhook.requests} == {webhook.requests[0][1]["id"]}
    stamps = [int(h["webhook-timestamp"]) for h, _ in webhook.requests]
    assert stamps == sorted(set(stamps))  # each attempt signed anew, at its own time


def test_a_whsec_secret_that_is_not_base64_is_refused_when_the_clinic_is_made() -> None:
    with pytest.raises(UserError, match="base64 of at least 24 random bytes"):
        make_clinic(webhook_url="https://hooks.example/x", webhook_secret="whsec_not base64!")


def test_forged_check_in_links_get_a_404_page(settings: Settings, live_server: str) -> None:
    checkin_token(settings)

    responses = [
        httpx.get(f"{live_server}/c/MQ.nope/ok"),
        httpx.post(f"{live_server}/c/MQ.nope/worried", data={"symptom": "airway"}),
    ]

    assert [r.status_code for r in responses] == [404, 404]
    assert check_ins() == []


def test_a_link_url_that_names_nothing_gets_the_404_page(
    settings: Settings, live_server: str
) -> None:
    token = checkin_token(settings)
    urls = [
        f"/c/{token}/answer/abc",
        f"/c/{token}/answer/0",
        f"/c/{token}/answer/99999999999999999999",  # past any integer column
        f"/c/{token}/nope",
        "/c/",
        f"/u/{token}/more",
        "/p/",
    ]

    for url in urls:
        answer = httpx.get(live_server + url)
        assert answer.status_code == 404, url
        assert "This link does not work" in answer.text, url


def test_clinics_see_check_ins_through_the_api_and_only_their_own(
    settings: Settings, live_server: str
) -> None:
    from dripcare.people.apikeys import create_key

    token = checkin_token(settings)
    httpx.post(
        f"{live_server}/c/{token}/worried", data={"symptom": ["rash"]}, follow_redirects=True
    )
    httpx.post(f"{live_server}/c/{token}/ok", follow_redirects=True)
    other = make_clinic(name="Other", sender="care@other.example")
    with session_scope() as session:
        (check_in,) = [c for c in session.scalars(select(CheckIn)) if c.level == "urgent"]
        own_key = create_key(session, check_in.clinic_id).plaintext
        other_key = create_key(session, other).plaintext

    def listing(key: str, **params: str) -> list[dict]:
        response = httpx.get(
            f"{live_server}/api/v1/check-ins",
            params=params,
            headers={"Authorization": f"Bearer {key}"},
        )
        return response.json()["data"]

    assert [c["level"] for c in listing(own_key)] == ["urgent", "fine"]
    assert listing(own_key, level="urgent")[0]["answers"] == ["rash"]
    assert listing(other_key) == []


def test_reloading_the_answer_page_records_nothing_again(
    settings: Settings, live_server: str
) -> None:
    token = checkin_token(settings)

    posted = httpx.post(f"{live_server}/c/{token}/worried", data={"symptom": ["rash"]})
    answer_url = f"{live_server}{posted.headers['location']}"
    first, reload = httpx.get(answer_url), httpx.get(answer_url)

    assert posted.status_code == 303
    assert "Call Riverside Skin Clinic now" in first.text and reload.text == first.text
    assert len(check_ins()) == 1 and len(clinic_alerts()) == 1


def custom_campaign_token(settings: Settings, clinic_care: dict[str, bool]) -> str:
    """A day-1 check-in link of a campaign with its own two red flags, one of them conditional."""
    clinic_id = make_clinic()
    shipped = load_campaign_dir(CAMPAIGN_DIR)
    clinical = dataclasses.replace(
        shipped.clinical,
        red_flags=(
            RedFlag("throat", "Your throat feels tight", "emergency"),
            RedFlag("ears", "Ringing in your ears", "urgent", when="salicylic"),
        ),
        expected_course=(CourseStage("Some stinging is normal for a peel."),),
    )
    variables = shipped.variables | {"salicylic": False}
    custom = dataclasses.replace(shipped, slug="peel", clinical=clinical, variables=variables)
    with session_scope() as session:
        clinic = session.get_one(Clinic, clinic_id)
        clinic.settings = {"care": clinic_care}  # the clinic's own care values
        import_campaign(session, clinic, custom)
    enrollment = make_enrollment(
        settings, clinic_id, DAYTIME - timedelta(days=1, hours=2), campaign="peel"
    )
    with session_scope() as session:
        day1 = session.scalars(
            select(Message).where(Message.enrollment_id == enrollment).order_by(Message.due_at)
        ).all()[1]
        return make_token(get_settings(), day1.id)


def test_the_check_in_page_asks_the_campaigns_own_red_flags(
    settings: Settings, live_server: str
) -> None:
    token = custom_campaign_token(settings, {})

    form = httpx.get(f"{live_server}/c/{token}/worried")
    answer = httpx.post(f"{live_server}/c/{token}/worried", data={}, follow_redirects=True)

    assert form.text.count('type="checkbox"') == 1  # the salicylic flag is not asked
    assert "Your throat feels tight" in form.text
    assert "Swelling of your lips" not in form.text  # microneedling's flags are not
    assert "Some stinging is normal for a peel." in answer.text


def test_a_campaigns_own_flag_alerts_the_clinic_with_its_words(
    settings: Settings, live_server: str
) -> None:
    token = custom_campaign_token(settings, {"salicylic": True})

    form = httpx.get(f"{live_server}/c/{token}/worried")
    answer = httpx.post(
        f"{live_server}/c/{token}/worried",
        data={"symptom": ["ears", "airway"]},  # airway is microneedling's: not this campaign's
        follow_redirects=True,
    )

    assert form.text.count('type="checkbox"') == 2  # the clinic's care value asks it
    assert "Call Riverside Skin Clinic now" in answer.text
    (check_in,) = check_ins()
    assert (check_in.level, check_in.answers) == ("urgent", ["ears"])
    with session_scope() as session:
        assert flag_texts(session, check_in) == ["Ringing in your ears"]
