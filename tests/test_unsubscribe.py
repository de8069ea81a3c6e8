"""Unsubscribing: RFC 8058 one-click over real HTTP, the page, the mailto route, and what the
dispatcher does afterwards."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import time_machine
from sqlalchemy import select

from dripcare.config import Settings, get_settings
from dripcare.db import session_scope
from dripcare.models import Enrollment, Message, MessageStatus, SubscriptionEvent, Suppression
from dripcare.outbox import enrollment_changes
from dripcare.outbox.dispatch import claim_due
from dripcare.people.links import links_for, make_token
from dripcare.sending import delivery
from dripcare.sending.transports import SMTPTransport
from tests.factories import DAYTIME, first_sent_links, send_due, unsubscribe_targets
from tests.smtp_server import SMTPServer


@pytest.fixture(autouse=True)
def daytime() -> Iterator[None]:
    with time_machine.travel(DAYTIME, tick=True):
        yield


def live_unsubscribe_url(settings: Settings, smtp_server: SMTPServer, live_server: str) -> str:
    """Send the first email; its one-click link, pointed at the live server instead of care.test."""
    https, _ = first_sent_links(settings, smtp_server)
    return https.replace("https://care.test", live_server)


def messages() -> list[Message]:
    with session_scope() as session:
        return list(session.scalars(select(Message).order_by(Message.due_at)))


def test_one_click_post_unsubscribes_and_the_next_email_is_not_sent(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    url = live_unsubscribe_url(settings, smtp_server, live_server)

    response = httpx.post(
        url,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    again = httpx.post(url, content="List-Unsubscribe=One-Click")
    later = send_due(smtp_server, days_later=1)

    assert (response.status_code, again.status_code) == (200, 200)
    assert later["sent"] == 0
    assert len(smtp_server.recorder.messages) == 1
    statuses = [(m.status, m.status_reason) for m in messages()]
    assert statuses[0][0] == MessageStatus.SENT
    assert set(statuses[1:]) == {(MessageStatus.CANCELLED, "unsubscribed")}
    with session_scope() as session:
        (entry,) = session.scalars(select(Suppression)).all()
        assert (entry.email, entry.source, entry.reason) == (
            "pat@example.com",
            "one-click",
            "unsubscribed",
        )


def test_a_message_queued_before_the_unsubscribe_is_cancelled_not_sent(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    url = live_unsubscribe_url(settings, smtp_server, live_server)
    with session_scope() as session:  # day-1 becomes due and is claimed, not yet sent
        day1 = session.scalars(
            select(Message).where(Message.status == "scheduled").order_by(Message.due_at)
        ).first()
        assert day1 is not None
        day1.due_at = DAYTIME - timedelta(minutes=1)
    with session_scope() as session:
        claim = claim_due(session, limit=10, lease=timedelta(minutes=5))
    assert claim is not None

    httpx.post(url, content="List-Unsubscribe=One-Click")
    result = delivery.send_batch(
        session_scope,
        claim.token,
        claim.message_ids,
        SMTPTransport("127.0.0.1", smtp_server.port),
        get_settings(),
    )

    assert result.sent == 0
    assert len(smtp_server.recorder.messages) == 1


def test_the_page_asks_first_and_its_button_unsubscribes(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    url = live_unsubscribe_url(settings, smtp_server, live_server)

    page = httpx.get(url)
    with session_scope() as session:
        before = session.scalars(select(Suppression)).all()
    done = httpx.post(url, data={"List-Unsubscribe": "One-Click", "confirm": "yes"})

    assert page.status_code == 200 and "Stop emails from Riverside Skin Clinic?" in page.text
    assert '<form method="post"' in page.text and 'name="confirm" value="yes"' in page.text
    assert before == []
    assert "You are unsubscribed" in done.text
    with session_scope() as session:
        assert session.scalars(select(Suppression.source)).all() == ["web"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # altered signature
        lambda t: make_token_for(999),  # a real signature for a message that does not exist
        lambda t: "MQ.forged",  # guessed
        lambda t: t.split(".")[0] + ".",  # signature removed
    ],
)
def test_forged_or_altered_tokens_get_a_404_page(
    settings: Settings, smtp_server: SMTPServer, live_server: str, mangle: object
) -> None:
    https, _ = first_sent_links(settings, smtp_server)
    token = https.rsplit("/", 1)[1]
    bad = mangle(token)  # type: ignore[operator]

    got, posted = httpx.get(f"{live_server}/u/{bad}"), httpx.post(f"{live_server}/u/{bad}")

    assert (got.status_code, posted.status_code) == (404, 404)
    assert "This link does not work" in got.text and "Traceback" not in got.text
    with session_scope() as session:
        assert session.scalars(select(Suppression)).all() == []


def make_token_for(pk: int) -> str:
    return make_token(get_settings(), pk)


def test_tokens_name_no_patient_data(settings: Settings) -> None:
    links = links_for(settings, 42, "care@riverside.example")

    assert "example.com" not in links.unsubscribe and "pat" not in links.unsubscribe
    assert links.unsubscribe != links_for(settings, 43, "care@riverside.example").unsubscribe


@pytest.mark.slow  # `dripcare inbound` processes
def test_mail_to_the_unsubscribe_mailbox_is_processed_by_dripcare_inbound(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    _, mailto = first_sent_links(settings, smtp_server)
    subject = mailto.split("subject=")[1].replace("%20", " ")
    raw = (
        f"From: pat@example.com\r\nTo: unsubscribe@riverside.example\r\n"
        f"Subject: {subject}\r\n\r\nplease stop\r\n"
    ).encode()

    done = subprocess.run(
        [sys.executable, "-m", "dripcare.cli", "inbound", "--json"],
        input=raw,
        capture_output=True,
        check=False,
    )
    junk = subprocess.run(
        [sys.executable, "-m", "dripcare.cli", "inbound"],
        input=b"Subject: hello\r\n\r\nhi\r\n",
        capture_output=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert b'"unsubscribed": true' in done.stdout
    assert junk.returncode == 2 and b"no valid unsubscribe token" in junk.stderr
    with session_scope() as session:
        assert session.scalars(select(Suppression.source)).all() == ["mailto"]


# ---- preferences ------------------------------------------------------------------------------


def preferences_url(settings: Settings, smtp_server: SMTPServer, live_server: str) -> str:
    https, _ = first_sent_links(settings, smtp_server)
    return https.replace("https://care.test/u/", f"{live_server}/p/")


def test_preferences_stop_just_this_treatment(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    url = preferences_url(settings, smtp_server, live_server)

    page = httpx.get(url)
    done = httpx.post(url, data={"action": "stop-treatment"})

    assert "Stop emails about this treatment" in page.text
    assert "no more emails about this treatment" in done.text
    assert {(m.status, m.status_reason) for m in messages()[1:]} == {
        (MessageStatus.CANCELLED, "stopped by the patient")
    }
    with session_scope() as session:
        assert session.scalars(select(Suppression)).all() == []  # other treatments still email


def test_preferences_resume_a_treatment_the_patient_stopped(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    url = preferences_url(settings, smtp_server, live_server)
    stopped = httpx.post(url, data={"action": "stop-treatment"})

    resumed = httpx.post(url, data={"action": "resume-treatment"})
    later = send_due(smtp_server, days_later=1)

    assert "Get emails about this treatment again" in stopped.text
    assert "you will get emails about this treatment again" in resumed.text
    assert "Stop emails about this treatment" in resumed.text
    assert later["sent"] == 1
    assert {m.status for m in messages()[2:]} == {MessageStatus.SCHEDULED}


def test_preferences_cannot_resume_a_sequence_the_clinic_cancelled(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    url = preferences_url(settings, smtp_server, live_server)
    with session_scope() as session:
        (enrollment,) = session.scalars(select(Enrollment)).all()
        enrollment_changes.cancel(session, enrollment)

    page = httpx.get(url)
    forced = httpx.post(url, data={"action": "resume-treatment"})

    assert "are stopped" in page.text and "resume-treatment" not in page.text
    assert "cannot be restarted here" in forced.text
    assert {(m.status, m.status_reason) for m in messages()[1:]} == {
        (MessageStatus.CANCELLED, "cancelled")
    }


def test_the_unsubscribed_page_leads_back_to_the_preferences(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    url = live_unsubscribe_url(settings, smtp_server, live_server)

    done = httpx.post(url, content="List-Unsubscribe=One-Click")
    back = re.search(r'<a href="([^"]+)">Get aftercare emails\s+again</a>', done.text)
    assert back is not None
    page = httpx.get(live_server + back.group(1))

    assert page.status_code == 200 and "Get aftercare emails again" in page.text


def test_preferences_stop_all_then_resubscribe_brings_the_sequence_back(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    url = preferences_url(settings, smtp_server, live_server)

    stopped = httpx.post(url, data={"action": "stop-all"})
    cancelled = [m.status for m in messages()[1:]]
    back = httpx.post(url, data={"action": "resubscribe"})

    assert "Get aftercare emails again" in stopped.text
    assert set(cancelled) == {MessageStatus.CANCELLED}
    assert "you will get aftercare emails again" in back.text
    assert {m.status for m in messages()[1:]} == {MessageStatus.SCHEDULED}
    with session_scope() as session:
        assert session.scalars(select(Suppression)).all() == []
    later = send_due(smtp_server, days_later=1)
    assert later["sent"] == 1


def test_preferences_refuse_an_unknown_action(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    url = preferences_url(settings, smtp_server, live_server)

    response = httpx.post(url, data={"action": "delete-everything"})

    assert response.status_code == 422
    assert {m.status for m in messages()[1:]} == {MessageStatus.SCHEDULED}


# ---- replay after resubscribe ------------------------------------------------------------------


def post_one_click(client: httpx.Client, url: str) -> httpx.Response:
    """The POST a mailbox provider makes (RFC 8058)."""
    return client.post(
        url,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def hidden_fields(page: str) -> dict[str, str]:
    """What the page's form posts, as a browser would send it."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


