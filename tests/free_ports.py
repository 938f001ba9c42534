"""Ports for the servers a test starts in another process, or for "nothing listens here".

A port from ``bind(("127.0.0.1", 0))`` lies in the kernel's ephemeral range, which the system
also hands to every outgoing connection (PostgreSQL, HTTP clients, the heartbeat) and to every
server started in-process with port 0. Between the test asking and the server binding, any of
them can take it (a CI run saw ``gbdesk serve`` exit with "port in use"). Ports below that range
are never handed out by the system, so only a server told the number can hold one; each is
given out once per run.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_given: set[int] = set()
_LOWEST = 20000  # above the well-known and registered ports common services use


def _ephemeral_start() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; macOS starts higher (49152)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing listens on now, outside the ephemeral range, not given out before.

    Raises:
        RuntimeError: no such port in 200 tries (a machine with its ports exhausted).
    """
    highest = _ephemeral_start() - 1
    if highest <= _LOWEST:
        highest = 65535
    for _ in range(200):
        port = random.randint(_LOWEST, highest)
        if port not in _given and _bindable(port):
            _given.add(port)
            return port
    raise RuntimeError("no free TCP port below the ephemeral range")
