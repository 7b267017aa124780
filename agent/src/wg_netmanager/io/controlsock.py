"""The agent's UDP control socket."""

from __future__ import annotations

import socket

RCVBUF = 4 << 20  # bytes
SNDBUF = 1 << 20  # bytes: answers to addresses the kernel still resolves must not block others
SO_RCVBUFFORCE = 33  # Linux; Python's socket module does not name it


SO_MARK = getattr(socket, "SO_MARK", 36)  # Linux


def control_socket(port: int, mark: int = 0) -> socket.socket:
    """The non-blocking UDP control socket, with room for bursts: a static node gets a HELLO
    from every member each second, and a loaded host may not read for a while; a full queue
    drops HELLOs, and then members time out and the mesh churns."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:  # past net.core.rmem_max: the agent has CAP_NET_ADMIN anyway
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
        if mark:  # through an exit node: the control channel keeps the direct routes
            sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
        sock.bind(("0.0.0.0", port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
