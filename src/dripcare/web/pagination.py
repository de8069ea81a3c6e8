"""Cursor pagination: a page is the rows after the cursor (an id), plus whether more follow."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Path, Query
from pydantic import BeforeValidator

from dripcare.web.schemas import MAX_ID, Page, id_in_url

T = TypeVar("T")

UrlId = BeforeValidator(id_in_url)
Cursor = Annotated[
    int | None,
    UrlId,
    Query(
        ge=0, le=MAX_ID, description="`next_cursor` of the previous page; omit for the first page"
    ),
]
IdFilter = Annotated[int | None, UrlId, Query(ge=1, le=MAX_ID)]
Id = Annotated[int, UrlId, Path(ge=1, le=MAX_ID)]


Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]


def page_of(items: list[Any], limit: int) -> Page[Any]:
    """`items` holds up to limit + 1 rows: the extra one only says that more follow."""
    more = len(items) > limit
    items = items[:limit]
    return Page[Any](
        data=items, has_more=more, next_cursor=str(items[-1].id) if more and items else None
    )
