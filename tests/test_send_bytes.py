"""A batch's bytes on the wire do not depend on how the send path loads its rows.

`message_view.load_jobs` reads columns into light frozen values (issue 14); before, a Job held
the ORM entities. Each email a batch sends must be byte for byte the one built from those
entities, Message-ID and link tokens included.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Self

import pytest
import time_machine

from dripcare.config import Settings
from dripcare.content.compiled_campaigns import compiled
from dripcare.db import session_scope
from dripcare.models import Clinic, Message, utcnow
from dripcare.sending import delivery, message_view
from tests.factories import DAYTIME, make_clinic, make_enrollment


class Recorder:
    """A transport that keeps every message it is given."""

    def __init__(self) -> None:
        self.sent: dict[str, bytes] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, sender: str, recipient: str, data: bytes, message_id: str) -> None:
        self.sent[message_id] = data


def _from_entities(session: Any, message: Message) -> message_view.Job:
    """The Job as load_jobs built it before: the ORM entities themselves."""
    enrollment, step = message.enrollment, message.step
    return message_view.Job(
        message.id,
        message.message_id,
        message.attempts,
        enrollment.patient.email,
        session.get(Clinic, message.clinic_id),
        step.campaign,  # type: ignore[arg-type]
        step,  # type: ignore[arg-type]
        enrollment,  # type: ignore[arg-type]
        enrollment.patient,  # type: ignore[arg-type]
        compiled(session, step.campaign.id, message.campaign_version or step.campaign.version),
    )


def test_a_batch_sends_the_bytes_built_from_the_orm_entities(settings: Settings) -> None:
    # Given patients of two clinics, with names that need escaping or encoding, due now
    with time_machine.travel(DAYTIME, tick=False):
        riverside = make_clinic()
        harbour = make_clinic(name="Hârbour & Sons <Clinic>", sender="hello@harbour.example")
        names = [("Pat", "O'Brien"), ("Zoë", "Ünal"), ("", "Smith"), ("Al & <b>", "x")]
        for index, (first, last) in enumerate(names):
            clinic = riverside if index % 2 else harbour
            make_enrollment(
                settings,
                clinic,
                DAYTIME - timedelta(hours=3),
                email=f"p{index}@example.com",
                first_name=first,
                last_name=last,
            )

        # When the due messages are sent, the clock standing still
        recorder = Recorder()
        totals = delivery.send_due(session_scope, settings, recorder)

        # Then each one is the email built from its row's entities, byte for byte
        assert totals["sent"] == len(recorder.sent) >= len(names)
        with session_scope() as session:
            for message_id, data in recorder.sent.items():
                message = session.query(Message).filter_by(message_id=message_id).one()
                job = _from_entities(session, message)
                assert delivery.build_email(job, settings, utcnow()) == data


@pytest.mark.parametrize("count", [1, 3])
def test_load_jobs_keeps_the_order_and_shares_the_clinic(settings: Settings, count: int) -> None:
    with time_machine.travel(DAYTIME, tick=False):
        clinic = make_clinic()
        for index in range(count):
            make_enrollment(settings, clinic, DAYTIME, email=f"q{index}@example.com")
        with session_scope() as session:
            pks = sorted(m.id for m in session.query(Message))
            jobs = message_view.load_jobs(session, list(reversed(pks)))
            assert [job.pk for job in jobs] == pks
            assert len({id(job.clinic) for job in jobs}) == 1
            assert all(job.patient.link_epoch == 0 for job in jobs)
