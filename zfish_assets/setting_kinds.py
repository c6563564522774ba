"""The kinds of value a `ZFISH_*` setting takes: one parser per kind, each raising
`ValueError("<what was expected>")` (or `ValueError("is <what is wrong>")` where the form is right and the
value is not, e.g. a date that does not exist), which `settings.Setting.parse` completes with the variable and
the value. Each kind has a domain, bounds included: a number or a day that parses but that the code after it
cannot hold (a date past `date.max`, a sleep no clock ends) is refused here, where it enters.

A value is judged here, when it is read, by the rules of the service it reaches (S3's bucket names,
IAM's role ARNs, Glue's and Athena's names, URLs botocore can call), so a bad one stops the command in
a line naming the variable, before it fails later on AWS or is written into a policy as a malformed
ARN or a wildcard (`*` or `?` in a name is a wildcard in every ARN a policy names).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar, get_args
from urllib.parse import urlsplit

from glue_scripts.zfish_etl import days
from glue_scripts.zfish_etl.contract import TIMESTAMP_RANGE

T = TypeVar("T")


def text(value: str) -> str:
    return value.strip()


def one_of(choices: Any) -> Callable[[str], Any]:
    """A parser accepting the values of a `Literal` type or a string `Enum` (its choices, in order, in the
    error); an Enum's parse returns its member."""
    is_enum = isinstance(choices, type) and issubclass(choices, Enum)
    allowed = tuple(member.value for member in choices) if is_enum else get_args(choices)

    def parse(value: str) -> Any:
        if value.strip() not in allowed:
            raise ValueError(f"one of {', '.join(allowed)}")
        return choices(value.strip()) if is_enum else value.strip()
    return parse


def optional(parse: Callable[[str], T]) -> Callable[[str], T | None]:
    """Blank means "not chosen" (None), e.g. a deployment part its deployment decides."""
    return lambda value: parse(value) if value.strip() else None


def flag(value: str) -> bool:
    if value.strip().lower() not in ("true", "false"):
        raise ValueError("true or false")
    return value.strip().lower() == "true"


@dataclass(frozen=True)
class IntegerParser:
    """A parser of integers in [minimum, maximum]. The bounds are kept as fields so code that judges integers
    given another way (the simulator's keyword arguments, a command's flags) uses the same domain."""

    minimum: int
    maximum: int

    @property
    def expected(self) -> str:
        return f"an integer from {self.minimum:,} to {self.maximum:,}".replace(",", "_")

    def accepts(self, number: object) -> bool:
        """Whether `number` (already a Python value) is in this parser's domain; bools are not integers."""
        return isinstance(number, int) and not isinstance(number, bool) and self.minimum <= number <= self.maximum

    def __call__(self, value: str) -> int:
        try:
            number = int(value)
        except ValueError:  # also a text of more digits than Python converts
            raise ValueError(self.expected) from None
        if not self.accepts(number):
            raise ValueError(self.expected)
        return number


def integer(minimum: int, maximum: int) -> IntegerParser:
    """A parser of integers in [minimum, maximum]: every count has an upper bound, past which it is a typo that
    would run for days, fill the disk or overflow the date arithmetic it reaches."""
    return IntegerParser(minimum, maximum)


@dataclass(frozen=True)
class NumberParser:
    """A parser of numbers in [low, high]; NaN and infinity are in no range (an infinite timeout would reach
    Glue's `Timeout` and every wait as a number no clock ends)."""

    low: float
    high: float
    expected: str

    def __call__(self, value: str) -> float:
        try:
            parsed = float(value)
        except ValueError:
            parsed = float("nan")
        if not (math.isfinite(parsed) and self.low <= parsed <= self.high):
            raise ValueError(self.expected)
        return parsed


def number(low: float, high: float, expected: str) -> NumberParser:
    """A parser of numbers in [low, high]."""
    return NumberParser(low, high, expected)


