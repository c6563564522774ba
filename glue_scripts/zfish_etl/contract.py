"""The raw tables' contracts: the fields a row must have, their domains, and the named reasons a row fails.

One module, imported by the crawl (in the Dagster process) and by the Glue job (on Spark
executors): both cut a file's bytes into lines with `data_lines` and judge each line with
`judge_line`, so the two can never disagree on whether a row is usable, nor on its normalized
values. A declared contract, not a schema inferred per run: a day of bad files cannot redefine
the table.

The contract is the firewall between what a lab delivers and the engines downstream (Spark,
Parquet, Hudi, DuckDB, Athena): every value it accepts is one that each of them carries exactly,
and judging a line never raises, whatever its bytes. Rules, per line:

- its bytes are UTF-8 (`not_utf8`; a byte-order mark at the start of a file is dropped, as
  DuckDB and Athena drop it); a string whose escapes name no character (an unpaired surrogate
  such as `\\ud800`) is `not_utf8` too, since it cannot be stored as UTF-8;
- it is one JSON object (`malformed_json`; also NaN/Infinity, trailing text, nesting deeper than
  `MAX_DEPTH`), with no field name twice at any level (`duplicate_field`; names that differ only
  in case count as the same, as Athena's JSON SerDe matches them);
- every contract field present and not null (`missing_field`), of the declared type
  (`wrong_type`: a string where a number belongs, a number as a string, a fraction where an
  integer belongs; an integer where a double belongs is fine), and inside its domain
  (`out_of_range`, see `DOMAINS`); timestamps ISO 8601 with a zone (`bad_timestamp`), normalized
  to UTC; the table's key a non-empty string (`empty_key`).

Schema evolution is declared, not inferred: a struct field with an `open_kind` (observations'
`genetic_markers`) takes new members as they arrive. A new gene is a new nullable double column
(`evolve`): in the catalog as a crawler's table update would add it, then in the Hudi table, the
query engines' views and the training set; rows without it hold null; a removed gene keeps its
column, null from then on. A new member whose name is not a plain lower-case identifier is refused
(`refused_members`: it would not survive Glue, Hive and Athena, which fold names to lower case),
and stays an unknown field. Other fields the contract does not declare are dropped from the row,
and named, so their arrival is visible but harmless. Rules across rows (a key seen twice) live with the crawl, which sees the
whole day and the other days' keys; it records every rejected row in the day's quarantine ledger
(`ledger.py`), which the job reads to exclude the same rows.

Its length (~450 lines) is deliberate: the rules of a line are read together, and both sides
import exactly this one file, so no rule can exist on one side only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
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

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_BOM = b"\xef\xbb\xbf"
_BLANK = b" \t\r"  # JSON's whitespace on a line (the newline is the separator)


MEMBER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
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


@dataclass(frozen=True)
class Verdict:
    """What one line is: a usable `row` (normalized, contract fields only), or a `reason` with a `detail`."""

    reason: str | None
    detail: str = ""
    row: dict | None = None
    unknown_fields: tuple[str, ...] = ()


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class _OutOfRange:
    """A number literal no engine carries exactly (parsed lazily: only a declared field rejects it)."""

    literal: str
    why: str


def is_data_file(name: str) -> bool:
    """Whether a file of a day folder holds rows: `*.json` directly in the folder, not hidden (Hadoop
    skips `.` and `_` names), its name printable text (not bytes that are not UTF-8, no control
    character: every engine and the ledger must be able to name it). A name with `/` is a file in a
    subfolder: never read (`nested_file`)."""
    return name.endswith(".json") and not name.startswith((".", "_")) and "/" not in name and name.isprintable()


def data_lines(content: bytes) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes) of each non-blank line; the numbers the quarantine ledger uses.

    Lines end at `\\n` (a `\\r` before it is dropped); a UTF-8 byte-order mark at the very start is
    dropped. Blank means only spaces, tabs and `\\r`: JSON's own whitespace.
    """
    if content.startswith(_BOM):
        content = content[len(_BOM):]
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if raw.strip(_BLANK):
            yield number, raw.removesuffix(b"\r")


def shown_raw(raw: bytes) -> str:
    """A line as its quarantine entry's `raw` shows it: the text, bytes that are not UTF-8 as `\\xNN`."""
    return raw.decode("utf-8", errors="backslashreplace")[:RAW_LIMIT]


