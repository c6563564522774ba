"""A loopback port that was free a moment ago: for a server a test starts, or for one that must be absent."""

from __future__ import annotations

import socket

from zfish_assets.backends.ports import LOOPBACK


def free_port() -> int:
    """A port bound on 127.0.0.1 and closed again: nothing listens there until someone binds it."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]
