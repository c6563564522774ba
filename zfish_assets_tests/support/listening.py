"""Who listens beyond loopback: every TCP socket in LISTEN state on an address that is not loopback, held
by a process of this test session (this process, its descendants, and processes that carry the session's
token in their environment: a server started detached and re-parented still carries it).

Read from Linux's /proc here, by hand, not through zfish's `backends/ports` (what the tests check uses it).
The sockets of another network namespace (the closed-engine test's own) are not in this one's /proc/net.
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

TOKEN_VARIABLE = "PYTEST_ZFISH_LISTEN_WATCH"
_LISTEN = "0A"


def listening(proc: Path = Path("/proc")) -> dict[int, str]:
    """inode -> `host:port` of every listening TCP socket (IPv4 and IPv6) this network namespace holds."""
    found = {}
    for table in ("tcp", "tcp6"):
        path = proc / "net" / table
        if not path.is_file():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != _LISTEN:
                continue
            hex_host, _, hex_port = fields[1].partition(":")
            raw = b"".join(int(hex_host[i:i + 8], 16).to_bytes(4, "little") for i in range(0, len(hex_host), 8))
            host = ipaddress.ip_address(raw)
            found[int(fields[9])] = f"{host}:{int(hex_port, 16)}" if host.version == 4 else f"[{host}]:{int(hex_port, 16)}"
    return found


def is_loopback(address: str) -> bool:
    """Whether `host:port` is bound to loopback only (127.0.0.0/8, ::1, or IPv4 loopback mapped into IPv6)."""
    host = ipaddress.ip_address(address.rpartition(":")[0].strip("[]"))
    mapped = getattr(host, "ipv4_mapped", None)
    return (mapped or host).is_loopback


def holders(inodes: set[int], proc: Path = Path("/proc")) -> dict[int, int]:
    """inode -> pid of a process holding that socket, for the processes this user can see."""
    wanted, found = {f"socket:[{inode}]": inode for inode in inodes}, {}
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                inode = wanted.get(os.readlink(fd))
                if inode is not None:
                    found[inode] = int(pid_dir.name)
        except OSError:
            continue
    return found


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
    try:
        text = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"
    return text if len(text) <= width else text[:width - 3] + "..."


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
            for inode, pid in holders(set(fresh)).items() if fresh else ():
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