def utc_timestamp(value: str) -> str:
    """An ISO 8601 timestamp with a zone, inside `TIMESTAMP_RANGE`, as UTC `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`.

    ValueError when it is not one (`bad_timestamp`); OverflowError when it is one outside the
    range (`out_of_range`).
    """
    found = _TIMESTAMP.match(value)
    if not found:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp with a zone (e.g. 2025-05-10T09:30:00Z)")
    try:
        moment = datetime.fromisoformat(value)  # also rejects impossible moments (2025-02-30, 24:00:00)
    except ValueError as exc:  # Python's words ("hour must be in 0..23") name no value: name it
        raise ValueError(f"{value!r} is not a real date and time ({exc})") from None
    try:
        inside = TIMESTAMP_RANGE[0] <= moment < TIMESTAMP_RANGE[1]
    except OverflowError:  # its zone takes it past year 1 or 9999
        inside = False
    if not inside:
        raise OverflowError(f"{value!r} is outside {TIMESTAMP_RANGE[0]:%Y-%m-%d} .. {TIMESTAMP_RANGE[1]:%Y-%m-%d} "
                            "(exclusive) in UTC, the range every engine downstream carries")
    if found.group(1) is None and found.group(2) == "Z":
        return value  # already the normal form (nearly every line): skip the conversion
    moment = moment.astimezone(timezone.utc)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _shown(value: object) -> str:
    """A rejected value as the quarantine reason shows it (built only on rejection: it costs a dumps)."""
    if isinstance(value, _OutOfRange):
        return f"number {value.literal[:80]}"
    return f"{type(value).__name__} {json.dumps(value)[:80]}"


def _double(field: Field, value: object, path: str) -> float:
    if isinstance(value, _OutOfRange):
        raise _Rejected(OUT_OF_RANGE, f"{path}: {_shown(value)} {value.why}; expected {DOMAINS['double']}")
    if isinstance(value, int):
        exact = abs(value) <= EXACT_INTEGER_DOUBLE or (abs(value) < 2**1024 and int(float(value)) == value)
        if not exact:
            raise _Rejected(OUT_OF_RANGE, f"{path}: integer {str(value)[:80]} is not exactly a double; "
                                          f"expected {DOMAINS['double']}")
        return float(value)
    return value


def _value(field: Field, value: object, path: str, unknown: list[str]) -> object:
    if value is None:
        if field.optional:
            return None
        raise _Rejected(MISSING_FIELD, f"{path} is missing or null")
    if field.kind == "struct":
        if not isinstance(value, dict):
            raise _Rejected(WRONG_TYPE, f"{path}: {_shown(value)}, expected an object")
        return _object(field.fields, value, path + ".", unknown)
    if field.kind in ("string", "timestamp") and isinstance(value, str):
        if field.kind == "string":
            return value
        try:
            return utc_timestamp(value)
        except ValueError as exc:
            raise _Rejected(BAD_TIMESTAMP, f"{path}: {exc}") from None
        except OverflowError as exc:
            raise _Rejected(OUT_OF_RANGE, f"{path}: {exc}") from None
    if field.kind == "boolean" and isinstance(value, bool):
        return value
    if field.kind == "bigint" and (isinstance(value, int) and not isinstance(value, bool)
                                   or isinstance(value, _OutOfRange) and value.why == "is too long"):
        if isinstance(value, int) and BIGINT_RANGE[0] <= value <= BIGINT_RANGE[1]:
            return value
        raise _Rejected(OUT_OF_RANGE, f"{path}: {_shown(value)}, expected {DOMAINS['bigint']}")
    if field.kind == "double" and isinstance(value, (int, float, _OutOfRange)) and not isinstance(value, bool):
        return _double(field, value, path)
    expected = "an ISO 8601 string" if field.kind == "timestamp" else field.kind
    raise _Rejected(WRONG_TYPE, f"{path}: {_shown(value)}, expected {expected}")


