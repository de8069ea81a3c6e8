"""Campaign versions on both databases: drafts, publishing, roll back, and what patients get."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from dripcare.config import Settings, get_settings
from dripcare.content import campaign_editing as edit
from dripcare.content import campaign_versions as versions
from dripcare.content import compiled_campaigns
from dripcare.content.campaign_spec import CampaignSpec
from dripcare.content.campaigns import find_campaign
from dripcare.content.template_checks import ProblemsFound
from dripcare.db import session_scope
from dripcare.errors import UserError
from dripcare.models import Message, MessageStatus, Step
from dripcare.sending import delivery, message_view
from dripcare.sending.transports import SMTPTransport
from tests.factories import DAYTIME as NOW
from tests.factories import make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer

NEW_SUBJECT = "Tonight: caring for your skin"


@pytest.fixture(autouse=True)
def daytime() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


def working_spec(clinic_id: int) -> CampaignSpec:
    with session_scope() as session:
        campaign = find_campaign(session, clinic_id, "microneedling")
        return versions.spec_of(versions.working_version(session, campaign))


def save(clinic_id: int, spec: CampaignSpec, author: str = "ana@clinic") -> int:
    with session_scope() as session:
        campaign = find_campaign(session, clinic_id, "microneedling")
        return versions.save_draft(session, campaign, spec, author=author).number


def publish(clinic_id: int, number: int, author: str = "ana@clinic") -> versions.Published:
    with session_scope() as session:
        campaign = find_campaign(session, clinic_id, "microneedling")
        return versions.publish(session, campaign, number, author=author)


def roll_back(clinic_id: int, number: int) -> int:
    with session_scope() as session:
        campaign = find_campaign(session, clinic_id, "microneedling")
        return versions.roll_back(session, campaign, number, author="bo@clinic").version.number


def live(clinic_id: int) -> int:
    with session_scope() as session:
        return find_campaign(session, clinic_id, "microneedling").version


def message_rows(enrollment_id: int) -> dict[str, Message]:
    with session_scope() as session:
        found = session.execute(
            select(Step.key, Message)
            .join(Message, Message.step_id == Step.id)
            .where(Message.enrollment_id == enrollment_id)
        ).all()
        return dict(found)  # type: ignore[arg-type]


def subject_shown(message_pk: int) -> str:
    """What the API and the outbox show for a message."""
    with session_scope() as session:
        (job,) = message_view.load_jobs(session, [message_pk])
        return message_view.render_job(job, get_settings())[0].subject


def with_day0_subject(spec: CampaignSpec, subject: str) -> CampaignSpec:
    return edit.update_step(spec, "day-0", subject=subject)


def test_import_records_a_published_version_one(settings: Settings) -> None:
    clinic = make_clinic()
    with session_scope() as session:
        campaign = find_campaign(session, clinic, "microneedling")
        (only,) = versions.history(session, campaign)
        assert (campaign.version, only.number, only.author) == (1, 1, "import")
        assert only.published_at is not None
        assert versions.current_draft(session, campaign) is None


def test_a_save_is_a_draft_and_changes_nothing_live(settings: Settings) -> None:
    clinic = make_clinic()
    enrollment = make_enrollment(settings, clinic, NOW - timedelta(minutes=30))
    number = save(clinic, with_day0_subject(working_spec(clinic), NEW_SUBJECT))

    assert number == 2 and live(clinic) == 1
    assert working_spec(clinic).steps[0].subject == NEW_SUBJECT
    assert subject_shown(message_rows(enrollment)["day-0"].id) == "Caring for your skin today"


def test_saving_the_same_content_twice_records_one_version(settings: Settings) -> None:
    clinic = make_clinic()
    edited = with_day0_subject(working_spec(clinic), NEW_SUBJECT)
    assert save(clinic, edited) == save(clinic, edited) == 2


def test_publishing_makes_unsent_messages_use_the_new_version(settings: Settings) -> None:
    clinic = make_clinic()
    enrollment = make_enrollment(settings, clinic, NOW - timedelta(minutes=30))
    day0 = message_rows(enrollment)["day-0"].id
    subject_shown(day0)  # version 1 compiled and cached in this process

    publish(clinic, save(clinic, with_day0_subject(working_spec(clinic), NEW_SUBJECT)))

    assert live(clinic) == 2
    assert subject_shown(day0) == NEW_SUBJECT


def test_sent_messages_record_their_version_and_are_shown_from_it(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic()
    enrollment = make_enrollment(settings, clinic, NOW - timedelta(hours=3))
    publish(clinic, save(clinic, with_day0_subject(working_spec(clinic), NEW_SUBJECT)))

    assert send_due(smtp_server)["sent"] == 1
    rolled_back = roll_back(clinic, 1)

    day0 = message_rows(enrollment)["day-0"]
    assert smtp_server.recorder.messages[0]["Subject"] == NEW_SUBJECT
    assert (day0.status, day0.campaign_version) == (MessageStatus.SENT, 2)
    assert rolled_back == 3 and live(clinic) == 3
    assert subject_shown(day0.id) == NEW_SUBJECT  # as the patient saw it, not as it is now
    assert (
        subject_shown(message_rows(enrollment)["day-1"].id)
        == "Day 1: sunscreen, makeup and what to watch for"
    )


def test_roll_back_is_a_new_version_with_the_old_content(settings: Settings) -> None:
    clinic = make_clinic()
    publish(clinic, save(clinic, with_day0_subject(working_spec(clinic), NEW_SUBJECT)))
    number = roll_back(clinic, 1)
    with session_scope() as session:
        campaign = find_campaign(session, clinic, "microneedling")
        newest, *_ = versions.history(session, campaign)
        first = versions.get_version(session, campaign, 1)
        assert (newest.number, newest.author, newest.note) == (
            3,
            "bo@clinic",
            "roll back to version 1",
        )
        assert newest.digest == first.digest
        assert campaign.steps[0].subject == "Caring for your skin today"
    assert number == 3


def test_history_says_who_and_when_and_diff_shows_the_change(settings: Settings) -> None:
    clinic = make_clinic()
    number = save(clinic, with_day0_subject(working_spec(clinic), NEW_SUBJECT), author="cy@clinic")
    with session_scope() as session:
        campaign = find_campaign(session, clinic, "microneedling")
        draft, imported = versions.history(session, campaign)
        text = versions.diff(session, campaign, 1, number)
    assert (draft.author, draft.published_at, draft.based_on) == ("cy@clinic", None, 1)
    assert draft.created_at >= imported.created_at
    assert "--- version 1/steps\n+++ version 2/steps\n" in text
    assert "-day-0: subject = 'Caring for your skin today'\n" in text
    assert f"+day-0: subject = '{NEW_SUBJECT}'\n" in text
    assert "version 1/day-00.mjml" not in text  # no file changed


def test_an_older_version_cannot_be_published_only_rolled_back_to(settings: Settings) -> None:
    clinic = make_clinic()
    publish(clinic, save(clinic, with_day0_subject(working_spec(clinic), NEW_SUBJECT)))
    with pytest.raises(UserError, match="older than the live version 2; roll back"):
        publish(clinic, 1)
    with pytest.raises(UserError, match="already the live version"):
        publish(clinic, 2)


def test_a_draft_that_cannot_render_is_not_saved(settings: Settings) -> None:
    clinic = make_clinic()
    spec = working_spec(clinic)
    broken = edit.set_body(spec, "day-3", spec.sources["day-03.mjml"] + "\n{{ care.makeup_days }}")
    with pytest.raises(ProblemsFound) as info:
        save(clinic, broken)
    (problem, *_) = info.value.problems
    assert (problem.where, problem.line) == ("day-03.mjml", 43)
    assert "'care.makeup_days' is undefined; care has: actives_days" in problem.message
    assert working_spec(clinic) == spec


def test_publishing_without_the_red_flag_block_is_refused(settings: Settings) -> None:
    clinic = make_clinic(phone="+1 555 010 0177")
    spec = working_spec(clinic)
    layout = spec.sources["_layout.mjml"].replace('{% include "_redflags.mjml" %}', "")
    number = save(clinic, edit.set_source(spec, "_layout.mjml", layout))  # a draft may lack it

    with pytest.raises(ProblemsFound) as info:
        publish(clinic, number)

    message = str(info.value)
    assert message.startswith("version 2 was not published: step 'day-0': the email has lost")
    assert "the red-flag block heading, the emergency instruction missing" in message
    assert "call Riverside Skin Clinic on +1 555 010 0177" in message
    assert {p.step for p in info.value.problems} == {s.key for s in spec.steps}
    assert live(clinic) == 1


POINTER_STEPS = {"day-0", "day-1", "day-3", "day-7"}


def test_publishing_without_the_emergency_pointer_is_refused_for_days_0_to_7(
    settings: Settings,
) -> None:
    clinic = make_clinic()
    spec = working_spec(clinic)
    layout = spec.sources["_layout.mjml"].replace("{%- if step.emergency_pointer %}", "{%- if 0 %}")
    assert layout != spec.sources["_layout.mjml"]
    number = save(clinic, edit.set_source(spec, "_layout.mjml", layout))

    with pytest.raises(ProblemsFound) as info:
        publish(clinic, number)

    assert {p.step for p in info.value.problems} == POINTER_STEPS
    assert "a day 0 email must open with the emergency pointer" in str(info.value)
    assert live(clinic) == 1


def test_an_emergency_pointer_moved_down_the_email_is_refused(settings: Settings) -> None:
    clinic = make_clinic()
    spec = working_spec(clinic)
    pointer = (
        "<mj-section><mj-column><mj-text><p>Swelling of lips, tongue or throat, or trouble "
        "breathing: call {{ emergency_number }} now. More warning signs are listed below.</p>"
        "</mj-text></mj-column></mj-section>"
    )
    layout = spec.sources["_layout.mjml"].replace("{%- if step.emergency_pointer %}", "{%- if 0 %}")
    layout = layout.replace(
        '{% include "_redflags.mjml" %}', pointer + '{% include "_redflags.mjml" %}'
    )
    number = save(clinic, edit.set_source(spec, "_layout.mjml", layout))

    with pytest.raises(ProblemsFound) as info:
        publish(clinic, number)

    assert {p.step for p in info.value.problems} == POINTER_STEPS


def test_the_gate_asks_for_the_campaigns_own_heading_and_lines(settings: Settings) -> None:
    clinic = make_clinic()
    spec = working_spec(clinic)
    heading = "Danger signs: act now"
    clinical = dataclasses.replace(spec.clinical, emergency_heading=heading, pointer_days=3)
    renamed = dataclasses.replace(spec, clinical=clinical)
    block = spec.sources["_redflags.mjml"].replace("Emergency: get help now", heading)
    number = save(clinic, renamed)

    with pytest.raises(ProblemsFound) as info:
        publish(clinic, number)  # the templates still say microneedling's heading
    fixed = save(clinic, edit.set_source(renamed, "_redflags.mjml", block))
    publish(clinic, fixed)
    with session_scope() as session:
        campaign = find_campaign(session, clinic, "microneedling")
        text = versions.diff(session, campaign, 1, fixed)

    assert "the red-flag block heading missing" in str(info.value)
    assert live(clinic) == fixed
    assert f"+clinical: emergency_heading = '{heading}'\n" in text
    assert "+clinical: pointer_days = 3\n" in text


def test_the_gate_wants_the_emergency_number_of_the_clinics_country(settings: Settings) -> None:
    clinic = make_clinic(country="GB")
    spec = working_spec(clinic)
    hard_coded = {
        name: spec.sources[name].replace("{{ emergency_number }}", "911")
        for name in ("_layout.mjml", "_redflags.mjml")
    }
    changed = edit.set_source(spec, "_layout.mjml", hard_coded["_layout.mjml"])
    changed = edit.set_source(changed, "_redflags.mjml", hard_coded["_redflags.mjml"])
    number = save(clinic, changed)

    with pytest.raises(ProblemsFound) as info:
        publish(clinic, number)

    assert "tell patients to call 999 in an emergency" in str(info.value)
    assert {p.step for p in info.value.problems} == {s.key for s in spec.steps}
    # the shipped templates take the number from the country: they publish as they are
    publish(clinic, save(clinic, spec))
    assert live(clinic) == 3


def test_removed_step_cancels_unsent_messages_and_keeps_sent_ones(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic()
    enrollment = make_enrollment(settings, clinic, NOW - timedelta(hours=3))
    send_due(smtp_server)
    spec = edit.remove_step(edit.remove_step(working_spec(clinic), "day-3"), "day-0")

    result = publish(clinic, save(clinic, spec))
    send_due(smtp_server)

    found = message_rows(enrollment)
    assert result.follow.cancelled == 1
    assert found["day-0"].status == MessageStatus.SENT
    assert (found["day-3"].status, found["day-3"].status_reason) == (
        MessageStatus.CANCELLED,
        "step 'day-3' removed in version 2",
    )
    assert found["day-1"].status == MessageStatus.SCHEDULED
    assert len(smtp_server.recorder.messages) == 1
    assert "day-03.mjml" not in working_spec(clinic).sources


def test_retimed_step_moves_unsent_messages(settings: Settings) -> None:
    clinic = make_clinic()
    enrollment = make_enrollment(settings, clinic, NOW - timedelta(hours=1))
    before = message_rows(enrollment)["day-3"].due_at
    spec = edit.update_step(working_spec(clinic), "day-3", offset_days=4, send_time="10:30")

    result = publish(clinic, save(clinic, spec))

    after = message_rows(enrollment)["day-3"].due_at
    assert result.follow.retimed == 1
    assert after - before == timedelta(days=1, minutes=90)


def test_added_step_is_scheduled_only_where_its_time_is_ahead(settings: Settings) -> None:
    clinic = make_clinic()
    recent = make_enrollment(settings, clinic, NOW - timedelta(hours=1), email="new@example.com")
    older = make_enrollment(settings, clinic, NOW - timedelta(days=5), email="old@example.com")
    spec = edit.add_step(
        working_spec(clinic), "day-2", offset_days=2, subject="Day 2", send_time="09:00"
    )

    result = publish(clinic, save(clinic, spec))

    assert result.follow.added == 1
    assert message_rows(recent)["day-2"].status == MessageStatus.SCHEDULED
    assert "day-2" not in message_rows(older)
    assert [s.key for s in working_spec(clinic).steps][:4] == ["day-0", "day-1", "day-2", "day-3"]


def test_a_version_that_dropped_the_step_of_a_claimed_message_cancels_it(
    settings: Settings,
) -> None:
    """The race: a message read for sending after a publish removed its step is not sent."""
    clinic = make_clinic()
    enrollment = make_enrollment(settings, clinic, NOW - timedelta(hours=3))
    day0 = message_rows(enrollment)["day-0"].id
    with session_scope() as session:
        (job,) = message_view.load_jobs(session, [day0])
    spec = edit.remove_step(working_spec(clinic), "day-0")
    with session_scope() as session:
        stale = compiled_campaigns.compiled(session, job.campaign.id, 1)
        campaign = find_campaign(session, clinic, "microneedling")
        number = versions.save_draft(session, campaign, spec, author="x").number
        newer = compiled_campaigns.compiled(session, job.campaign.id, number)
    assert stale.spec.step("day-0") is not None
    job = dataclasses.replace(job, content=newer)

    outcome = delivery._send_one(job, SMTPTransport("127.0.0.1", 9), get_settings(), lambda: NOW)

    assert (outcome.status, outcome.reason) == (
        MessageStatus.CANCELLED,
        "step 'day-0' removed in version 2",
    )
