"""Waiting for a managed service (a Glue job run, a Glue crawler, an Athena query) to finish.

boto3 has no waiters for Glue job runs or crawlers, and Athena's waiter has no timeout we control,
so the polling is written once here: describe, stop when done, sleep an interval, give up at a
deadline with the last description, so the caller's error says what state the work was left in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PollTimeout(Exception, Generic[T]):
    """The work was not done by the deadline; `last` is its last description.

    Not a `TimeoutError` on purpose: `retries.is_transient` retries those (and what is raised
    while handling them), and work that may still be running must not be started again blindly.
    """

    def __init__(self, last: T, waited_s: float) -> None:
        super().__init__(f"not done after {waited_s:g}s")
        self.last, self.waited_s = last, waited_s


def poll_until(describe: Callable[[], T], done: Callable[[T], bool], timeout_s: float, interval_s: float) -> T:
    """`describe()` every `interval_s` seconds until `done(description)`; raise `PollTimeout` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        current = describe()
        if done(current):
            return current
        if time.monotonic() >= deadline:
            raise PollTimeout(current, timeout_s)
        time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))
