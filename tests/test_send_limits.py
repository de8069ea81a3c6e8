"""Sending rates per transport and recipient domain, in this process and shared in Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
import time_machine
from pydantic import ValidationError
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Message, MessageStatus, Patient
from dripcare.rate_limits import MemoryLimiter, RedisLimiter
from dripcare.sending.send_limits import (
    PROVIDER_GROUPS,
    ConnectionSlots,
    Sending,
    SendLimits,
    Slowdowns,
    Wait,
    _limits,
    bucket_of,
    is_slow_down,
    limits_for,
    parse_concurrency,
    parse_limits,
)
from tests.factories import DAYTIME, make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer


def memory_limits(domains: str, transport_rate: float = 0.0) -> SendLimits:
    return SendLimits(
        MemoryLimiter(1.0, 1), parse_limits(domains), transport_rate, Slowdowns("", 600)
    )


def test_domain_limits_read_per_second_minute_or_hour() -> None:
    assert parse_limits(" gmail=20/s, Outlook.com = 600/m,example.org=3600/h,") == {
        "gmail": 20.0,
        "outlook": 10.0,
        "example.org": 1.0,
    }
    with pytest.raises(ValueError, match=r"must look like gmail=20/s or example\.org=2/s"):
        parse_limits("gmail.com=fast")
    with pytest.raises(ValidationError, match=r"must look like gmail=20/s"):
        Settings(domain_limits="gmail.com=0/s")
    with pytest.raises(ValueError, match=r"hotmail\.com is in the 'outlook' group.*give outlook="):
        parse_limits("outlook.com=10/s,hotmail.com=2/s")
    assert parse_limits("outlook.com=10/s,hotmail.com=10/s") == {"outlook": 10.0}


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("a@Hotmail.co.uk", "outlook"),
        ("a@live.fr", "outlook"),
        ("a@msn.com", "outlook"),
        ("a@googlemail.com", "gmail"),
        ("a@aol.com", "yahoo"),
        ("a@ymail.com", "yahoo"),
        ("a@me.com", "icloud"),
        ("a@clinic-patients.example", "clinic-patients.example"),
        ("a@gmail.com.example", "gmail.com.example"),
    ],
)
def test_a_providers_domains_share_one_bucket_and_other_domains_have_their_own(
    address: str, bucket: str
) -> None:
    assert bucket_of(address) == bucket


def test_the_provider_table_names_only_the_four_groups() -> None:
    assert set(PROVIDER_GROUPS.values()) == {"outlook", "gmail", "yahoo", "icloud"}
    assert all(domain == domain.lower() and "." in domain for domain in PROVIDER_GROUPS)


def test_a_groups_limit_covers_all_its_domains_and_a_slow_down_slows_the_group() -> None:
    limits = memory_limits("outlook=2/s,example.org=1/s")

    assert limits.wait("a@outlook.com") is None and limits.wait("b@hotmail.de") is None
    held = limits.wait("c@live.com")
    assert held is not None and held.what == "outlook"
    assert limits.wait("d@example.org") is None and limits.wait("e@example.org") is not None
    limits.slow_down("x@googlemail.com")
    assert limits.slow.active("gmail") and not limits.slow.active("googlemail.com")


@pytest.mark.parametrize(
    ("code", "reply", "slow"),
    [
        (421, "421 4.7.28 Our system has detected an unusual rate of mail", True),
        (451, "451 4.7.0 Temporary rate limit exceeded", True),
        (450, "450 too many connections from your host, slow down", True),
        (451, "451 4.7.1 greylisted, try later", False),
        (452, "452 4.2.2 mailbox full", False),
        (550, "550 5.7.1 rate limited forever", False),
    ],
)
def test_a_slow_down_reply_is_told_from_other_temporary_refusals(
    code: int, reply: str, slow: bool
) -> None:
    assert is_slow_down(code, reply) is slow


def test_a_slow_domain_does_not_hold_up_the_others() -> None:
    limits = memory_limits("gmail.com=2/s")

    assert limits.wait("a@gmail.com") is None
    assert limits.wait("b@gmail.com") is None
    held = limits.wait("c@GMAIL.com")
    assert held is not None and held.what == "gmail" and 0 < held.seconds <= 1
    assert held.reason == "rate limit for gmail; put back"
    assert all(limits.wait(f"p{i}@clinic-patients.example") is None for i in range(50))


def test_the_transport_rate_covers_every_domain() -> None:
    limits = memory_limits("", transport_rate=1)

    assert limits.wait("a@gmail.com") is None
    held = limits.wait("b@yahoo.com")
    assert held is not None and held.what == "the transport"


def test_slow_down_quarters_a_listed_domain_and_limits_an_unlisted_one() -> None:
    limits = memory_limits("gmail.com=8/s")
    limits.slow_down("x@gmail.com")
    limits.slow_down("x@small-isp.example")

    assert [limits.wait("a@gmail.com") is None for _ in range(3)] == [True, True, False]
    assert [limits.wait("a@small-isp.example") is None for _ in range(2)] == [True, False]


def test_workers_share_one_budget_and_slow_downs_through_redis(redis_url: str) -> None:
    # Given two worker processes' limiters on the same Redis
    a, b = (
        SendLimits(RedisLimiter(redis_url, 1.0, 1), {"gmail": 2.0}, 0, Slowdowns(redis_url, 60))
        for _ in range(2)
    )

    # Then the domain's two tokens are spent once between them, and a slow-down is seen by both
    assert a.wait("p1@gmail.com") is None and b.wait("p2@gmail.com") is None
    assert b.wait("p3@gmail.com") is not None
    a.slow_down("p1@outlook.com")
    assert b.slow.active("outlook")
    assert 0 < (redis.Redis.from_url(redis_url).ttl("dripcare:slowdown:outlook") or 0) <= 60


@pytest.mark.parametrize("shared", [False, True], ids=["in this process", "in Redis"])
def test_connection_slots_cap_open_connections_and_lapse_when_a_worker_dies(
    shared: bool, redis_url: str
) -> None:
    url = redis_url if shared else ""
    slots = ConnectionSlots(url, 2)
    other = ConnectionSlots(url, 2) if shared else slots  # another worker host

    first, second = slots.take(60), other.take(60)
    assert first and second and other.take(60) is None
    slots.release(first)
    third = other.take(60)
    assert third is not None
    other.release(second)
    other.release(third)
    # a worker that died holding a slot gives it back after its lease
    dying = ConnectionSlots(url, 1)
    assert dying.take(1.0) is not None and dying.take(60) is None  # 1 s: room for a busy machine
    time.sleep(1.1)
    assert dying.take(60) is not None
    assert ConnectionSlots(url, 0).take(60) is not None  # 0: no limit


def test_concurrency_caps_read_per_group_or_domain() -> None:
    assert parse_concurrency(" gmail=5, Hotmail.co.uk = 3,example.org=1,") == {
        "gmail": 5,
        "outlook": 3,
        "example.org": 1,
    }
    with pytest.raises(ValueError, match=r"DRIPCARE_DOMAIN_CONCURRENCY: 'gmail=0' must look like"):
        parse_concurrency("gmail=0")
    with pytest.raises(ValidationError, match=r"must look like gmail=5 or example\.org=2"):
        Settings(domain_concurrency="gmail=5/s")


def test_no_concurrency_cap_costs_no_call_to_redis() -> None:
    # Given limits whose Redis cannot be reached: any call to it would raise
    limits = _limits("redis://127.0.0.1:1/0", "", 0.0, 600.0, 0, "")

    sending = limits.start("a@gmail.com", 60)

    assert sending == Sending() and limits.sends == {}
    sending.done()


@pytest.mark.parametrize("shared", [False, True], ids=["in this process", "in Redis"])
def test_a_groups_sends_at_once_are_capped_for_all_workers_and_others_go_on(
    shared: bool, redis_url: str
) -> None:
    def worker() -> SendLimits:
        places = ConnectionSlots(redis_url if shared else "", 2, "dripcare:sends:gmail")
        return SendLimits(MemoryLimiter(1.0, 1), {}, 0, Slowdowns("", 600), sends={"gmail": places})

    one = worker()
    other = worker() if shared else one  # another worker host

    first, second = one.start("a@gmail.com", 60), other.start("b@googlemail.com", 60)
    assert isinstance(first, Sending) and isinstance(second, Sending)
    busy = one.start("c@gmail.com", 60)
    assert isinstance(busy, Wait)
    assert busy.reason == "limit of 2 sends at once for gmail; put back"
    assert one.start("d@outlook.com", 60) == Sending()  # no cap: not held up

    second.done()
    assert isinstance(other.start("e@gmail.com", 60), Sending)


@pytest.fixture
def daytime() -> Iterator[None]:
    with time_machine.travel(DAYTIME, tick=True):
        yield


def day_0_rows() -> dict[str, Message]:
    with session_scope() as session:
        found = session.execute(
            select(Patient.email, Message).join(Message.enrollment).join(Patient)
        ).all()
        return {email: message for email, message in found if message.step.key == "day-0"}


def test_messages_over_a_domains_rate_are_put_back_and_the_batch_goes_on(
    settings: Settings,
    smtp_server: SMTPServer,
    redis_url: str,
    daytime: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "domain_limits", "busy.example=1/s")
    clinic = make_clinic()
    for email in ["a@busy.example", "b@busy.example", "c@quiet.example"]:
        make_enrollment(settings, clinic, DAYTIME - timedelta(hours=3), email=email)

    with time_machine.travel(DAYTIME, tick=False):  # frozen: no token comes back meanwhile
        totals = send_due(smtp_server)

    rows = day_0_rows()
    assert (totals["sent"], totals["deferred"]) == (2, 1)
    assert sorted(m["To"] for m in smtp_server.recorder.messages) == [
        "a@busy.example",
        "c@quiet.example",
    ]
    put_back = rows["b@busy.example"]
    assert (put_back.status, put_back.attempts) == (MessageStatus.SCHEDULED, 0)
    assert put_back.status_reason == "rate limit for busy.example; put back"
    assert DAYTIME + timedelta(seconds=1) <= put_back.due_at <= DAYTIME + timedelta(seconds=2)
    assert limits_for(settings).domains == {"busy.example": 1.0}


def test_a_slow_down_reply_defers_without_spending_an_attempt_and_slows_the_domain(
    settings: Settings, smtp_server: SMTPServer, redis_url: str, daytime: None
) -> None:
    clinic = make_clinic()
    make_enrollment(settings, clinic, DAYTIME - timedelta(hours=3), email="pat@slow.example")
    smtp_server.recorder.rcpt_replies["pat@slow.example"] = "451 4.7.28 rate limited, slow down"

    assert send_due(smtp_server)["deferred"] == 1

    row = day_0_rows()["pat@slow.example"]
    assert (row.status, row.attempts) == (MessageStatus.SCHEDULED, 0)
    assert row.last_error.startswith("451 4.7.28")
    assert limits_for(settings).slow.active("slow.example")


def test_when_every_connection_is_in_use_the_batch_is_put_back_without_an_attempt(
    settings: Settings,
    smtp_server: SMTPServer,
    redis_url: str,
    daytime: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "transport_concurrency", 1)
    clinic = make_clinic()
    make_enrollment(settings, clinic, DAYTIME - timedelta(hours=3))
    slots = limits_for(settings).connections
    busy = slots.take(60)  # another worker's connection
    assert busy is not None

    assert send_due(smtp_server)["sent"] == 0
    row = day_0_rows()["pat@example.com"]
    assert (row.status, row.attempts) == (MessageStatus.SCHEDULED, 0)
    assert row.status_reason == "all 1 connections to the mail server in use; put back"

    slots.release(busy)
    with time_machine.travel(row.due_at + timedelta(seconds=1)):
        assert send_due(smtp_server)["sent"] == 1
    assert slots.take(60) is not None  # the sender gave its slot back


def test_an_email_to_a_provider_at_its_concurrency_cap_is_put_back_and_the_batch_goes_on(
    settings: Settings,
    smtp_server: SMTPServer,
    redis_url: str,
    daytime: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "domain_concurrency", "busy.example=1")
    clinic = make_clinic()
    for email in ["a@busy.example", "b@quiet.example"]:
        make_enrollment(settings, clinic, DAYTIME - timedelta(hours=3), email=email)
    places = limits_for(settings).sends["busy.example"]
    elsewhere = places.take(60)  # another worker is sending to busy.example
    assert elsewhere is not None

    totals = send_due(smtp_server)

    assert (totals["sent"], totals["deferred"]) == (1, 1)
    assert [m["To"] for m in smtp_server.recorder.messages] == ["b@quiet.example"]
    put_back = day_0_rows()["a@busy.example"]
    assert (put_back.status, put_back.attempts) == (MessageStatus.SCHEDULED, 0)
    assert put_back.status_reason == "limit of 1 sends at once for busy.example; put back"

    places.release(elsewhere)
    with time_machine.travel(put_back.due_at + timedelta(seconds=1)):
        assert send_due(smtp_server)["sent"] == 1
    assert not redis.Redis.from_url(redis_url).exists("dripcare:sends:busy.example")
    assert places.take(60) is not None  # the sender gave its place back