def _object(fields: tuple[Field, ...], record: dict, prefix: str, unknown: list[str]) -> dict:
    declared = {f.name for f in fields}
    unknown.extend(prefix + k for k in record if k not in declared)
    return {f.name: _value(f, record.get(f.name), prefix + f.name, unknown) for f in fields}


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _float(literal: str) -> float | _OutOfRange:
    number = float(literal)
    if number in (float("inf"), float("-inf")):
        return _OutOfRange(literal, "overflows a double")
    if number == 0 and any(c in "123456789" for c in literal.lower().partition("e")[0]):
        return _OutOfRange(literal, "underflows a double to 0")
    return number


def _int(literal: str) -> int | _OutOfRange:
    # Beyond 400 digits it is outside every domain (a double ends near 1.8e308); Python would
    # refuse beyond 4300 digits anyway.
    return int(literal) if len(literal) <= 400 else _OutOfRange(literal, "is too long")


def _unique_fields(pairs: list[tuple[str, object]]) -> dict:
    record = dict(pairs)
    if len(record) != len(pairs) or len({k.casefold() for k in record}) != len(record):
        seen: dict[str, str] = {}
        for name, _ in pairs:
            if name.casefold() in seen:
                raise _Rejected(DUPLICATE_FIELD, f"field {json.dumps(name)} appears twice in one object "
                                                 f"(as {json.dumps(seen[name.casefold()])}; names are matched "
                                                 "regardless of case)")
            seen[name.casefold()] = name
    return record


def _unpaired_surrogate(value: object) -> str | None:
    """A path to a string (value or field name) holding an unpaired surrogate, if any."""
    if isinstance(value, str):
        return "" if any("\ud800" <= c <= "\udfff" for c in value) else None
    if isinstance(value, dict):
        for name, item in value.items():
            if _unpaired_surrogate(name) is not None:
                return f"field name {json.dumps(name)}"
            found = _unpaired_surrogate(item)
            if found is not None:
                return found or name
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _unpaired_surrogate(item)
            if found is not None:
                return found or f"[{index}]"
    return None


def _depth(value: object, limit: int) -> bool:
    """Whether `value` nests no deeper than `limit` arrays and objects."""
    if isinstance(value, (dict, list)):
        if limit == 0:
            return False
        items = value.values() if isinstance(value, dict) else value
        return all(_depth(item, limit - 1) for item in items)
    return True


def _parse(text: str) -> dict:
    try:
        record = json.loads(text, parse_constant=_no_constant, parse_float=_float, parse_int=_int,
                            object_pairs_hook=_unique_fields)
    except RecursionError:
        raise _Rejected(MALFORMED_JSON, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise _Rejected(MALFORMED_JSON, f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise _Rejected(MALFORMED_JSON, f"a JSON {type(record).__name__}, not an object")
    if text.count("[") + text.count("{") > MAX_DEPTH and not _depth(record, MAX_DEPTH):
        raise _Rejected(MALFORMED_JSON, f"nested deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(text):  # cheap test first: only \uD8.. escapes can make one
        where = _unpaired_surrogate(record)
        if where is not None:
            raise _Rejected(NOT_UTF8, f"{where}: an unpaired surrogate escape (\\uD800-\\uDFFF) is not a "
                                      "character and cannot be stored as UTF-8")
    return record


def check_line(contract: Contract, text: str) -> Verdict:
    """Judge one decoded line against the contract (rules across rows are the crawl's, see the module doc).

    Never raises: anything no rule names is `unjudgeable`, kept in quarantine.
    """
    try:
        record = _parse(text)
        unknown: list[str] = []
        row = _object(contract.fields, record, "", unknown)
        if contract.key and row[contract.key] == "":
            raise _Rejected(EMPTY_KEY, f"{contract.key} is the empty string: every image needs an id")
        return Verdict(None, row=row, unknown_fields=tuple(unknown))
    except _Rejected as rejected:
        return Verdict(rejected.reason, rejected.detail)
    except Exception as exc:  # the firewall's last line: report, never crash the day
        return Verdict(UNJUDGEABLE, f"{type(exc).__name__}: {exc}"[:500])


def judge_line(contract: Contract, raw: bytes) -> Verdict:
    """Judge one line's bytes (a line of `data_lines`): strict UTF-8 first, then `check_line`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Verdict(NOT_UTF8, f"byte {exc.start + 1} ({raw[exc.start:exc.start + 1].hex()}) is not UTF-8: "
                                 "re-export the file as UTF-8")
    return check_line(contract, text)
