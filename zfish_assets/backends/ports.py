"""Who holds a TCP port: for a refusal that names the process, not only the port.

Read from Linux's /proc (the socket's inode in /proc/net/tcp{,6}, then the process whose file
descriptors include it), with no tool to install; elsewhere, or for another user's process, the
answer says what it could not see.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_LISTEN = "0A"
LOOPBACK = "127.0.0.1"
"""The one address every server zfish (and its test suite) starts listens on: the warm engine's gRPC port, the
Spark driver's RPC and block manager (`spark_session.spark_conf`, `SPARK_LOCAL_IP`), and in the tests moto's
server, the AWS proxy and Trino. None of them authenticates a client but the warm engine, so none may be
reachable from another machine. A server that cannot be told an address is not started (Hudi's embedded
timeline server, `glue_scripts/zfish_etl/hudi.py`)."""


def answers(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on `host:port`."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def listening_sockets(proc: Path = Path("/proc")) -> list[tuple[str, int, int]]:
    """(local address, port, socket inode) of every listening TCP socket this network namespace holds, IPv4
    and IPv6."""
    found = []
    for table in ("tcp", "tcp6"):
        path = proc / "net" / table
        if not path.is_file():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == _LISTEN:
                address, _, hex_port = fields[1].rpartition(":")
                found.append((_address(address), int(hex_port, 16), int(fields[9])))
    return found


def listening(port: int, proc: Path = Path("/proc")) -> list[tuple[str, int]]:
    """(local address, socket inode) of every listening TCP socket on `port`, IPv4 and IPv6."""
    return [(address, inode) for address, bound, inode in listening_sockets(proc) if bound == port]


def socket_holders(inodes: set[int], proc: Path = Path("/proc")) -> dict[int, int]:
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


def command_line(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The process's whole command line, its arguments joined by spaces; None when it cannot be read."""
    try:
        return (proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def _address(hex_address: str) -> str:
    """/proc/net's address (each 32-bit word in host byte order) as text."""
    raw = b"".join(int(hex_address[i:i + 8], 16).to_bytes(4, "little") for i in range(0, len(hex_address), 8))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def holder(port: int, labels: dict[str, str] | None = None, proc: Path = Path("/proc")) -> str:
    """What listens on `port`: `pid N (command)` where this user can see it, else what is known.

    `labels` names known programs: a command line containing a key is shown as its value (a JVM's
    command line is its whole classpath and settings)."""
    sockets = listening(port, proc)
    if not sockets:
        return "no process listening now" if proc.is_dir() else "a process (no /proc here to name it)"
    for pid in sorted(set(socket_holders({inode for _, inode in sockets}, proc).values())):
        command = command_line(pid, proc)
        if command is not None:
            label = next((name for key, name in (labels or {}).items() if key in command), short_command(command))
            return f"pid {pid} ({label})"
    return f"a process this user cannot see (listening on {', '.join(a for a, _ in sockets)})"


def short_command(command: str, width: int = 120) -> str:
    """A command line cut to `width` characters (a JVM's runs to thousands: its classpath and settings)."""
    command = command.strip()
    return command if len(command) <= width else command[:width - 3] + "..."
