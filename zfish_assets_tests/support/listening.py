"""Who listens beyond loopback: every TCP socket in LISTEN state on an address that is not loopback, held
by a process of this test session (this process, its descendants, and processes that carry the session's
token in their environment: a server started detached and re-parented still carries it).

Read from Linux's /proc through zfish's `backends/ports` (the same reading names a taken port's holder in
the warm engine's refusals); what is judged here is only which of them are beyond loopback. The sockets of another network namespace (the closed-engine test's own) are not in this one's /proc/net.
`Watch` samples in a thread, so servers that live for a moment (a writer's embedded server during one
commit) are caught too; the conftest runs one for the whole session and fails the test during which
a socket of the session listened beyond loopback.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import threading
from pathlib import Path

from zfish_assets.backends.ports import command_line, listening_sockets, short_command, socket_holders

TOKEN_VARIABLE = "PYTEST_ZFISH_LISTEN_WATCH"


def listening(proc: Path = Path("/proc")) -> dict[int, str]:
    """inode -> `host:port` of every listening TCP socket (IPv4 and IPv6) this network namespace holds."""
    return {inode: f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            for host, port, inode in listening_sockets(proc)}


def is_loopback(address: str) -> bool:
    """Whether `host:port` is bound to loopback only (127.0.0.0/8, ::1, or IPv4 loopback mapped into IPv6)."""
    host = ipaddress.ip_address(address.rpartition(":")[0].strip("[]"))
    mapped = getattr(host, "ipv4_mapped", None)
    return (mapped or host).is_loopback


def descends_from(pid: int, root: int, proc: Path = Path("/proc")) -> bool:
    """Whether `pid` is `root` or one of its descendants."""
    while pid > 1:
        if pid == root:
            return True
        try:
            pid = int((proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def command(pid: int, width: int = 160) -> str:
    """The process's command line cut to `width` characters, `?` when it cannot be read."""
    text = command_line(pid)
    return "?" if text is None else short_command(text, width)


class Watch:
    """Samples the listening sockets every `interval_s` in a daemon thread; `found` lists each socket of this
    session (see the module) that listened beyond loopback, once, as `host:port by pid N (command)`."""

    def __init__(self, interval_s: float = 0.2, root: int | None = None) -> None:
        self.root = root or os.getpid()
        self.token = os.environ.setdefault(TOKEN_VARIABLE, secrets.token_hex(8))
        self.interval_s = interval_s
        self.found: list[str] = []
        self._judged: set[int] = set()  # inodes already seen: judged once each
        self._reported = 0
        self._lock = threading.Lock()  # the thread and a test's teardown sample at once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="listen-watch", daemon=True)

    def start(self) -> "Watch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        """Judge the sockets that appeared since the last sample."""
        with self._lock:
            fresh = {inode: address for inode, address in listening().items()
                     if inode not in self._judged and not is_loopback(address)}
            self._judged.update(fresh)
            for inode, pid in socket_holders(set(fresh)).items() if fresh else ():
                if self._ours(pid):
                    self.found.append(f"{fresh[inode]} by pid {pid} ({command(pid)})")

    def unreported(self) -> list[str]:
        """What was found since the last call (a sample taken now included)."""
        self.sample()
        with self._lock:
            fresh, self._reported = self.found[self._reported:], len(self.found)
        return fresh

    def _ours(self, pid: int) -> bool:
        if descends_from(pid, self.root):
            return True
        try:
            return f"{TOKEN_VARIABLE}={self.token}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False
