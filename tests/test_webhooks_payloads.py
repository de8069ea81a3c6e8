"""Each provider's payload, in the shapes its docs show, read as the right feedback events."""

from __future__ import annotations

from dripcare.sending.feedback import FeedbackKind
from dripcare.webhooks import mailgun, postmark, sendgrid, ses


def test_ses_complaint_and_delivery_name_our_message_and_verp_token() -> None:
    mail = {
        "source": "bounces+m42-abcdefghijklmnop@bounce.riverside.example",
        "messageId": "0100017d-ses",
        "headers": [{"name": "Message-ID", "value": "<m42@riverside.example>"}],
    }
    complaint = ses.events(
        {
            "notificationType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": "pat@example.com"}],
                "complaintFeedbackType": "abuse",
                "feedbackId": "c1",
            },
            "mail": mail,
        }
    )
    delivery = ses.events(
        {
            "eventType": "Delivery",  # configuration-set event publishing
            "delivery": {"recipients": ["pat@example.com"], "smtpResponse": "250 2.6.0 ok"},
            "mail": mail,
        }
    )

    assert [(e.kind, e.recipient, e.message_id) for e in complaint + delivery] == [
        (FeedbackKind.COMPLAINT, "pat@example.com", "<m42@riverside.example>"),
        (FeedbackKind.DELIVERED, "pat@example.com", "<m42@riverside.example>"),
    ]
    assert {e.verp_token for e in complaint + delivery} == {"m42-abcdefghijklmnop"}
    assert complaint[0].provider_event_id != delivery[0].provider_event_id


def test_ses_transient_bounce_is_not_permanent_and_other_types_are_ignored() -> None:
    bounce = ses.events(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": "Transient",
                "feedbackId": "b",
                "bouncedRecipients": [{"emailAddress": "pat@example.com", "status": "4.2.2"}],
            },
            "mail": {},
        }
    )
    assert [(e.kind, e.permanent, e.status) for e in bounce] == [
        (FeedbackKind.BOUNCE, False, "4.2.2")
    ]
    assert ses.events({"notificationType": "Received", "mail": {}}) == []


def test_postmark_record_types_map_to_the_right_kinds() -> None:
    def kinds(record: dict[str, object]) -> list[tuple[FeedbackKind, bool, str]]:
        return [(e.kind, e.permanent, e.status) for e in postmark.events(record)]

    base = {"ID": 1, "Email": "pat@example.com", "Details": ""}
    assert kinds(base | {"RecordType": "Bounce", "Type": "HardBounce"}) == [
        (FeedbackKind.BOUNCE, True, "")
    ]
    assert kinds(
        base | {"RecordType": "Bounce", "Type": "HardBounce", "Details": "smtp;550 5.7.1 policy"}
    ) == [(FeedbackKind.BOUNCE, True, "5.7.1")]
    assert kinds(base | {"RecordType": "Bounce", "Type": "SoftBounce"}) == [
        (FeedbackKind.BOUNCE, False, "")
    ]
    assert kinds(base | {"RecordType": "Bounce", "Type": "Transient"}) == [
        (FeedbackKind.DELAY, False, "")
    ]
    assert kinds(base | {"RecordType": "SpamComplaint", "Type": "SpamComplaint"}) == [
        (FeedbackKind.COMPLAINT, False, "")
    ]
    assert kinds(base | {"RecordType": "Bounce", "Type": "AutoResponder"}) == []
    assert kinds({"RecordType": "Open", "Recipient": "pat@example.com"}) == []
    delivered = postmark.events(
        {"RecordType": "Delivery", "MessageID": "x", "Recipient": "pat@example.com"}
    )
    assert [(e.kind, e.recipient) for e in delivered] == [
        (FeedbackKind.DELIVERED, "pat@example.com")
    ]


def test_postmark_records_name_our_message_by_metadata_without_bounce_content() -> None:
    metadata = {"Metadata": {"dripcare-message": "1f2e3d@riverside.example"}}
    records = [
        {"RecordType": "Bounce", "Type": "HardBounce", "ID": 1, "Email": "pat@example.com"},
        {"RecordType": "SpamComplaint", "Type": "SpamComplaint", "ID": 2, "Email": "p@x.example"},
        {"RecordType": "Delivery", "MessageID": "x", "Recipient": "pat@example.com"},
    ]

    found = [e.message_id for r in records for e in postmark.events(r | metadata)]
    assert found == ["1f2e3d@riverside.example"] * 3
    # bounce content still serves when the metadata is missing (an email sent elsewhere)
    content = {"Content": "Message-ID: <abc@riverside.example>\r\n", "Metadata": {}}
    (bounce,) = postmark.events(records[0] | content)
    assert bounce.message_id == "<abc@riverside.example>"
    assert [e.message_id for e in postmark.events(records[2])] == [None]


def test_sendgrid_blocked_and_dropped_are_not_permanent_and_opens_are_ignored() -> None:
    batch = [
        {"event": "bounce", "type": "blocked", "status": "5.7.1", "sg_event_id": "1"},
        {"event": "dropped", "reason": "Bounced Address", "sg_event_id": "2"},
        {"event": "deferred", "response": "451 try later", "sg_event_id": "3"},
        {"event": "spamreport", "sg_event_id": "4"},
        {"event": "open", "sg_event_id": "5"},
        "not an event",
    ]

    read = sendgrid.events(batch)

    assert [(e.kind, e.permanent) for e in read] == [
        (FeedbackKind.BOUNCE, False),
        (FeedbackKind.BOUNCE, False),
        (FeedbackKind.DELAY, False),
        (FeedbackKind.COMPLAINT, False),
    ]
    assert [e.provider_event_id for e in read] == ["1", "2", "3", "4"]


def test_mailgun_reads_the_enhanced_code_and_ignores_opens() -> None:
    failed = mailgun.events(
        {
            "event-data": {
                "event": "failed",
                "severity": "permanent",
                "id": "e1",
                "recipient": "pat@example.com",
                "envelope": {"sender": "bounces+m7-abcdefghijklmnop@b.example"},
                "delivery-status": {"code": 550, "message": "5.2.1 mailbox disabled"},
            }
        }
    )
    complained = mailgun.events({"event-data": {"event": "complained", "id": "e2"}})

    assert [(e.kind, e.permanent, e.status, e.verp_token) for e in failed] == [
        (FeedbackKind.BOUNCE, True, "5.2.1", "m7-abcdefghijklmnop")
    ]
    assert [e.kind for e in complained] == [FeedbackKind.COMPLAINT]
    assert mailgun.events({"event-data": {"event": "opened"}}) == []
