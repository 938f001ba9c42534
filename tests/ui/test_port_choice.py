""" "Use another port" picks a port that works: free, and not the embedding port."""

from __future__ import annotations

import socket


def test_use_another_port_skips_the_embedding_port(qtbot, configured_state) -> None:
    from gbdesk.hardware.ports import port_is_free

    state = configured_state
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        # The next port is the embedding port: the old code picked it (8081 -> 8082).
        state.update_settings(
            backend_port=port, embedding_port=port + 1, context_length=512, parallel=1
        )
        chosen = state.backend.use_another_port()
        assert chosen not in {port, port + 1}
        assert state.settings.backend_port == chosen
        qtbot.waitUntil(
            lambda: not state.backend.is_busy() and state.backend.view.phase in {"ready", "failed"},
            timeout=120_000,
        )
        assert state.backend.is_ready(), state.backend.view
        assert state.backend.view.url.endswith(f":{chosen}")
    finally:
        taken.close()
        state.shutdown()
    assert port_is_free("127.0.0.1", chosen)