def unsubscribe_resubscribe_replay(client: httpx.Client, url: str) -> httpx.Response:
    """One-click unsubscribe, resubscribe on the preferences page, then the same POST again."""
    assert "You are unsubscribed" in post_one_click(client, url).text
    back = client.post(url.replace("/u/", "/p/"), data={"action": "resubscribe"})
    assert "you will get aftercare emails again" in back.text
    return post_one_click(client, url)


def events() -> list[tuple[str, str]]:
    with session_scope() as session:
        rows = session.scalars(select(SubscriptionEvent).order_by(SubscriptionEvent.id))
        return [(event.change.value, event.source) for event in rows]


def test_a_one_click_post_replayed_after_resubscribing_leaves_the_patient_subscribed(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    url = live_unsubscribe_url(settings, smtp_server, live_server)

    with httpx.Client() as client:
        replay = unsubscribe_resubscribe_replay(client, url)
    later = send_due(smtp_server, days_later=1)

    assert replay.status_code == 200  # RFC 8058: the sender answers 2xx
    assert "nothing has changed" in replay.text and "You are unsubscribed" not in replay.text
    assert later["sent"] == 1 and len(smtp_server.recorder.messages) == 2
    with session_scope() as session:
        assert session.scalars(select(Suppression)).all() == []
    assert events() == [
        ("unsubscribed", "one-click"),
        ("resubscribed", "preferences"),
        ("replay-ignored", "one-click"),
    ]


def test_after_an_ignored_replay_the_pages_button_still_unsubscribes(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    url = live_unsubscribe_url(settings, smtp_server, live_server)

    with httpx.Client() as client:
        replay = unsubscribe_resubscribe_replay(client, url)
        confirmed = client.post(url, data=hidden_fields(client.get(url).text))
    later = send_due(smtp_server, days_later=1)

    assert "Unsubscribe</button>" in replay.text  # the ignored replay offers the button too
    assert "You are unsubscribed" in confirmed.text
    assert later["sent"] == 0 and len(smtp_server.recorder.messages) == 1
    with session_scope() as session:
        assert session.scalars(select(Suppression.source)).all() == ["web"]
    assert events()[-1] == ("unsubscribed", "web")


def test_after_an_ignored_replay_a_newer_emails_one_click_link_unsubscribes(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    https, _ = first_sent_links(settings, smtp_server)
    url = https.replace("https://care.test", live_server)
    with httpx.Client() as client:
        unsubscribe_resubscribe_replay(client, url)
        send_due(smtp_server, days_later=1)
        newer, _ = unsubscribe_targets(smtp_server.recorder.messages[1])

        done = post_one_click(client, newer.replace("https://care.test", live_server))
    later = send_due(smtp_server, days_later=3)

    assert newer != https
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert later["sent"] == 0 and len(smtp_server.recorder.messages) == 2
    assert {(m.status, m.status_reason) for m in messages()[2:]} == {
        (MessageStatus.CANCELLED, "unsubscribed")
    }
    with session_scope() as session:
        assert session.scalars(select(Suppression.source)).all() == ["one-click"]
