"""The models refuse a value outside an enum column's StrEnum instead of storing it."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from dripcare.db import session_scope
from dripcare.models import AlertChannel, ClinicAlert
from tests.factories import make_clinic


def test_an_alert_channel_outside_alert_channel_is_refused(database: str) -> None:
    clinic = make_clinic()
    with pytest.raises(StatementError, match="sms"), session_scope() as session:
        session.add(ClinicAlert(clinic_id=clinic, channel="sms"))
        session.flush()
    with session_scope() as session:
        session.add(ClinicAlert(clinic_id=clinic, channel="webhook"))
    with session_scope() as session:
        stored = session.scalars(select(ClinicAlert)).one()
        assert stored.channel is AlertChannel.WEBHOOK
