"""PostgreSQL COPY in its text format: how a bulk import writes its many new rows.

COPY skips what an INSERT of the same rows pays per row (binding or parsing each value as a
parameter, the executor's per-statement work) and fills the table's pages in batches; the
rows still go through every index, constraint and foreign key check. The lines are built by
the caller with `field`, so values that many rows share are formatted once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy.engine import Connection

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def field(value: Any) -> str:
    """One value as COPY's text format reads it: NULL as \\N, an Enum as its value."""
    if value is None:
        return NULL
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).translate(_ESCAPES)


def line(values: Iterable[Any]) -> str:
    """A row's values as one line of COPY text, tab-separated."""
    return "\t".join(map(field, values))


def copy_lines(
    connection: Connection, table: str, columns: Sequence[str], lines: Iterable[str]
) -> None:
    """COPY lines of text (each ending in a newline) into `table` inside the connection's
    current transaction."""
    raw: Any = connection.connection.driver_connection
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write("".join(lines))
