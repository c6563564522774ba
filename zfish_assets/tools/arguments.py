"""Argument types the `zfish` subcommands share: a day, a range of days, a port, each refused with a usage error."""

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


def parse_port(value: str) -> int:
    """A TCP port a server may listen on, 1-65535: anything else would reach spark-submit, which answers
    with a Java stack trace."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise ValueError(f"port {value!r} is not a TCP port, 1-65535 (or leave --port out: a free port is taken)")
    return number


def of_kind(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from a setting kind's parser (`setting_kinds`), whose ValueError says only what it
    expects: a flag then takes the same domain, bounds included, as the setting it stands for."""
    def parsed(value: str) -> T:
        try:
            return parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{value!r} is not {exc}") from None

    return parsed


day, day_range, port = argument(parse_day), argument(parse_range), argument(parse_port)
