"""The campaign pages: timeline edits, step editor, publish, roll back, test email; isolation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace

import pytest
from fastapi.routing import APIRoute

from dripcare.content import campaign_versions as versions
from dripcare.content.campaigns import find_campaign
from dripcare.db import session_scope
from dripcare.models import Clinic
from dripcare.web.admin import campaigns as campaign_pages
from dripcare.web.admin.views import step_when
from tests.admin_fixtures import AdminBrowser, make_admin
from tests.conftest import configure
from tests.factories import make_clinic
from tests.smtp_server import SMTPServer

BASE = "/admin/campaigns/microneedling"
STEP = f"{BASE}/steps/day-3"


@pytest.fixture
def clinic(admin_now: datetime) -> int:
    return make_clinic()


@pytest.fixture
def admin(clinic: int, browser_for: Callable[..., AdminBrowser]) -> AdminBrowser:
    return browser_for(make_admin(clinic_id=clinic))


def body_of(admin: AdminBrowser) -> str:
    page = admin.get(STEP).text
    start = page.index('spellcheck="false">') + len('spellcheck="false">')
    import html

    return html.unescape(page[start : page.index("</textarea>")])


def post(admin: AdminBrowser, url: str, **data: str) -> object:
    return admin.post_form(url, data, csrf_from=BASE)


def live(clinic: int) -> int:
    with session_scope() as session:
        return find_campaign(session, clinic, "microneedling").version


def test_timeline_lists_the_steps_in_order(admin: AdminBrowser) -> None:
    page = admin.get(BASE)
    assert page.status_code == 200
    text = page.text
    assert text.index("Day 0") < text.index("Day 1 at 09:00") < text.index("Day 42 at 10:00")
    assert "No unpublished changes" in text


def test_editing_a_subject_saves_a_draft_then_publish_makes_it_live(
    admin: AdminBrowser, clinic: int
) -> None:
    answer = post(
        admin, STEP, subject="Day 3: new words", preheader="P", body=body_of(admin), action="save"
    )
    assert answer.status_code == 303  # type: ignore[attr-defined]
    assert live(clinic) == 1
    assert "draft version 2" in admin.get(BASE).text

    published = post(admin, f"{BASE}/publish", number="2")

    assert published.status_code == 303  # type: ignore[attr-defined]
    assert live(clinic) == 2
    assert "Day 3: new words" in admin.get(BASE).text


def test_saving_unchanged_content_says_so(admin: AdminBrowser) -> None:
    subject = "Day 3: flaking, pimples and when to call us"
    preheader = "Your skin should be settling now. Please do not pick."
    answer = post(admin, STEP, subject=subject, preheader=preheader, body=body_of(admin))
    assert "no%20changes" in answer.headers["location"]  # type: ignore[attr-defined]
    assert "No unpublished changes" in admin.get(BASE).text


def test_preview_post_shows_the_change_without_saving(admin: AdminBrowser, clinic: int) -> None:
    answer = post(
        admin, STEP, subject="Preview only", preheader="P", body=body_of(admin), action="preview"
    )
    assert answer.status_code == 200  # type: ignore[attr-defined]
    assert 'id="preview-subject">Preview only<' in answer.text  # type: ignore[attr-defined]
    assert "No unpublished changes" in admin.get(BASE).text


def test_template_errors_are_shown_inline_with_line_numbers(admin: AdminBrowser) -> None:
    broken = body_of(admin).replace("{{ care.actives_days }}", "{{ care.activs }}")
    answer = post(admin, STEP, subject="S", preheader="P", body=broken, action="save")
    text = answer.text  # type: ignore[attr-defined]
    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert "<strong>day-03.mjml line 20:</strong> &#39;care.activs&#39; is undefined" in text
    assert "care has: actives_days" in text


def test_mjml_errors_are_shown_inline_with_the_line_in_the_edited_file(
    admin: AdminBrowser, clinic: int
) -> None:
    body = body_of(admin)
    line = body.splitlines().index("      <mj-column>") + 1
    broken = body.replace("      <mj-column>", '      <mj-column padding="0>', 1)

    answer = post(admin, STEP, subject="S", preheader="P", body=broken, action="save")

    text = answer.text  # type: ignore[attr-defined]
    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert f"<strong>day-03.mjml line {line}:</strong> MJML, column 18: the value of" in text
    assert "MRML says: unable to parse next template" in text
    assert live(clinic) == 1 and "No unpublished changes" in admin.get(BASE).text


def test_an_unknown_mjml_element_is_named_in_the_live_preview(admin: AdminBrowser) -> None:
    body = body_of(admin)
    line = body.splitlines().index("      </mj-column>") + 1
    broken = body.replace("      </mj-column>", "      <mj-colum />\n      </mj-column>", 1)

    answer = admin.post_form(f"{STEP}/preview.json", {"subject": "S", "body": broken}, BASE)

    problems = answer.json()["problems"]
    assert answer.json()["preview"] is None
    assert [(p["where"], p["line"]) for p in problems] == [("day-03.mjml", line)]
    assert "did you mean <mj-column>?" in problems[0]["message"]


def test_ssti_in_the_editor_fails_safely(admin: AdminBrowser) -> None:
    body = body_of(admin).replace("Small crusts", "{{ cycler.__init__.__globals__ }}")
    answer = admin.post_form(f"{STEP}/preview.json", {"subject": "S", "body": body}, BASE)
    problems = answer.json()["problems"]
    assert answer.json()["preview"] is None
    assert any("SecurityError" in p["message"] and p["line"] == 11 for p in problems)


def test_publishing_without_the_red_flags_is_refused_with_the_reason(
    admin: AdminBrowser, clinic: int
) -> None:
    body = body_of(admin).replace("{% endblock %}", "{% endblock %}{% block x %}{% endblock %}")
    post(admin, STEP, subject="S", preheader="P", body=body, action="save")
    with session_scope() as session:
        campaign = find_campaign(session, clinic, "microneedling")
        spec = versions.spec_of(versions.working_version(session, campaign))
        layout = spec.sources["_layout.mjml"].replace('{% include "_redflags.mjml" %}', "")
        from dripcare.content import campaign_editing

        versions.save_draft(
            session, campaign, campaign_editing.set_source(spec, "_layout.mjml", layout), author="t"
        )
        draft = versions.current_draft(session, campaign)
        assert draft is not None
        number = draft.number

    answer = post(admin, f"{BASE}/publish", number=str(number))

    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert "the email has lost its red-flag block" in answer.text  # type: ignore[attr-defined]
    assert live(clinic) == 1


def test_timeline_edits_add_move_retime_remove(admin: AdminBrowser) -> None:
    post(admin, f"{BASE}/steps", key="day-10", offset_days="10", send_time="09:00", subject="Ten")
    post(admin, f"{BASE}/steps/day-10/timing", offset_days="11", send_time="08:30")
    post(admin, f"{BASE}/steps/day-10/move", by="1")
    post(admin, f"{BASE}/steps/day-1/remove")
    text = admin.get(BASE).text
    assert "Day 11 at 08:30" in text
    assert text.index("Day 14 at 09:00") < text.index("Day 11 at 08:30")  # moved below day-14
    assert 'id="step-day-1"' not in text
    assert "draft version 5" in text


def test_retime_sets_how_late_a_step_may_still_go_out(admin: AdminBrowser) -> None:
    post(admin, f"{BASE}/steps/day-3/timing", offset_days="3", send_time="09:00", send_until="36h")
    assert 'name="send_until" placeholder="1d" value="36h"' in admin.get(BASE).text

    answer = post(admin, f"{BASE}/steps/day-3/timing", offset_days="3", send_until="soon")
    assert "send_until must look like 1d, 36h, 2d12h or 90m, got &#39;soon&#39;" in answer.text  # type: ignore[attr-defined]


def test_roll_back_publishes_the_old_content(admin: AdminBrowser, clinic: int) -> None:
    post(admin, STEP, subject="Changed", preheader="P", body=body_of(admin), action="save")
    post(admin, f"{BASE}/publish", number="2")
    answer = post(admin, f"{BASE}/rollback", number="1")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    assert live(clinic) == 3
    assert "Day 3: flaking, pimples and when to call us" in admin.get(BASE).text
    diff = admin.get(f"{BASE}/diff?old=2&new=3").text
    assert "-day-3: subject = &#39;Changed&#39;" in diff


def test_test_email_arrives_marked_and_is_not_an_outbox_row(
    admin: AdminBrowser,
    smtp_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
) -> None:
    configure(monkeypatch, tmp_path, DRIPCARE_SMTP_URL=smtp_server.url)  # type: ignore[arg-type]
    answer = post(admin, f"{STEP}/test-email", to="admin@riverside.example")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    assert smtp_server.recorder.wait_for(1, timeout=10)
    (mail,) = smtp_server.recorder.messages
    assert mail["To"] == "admin@riverside.example"
    assert mail["Subject"] == "[Test] Day 3: flaking, pimples and when to call us"


def test_test_emails_go_only_to_the_admin_or_the_staff_address_ten_an_hour(
    admin: AdminBrowser,
    clinic: int,
    smtp_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
) -> None:
    configure(monkeypatch, tmp_path, DRIPCARE_SMTP_URL=smtp_server.url)  # type: ignore[arg-type]
    with session_scope() as session:
        session.get_one(Clinic, clinic).alert_email = "staff@riverside.example"

    stranger = post(admin, f"{STEP}/test-email", to="victim@elsewhere.example")
    sent = [
        post(admin, f"{STEP}/test-email", to=to).status_code  # type: ignore[attr-defined]
        for to in ["Admin@Riverside.example", "staff@riverside.example"] * 5
    ]
    over = post(admin, f"{STEP}/test-email", to="admin@riverside.example")

    assert "goes only to your own address or the clinic&#39;s staff address" in stranger.text  # type: ignore[attr-defined]
    assert sent == [303] * 10
    assert "at most 10 test emails an hour" in over.text  # type: ignore[attr-defined]
    assert smtp_server.recorder.wait_for(10, timeout=10)
    recipients = {m["To"] for m in smtp_server.recorder.messages}
    assert recipients == {"admin@riverside.example", "staff@riverside.example"}


def test_any_version_can_be_previewed(admin: AdminBrowser) -> None:
    post(admin, STEP, subject="Draft words", preheader="P", body=body_of(admin), action="save")
    draft = admin.get(f"{BASE}/versions/2?step=day-3")
    published = admin.get(f"{BASE}/versions/1?step=day-3")
    assert 'id="preview-subject">Draft words<' in draft.text
    assert 'id="preview-subject">Day 3: flaking, pimples and when to call us<' in published.text
    assert "Emergency: get help now" in published.text
    assert admin.get(f"{BASE}/versions/9").status_code == 404


def test_names_and_subjects_are_shown_as_text(admin: AdminBrowser) -> None:
    post(admin, f"{BASE}/steps", key="day-9", offset_days="9", subject="<script>alert(1)</script>")
    page = admin.get(BASE).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


S = "/admin/campaigns/{slug}"
K = S + "/steps/{key}"
# Every campaign route (the list is checked with the other list pages), with a URL of clinic A.
CAMPAIGN_ROUTES: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("GET", S): (BASE, {}),
    ("GET", S + "/versions/{number}"): (f"{BASE}/versions/1", {}),
    ("GET", S + "/diff"): (f"{BASE}/diff?old=1&new=1", {}),
    ("GET", K): (STEP, {}),
    ("POST", K): (STEP, {"subject": "x", "body": "x"}),
    ("POST", K + "/preview.json"): (f"{STEP}/preview.json", {"subject": "x", "body": "x"}),
    ("POST", K + "/test-email"): (f"{STEP}/test-email", {"to": "a@b.example"}),
    ("POST", S + "/steps"): (f"{BASE}/steps", {"key": "day-9", "subject": "x"}),
    ("POST", K + "/remove"): (f"{STEP}/remove", {}),
    ("POST", K + "/move"): (f"{STEP}/move", {"by": "1"}),
    ("POST", K + "/timing"): (f"{STEP}/timing", {"offset_days": "4"}),
    ("POST", S + "/publish"): (f"{BASE}/publish", {"number": "1"}),
    ("POST", S + "/rollback"): (f"{BASE}/rollback", {"number": "1"}),
}
OTHER_ROUTES = [(method.lower(), *target) for (method, _), target in CAMPAIGN_ROUTES.items()]


def test_every_campaign_route_has_an_isolation_case() -> None:
    routes = {
        (method, "/admin" + route.path)
        for route in campaign_pages.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    own_clinic_only = {("GET", "/admin/campaigns"), ("POST", "/admin/campaigns/default")}
    assert routes - own_clinic_only == set(CAMPAIGN_ROUTES)


@pytest.mark.parametrize(("method", "url", "data"), OTHER_ROUTES)
def test_another_clinics_admin_gets_404_on_every_route(
    clinic: int,
    browser_for: Callable[..., AdminBrowser],
    method: str,
    url: str,
    data: dict[str, str],
) -> None:
    """Clinic B has no microneedling campaign of A's: B's admin sees and changes nothing."""
    other = make_clinic(name="Other Clinic", sender="b@other.example")
    with session_scope() as session:
        campaign = find_campaign(session, other, "microneedling")
        campaign.slug = "other-microneedling"  # B's own campaign has another slug
    intruder = browser_for(make_admin("b@other.example", clinic_id=other))
    if method == "get":
        answer = intruder.get(url)
    else:
        answer = intruder.post_form(url, data, csrf_from="/admin/campaigns")
    assert answer.status_code == 404
    assert live(clinic) == 1


def test_a_step_marked_safety_only_is_published_so_and_shown_on_the_timeline(
    admin: AdminBrowser, clinic: int
) -> None:
    from sqlalchemy import select

    from dripcare.models import Campaign, Step

    def safety_steps() -> list[str]:
        with session_scope() as session:
            return list(
                session.scalars(
                    select(Step.key)
                    .join(Campaign, Step.campaign_id == Campaign.id)
                    .where(Campaign.clinic_id == clinic, Step.safety_only.is_(True), Step.active)
                )
            )

    editor = admin.get(STEP).text
    subject = "Day 3: flaking, pimples and when to call us"
    fields = {"subject": subject, "preheader": "P", "body": body_of(admin)}

    ticked = post(admin, STEP, **fields, safety_only="true", action="save")
    post(admin, f"{BASE}/publish", number="2")
    timeline = admin.get(BASE).text
    published = safety_steps()
    post(admin, STEP, **fields, action="save")  # an unticked box is not sent: off again
    post(admin, f"{BASE}/publish", number="3")

    assert "still sent while a red-flag alert holds the other emails" in editor.lower()
    assert (
        'name="safety_only"' in editor
        and "checked" not in editor.split('name="safety_only"')[1][:80]
    )
    assert ticked.status_code == 303  # type: ignore[attr-defined]
    assert published == ["day-3"]
    day_3 = timeline.split('id="step-day-3"')[1].split("</li>")[0]
    assert "safety only" in day_3
    assert "safety only" not in timeline.split('id="step-day-1"')[1].split("</li>")[0]
    assert safety_steps() == []


def test_the_default_campaign_is_chosen_on_the_campaigns_page(
    admin: AdminBrowser, clinic: int
) -> None:
    cleared = admin.post_form("/admin/campaigns/default", {"default_campaign": ""}, csrf_from=BASE)
    with session_scope() as session:
        after_clear = session.get_one(Clinic, clinic).default_campaign
    chosen = admin.post_form(
        "/admin/campaigns/default", {"default_campaign": "microneedling"}, csrf_from=BASE
    )
    unknown = admin.post_form(
        "/admin/campaigns/default", {"default_campaign": "tattoo"}, csrf_from=BASE
    )
    page = admin.get("/admin/campaigns").text

    assert after_clear is None
    assert '<option value="microneedling" selected>' in page
    assert unknown.status_code == 404
    with session_scope() as session:
        assert session.get_one(Clinic, clinic).default_campaign == "microneedling"
    assert (cleared.status_code, chosen.status_code) == (303, 303)  # back to the list


@pytest.mark.parametrize(
    ("offsets", "send_time", "late_booking", "expected"),
    [
        ((-14, 0, 0), "10:00", False, "14 days before at 10:00"),
        ((-1, 0, 0), "17:00", False, "1 day before at 17:00"),
        ((0, -2, -30), None, False, "2 h 30 min before"),
        ((1, 0, 0), "09:00", False, "day 1 at 09:00"),
        ((0, 2, 0), None, False, "day 0 +2 h"),
        ((0, 0, 0), None, True, "at enrollment, if a stop-now email was missed"),
    ],
)
def test_the_timeline_says_when_a_step_goes_as_staff_say_it(
    offsets: tuple[int, int, int], send_time: str | None, late_booking: bool, expected: str
) -> None:
    days, hours, minutes = offsets
    step = SimpleNamespace(
        offset_days=days,
        offset_hours=hours,
        offset_minutes=minutes,
        send_time=send_time,
        late_booking=late_booking,
    )
    assert step_when(step) == expected
