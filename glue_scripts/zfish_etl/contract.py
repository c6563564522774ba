"""The raw tables' contracts: the fields a row must have, their domains, and the named reasons a row fails.

Imported by the crawl (in the Dagster process) and by the Glue job (on Spark executors), which
judge each line against it with `judging.judge_line`, so the two can never disagree on whether a
row is usable, nor on its normalized values. A declared contract, not a schema inferred per run: a
day of bad files cannot redefine the table.

Schema evolution is declared, not inferred: a struct field with an `open_kind` (observations'
`genetic_markers`) takes new members as they arrive. A new gene is a new nullable double column
(`evolve`): in the catalog as a crawler's table update would add it, then in the Hudi table, the
query side's views and the training set; rows without it hold null; a removed gene keeps its
column, null from then on. A new member whose name is not a plain lower-case identifier is refused
(`refused_members`: it would not survive Glue, Hive and Athena, which fold names to lower case),
and stays an unknown field. Other fields the contract does not declare are dropped from the row,
and named, so their arrival is visible but harmless. Rules across rows (a key seen twice) live with the crawl, which sees the
whole day and the other days' keys; it records every rejected row in the day's quarantine ledger
(`ledger.py`), which the job reads to exclude the same rows.

The rules that judge a line against a contract are `judging.py`'s: both sides import exactly
those two files, so no rule can exist on one side only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

MALFORMED_JSON = "malformed_json"
NOT_UTF8 = "not_utf8"
DUPLICATE_FIELD = "duplicate_field"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "out_of_range"
BAD_TIMESTAMP = "bad_timestamp"
EMPTY_KEY = "empty_key"
DUPLICATE_KEY = "duplicate_key"
KEY_IN_OTHER_DAY = "key_in_other_day"
NOT_A_DATA_FILE = "not_a_data_file"
NESTED_FILE = "nested_file"
MULTILINE_JSON = "multiline_json"
UNJUDGEABLE = "unjudgeable"
"""The last resort of the firewall: judging raised something no rule names (a bug to report; the
line is kept in quarantine, never lost, and the day still flows)."""
REASONS = (MALFORMED_JSON, NOT_UTF8, DUPLICATE_FIELD, MISSING_FIELD, WRONG_TYPE, OUT_OF_RANGE, BAD_TIMESTAMP,
           EMPTY_KEY, DUPLICATE_KEY, KEY_IN_OTHER_DAY, NOT_A_DATA_FILE, NESTED_FILE, MULTILINE_JSON, UNJUDGEABLE)

RAW_LIMIT = 65536
"""Characters of a rejected line (or stray file) kept in its quarantine entry."""
MAX_DEPTH = 64
"""Deepest nesting of arrays and objects a line may have (the contract's deepest field is at 2)."""

BIGINT_RANGE = (-(2**63), 2**63 - 1)
"""Integers: a signed 64-bit value, what Spark's LongType, Parquet's INT64 and DuckDB's BIGINT hold."""
EXACT_INTEGER_DOUBLE = 2**53
"""An integer given for a double must be one a double holds exactly (|n| <= 2^53, or a power-of-two
multiple beyond that): the table stores a double, so a larger one would come back changed."""
TIMESTAMP_RANGE = (datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(2262, 4, 11, tzinfo=timezone.utc))
"""Timestamps, in UTC, from (inclusive) .. to (exclusive). Before 1900 Spark rebases Parquet
timestamps between calendars, and reading them back fails the job; from 2262-04-11 on,
nanosecond timestamps (pandas, Arrow's `ns` unit in a training environment) overflow."""
DOMAINS = {
    "string": "any Unicode text (no unpaired surrogate); the table's key also non-empty",
    "bigint": f"an integer in [{BIGINT_RANGE[0]}, {BIGINT_RANGE[1]}]",
    "double": "a finite number (no overflow to infinity, no non-zero literal that rounds to 0); "
              "an integer only if a double holds it exactly (|n| <= 2^53)",
    "boolean": "true or false",
    "timestamp": f"ISO 8601 with a zone, in [{TIMESTAMP_RANGE[0]:%Y-%m-%d}, {TIMESTAMP_RANGE[1]:%Y-%m-%d}) UTC",
}
"""Each kind's domain, as the quarantine's details and docs/contract.md's table state it."""

MEMBER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
"""What a member added by schema evolution may be called: it becomes a column everywhere."""


@dataclass(frozen=True)
class Field:
    """One declared field; `kind` is string, bigint, double, boolean, timestamp (an ISO string) or struct.

    `open_kind` (structs only): members the contract does not declare are added as columns of this
    kind when they arrive (schema evolution). `optional`: absent or null is fine (an added member).
    `description`: what the value means, shown on the column in Dagster's UI and the catalog.
    """

    name: str
    kind: str
    fields: tuple[Field, ...] = ()
    open_kind: str | None = None
    optional: bool = False
    description: str = ""

    def hive_type(self) -> str:
        """The catalog type: timestamps stay strings in the raw tables (the job casts them)."""
        if self.kind == "struct":
            return "struct<" + ",".join(f"{f.name}:{f.hive_type()}" for f in self.fields) + ">"
        return "string" if self.kind == "timestamp" else self.kind


@dataclass(frozen=True)
class Contract:
    """A raw table's declared fields, and the field unique across all its days (None: rows may repeat)."""

    table: str
    fields: tuple[Field, ...]
    key: str | None = None

    def columns(self) -> tuple[tuple[str, str], ...]:
        """The catalog columns, in declared order (added members after the declared ones)."""
        return tuple((f.name, f.hive_type()) for f in self.fields)

    def descriptions(self) -> dict[str, str]:
        """Each column's description, struct members under their flattened names (the joined table's
        columns), an added member described by its struct."""
        described = {f.name: f.description for f in self.fields}
        for f in self.fields:
            for m in f.fields:
                described[m.name] = m.description or f"{f.description}: member {m.name} (added as it arrived)"
        return described

    def members(self) -> dict[str, tuple[str, ...]]:
        """The added members of each open struct: what evolution gave this contract beyond its declaration."""
        return {f.name: tuple(m.name for m in f.fields if m.optional) for f in self.fields if f.open_kind}

    def evolve(self, members: Mapping[str, Sequence[str]]) -> Contract:
        """This contract with `members` (struct -> names) added to its open structs, as optional
        members of the struct's `open_kind`; names already there, or refused, are left out."""
        def grown(f: Field) -> Field:
            have = {m.name for m in f.fields}
            new = [n for n in members.get(f.name, ()) if n not in have and not _refused(n)]
            return replace(f, fields=(*f.fields, *(Field(n, f.open_kind, optional=True) for n in new))) if new else f

        return replace(self, fields=tuple(grown(f) if f.open_kind else f for f in self.fields))

    def evolve_from_columns(self, columns: Sequence[tuple[str, str]]) -> Contract:
        """This contract with the members a catalog's columns (a table evolved before) hold beyond it."""
        types = dict(columns)
        return self.evolve({f.name: [n for n, _ in struct_fields(types[f.name])]
                            for f in self.fields if f.open_kind and types.get(f.name, "").startswith("struct<")})

    def new_members(self, unknown_fields: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The members of open structs among a day's unknown field paths (`genetic_markers.gene_d`)."""
        open_structs = {f.name for f in self.fields if f.open_kind}
        found: dict[str, set[str]] = {}
        for path in unknown_fields:
            struct, dot, member = path.partition(".")
            if dot and struct in open_structs and "." not in member:
                found.setdefault(struct, set()).add(member)
        return {s: tuple(sorted(m)) for s, m in sorted(found.items())}

    def refused_members(self, unknown_fields: Iterable[str]) -> dict[str, str]:
        """Each new open-struct member that cannot become a column, with why."""
        return {f"{s}.{m}": _refused(m) for s, names in self.new_members(unknown_fields).items() for m in names
                if _refused(m)}


OBSERVATIONS = Contract(
    "observations",
    (
        Field("fish_id", "string", description="The fish imaged; one fish has many images"),
        Field("image_id", "string", description="The image, unique across all days: the joined table's record key"),
        Field("timestamp", "timestamp", description="When the image was taken (UTC): the upsert's precombine field"),
        Field("age_days", "bigint", description="The fish's age in days when imaged"),
        Field("treatment", "string", description="The treatment group of the fish"),
        Field("genetic_markers", "struct",
              (Field("gene_a", "double", description="Expression level of gene a"),
               Field("gene_b", "double", description="Expression level of gene b"),
               Field("gene_c", "double", description="Expression level of gene c")),
              open_kind="double", description="Expression levels by gene; a new gene becomes a new column"),
        Field("length_mm", "double", description="The fish's length in millimetres when imaged"),
        Field("sex", "string", description="The fish's sex as recorded by the lab"),
    ),
    key="image_id",
)
OUTCOMES = Contract("outcomes", (
    Field("fish_id", "string", description="The fish the label is for"),
    Field("condition_developed", "boolean", description="Whether the fish developed the condition (the label)"),
))
CONTRACTS = {c.table: c for c in (OBSERVATIONS, OUTCOMES)}


RESERVED_COLUMNS = frozenset({"day", "outcome_day"} | {f.name for c in CONTRACTS.values() for f in c.fields})
"""Column names of the joined table that an added member would collide with once flattened."""


def _refused(member: str) -> str:
    """Why `member` cannot be added as a column ("" when it can)."""
    if not MEMBER_NAME.match(member):
        return "not a lower-case identifier (a-z, 0-9, _; at most 63 characters)"
    return f"the joined table already has a column {member!r}" if member in RESERVED_COLUMNS else ""


def struct_fields(hive: str) -> list[tuple[str, str]]:
    """(name, type) of each field of a `struct<...>` catalog type, nested structs kept whole."""
    fields, depth, current = [], 0, ""
    for ch in hive.strip()[len("struct<"):-1]:
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            fields.append(current)
            current = ""
        else:
            current += ch
    fields.append(current)
    return [(f.split(":", 1)[0], f.split(":", 1)[1]) for f in fields if f]


def contract_for(table: str) -> Contract:
    """The contract of a raw table; a KeyError naming the known tables otherwise."""
    if table not in CONTRACTS:
        raise KeyError(f"no contract for table {table!r}; contracts exist for {', '.join(CONTRACTS)}")
    return CONTRACTS[table]
