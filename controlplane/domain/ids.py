"""Row ids as the edges accept them.

Table keys are ``INTEGER`` (32-bit on PostgreSQL, 64-bit on SQLite) except the audit log's
``BIGINT``; a larger number can name no row, and refusing it at the edge keeps it from
reaching a driver that raises on it (SQLite's OverflowError, PostgreSQL's
NumericValueOutOfRange).
"""

from __future__ import annotations

MAX_ROW_ID = 2**31 - 1
MAX_AUDIT_ID = 2**63 - 1


def parse_row_id(text: str) -> int | None:
    """The id a reference spells, or ``None`` when it is not one (a name, say).

    ASCII digits only: ``str.isdigit`` also accepts characters such as ``"³"`` that ``int``
    refuses, and an id past ``MAX_ROW_ID`` cannot exist.
    """
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ROW_ID else None