MAX_DAYS = 3660
"""The longest span of days a setting names (an evening's window, a label's delay): ten years. More is a typo
that would make every evening read years of partitions."""
WEEK_S = 7 * 24 * 3600
"""The longest wait or interval in seconds: Glue's own longest job `Timeout`. A larger one is a typo that
would hang a run (and `time.sleep` refuses past about 292 years with an OverflowError)."""
seconds = number(0.0, WEEK_S, f"a number of seconds from 0 to {WEEK_S} (a week)")
poll_seconds = number(0.01, WEEK_S, f"a number of seconds from 0.01 to {WEEK_S} (a week)")
"""A poll's interval: not 0, which would ask the service in a loop without a pause (throttled, and billed)."""
share = number(0.0, 1.0, "a share between 0 and 1")


def day(value: str) -> date:
    """A `YYYY-MM-DD` day (`glue_scripts/zfish_etl/days.py` says what passes, and the domain of days)."""
    problem = days.day_problem(value.strip())
    if problem:
        raise ValueError(problem.removeprefix("not ") if problem.startswith("not ") else f"is {problem}")
    return date.fromisoformat(value.strip())


def instant(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("an ISO 8601 date-time, e.g. 2025-05-10T18:00:00Z") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if not TIMESTAMP_RANGE[0] <= parsed < TIMESTAMP_RANGE[1]:  # compared, not converted: no overflow near date.max
        raise ValueError(f"is outside the days zfish handles, {days.FIRST_DAY}..{days.LAST_DAY} UTC (those of the "
                         "contract's timestamps)")
    return parsed


_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,241}\Z")  # 242 at most: its crawlers' names, `<name>-observations`, fit Glue's 255
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=-]*\Z")


def plain_name(value: str) -> str:
    """A name that reaches SQL, paths and the catalog: lower-case letters, digits, `_`, not starting with a digit.
    Lower case because Glue folds a database's name to lower case when it stores it ("for Hive compatibility"):
    `Zebra` would be created as `zebra`, while the policies' ARNs and every later call name `Zebra`."""
    if not _NAME.match(value):
        raise ValueError("a plain lower-case name of at most 242 characters (a-z, digits, _; not starting with a "
                         "digit: Glue keeps catalog names in lower case, and names its crawlers <name>-observations)")
    return value


def key_prefix(value: str) -> str:
    """Plain `/`-separated names (no `..`, no empty segment): it reaches paths and S3 keys."""
    prefix = value.strip("/")
    if not all(_SEGMENT.match(part) and part != ".." for part in prefix.split("/")):
        raise ValueError("a key prefix of plain names separated by '/'")
    return prefix


def _partitions() -> list[dict]:
    from botocore.loaders import create_loader

    return create_loader().load_data("partitions")["partitions"]


def aws_region(value: str) -> str:
    """Blank (boto3's own resolution), or a region of one of botocore's partitions (its `regionRegex`):
    a typo such as `us-east-l` would otherwise reach an endpoint host that does not exist."""
    region = value.strip()
    if region and not any(re.match(p["regionRegex"], region) for p in _partitions()):
        raise ValueError("an AWS region such as us-east-1 or eu-west-1 (botocore's partitions know no such name)")
    return region


def partition_of(region: str) -> str:
    """The partition of `region` (`aws`, `aws-cn`, `aws-us-gov`, ...), which every ARN there starts with;
    `aws` for a blank region. Known regions first: a pattern of one partition may match another's names."""
    partitions = _partitions()
    known = [p["id"] for p in partitions if region in p.get("regions", {})]
    matching = [p["id"] for p in partitions if region and re.match(p["regionRegex"], region)]
    return (known or matching or ["aws"])[0]


def arn_partition(arn: str) -> str:
    """The partition an ARN names (its second field)."""
    return arn.split(":")[1] if arn.count(":") >= 2 else ""


def folder(value: str) -> Path:
    """A folder, its surrounding blanks dropped as every kind drops them: a value read from a file keeps its
    final newline, and a data dir named `.zfish\n` beside `.zfish` would be a second, empty one."""
    return Path(value.strip()).expanduser().resolve()


_KMS_KEY = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+\Z", re.ASCII)


