"""Request and response bodies of the REST API. Unknown fields are refused."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

T = TypeVar("T")

MAX_ID = 2_147_483_647  # the database's integer: larger ids cannot exist
ID_MESSAGE = 'an id is a whole number such as 42, not true, "42", 42.0 or +42'
_DIGITS = re.compile(r"[0-9]{1,10}")


def exact_id(value: Any) -> Any:
    """Ids are exact: pydantic's lax mode reads `true`, `"1"` and `1.0` as patient 1."""
    if type(value) is int:
        return value
    raise ValueError(ID_MESSAGE)


def id_in_url(value: Any) -> Any:
    """An id in a path or query string: digits only (lax mode also took "+1", " 1", "1_0")."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return value
    raise ValueError(ID_MESSAGE)


class Strict(BaseModel):
    """Request bodies: unknown fields and NUL characters (which PostgreSQL cannot store) are
    refused with 422."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _has_nul(data):
            raise ValueError("text must not contain NUL characters")
        return data


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class PatientIn(Strict):
    email: str = Field(max_length=320, examples=["ana@example.com"])
    first_name: str = Field("", max_length=100)
    last_name: str = Field("", max_length=100)
    timezone: str | None = Field(
        None,
        max_length=64,
        examples=["Europe/London"],
        description="IANA zone; the clinic's when absent",
    )
    locale: str = Field("en", max_length=16)
    phone: str = Field(
        "",
        max_length=40,
        examples=["+44 20 7946 0958"],
        description="International, with the country code; stored as E.164. Optional",
    )


class PatientPatch(Strict):
    email: str | None = Field(None, max_length=320)
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    timezone: str | None = Field(None, max_length=64)
    locale: str | None = Field(None, max_length=16)
    phone: str | None = Field(None, max_length=40, description='E.164; "" removes it')


class PatientOut(BaseModel):
    object: Literal["patient"] = "patient"
    id: int
    email: str
    first_name: str
    last_name: str
    timezone: str | None
    locale: str
    phone: str = Field(description='E.164, e.g. "+442079460958"; "" when not given')
    created_at: datetime


class EnrollmentIn(Strict):
    patient: Annotated[int, BeforeValidator(exact_id), Field(ge=1, le=MAX_ID)] | PatientIn = Field(
        description="An existing patient's id, or a patient to create or update by email"
    )
    campaign: str | None = Field(
        None,
        max_length=64,
        description="The campaign's slug; without it the clinic's default campaign, or its "
        "only one",
    )
    treated_at: date | datetime = Field(
        description="A date (noon local time), or a date-time; without an offset it is in "
        "the patient's time zone",
        examples=["2026-11-24T14:30:00-05:00"],
    )
    timezone: str | None = Field(None, max_length=64)
    external_id: str | None = Field(
        None, max_length=200, description="Your booking id: posting it again is safe"
    )
    treatment_attributes: dict[
        Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=64)]
    ] = Field(
        default_factory=dict,
        max_length=20,
        description="What the clinic says about the treatment; a campaign may require "
        'values, e.g. the peel campaign {"peel_depth": "superficial"}',
        examples=[{"peel_depth": "superficial"}],
    )


class EnrollmentPatch(Strict):
    treated_at: date | datetime


class BulkEnrollmentIn(Strict):
    items: list[EnrollmentIn] = Field(min_length=1, max_length=500)


class MessageSummary(BaseModel):
    object: Literal["message"] = "message"
    id: int
    step: str
    status: str
    status_reason: str
    due_at: datetime = Field(description="UTC")
    due_local: datetime = Field(description="In the patient's time zone")
    attempts: int
    sent_at: datetime | None


class EnrollmentOut(BaseModel):
    object: Literal["enrollment"] = "enrollment"
    id: int
    patient_id: int
    campaign: str
    status: str
    treated_at: datetime
    timezone: str
    external_id: str | None
    created_at: datetime
    treatment_attributes: dict[str, str] = Field(default_factory=dict)
    next_session_booked_at: datetime | None = Field(
        None, description="When the clinic marked the next session booked (UTC)"
    )
    one_off: bool = Field(False, description="The clinic marked the treatment as a one-off")
    messages: list[MessageSummary]


class Delivery(BaseModel):
    at: datetime
    outcome: str
    smtp_code: int | None
    detail: str


class MessageOut(MessageSummary):
    enrollment_id: int
    patient_id: int
    subject: str = Field(description="As the patient sees it")
    message_id: str = Field(description="The Message-ID header, the same on every attempt")
    last_error: str
    deliveries: list[Delivery]


class Page(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    type: str = Field(description="`urn:dripcare:problem:` and `code`: one per kind of error")
    title: str = Field(description="The kind of error, in words")
    status: int = Field(description="The HTTP status")
    detail: str = Field(description="What was wrong with this request, and what to do")
    instance: str = Field(description="The request's path")
    code: str = Field(description="Stable, for programs: `not_found`, `invalid_input`, …")
    errors: list[ErrorItem] | None = Field(
        None, description="422 only: each invalid field (the value sent is never echoed)"
    )


class BulkItemResult(BaseModel):
    index: int
    status: Literal["created", "existing", "error"]
    enrollment: EnrollmentOut | None = None
    error: str | None = None


class BulkOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[BulkItemResult]


class Health(BaseModel):
    status: Literal["ok", "error"]
    database: str
    broker: str


class CheckInOut(BaseModel):
    object: Literal["check_in"] = "check_in"
    id: int
    enrollment_id: int
    message_id: int
    level: Literal["fine", "expected", "urgent", "emergency"]
    answers: list[str] = Field(description="Codes of the red flags the patient ticked")
    created_at: datetime


class ErasureOut(BaseModel):
    object: Literal["erasure"] = "erasure"
    patient_id: int
    erased_at: datetime
    messages_cancelled: int = Field(description="Unsent emails cancelled by this request")
    already_erased: bool = Field(description="True when an earlier request erased the patient")


class RedFlagOut(BaseModel):
    object: Literal["red_flag"] = "red_flag"
    id: int = Field(description="The check-in that raised it")
    state: Literal["open", "acknowledged", "resolved"]
    level: Literal["urgent", "emergency"]
    answers: list[str] = Field(description="Codes of the red flags the patient ticked")
    patient_id: int
    enrollment_id: int
    step_key: str
    created_at: datetime
    escalations: int = Field(description="Rounds of escalation sent while nobody acknowledged")
    acknowledged_at: datetime | None
    acknowledged_by: str
    resolved_at: datetime | None
    resolved_by: str
    outcome: Literal["", "resume", "stop"]
    note: str


class RedFlagResolution(Strict):
    outcome: Literal["resume", "stop"] = Field(
        description="`resume` sends the held emails again; `stop` cancels them"
    )
    note: str = Field("", max_length=1000, description="What the clinic decided, and why")
