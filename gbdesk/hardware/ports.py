"""Which TCP ports this machine can listen on, and a port worth keeping for a service.

A port the system picks (``bind(0)``) lies in its *ephemeral range*, the range it also hands to
every outgoing connection. Such a port is free for a moment only: written into a configuration
(the embedded PostgreSQL's, a suggested backend port) it is soon held by some browser's
connection, and the service cannot start there next time. :func:`lasting_free_port` therefore
looks outside that range.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Collection
from pathlib import Path

from gbdesk.errors import GbdeskError

# The ranges the systems ship with: Linux 32768-60999, Windows and macOS 49152-65535 (IANA).
_LINUX_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_RANGE = (49152, 65535)
_LINUX_DEFAULT_RANGE = (32768, 60999)
_FIRST_UNPRIVILEGED = 1024


def port_is_free(host: str, port: int) -> bool:
    """Whether ``port`` can be listened on at ``host`` now (another program may hold it).

    A port left in TIME_WAIT by the last run counts as free, as servers listen with
    SO_REUSEADDR. Port 0 asks whether ``host`` is an address of this machine at all.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if os.name != "nt":  # on Windows SO_REUSEADDR would let two servers share a port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "127.0.0.1", port))
        except OSError:
            return False
    return True


def ephemeral_range() -> tuple[int, int]:
    """The first and last port the system hands to outgoing connections (both included)."""
    if sys.platform.startswith("linux"):
        try:
            low, high = (int(part) for part in _LINUX_RANGE_FILE.read_text().split()[:2])
        except (OSError, ValueError):
            return _LINUX_DEFAULT_RANGE
        if 0 < low <= high <= 65535:
            return low, high
        return _LINUX_DEFAULT_RANGE
    return _DEFAULT_RANGE


def lasting_free_port(host: str, start: int, *, avoid: Collection[int] = ()) -> int:
    """The first port from ``start`` upward (then from 1024) that is free at ``host`` now, not
    in ``avoid`` and outside the ephemeral range, so that it stays free for the next start.

    Raises:
        GbdeskError: no port qualifies (every one outside the range is taken).
    """
    low, high = ephemeral_range()
    start = max(_FIRST_UNPRIVILEGED, min(start, 65535))
    for first, last in ((start, 65535), (_FIRST_UNPRIVILEGED, start - 1)):
        for port in range(first, last + 1):
            if low <= port <= high or port in avoid:
                continue
            if port_is_free(host, port):
                return port
    raise GbdeskError(
        f"no free network port on {host or '127.0.0.1'}",
        fix="close programs that hold many ports, then try again",
    )
