"""Cursor pagination: a page is the rows after the cursor (an id), plus whether more follow."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Path, Query

from dripcare.web.schemas import Page

T = TypeVar("T")

MAX_ID = 2_147_483_647  # the database's integer: larger ids cannot exist

Cursor = Annotated[
    int | None,
    Query(
        ge=0, le=MAX_ID, description="`next_cursor` of the previous page; omit for the first page"
    ),
]
IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]


def page_of(items: list[Any], limit: int) -> Page[Any]:
    """`items` holds up to limit + 1 rows: the extra one only says that more follow."""
    more = len(items) > limit
    items = items[:limit]
    return Page[Any](
        data=items, has_more=more, next_cursor=str(items[-1].id) if more and items else None
    )
