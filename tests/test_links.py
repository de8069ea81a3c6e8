"""Signed links in emails: tampering, enumeration and revocation, over real HTTP."""

from __future__ import annotations

import string
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner, Result
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from dripcare.cli import main
from dripcare.config import Settings, get_settings
from dripcare.db import session_scope
from dripcare.models import CheckIn, Clinic, Message, Suppression
from dripcare.people.links import SALT, LinkRef, make_token, read_token
from dripcare.sending.inbound import process_unsubscribe_mail
from tests.factories import first_sent_links, send_due, unsubscribe_targets
from tests.smtp_server import SMTPServer

ALPHABET = string.ascii_letters + string.digits + "-_"
NOT_FOUND = "This link does not work"
PATHS_GET = ("/u/{}", "/p/{}", "/c/{}/ok", "/c/{}/worried")
POSTS = (
    ("/u/{}", "List-Unsubscribe=One-Click"),
    ("/u/{}", "confirm=yes"),
    ("/p/{}", "action=stop-all"),
    ("/p/{}", "action=resubscribe"),
    ("/c/{}/ok", ""),
    ("/c/{}/worried", "symptom=airway"),
)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def first_token(settings: Settings, smtp_server: SMTPServer) -> str:
    https, _ = first_sent_links(settings, smtp_server)
    return token_of(https)


def altered(token: str) -> Iterator[str]:
    """Two changes of every character: its highest and its lowest of six bits flipped (base64
    ignores the lowest bits of a token's last character)."""
    for index, char in enumerate(token):
        position = ALPHABET.find(char)
        swaps = [ALPHABET[position ^ 32], ALPHABET[position ^ 1]] if position >= 0 else ["A"]
        for swap in swaps:
            yield token[:index] + swap + token[index + 1 :]


