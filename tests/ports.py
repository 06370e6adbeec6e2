"""Free TCP ports on 127.0.0.1 for the servers the tests start.

`free_port` is the one the embedded gateway uses; `free_ports` holds every socket open until
all are chosen, so the ports it gives differ.
"""

from __future__ import annotations

import socket

from ehrgate.embedded import free_port as free_port


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free on 127.0.0.1 a moment ago.

    All sockets are held open until every port is chosen, so the ports differ; another
    process may still take one before the server binds it (rare on a test machine).
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
