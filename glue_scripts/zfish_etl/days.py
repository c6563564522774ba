"""A day and a range of days, parsed once where they enter (a partition key, a CLI argument, a job
argument) and passed on as values: the code after the entry neither re-validates nor re-expands them.

Days reach folder names, S3 keys and SQL, so nothing but a real date written exactly `YYYY-MM-DD`
passes (`2025-5-3`, `2025-02-30` and `2025-05-10' OR '1'='1` do not), and only within the days the contract's
timestamps span (`FIRST_DAY`..`LAST_DAY`): a day past them overflows the arithmetic that follows (an
evening's window, a label's arrival, a partition's end), and no row of it could be stored. zfish_assets parses its days here
too (`settings.parse_day`, `partitions.DayRange`): one definition of a day for the job and the platform.

>>> DayRange.parse("2025-04-30", "2025-05-02").keys
('2025-04-30', '2025-05-01', '2025-05-02')
>>> parse_day("2025-02-30")
Traceback (most recent call last):
...
ValueError: day='2025-02-30' is no date: February 2025 has 28 days
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

from glue_scripts.zfish_etl.contract import TIMESTAMP_RANGE

DAY_FORM = "a day in YYYY-MM-DD form"
FIRST_DAY = TIMESTAMP_RANGE[0].date()
LAST_DAY = (TIMESTAMP_RANGE[1] - timedelta(days=1)).date()
"""The days zfish handles: those of the contract's timestamps, so every row of a day can be stored, and far
enough from `date.max` that a window, a label delay or a partition's end added to one does not overflow."""
_DAY_SHAPE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)  # used with fullmatch: `$` passes a final newline


def day_problem(value: str) -> str | None:
    """What keeps `value` from being a day zfish handles (its form, a date that does not exist, a day outside
    `FIRST_DAY`..`LAST_DAY`), said so a reader sees the fix; None when it is one."""
    shape = _DAY_SHAPE.fullmatch(value) if isinstance(value, str) else None
    if not shape:
        return f"not {DAY_FORM}"
    year, month, day = (int(part) for part in shape.groups())
    if not 1 <= month <= 12:
        return f"no date: there is no month {month:02d}"
    length = calendar.monthrange(year, month)[1] if year else 31
    if not 1 <= day <= length:
        return f"no date: {calendar.month_name[month]} {year} has {length} days"
    if not FIRST_DAY.isoformat() <= value <= LAST_DAY.isoformat():
        return f"outside the days zfish handles, {FIRST_DAY}..{LAST_DAY} (those of the contract's timestamps)"
    return None


def parse_day(value: str, what: str = "day") -> date:
    """`value` as a date, or a ValueError naming `what`, the value and what is wrong with it."""
    problem = day_problem(value)
    if problem:
        raise ValueError(f"{what}={value!r} is {problem}")
    return date.fromisoformat(value)


@dataclass(frozen=True)
class DayRange:
    """The days from `first` to `last`, inclusive: refused on construction when `last` is before `first`."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"last day {self.last} is before first day {self.first}: give the earlier day first")

    @classmethod
    def parse(cls, first: str, last: str, names: tuple[str, str] = ("first day", "last day")) -> DayRange:
        """The range of two `YYYY-MM-DD` texts, each refused naming it (`names`) and its value."""
        return cls(parse_day(first, names[0]), parse_day(last, names[1]))

    @cached_property
    def keys(self) -> tuple[str, ...]:
        """Every day of the range as a `YYYY-MM-DD` key, expanded once."""
        return tuple((self.first + timedelta(days=i)).isoformat() for i in range((self.last - self.first).days + 1))

    @property
    def first_key(self) -> str:
        return self.first.isoformat()

    @property
    def last_key(self) -> str:
        return self.last.isoformat()
