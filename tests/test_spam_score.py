"""Every default email, as a patient gets it, scores low with SpamAssassin's local rules.

SpamAssassin runs with `-L` (local tests only): no DNS blocklists, no network, so the score
only reflects what is in the message itself (HTML, headers, text), which is what we control.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Message
from dripcare.sending import delivery, message_view
from dripcare.shipped import campaigns_dir
from tests.conftest import IN_CI
from tests.factories import enroll_result, make_clinic

pytestmark = pytest.mark.slow  # SpamAssassin scores every default email

MAX_SCORE = 0.5  # a real margin under the 1.0 issue 11 asks for
_STATUS = re.compile(
    rb"^X-Spam-Status: \w+, score=(-?[\d.]+) [^\n]*?tests=(.*?)(?: autolearn=| version=)",
    re.M | re.S,
)

_MESSAGE_ID = re.compile(rb"^Message-ID: <([^>]+)>", re.M | re.I)
CAMPAIGNS = sorted(p.parent.name for p in campaigns_dir().glob("*/campaign.toml"))


def spamassassin() -> str:
    found = shutil.which("spamassassin")
    if found is None:
        if IN_CI:
            pytest.fail("spamassassin is missing; CI must install it (.ci/run)")
        pytest.skip("spamassassin is not installed (apt-get install spamassassin)")
    return found


def default_emails(settings: Settings, campaign: str) -> dict[str, bytes]:
    """Each step's email for one patient, built by the send path itself."""
    clinic = make_clinic(alert_email="front-desk@riverside.example")
    now = datetime.now(UTC)
    # The peel campaign takes superficial peels only (its [requires]).
    attributes = {"peel_depth": "superficial"} if campaign == "chemical-peel" else {}
    result = enroll_result(
        settings, clinic, now - timedelta(minutes=30), campaign=campaign, attributes=attributes
    )
    with session_scope() as session:
        pks = session.scalars(
            select(Message.id).where(Message.enrollment_id == result.enrollment.id)
        ).all()
        jobs = message_view.load_jobs(session, list(pks))
        return {job.step.key: delivery.build_email(job, settings, now) for job in jobs}


def scores(emails: dict[str, bytes]) -> dict[str, tuple[float, str]]:
    """Score every email in one SpamAssassin run (an mbox): its start-up is the slow part.
    It answers in its own order, so each result is matched by Message-ID."""
    separator = b"From dripcare@localhost Thu Jan  1 00:00:00 1970\n"
    mbox = b"".join(
        separator + data.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ") + b"\n"
        for data in emails.values()
    )
    run = subprocess.run(
        [spamassassin(), "-L", "-t", "--mbox"], input=mbox, capture_output=True, check=True
    )
    step_of = {_MESSAGE_ID.search(data).group(1): key for key, data in emails.items()}  # type: ignore[union-attr]
    found = {}
    for chunk in run.stdout.split(separator)[1:]:
        status, message_id = _STATUS.search(chunk), _MESSAGE_ID.search(chunk)
        assert status and message_id, chunk[:2000]
        score, tests = status.groups()
        found[step_of[message_id.group(1)]] = (float(score), " ".join(tests.decode().split()))
    assert found.keys() == emails.keys(), run.stdout[-2000:]
    return found


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize("campaign", CAMPAIGNS)
def test_every_default_email_scores_below_one(settings: Settings, campaign: str) -> None:
    emails = default_emails(settings, campaign)
    assert emails
    if campaign == "chemical-peel":  # pre-care and late-booking emails are scored too
        assert {"pre-14", "pre-7", "pre-1", "late-booking", "day-28"} <= emails.keys()
    high = {key: found for key, found in scores(emails).items() if found[0] >= MAX_SCORE}
    assert not high, f"SpamAssassin scores of {MAX_SCORE} or more (score, rules): {high}"
