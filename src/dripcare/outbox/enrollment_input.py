"""What a clinic sends to enroll a patient, as the API, the CLI and a CSV import give it.

Checking it (email, time zone, treatment time, attributes) is done by `enroll` and
`bulk_enroll` against what the database knows; here only the form of the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class EnrollRequest:
    clinic_id: int
    email: str
    treated_at: str | datetime
    first_name: str = ""
    last_name: str = ""
    campaign: str | None = None  # None: the clinic's default (campaigns.slug_for_unnamed)
    timezone: str | None = None
    external_id: str | None = None
    locale: str = "en"
    phone: str = ""  # any form normalize_phone takes; "" leaves a known patient's as it is
    # what the clinic says about the treatment, e.g. {"peel_depth": "superficial"}
    attributes: dict[str, str] = field(default_factory=dict)


def clean_external_id(external_id: str | None) -> str | None:
    """The clinic's own id for the treatment; blank means none (it then matches nothing)."""
    return (external_id or "").strip() or None
