"""What the clinic says about a treatment, checked against what its campaign is made for.

A campaign declares `[requires] peel_depth = ["superficial"]`; an enrollment without that
value, or with another one, is refused before anything is written. The refusal says why the
sequence does not apply, because the clinic's next step depends on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dripcare.errors import UserError

# Why a campaign's requirement exists, where the refusal should say more than "not allowed".
WHY = {
    "peel_depth": (
        "the default sequence is for superficial peels only; medium and deep peels need "
        "the treating physician's own aftercare protocol, so enroll them in a campaign made "
        "for that protocol or none"
    ),
}


def normalize(attributes: Mapping[str, object] | None) -> dict[str, str]:
    """Names and values as clinics type them: trimmed, values lower-case ("Superficial")."""
    return {
        str(name).strip(): str(value).strip().lower()
        for name, value in (attributes or {}).items()
        if value is not None and str(value).strip()
    }


def check_attributes(
    slug: str,
    requires: Sequence[tuple[str, Sequence[str]]],
    attributes: Mapping[str, object] | None,
) -> dict[str, str]:
    """The attributes to store; UserError when the campaign requires a value they lack."""
    given = normalize(attributes)
    for name, accepted in requires:
        value = given.get(name)
        if value in {a.lower() for a in accepted}:
            continue
        choices = " or ".join(repr(a) for a in accepted)
        said = f"it was {value!r}" if value else f"no {name} was given"
        why = WHY.get(name, f"the campaign is made for {name} {choices} only")
        raise UserError(
            f"campaign {slug!r} needs {name} = {choices} and {said}: {why}. "
            f"Give {name} (API treatment_attributes, CSV column {name}, CLI "
            f"--{name.replace('_', '-')}) if the clinic classes it as {choices}."
        )
    return given
