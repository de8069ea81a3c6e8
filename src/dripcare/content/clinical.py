"""A campaign's clinical data: red flags, the expected course and the emergency lines.

Each treatment has its own warning signs and its own normal healing, so they are content of the
campaign (`[clinical]` in its campaign.toml), not constants in code: the check-in pages, the
clinic alerts and the publish safety gate read them from the campaign version in question.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dripcare.errors import UserError
from dripcare.models import CheckInLevel

TIERS = {"emergency": CheckInLevel.EMERGENCY, "urgent": CheckInLevel.URGENT}
_CODE = re.compile(r"[a-z0-9][a-z0-9-]*")
_LINES = ("emergency_heading", "emergency_line", "pointer_line")
_FIELDS = {*_LINES, "pointer_days", "red_flags", "expected_course"}
_FLAG_FIELDS = {"code", "text", "tier", "when"}
_STAGE_FIELDS = {"before_day", "text"}


@dataclass(frozen=True)
class RedFlag:
    code: str
    text: str
    tier: str  # "emergency" (call the emergency number now) or "urgent" (call the clinic today)
    when: str | None = None  # shown only while this care value is true

    @property
    def level(self) -> CheckInLevel:
        return TIERS[self.tier]


@dataclass(frozen=True)
class CourseStage:
    """What is normal while the whole days since treatment are below `before_day`."""

    text: str
    before_day: int | None = None  # None: from the stage before it on


@dataclass(frozen=True)
class Clinical:
    emergency_heading: str
    emergency_line: str  # with {number}: the clinic's emergency number
    pointer_line: str  # with {number}: the line that opens the early emails
    pointer_days: int  # steps up to this many days after treatment open with the pointer
    red_flags: tuple[RedFlag, ...]
    expected_course: tuple[CourseStage, ...]

    def needs_pointer(self, offset_days: int) -> bool:
        return 0 <= offset_days <= self.pointer_days

    def flags_for(self, care: dict[str, Any]) -> tuple[RedFlag, ...]:
        """The flags a patient with these care values is asked about."""
        return tuple(f for f in self.red_flags if f.when is None or care.get(f.when) is True)

    def flag(self, code: str) -> RedFlag | None:
        return next((f for f in self.red_flags if f.code == code), None)

    def level_of(self, codes: list[str]) -> CheckInLevel:
        levels = {flag.level for code in codes if (flag := self.flag(code))}
        for level in (CheckInLevel.EMERGENCY, CheckInLevel.URGENT):
            if level in levels:
                return level
        return CheckInLevel.EXPECTED

    def course_on(self, days_since_treatment: int) -> str:
        """What is normal this many whole days after treatment."""
        return next(
            stage.text
            for stage in self.expected_course
            if stage.before_day is None or days_since_treatment < stage.before_day
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in (*_LINES, "pointer_days")},
            "red_flags": [
                {"code": f.code, "text": f.text, "tier": f.tier}
                | ({"when": f.when} if f.when else {})
                for f in self.red_flags
            ],
            "expected_course": [
                {"text": s.text} | ({} if s.before_day is None else {"before_day": s.before_day})
                for s in self.expected_course
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Clinical:
        return cls(
            **{name: data[name] for name in (*_LINES, "pointer_days")},
            red_flags=tuple(RedFlag(**f) for f in data["red_flags"]),
            expected_course=tuple(CourseStage(**s) for s in data["expected_course"]),
        )


def parse_clinical(raw: Any, variables: dict[str, Any], where: str) -> Clinical:
    """The `[clinical]` table of a campaign.toml, checked so that a typo cannot go unnoticed."""
    label = f"{where}: [clinical]"
    if not isinstance(raw, dict):
        raise UserError(
            f"{where}: the campaign has no [clinical] table; add its red flags, expected course "
            "and emergency lines (see README.md, 'Clinical data')"
        )
    _no_unknown(raw, _FIELDS, label)
    lines = {name: _text(raw, name, label) for name in _LINES}
    for name in ("emergency_line", "pointer_line"):
        if "{number}" not in lines[name]:
            raise UserError(f"{label}: {name} must contain {{number}}, the emergency number")
    pointer_days = raw.get("pointer_days")
    if type(pointer_days) is not int or pointer_days < 0:
        raise UserError(f"{label}: pointer_days must be a whole number ≥ 0, got {pointer_days!r}")
    return Clinical(
        **lines,
        pointer_days=pointer_days,
        red_flags=_red_flags(raw.get("red_flags"), variables, label),
        expected_course=_course(raw.get("expected_course"), label),
    )


def _red_flags(raw: Any, variables: dict[str, Any], label: str) -> tuple[RedFlag, ...]:
    flags: list[RedFlag] = []
    for _, where, entry in _entries(raw, label, "red_flags", "red flag", _FLAG_FIELDS):
        code, text = _text(entry, "code", where), _text(entry, "text", where)
        if not _CODE.fullmatch(code):
            raise UserError(f"{where}: code {code!r} may hold only a-z, 0-9 and '-'")
        if any(f.code == code for f in flags):
            raise UserError(f"{where}: code {code!r} is used twice; each flag needs its own code")
        tier = entry.get("tier")
        if tier not in TIERS:
            raise UserError(f"{where}: tier must be 'emergency' or 'urgent', got {tier!r}")
        when = entry.get("when")
        if when is not None and not isinstance(variables.get(when), bool):
            raise UserError(f"{where}: when = {when!r} must name a true/false entry of [variables]")
        flags.append(RedFlag(code, text, tier, when))
    if not any(f.tier == "emergency" for f in flags):
        raise UserError(f"{label}: at least one red flag must have tier = 'emergency'")
    return tuple(flags)


def _course(raw: Any, label: str) -> tuple[CourseStage, ...]:
    stages: list[CourseStage] = []
    for number, where, entry in _entries(
        raw, label, "expected_course", "expected course", _STAGE_FIELDS
    ):
        before_day = entry.get("before_day")
        last = number == len(raw)
        if last and before_day is not None:
            raise UserError(
                f"{where}: the last entry takes no before_day (it applies from then on)"
            )
        if not last and (type(before_day) is not int or before_day < 1):
            raise UserError(f"{where}: before_day must be a whole number ≥ 1, got {before_day!r}")
        if stages and before_day is not None and before_day <= (stages[-1].before_day or 0):
            raise UserError(f"{where}: before_day must grow from one entry to the next")
        stages.append(CourseStage(_text(entry, "text", where), before_day))
    return tuple(stages)


def _entries(
    raw: Any, label: str, table: str, entry_name: str, allowed: set[str]
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """The entries of [[clinical.`table`]], numbered from 1, each with the `where` its errors
    start with; each is checked for unknown fields as it comes, so that the first problem in
    the file is still the one reported. There must be at least one."""
    if not isinstance(raw, list) or not raw:
        raise UserError(f"{label}: add at least one [[clinical.{table}]] entry")
    for number, entry in enumerate(raw, 1):
        where = f"{label} {entry_name} {number}"
        _no_unknown(entry, allowed, where)
        yield number, where, entry


def _no_unknown(entry: Any, allowed: set[str], where: str) -> None:
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected a table, got {entry!r}")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise UserError(
            f"{where}: unknown field(s) {', '.join(unknown)}; it takes {', '.join(sorted(allowed))}"
        )


def _text(entry: dict[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: {name} is missing or empty")
    return value.strip()
