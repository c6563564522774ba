"""How the job writes joined_fish_data (its `join_mode`), where settings can read it without loading Spark.

`incremental` upserts only the new or changed rows, so only partitions with news are rewritten;
`full` re-upserts every labeled row of the range, as the walkthrough does.
"""

from __future__ import annotations

from enum import StrEnum


class JoinMode(StrEnum):
    """A join mode; its value is the spelling of `ZFISH_JOIN_MODE` and of the job's `--join_mode`."""

    INCREMENTAL = "incremental"
    FULL = "full"

    @classmethod
    def parse(cls, value: str, what: str = "join_mode") -> JoinMode:
        """The mode `value` names, or a ValueError naming `what`, the value and the modes there are."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{what}={value!r} is not one of {', '.join(JOIN_MODES)}") from None


JOIN_MODES = tuple(mode.value for mode in JoinMode)
