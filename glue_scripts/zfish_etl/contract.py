"""The raw tables' contracts: the fields a row must have, their types, and the named reasons a row fails.

One module, imported by the crawl (in the Dagster process) and by the Glue job (on Spark
executors): both cut a file into lines with `data_lines` and judge each line with `check_line`, so
the two can never disagree on whether a row is usable, nor on its normalized values. A declared
contract, not a schema inferred per run: a day of bad files cannot redefine the table.

Rules, per line: it must be a JSON object (`malformed_json`); every contract field present and not
null (`missing_field`); of the declared type (`wrong_type`: a string where a number belongs, a
number as a string, a fraction where an integer belongs; an integer where a double belongs is
fine); timestamps ISO 8601 with a zone (`bad_timestamp`), normalized to UTC. Fields the contract
does not declare are dropped from the row, and named, so their arrival is visible but harmless.
Rules across rows (a key seen twice) live with the crawl, which sees the whole day and the other
days' keys; it records every rejected row in the day's quarantine ledger (`ledger_key`), which the
job reads to exclude the same rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

MALFORMED_JSON = "malformed_json"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
BAD_TIMESTAMP = "bad_timestamp"
DUPLICATE_KEY = "duplicate_key"
KEY_IN_OTHER_DAY = "key_in_other_day"
NOT_A_DATA_FILE = "not_a_data_file"
REASONS = (MALFORMED_JSON, MISSING_FIELD, WRONG_TYPE, BAD_TIMESTAMP, DUPLICATE_KEY, KEY_IN_OTHER_DAY, NOT_A_DATA_FILE)

RAW_LIMIT = 65536
"""Characters of a rejected line (or stray file) kept in its quarantine entry."""

_BIGINT = (-(2**63), 2**63 - 1)
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class Field:
    """One declared field; `kind` is string, bigint, double, boolean, timestamp (an ISO string) or struct."""

    name: str
    kind: str
    fields: tuple[Field, ...] = ()

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
        """The catalog columns, in declared order."""
        return tuple((f.name, f.hive_type()) for f in self.fields)


OBSERVATIONS = Contract(
    "observations",
    (
        Field("fish_id", "string"),
        Field("image_id", "string"),
        Field("timestamp", "timestamp"),
        Field("age_days", "bigint"),
        Field("treatment", "string"),
        Field("genetic_markers", "struct", (Field("gene_a", "double"), Field("gene_b", "double"), Field("gene_c", "double"))),
        Field("length_mm", "double"),
        Field("sex", "string"),
    ),
    key="image_id",
)
OUTCOMES = Contract("outcomes", (Field("fish_id", "string"), Field("condition_developed", "boolean")))
CONTRACTS = {c.table: c for c in (OBSERVATIONS, OUTCOMES)}


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


def is_data_file(name: str) -> bool:
    """Whether a file of a day folder holds rows: `*.json`, not hidden (Hadoop skips `.` and `_` names)."""
    return name.endswith(".json") and not name.startswith((".", "_"))


def data_lines(content: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of each non-blank line; the numbers the quarantine ledger uses."""
    for number, text in enumerate(content.split("\n"), start=1):
        text = text.rstrip("\r")
        if text.strip():
            yield number, text


def utc_timestamp(value: str) -> str:
    """An ISO 8601 timestamp with a zone as UTC `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`; ValueError otherwise."""
    found = _TIMESTAMP.match(value)
    if not found:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp with a zone (e.g. 2025-05-10T09:30:00Z)")
    moment = datetime.fromisoformat(value)  # also rejects impossible dates (2025-02-30)
    if found.group(1) is None and found.group(2) == "Z":
        return value  # already the normal form (nearly every line): skip the conversion
    moment = moment.astimezone(timezone.utc)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _shown(value: object) -> str:
    """A rejected value as the quarantine reason shows it (built only on rejection: it costs a dumps)."""
    return f"{type(value).__name__} {json.dumps(value)[:80]}"


def _value(field: Field, value: object, path: str, unknown: list[str]) -> object:
    if value is None:
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
    if field.kind == "boolean" and isinstance(value, bool):
        return value
    if field.kind == "bigint" and isinstance(value, int) and not isinstance(value, bool):
        if _BIGINT[0] <= value <= _BIGINT[1]:
            return value
    if field.kind == "double" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    expected = "an ISO 8601 string" if field.kind == "timestamp" else field.kind
    raise _Rejected(WRONG_TYPE, f"{path}: {_shown(value)}, expected {expected}")


def _object(fields: tuple[Field, ...], record: dict, prefix: str, unknown: list[str]) -> dict:
    declared = {f.name for f in fields}
    unknown.extend(prefix + k for k in record if k not in declared)
    return {f.name: _value(f, record.get(f.name), prefix + f.name, unknown) for f in fields}


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def check_line(contract: Contract, text: str) -> Verdict:
    """Judge one line against the contract (rules across rows are the crawl's, see the module doc)."""
    try:
        record = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        return Verdict(MALFORMED_JSON, f"not JSON: {exc}")
    if not isinstance(record, dict):
        return Verdict(MALFORMED_JSON, f"a JSON {type(record).__name__}, not an object")
    unknown: list[str] = []
    try:
        row = _object(contract.fields, record, "", unknown)
    except _Rejected as rejected:
        return Verdict(rejected.reason, rejected.detail)
    return Verdict(None, row=row, unknown_fields=tuple(unknown))


LEDGER = "quarantine/{table}/day={day}/quarantine.jsonl"


def ledger_key(table: str, day: str) -> str:
    """Where a day's quarantine ledger lives, relative to the lake prefix (beside the table folders)."""
    return LEDGER.format(table=table, day=day)


def ledger_uri(table_location: str, day: str) -> str:
    """The ledger's URI from the raw table's location `<lake prefix>/<table>` (what the catalog holds)."""
    prefix, _, table = table_location.rstrip("/").rpartition("/")
    return f"{prefix}/{ledger_key(table, day)}"
