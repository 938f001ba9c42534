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

from gbdesk.hardware.ports import ephemeral_range, port_is_free

_given: set[int] = set()
_LOWEST = 20000  # above the well-known and registered ports common services use


def free_port() -> int:
    """A port nothing listens on now, outside the ephemeral range, not given out before (at
    random, so that two test runs on one machine rarely meet).

    Raises:
        RuntimeError: no such port in 200 tries (a machine with its ports exhausted).
    """
    low, high = ephemeral_range()
    candidates = [(_LOWEST, low - 1)] if low - 1 > _LOWEST else []
    if high < 65535:
        candidates.append((high + 1, 65535))
    for _ in range(200):
        first, last = random.choice(candidates)
        port = random.randint(first, last)
        if port not in _given and port_is_free("127.0.0.1", port):
            _given.add(port)
            return port
    raise RuntimeError("no free TCP port outside the ephemeral range")
