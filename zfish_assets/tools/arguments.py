"""Argument types the `zfish` subcommands share: a day, a range of days, each refused with a usage error."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from zfish_assets.settings import parse_day

if TYPE_CHECKING:
    from glue_scripts.zfish_etl.days import DayRange

T = TypeVar("T")


def argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from `parse`: its ValueError (which names the bad value) becomes a usage
    error with that message (exit status 2)."""

    @functools.wraps(parse)
    def parsed(value: str) -> T:
        try:
            return parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parsed


def parse_range(value: str) -> DayRange:
    """`FIRST..LAST`, parsed by `zfish check`'s own module, imported only when `--range` is given
    (it imports Dagster, which the other subcommands need not wait for)."""
    from zfish_assets.tools import checking

    return checking.parse_range(value)


day, day_range = argument(parse_day), argument(parse_range)
