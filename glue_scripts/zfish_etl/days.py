"""A day and a range of days, parsed once where they enter (a partition key, a CLI argument, a job
argument) and passed on as values: the code after the entry neither re-validates nor re-expands them.

Days reach folder names, S3 keys and SQL, so nothing but a real date written exactly `YYYY-MM-DD`
passes (`2025-5-3`, `2025-02-30` and `2025-05-10' OR '1'='1` do not). zfish_assets parses its days here
too (`settings.parse_day`, `partitions.DayRange`): one definition of a day for the job and the platform.

>>> DayRange.parse("2025-04-30", "2025-05-02").keys
('2025-04-30', '2025-05-01', '2025-05-02')
>>> parse_day("2025-02-30")
Traceback (most recent call last):
...
ValueError: day='2025-02-30' is not a day in YYYY-MM-DD form
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

DAY_FORM = "a day in YYYY-MM-DD form"


def parse_day(value: str, what: str = "day") -> date:
    """`value` as a date, or a ValueError naming `what`, the value and the form expected."""
    try:
        parsed = date.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.isoformat() != value:
        raise ValueError(f"{what}={value!r} is not {DAY_FORM}")
    return parsed


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
