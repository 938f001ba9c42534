"""Which ports are free, and which free port to suggest when the backend's is taken.

A suggestion must be one that works: free now, and none of gbdesk's own ports (the chat port
and the embedding port, from the settings and their defaults), so that "use another port" never
lands on the embedding port (8082) that the backend opens next.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection

from gbdesk.errors import GbdeskError
from gbdesk.options import option


def port_is_free(host: str, port: int) -> bool:
    """Whether ``port`` can be listened on at ``host`` now (another program may hold it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if os.name != "nt":  # a port left in TIME_WAIT by our last backend is free to listen on
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "127.0.0.1", port))
        except OSError:
            return False
    return True


def gbdesk_ports() -> frozenset[int]:
    """The ports gbdesk itself uses: the chat and embedding ports of the settings (when they
    can be read) and their defaults."""
    ports = {option("backend_port").default, option("embedding_port").default}
    try:
        from gbdesk.settings import load_settings

        settings = load_settings()
        ports.update((settings.backend_port, settings.embedding_port))
    except GbdeskError:  # a broken settings file: the defaults still hold
        pass
    return frozenset(ports)


def free_port_near(
    host: str, port: int, *, avoid: Collection[int] | None = None, tries: int = 50
) -> int:
    """The first free port after ``port`` that is not in ``avoid`` (default: gbdesk's own
    ports, :func:`gbdesk_ports`); any free port the system gives when none of the next
    ``tries`` is."""
    skip = gbdesk_ports() if avoid is None else frozenset(avoid)
    for candidate in range(port + 1, min(65535, port + tries) + 1):
        if candidate not in skip and port_is_free(host, candidate):
            return candidate
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host or "127.0.0.1", 0))
        return int(sock.getsockname()[1])
