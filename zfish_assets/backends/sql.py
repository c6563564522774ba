"""SQL spelled the same for DuckDB and Athena (Trino): identifiers, string literals, a day filter.

The checks' SQL and DuckDB's views are built from these alone, so what is proven on DuckDB and on
Trino is one text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def identifier(name: str) -> str:
    """A table or column name checked to be a plain identifier, quoted for SQL."""
    if not _IDENT.match(name):
        raise ValueError(f"{name!r} is not a plain SQL identifier")
    return f'"{name}"'


def sql_string(value: str) -> str:
    """`value` as an SQL string literal (the same in DuckDB and Athena)."""
    return "'" + value.replace("'", "''") + "'"


def qualified(database: str, table: str) -> str:
    """`"database"."table"`, as both engines name a catalog table."""
    return f"{identifier(database)}.{identifier(table)}"


def in_days(column: str, days: Sequence[str] | None) -> str:
    """SQL keeping the rows of `days` (every row when None), spelled the same for DuckDB and Athena."""
    if days is None:
        return "TRUE"
    return f"{column} IN ({', '.join(sql_string(d) for d in days)})" if days else "FALSE"
