"""A taken port's fix suggests a port that works: free now, and never gbdesk's embedding port
(8082 was suggested for a taken 8081: the port the embeddings open next)."""

from __future__ import annotations

import re
import socket

import pytest

from gbdesk.backend.errors import PortInUseError
from gbdesk.backend.ports import free_port_near, gbdesk_ports
from gbdesk.backend.transport import bind_socket
from gbdesk.hardware.ports import port_is_free
from gbdesk.settings import Settings, save_settings


def _listening_pair() -> tuple[socket.socket, socket.socket, int]:
    """Two listening sockets on consecutive ports P and P + 1 (P is returned)."""
    for _ in range(50):
        first = socket.socket()
        first.bind(("127.0.0.1", 0))
        port = first.getsockname()[1]
        second = socket.socket()
        try:
            second.bind(("127.0.0.1", port + 1))
        except OSError:
            first.close()
            second.close()
            continue
        first.listen()
        second.listen()
        return first, second, port
    pytest.fail("no two consecutive free ports")


def test_the_fix_of_a_taken_port_names_a_free_port_that_is_not_the_embedding_port() -> None:
    taken, next_taken, port = _listening_pair()
    try:
        save_settings(Settings(backend_port=port, embedding_port=port + 2))
        with pytest.raises(PortInUseError) as caught:
            bind_socket("127.0.0.1", port)
        fix = caught.value.fix or ""
        match = re.search(r"--port (\d+)", fix)
        assert match, fix
        suggested = int(match.group(1))
        assert suggested not in {port, port + 1, port + 2}  # taken, taken, the embedding port
        assert port_is_free("127.0.0.1", suggested)
        assert caught.value.details["suggested_port"] == suggested
        assert "Errno" not in caught.value.message
    finally:
        taken.close()
        next_taken.close()


def test_the_default_ports_are_never_suggested() -> None:
    assert {8081, 8082} <= gbdesk_ports()
    assert free_port_near("127.0.0.1", 8081) not in {8081, 8082}
    assert free_port_near("127.0.0.1", 8080, avoid={8081}) != 8081


def test_a_taken_embedding_port_names_its_own_option() -> None:
    from gbdesk.backend.transport import HttpServer

    taken, next_taken, port = _listening_pair()
    next_taken.close()
    try:
        with pytest.raises(PortInUseError) as caught:
            HttpServer(object(), [("127.0.0.1", port + 1), ("127.0.0.1", port)])
        assert "--embedding-port " in (caught.value.fix or "")
    finally:
        taken.close()