def test_every_altered_character_of_a_token_gets_the_404_page(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    token = first_token(settings, smtp_server)

    with httpx.Client(base_url=live_server) as client:
        answers = {bad: client.get(f"/u/{bad}") for bad in altered(token)}
        genuine = client.get(f"/u/{token}")

    assert len(answers) == 2 * len(token) - token.count(".")
    assert genuine.status_code == 200
    assert {bad: r.status_code for bad, r in answers.items() if r.status_code != 404} == {}
    assert all(NOT_FOUND in r.text and "Traceback" not in r.text for r in answers.values())


def test_a_token_whose_last_character_differs_only_in_ignored_bits_is_refused(
    settings: Settings,
) -> None:
    token = make_token(settings, 1)
    spare = ALPHABET[ALPHABET.index(token[-1]) ^ 1]  # same decoded bytes as the genuine one

    assert read_token(settings, token) == LinkRef(1, 0)
    assert read_token(settings, token[:-1] + spare) is None


def test_guessed_and_sequential_tokens_get_the_same_answer_as_a_forged_one(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    token = first_token(settings, smtp_server)
    other_key = URLSafeSerializer("a guessed secret", salt=SALT)
    guesses = [
        *(str(n) for n in range(1, 6)),  # bare sequential ids
        *(other_key.dumps(n) for n in range(1, 6)),  # well-formed, signed with another key
        *(make_token(settings, n) for n in range(100, 105)),  # genuine signature, no message
        make_token(settings, 1, epoch=3),  # a genuine message with an epoch never issued
        token.split(".")[0] + ".",  # signature removed
    ]

    with httpx.Client(base_url=live_server) as client:
        forged = client.get("/u/MQ.forged")
        answers = [client.get(path.format(guess)) for guess in guesses for path in PATHS_GET]

    assert forged.status_code == 404 and NOT_FOUND in forged.text
    assert {(r.status_code, r.text, r.headers["content-type"]) for r in answers} == {
        (forged.status_code, forged.text, forged.headers["content-type"])
    }


# ---- revocation ------------------------------------------------------------------------------


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def revoke(email: str, clinic_id: int | None = None) -> Result:
    if clinic_id is None:
        with session_scope() as session:
            clinic_id = session.scalar(select(Clinic.id))
    return run("patient", "revoke-links", "--clinic", str(clinic_id), "--email", email, "--json")


def count(model: type) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_revoked_links_get_the_404_page_on_every_route_and_change_nothing(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    token = first_token(settings, smtp_server)
    with httpx.Client(base_url=live_server) as client:
        answered = client.post(f"/c/{token}/ok", headers=FORM)
        answer_path = answered.headers["location"]
        before = client.get(answer_path)

        revoked = revoke("Pat@Example.com")
        gets = [client.get(path.format(token)) for path in (*PATHS_GET, answer_path)]
        posts = [
            client.post(path.format(token), content=body, headers=FORM) for path, body in POSTS
        ]
        forged = client.get("/u/MQ.forged")

    assert (answered.status_code, before.status_code) == (303, 200)
    assert revoked.exit_code == 0, revoked.output
    assert '"link_epoch": 1' in revoked.stdout and '"email": "pat@example.com"' in revoked.stdout
    assert [r.status_code for r in gets + posts] == [404] * (len(gets) + len(posts))
    assert {r.text for r in gets + posts} == {forged.text}
    assert (count(Suppression), count(CheckIn)) == (0, 1)


def test_a_revoked_token_mailed_to_the_unsubscribe_mailbox_changes_nothing(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    _, mailto = first_sent_links(settings, smtp_server)
    subject = mailto.split("subject=")[1].replace("%20", " ")
    revoke("pat@example.com")

    result = process_unsubscribe_mail(f"Subject: {subject}\r\n\r\nstop\r\n".encode(), settings)

    assert result is None and count(Suppression) == 0


def test_emails_sent_after_a_revocation_carry_new_links_that_work(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    old = first_token(settings, smtp_server)
    revoke("pat@example.com")

    sent = send_due(smtp_server, days_later=1)
    email = smtp_server.recorder.messages[1]
    new = token_of(unsubscribe_targets(email)[0])
    html = email.get_body(("html",)).get_content()  # type: ignore[union-attr]
    with httpx.Client(base_url=live_server) as client:
        pages = [client.get(path.format(new)) for path in PATHS_GET]
        done = client.post(f"/u/{new}", content="List-Unsubscribe=One-Click", headers=FORM)

    assert sent["sent"] == 1
    assert new != old
    assert read_token(settings, new) == LinkRef(read_token_pk(settings, old) + 1, epoch=1)
    assert f"/c/{new}/worried" in html and old not in html
    assert [p.status_code for p in pages] == [200] * len(PATHS_GET)
    assert done.status_code == 200 and count(Suppression) == 1


def read_token_pk(settings: Settings, token: str) -> int:
    ref = read_token(settings, token)
    assert ref is not None
    return ref.message_pk


def test_tokens_issued_before_revocation_existed_still_work(
    settings: Settings, smtp_server: SMTPServer, live_server: str
) -> None:
    token = first_token(settings, smtp_server)
    with session_scope() as session:
        first = session.scalar(select(Message.id).order_by(Message.due_at))
    legacy = URLSafeSerializer(get_settings().secret_key, salt=SALT).dumps(first)

    page = httpx.get(f"{live_server}/p/{legacy}")

    assert token == legacy  # epoch 0 signs the bare message id, as before
    assert page.status_code == 200 and "Your email preferences" in page.text


@pytest.mark.parametrize(
    ("clinic", "email", "message"),
    [
        (42, "pat@example.com", "no clinic with id 42"),
        (None, "nobody@example.com", "has no patient with email nobody@example.com"),
        (None, "not an address", "invalid email address"),
    ],
)
def test_revoking_links_of_an_unknown_patient_is_a_one_line_error(
    settings: Settings, smtp_server: SMTPServer, clinic: int | None, email: str, message: str
) -> None:
    first_sent_links(settings, smtp_server)

    result = revoke(email, clinic)

    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("pk, epoch", [(1, 0), (987654321, 0), (42, 1), (7, 123456)])
def test_tokens_are_the_bytes_itsdangerous_signs_so_links_already_sent_keep_working(
    pk: int, epoch: int
) -> None:
    settings = get_settings()
    serializer = URLSafeSerializer(settings.secret_key, salt=SALT)
    token = make_token(settings, pk, epoch)
    assert token == serializer.dumps([pk, epoch] if epoch else pk)
    assert read_token(settings, token) == LinkRef(pk, epoch)
