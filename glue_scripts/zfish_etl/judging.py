"""Judging a raw line against its table's contract (`contract.py`): the one judge on both sides.

The crawl (in the Dagster process) and the Glue job (on Spark executors) both cut a file's bytes
into lines with `data_lines` and judge each line with `judge_line`, so the two can never disagree
on whether a row is usable, nor on its normalized values.

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
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from glue_scripts.zfish_etl.contract import (
    BAD_TIMESTAMP, BIGINT_RANGE, DOMAINS, DUPLICATE_FIELD, EMPTY_KEY, EXACT_INTEGER_DOUBLE, MALFORMED_JSON, MAX_DEPTH,
    MISSING_FIELD, NOT_UTF8, OUT_OF_RANGE, RAW_LIMIT, TIMESTAMP_RANGE, UNJUDGEABLE, WRONG_TYPE, Contract, Field,
)

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})\Z", re.ASCII)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_BOM = b"\xef\xbb\xbf"
_BLANK = b" \t\r"  # JSON's whitespace on a line (the newline is the separator)


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


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "true or false",
               type(None): "null"}
"""The JSON names of what a line holds (Python's names, `NoneType` or `list`, mean nothing to a lab)."""


def _not_json(text: str, exc: ValueError) -> str:
    """Why a line is not JSON, in the lab's terms where a known cause explains it (a lone carriage return
    ending lines, a byte-order mark starting a line that is not the file's first), else the parser's words."""
    if "\r" in text.rstrip("\r") and str(exc).startswith("Extra data"):
        return ("lines end in a carriage return alone (CR, an old Mac export), so the file reads as one line: "
                f"end each line with LF or CRLF (not JSON: {exc})")
    if text.startswith("\ufeff"):
        return ("the line starts with a byte-order mark (U+FEFF), which only a file's first line may carry "
                "(files joined with their marks?): remove it")
    return f"not JSON: {exc}"


def _parse(text: str) -> dict:
    try:
        record = json.loads(text, parse_constant=_no_constant, parse_float=_float, parse_int=_int,
                            object_pairs_hook=_unique_fields)
    except RecursionError:
        raise _Rejected(MALFORMED_JSON, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise _Rejected(MALFORMED_JSON, _not_json(text, exc)) from None
    if not isinstance(record, dict):
        raise _Rejected(MALFORMED_JSON, f"a JSON {_JSON_KINDS.get(type(record), 'value')}, not an object: each line "
                                        "holds one object ({...})")
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
