"""A published campaign version compiled for rendering, cached per process.

The send path, check-ins and previews render from a version's stored content; they need
only this, not the editor (drafts, publish, diff and their checks), which lives in
campaign_versions.py on the admin side.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.content.campaign_spec import CampaignSpec
from dripcare.content.rendering import TemplateSet
from dripcare.errors import NotFound
from dripcare.models import CampaignVersion


@dataclass(frozen=True)
class Compiled:
    """One version's content with its templates compiled, ready to render many messages."""

    number: int
    spec: CampaignSpec
    templates: TemplateSet


_compiled: OrderedDict[str, tuple[CampaignSpec, TemplateSet]] = OrderedDict()
_compiled_lock = threading.Lock()
_COMPILED_MAX = 64


def compiled(session: Session, campaign_id: int, number: int) -> Compiled:
    """A version, compiled once per process. Keyed by content digest, so never stale."""
    digest = session.scalar(
        select(CampaignVersion.digest).where(
            CampaignVersion.campaign_id == campaign_id, CampaignVersion.number == number
        )
    )
    if digest is None:
        raise NotFound(f"campaign {campaign_id} has no version {number}")
    with _compiled_lock:
        hit = _compiled.get(digest)
        if hit is not None:
            _compiled.move_to_end(digest)
    if hit is None:
        content = session.scalar(
            select(CampaignVersion.content).where(
                CampaignVersion.campaign_id == campaign_id, CampaignVersion.number == number
            )
        )
        spec = CampaignSpec.from_json(content or {})
        hit = (spec, TemplateSet.from_sources(spec.sources))
        with _compiled_lock:
            _compiled[digest] = hit
            while len(_compiled) > _COMPILED_MAX:
                _compiled.popitem(last=False)
    return Compiled(number, *hit)
