"""Which internet sockets a process tree holds, read from /proc (Linux), and which of them
are not on 127.0.0.1: the proof that a server a test starts is reachable from nowhere else.

Every socket of the processes (``/proc/<pid>/fd`` links ``socket:[inode]``) is looked up in
``/proc/net/{tcp,tcp6,udp,udp6,raw,raw6}``. A socket is off loopback when its local
address is not 127.0.0.1 (the IPv4 or IPv6 wildcard, any other address, even 127.0.0.2 or
``::1``), when a connected TCP socket's peer is not 127.0.0.1, or when it is a raw socket.
Unix-domain and netlink sockets are not internet sockets and are not reported.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TABLES = ("tcp", "tcp6", "udp", "udp6", "raw", "raw6")
TCP_LISTEN = "0A"
LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


@dataclass(frozen=True)
class InetSocket:
    table: str
    local: ipaddress.IPv4Address | ipaddress.IPv6Address
    local_port: int
    remote: ipaddress.IPv4Address | ipaddress.IPv6Address
    remote_port: int
    state: str
    inode: int

    def __str__(self) -> str:
        return (
            f"{self.table} {self.local}:{self.local_port} -> {self.remote}:{self.remote_port} "
            f"(state {self.state}, inode {self.inode})"
        )


def _address(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """An address of /proc/net/*: hex host-order 32-bit words, then the port in hex."""
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(swapped)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped, int(port, 16)
    return address, int(port, 16)


def parse_table(table: str, text: str) -> list[InetSocket]:
    """The sockets listed in the text of ``/proc/net/<table>``."""
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, local_port = _address(fields[1])
        remote, remote_port = _address(fields[2])
        sockets.append(
            InetSocket(table, local, local_port, remote, remote_port, fields[3], int(fields[9]))
        )
    return sockets


def inet_sockets() -> list[InetSocket]:
    """Every internet socket of this network namespace."""
    found: list[InetSocket] = []
    for table in TABLES:
        path = PROC / "net" / table
        if path.exists():
            found.extend(parse_table(table, path.read_text()))
    return found


def process_tree(pid: int) -> set[int]:
    """``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        tree.add(current)
        todo.extend(children.get(current, []))
    return tree


def socket_inodes(pids: set[int]) -> set[int]:
    """The inodes of every socket the processes have open."""
    inodes = set()
    for pid in pids:
        fd_dir = PROC / str(pid) / "fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(fd_dir / name)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def off_loopback(sock: InetSocket) -> bool:
    if sock.table.startswith("raw") or sock.local != LOOPBACK:
        return True
    connected = sock.table.startswith("tcp") and sock.state != TCP_LISTEN
    return connected and sock.remote != LOOPBACK


def sockets_of(pid: int) -> list[InetSocket]:
    """The internet sockets held by ``pid`` and its descendants."""
    inodes = socket_inodes(process_tree(pid))
    return [sock for sock in inet_sockets() if sock.inode in inodes]
