"""Which free port to suggest when the backend's (or a worker's) is taken.

A suggestion must be one that works: free now and next time (outside the system's ephemeral
range, :mod:`gbdesk.hardware.ports`), and none of gbdesk's own ports (the chat port and the
embedding port, from the settings and their defaults), so that "use another port" never lands
on the embedding port (8082) that the backend opens next.
"""

from __future__ import annotations

from collections.abc import Collection

from gbdesk.errors import GbdeskError
from gbdesk.hardware.ports import lasting_free_port
from gbdesk.options import option


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


def free_port_near(host: str, port: int, *, avoid: Collection[int] | None = None) -> int:
    """The first free port after ``port`` that is not in ``avoid`` (default: gbdesk's own
    ports, :func:`gbdesk_ports`) and lasts (outside the system's ephemeral range).

    Raises:
        GbdeskError: no port qualifies.
    """
    skip = gbdesk_ports() if avoid is None else frozenset(avoid)
    return lasting_free_port(host, port + 1, avoid=skip)
