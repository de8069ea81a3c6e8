"""A campaign's content as plain data: what a directory on disk, a version and an edit share."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from dripcare.content.clinical import Clinical

PRE_CARE_FIELDS = ("stop_now", "late_booking", "skip_if")


@dataclass(frozen=True)
class StepSpec:
    key: str
    offset_days: int
    offset_hours: int
    offset_minutes: int
    send_time: str | None
    subject: str
    preheader: str
    template: str
    checkin: bool
    send_until: str | None = None  # "1d": how late after its planned time it may still go
    safety_only: bool = False  # still sent while a red flag holds the others (red_flags.py)
    # Pre-care (negative offsets, enrollments.py): a stop-now email that a late booking missed
    # is merged into the campaign's late_booking email, sent at enrollment instead.
    stop_now: bool = False
    late_booking: bool = False
    skip_if: tuple[str, ...] = ()  # skip_conditions.SkipCondition values


@dataclass(frozen=True)
class CampaignSpec:
    slug: str
    name: str
    treatment: str
    description: str
    variables: dict[str, Any]
    steps: list[StepSpec]
    sources: dict[str, str] = field(repr=False)
    clinical: Clinical = field(repr=False)  # red flags, expected course, emergency lines
    # Treatment attributes an enrollment must have, e.g. {"peel_depth": ["superficial"]}.
    requires: dict[str, list[str]] = field(default_factory=dict)

    def step(self, key: str) -> StepSpec | None:
        return next((s for s in self.steps if s.key == key), None)

    def to_json(self) -> dict[str, Any]:
        data = {
            **dataclasses.asdict(self),
            "sources": dict(sorted(self.sources.items())),
            "clinical": self.clinical.to_json(),
        }
        for step in data["steps"]:
            if step["send_until"] is None:  # so content stored before send_until keeps its digest
                del step["send_until"]
            if not step["safety_only"]:  # likewise for content stored before safety_only
                del step["safety_only"]
            for name in PRE_CARE_FIELDS:  # and before pre-care
                if not step[name]:
                    del step[name]
                elif name == "skip_if":
                    step[name] = list(step[name])
        if not data["requires"]:
            del data["requires"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CampaignSpec:
        steps = [
            StepSpec(**{**step, "skip_if": tuple(step.get("skip_if", ()))})
            for step in data["steps"]
        ]
        clinical = Clinical.from_json(data["clinical"])
        requires = {k: list(v) for k, v in data.get("requires", {}).items()}
        return cls(
            **{
                **data,
                "steps": steps,
                "sources": dict(data["sources"]),
                "clinical": clinical,
                "requires": requires,
            }
        )

    def digest(self) -> str:
        """Identifies the content: equal digests render equal emails."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()