def kms_key_arn(value: str) -> str:
    """Blank, or a KMS key's full ARN. Not an alias's: S3 would take one, but IAM grants the use of a key
    (`kms:GenerateDataKey`, `kms:Decrypt`) by the key's ARN only, so policies naming an alias deny every write."""
    if value.strip() and not _KMS_KEY.match(value.strip()):
        raise ValueError("a KMS key ARN, arn:aws:kms:<region>:<account>:key/<id> (the key's, not an alias's: "
                         "IAM policies grant the use of a key by its own ARN)")
    return value.strip()


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_RESERVED_BUCKET = (re.compile(r"^(xn--|sthree-|amzn-s3-demo-)|(-s3alias|--ol-s3|\.mrap|--x-s3)\Z|\.\.|"
                               r"^\d+\.\d+\.\d+\.\d+\Z", re.ASCII))


def _bucket_problem(name: str) -> str | None:
    """What is wrong with `name` as a general purpose bucket's name (S3's naming rules), or None."""
    if "://" in name or name.startswith("arn:") or "/" in name:
        bucket = name.split("://", 1)[-1].removeprefix("arn:aws:s3:::").split("/", 1)[0]
        return f"a bucket's name alone (e.g. {bucket or 'my-bucket'}), not a URI, an ARN or a path"
    if not _BUCKET.match(name) or _RESERVED_BUCKET.search(name):
        return ("an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', starting and ending with a "
                "letter or digit, no '..', not an IP address")
    return None


def bucket_name(value: str) -> str:
    """Blank (not chosen), or an S3 bucket's name: it reaches S3 requests and the policies' ARNs."""
    name = value.strip()
    problem = _bucket_problem(name) if name else None
    if problem:
        raise ValueError(problem)
    return name


def s3_location(value: str) -> str:
    """Blank, or `s3://BUCKET[/PREFIX][/]` with a valid bucket and a prefix of plain names: a location whose
    objects a policy grants (`arn:aws:s3:::BUCKET/PREFIX/*`)."""
    location = value.strip()
    if not location:
        return ""
    expected = "an S3 location, s3://BUCKET/ or s3://BUCKET/PREFIX/ (a bucket name, then plain names separated by '/')"
    if not location.startswith("s3://"):
        raise ValueError(expected)
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    segments = prefix.rstrip("/").split("/") if prefix.rstrip("/") else []
    if not bucket or _bucket_problem(bucket) or not all(_SEGMENT.match(s) and s != ".." for s in segments):
        raise ValueError(expected)
    return location


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}\Z", re.ASCII)


def role_arn(value: str) -> str:
    """Blank, or an IAM role's ARN, `arn:aws:iam::<12-digit account>:role/[path/]<name>`: it is passed to Glue
    (`iam:PassRole` names exactly it) and its account scopes the role's trust policy."""
    arn = value.strip()
    if arn and not _ROLE_ARN.match(arn):
        raise ValueError("an IAM role ARN, arn:aws:iam::<12-digit account>:role/<name> (name: letters, digits, "
                         "+=,.@_-)")
    return arn


def resource_name(max_length: int) -> Callable[[str], str]:
    """A parser of a Glue job's or an Athena workgroup's name: letters, digits, `.`, `_`, `-` (Athena's
    workgroup rule, which Glue's job names also meet), so it never holds an ARN's separators or wildcards."""
    pattern = re.compile(rf"^[A-Za-z0-9._-]{{1,{max_length}}}\Z")

    def parse(value: str) -> str:
        if not pattern.match(value.strip()):
            raise ValueError(f"a name of 1-{max_length} letters, digits, '.', '_' and '-'")
        return value.strip()
    return parse


def endpoint_url(value: str) -> str:
    """Blank (AWS's endpoints), or an `http://` or `https://` URL of a host and optional port, no path:
    every client (boto3, s3a, hudi-rs, the job) addresses the services from its root. Returned as
    `scheme://host[:port]`, the scheme in lower case and no trailing `/`, one form for every client: s3a
    and hudi-rs decide on TLS by the `http://` prefix (`HTTP://` would turn hudi-rs's plain HTTP off)."""
    url = value.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    try:
        parts.port  # a port out of range or not a number raises
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("an endpoint URL: http:// or https://, a host and an optional port, no path "
                         "(e.g. http://127.0.0.1:5055)")
    return f"{parts.scheme.lower()}://{parts.netloc}"


