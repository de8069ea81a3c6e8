"""Provider webhooks under /webhooks/<provider>: bounces, complaints and deliveries reported by
Amazon SES (through SNS), Postmark, SendGrid and Mailgun, each checked the provider's way and
then handed to feedback.apply.

A provider that is not configured answers 404; a request that fails its check answers 401 and
changes nothing; replays and reports about messages that are not ours answer 200 and change
nothing, so providers stop retrying them.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy.orm import Session

from dripcare.config import get_settings
from dripcare.models import utcnow
from dripcare.sending import feedback
from dripcare.web.deps import SessionDep
from dripcare.webhooks import mailgun, postmark, replays, sendgrid, ses
from dripcare.webhooks.signing import Rejected
from dripcare.webhooks.sns import SNSVerifier

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])
FAILS: dict[int | str, dict[str, Any]] = {
    401: {"description": "the request did not prove the provider sent it; nothing changed"},
    404: {"description": "this provider is not configured"},
}


class Received(BaseModel):
    """What the request reported and what came of it."""

    events: int = 0  # feedback events read from the payload
    applied: int = 0  # recorded against one of our messages
    unknown: int = 0  # about no message of ours: ignored
    replays: int = 0  # already applied: ignored
    alerted: int = 0  # patients whose clinic is now alerted to phone them (beat delivers it)


@lru_cache
def sns_verifier() -> SNSVerifier:
    """One per process, so signing certificates are fetched once."""
    return SNSVerifier()


SNSDep = Annotated[SNSVerifier, Depends(sns_verifier)]


def _configured(*values: str) -> None:
    if not all(values):
        raise HTTPException(404, "this webhook is not configured")


def _refused(provider: str, error: Rejected, **headers: str) -> HTTPException:
    """401, logged: a wrong key or credentials in the settings shows up here first."""
    log.warning("%s webhook refused: %s", provider, error)
    return HTTPException(401, str(error), headers=headers or None)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise HTTPException(400, "the body is not JSON") from None


async def _apply(session: Session, events: list[feedback.FeedbackEvent]) -> Received:
    settings = get_settings()

    def apply_all() -> Received:
        results = [feedback.apply(session, event, settings) for event in events]
        session.commit()
        return Received(
            events=len(events),
            applied=sum(r.found and not r.replay for r in results),
            unknown=sum(not r.found for r in results),
            replays=sum(r.replay for r in results),
            alerted=sum(r.alerted for r in results),
        )

    return await run_in_threadpool(apply_all)


SES_FAILS: dict[int | str, dict[str, Any]] = {
    **FAILS,
    403: {"description": "a topic not in DRIPCARE_SES_TOPIC_ARNS"},
    502: {"description": "SNS could not be reached to confirm the subscription; SNS retries"},
}


@router.post("/ses", operation_id="receiveSesEvents", responses=SES_FAILS)
async def ses_webhook(request: Request, session: SessionDep, verifier: SNSDep) -> Received:
    """Amazon SES notifications through an SNS HTTPS subscription (DRIPCARE_SES_TOPIC_ARNS).

    The SNS signature is verified against Amazon's certificate; a SubscriptionConfirmation for
    an allowed topic is confirmed by visiting its SubscribeURL.
    """
    topics = {arn.strip() for arn in get_settings().ses_topic_arns.split(",") if arn.strip()}
    _configured(",".join(topics))
    message = _json(await request.body())
    if not isinstance(message, dict):
        raise HTTPException(400, "an SNS message is a JSON object")
    # Before the signature: another account's topic costs no certificate fetch.
    if message.get("TopicArn") not in topics:
        raise HTTPException(
            403, f"topic {message.get('TopicArn')} is not in DRIPCARE_SES_TOPIC_ARNS"
        )
    try:
        await run_in_threadpool(verifier.verify, message)
    except Rejected as error:
        raise _refused("ses", error) from None
    if message["Type"] == "SubscriptionConfirmation":
        try:
            await run_in_threadpool(verifier.confirm_subscription, message)
        except httpx.HTTPError as error:
            log.error("cannot confirm the SNS subscription to %s: %s", message["TopicArn"], error)
            raise HTTPException(
                502, f"cannot reach SNS to confirm the subscription: {error}"
            ) from None
        log.info("confirmed the SNS subscription to %s", message["TopicArn"])
        return Received()
    if message["Type"] != "Notification":
        return Received()
    notification = _json(str(message.get("Message", "")).encode())
    return await _apply(session, ses.events(notification if isinstance(notification, dict) else {}))


@router.post("/postmark", operation_id="receivePostmarkEvents", responses=FAILS)
async def postmark_webhook(
    request: Request,
    session: SessionDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Received:
    """Postmark bounce, spam complaint and delivery webhooks, authenticated by the HTTP basic
    auth credentials set on the webhook (DRIPCARE_POSTMARK_WEBHOOK_USER / _PASSWORD)."""
    settings = get_settings()
    user, password = settings.postmark_webhook_user, settings.postmark_webhook_password
    _configured(user, password)
    try:
        postmark.check_basic_auth(authorization, user, password)
    except Rejected as error:
        raise _refused("postmark", error, **{"WWW-Authenticate": "Basic"}) from None
    record = _json(await request.body())
    return await _apply(session, postmark.events(record if isinstance(record, dict) else {}))


@router.post("/sendgrid", operation_id="receiveSendgridEvents", responses=FAILS)
async def sendgrid_webhook(
    request: Request,
    session: SessionDep,
    signature: Annotated[
        str | None, Header(alias=sendgrid.SIGNATURE_HEADER, include_in_schema=False)
    ] = None,
    timestamp: Annotated[
        str | None, Header(alias=sendgrid.TIMESTAMP_HEADER, include_in_schema=False)
    ] = None,
) -> Received:
    """SendGrid's Signed Event Webhook (DRIPCARE_SENDGRID_WEBHOOK_PUBLIC_KEY): the ECDSA
    signature over the timestamp and body is checked, and timestamps older than
    DRIPCARE_WEBHOOK_MAX_AGE_SECONDS are refused."""
    settings = get_settings()
    _configured(settings.sendgrid_webhook_public_key)
    body = await request.body()
    try:
        sendgrid.verify(
            settings.sendgrid_webhook_public_key,
            signature,
            timestamp,
            body,
            utcnow(),
            settings.webhook_max_age_seconds,
        )
        events = sendgrid.events(_json(body))
    except Rejected as error:
        raise _refused("sendgrid", error) from None
    except ValueError as error:
        raise HTTPException(400, str(error)) from None
    return await _apply(session, events)


@router.post("/mailgun", operation_id="receiveMailgunEvents", responses=FAILS)
async def mailgun_webhook(request: Request, session: SessionDep) -> Received:
    """Mailgun webhooks (DRIPCARE_MAILGUN_SIGNING_KEY): the HMAC of timestamp and token is
    checked, stale timestamps are refused, and each token counts once."""
    settings = get_settings()
    _configured(settings.mailgun_signing_key)
    payload = _json(await request.body())
    if not isinstance(payload, dict):
        raise HTTPException(400, "a Mailgun webhook body is a JSON object")
    now, max_age = utcnow(), settings.webhook_max_age_seconds
    try:
        token = mailgun.verify(settings.mailgun_signing_key, payload.get("signature"), now, max_age)
    except Rejected as error:
        raise _refused("mailgun", error) from None
    if not await run_in_threadpool(replays.first_use, session, "mailgun", token, now, max_age):
        return Received(replays=1)
    return await _apply(session, mailgun.events(payload))