def level(levels: tuple[str, ...], blank_allowed: bool = False) -> Callable[[str], str]:
    """A parser of a log level among `levels`, in any case (returned upper-case): Spark's `setLogLevel` and
    Dagster's loggers take upper-case names, and a wrong one would fail only once a session or a run is up."""
    def parse(value: str) -> str:
        name = value.strip().upper()
        if not (name in levels or (blank_allowed and not name)):
            raise ValueError(f"a log level: {', '.join(levels)}")
        return name
    return parse


_MEMORY = re.compile(r"^([1-9][0-9]{0,15})([kmgtp]b?|b)?\Z", re.IGNORECASE | re.ASCII)
_MEMORY_UNITS = {"b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
MAX_MEMORY = 2**42
"""4 TiB: the largest driver memory taken. Spark reads sizes into a 64-bit count of bytes (or MiB), so a
larger figure fails inside spark-submit with a Java stack trace, or asks the JVM for a heap no machine has."""


def memory(value: str) -> str:
    """A JVM memory size as Spark reads one (`4g`, `512m`, `2048` MiB), at most `MAX_MEMORY`: anything else
    stops spark-submit with a Java stack trace."""
    shape = _MEMORY.match(value.strip())
    if not shape or int(shape[1]) * _MEMORY_UNITS[(shape[2] or "m")[0].lower()] > MAX_MEMORY:
        raise ValueError("a memory size such as 4g, 512m or 2048 (MiB), at most 4t")
    return value.strip()


_MASTER = re.compile(r"^(local(\[(\d+|\*)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|yarn"
                     r"|spark://[\w.-]+:\d+(,[\w.-]+:\d+)*|(k8s|mesos)://\S+)\Z", re.ASCII)


def spark_master(value: str) -> str:
    """A Spark master URL of a form Spark accepts: `local`, `local[N]`, `local[*]`, `spark://host:port`, `yarn`,
    `k8s://...`: anything else fails inside the session's start, after the JVM is up."""
    if not _MASTER.match(value.strip()):
        raise ValueError("a Spark master: local[N], local[*], spark://HOST:PORT, yarn or k8s://...")
    return value.strip()


def day_spread(value: str) -> tuple[int, int] | None:
    """`off` (or blank) as None, `MIN-MAX` days (e.g. `7-35`) as (MIN, MAX) with 0 <= MIN <= MAX."""
    if value.strip().lower() in ("", "off"):
        return None
    low, sep, high = value.strip().partition("-")
    try:
        spread = (int(low), int(high)) if sep else None
    except ValueError:
        spread = None
    if spread is None or not 0 <= spread[0] <= spread[1] <= MAX_DAYS:
        raise ValueError(f"`off` or MIN-MAX days with 0 <= MIN <= MAX <= {MAX_DAYS}, e.g. 7-35")
    return spread


def spread_text(value: str) -> str:
    """The text of a `day_spread`, checked: kept as text, the simulator's resources take it so."""
    day_spread(value)
    return value.strip()


def spark_remote(value: str) -> str:
    """Blank (Spark in process), `warm` (this data dir's warm engine), or a Spark Connect URL `sc://HOST[:PORT]`
    with its `/;name=value` parameters (the secret's among them): anything else fails only once a run starts."""
    url = value.strip()
    if url in ("", "warm"):
        return url
    parts = urlsplit(url)
    try:
        parts.port  # a port out of range or not a number raises
        valid = (parts.scheme == "sc" and bool(parts.hostname)
                 and (parts.path in ("", "/") or parts.path.startswith("/;")))
    except ValueError:
        valid = False
    if not valid:
        raise ValueError("blank, `warm`, or the Spark Connect URL `zfish engine start` prints, "
                         "sc://127.0.0.1:PORT/;x-zfish-token=...")
    return url


def masked_url(url: str) -> str:
    """`url` with the value of each `;...token=` parameter (the warm engine's secret) shown as `***`: what any
    message shows of a URL, a refused setting's included."""
    return re.sub(r"(;[^;=/]*token=)[^;]*", r"\1***", url, flags=re.IGNORECASE)
