"""`gbdesk worker`: worker addresses, the RPC protocol probe, and real workers on loopback."""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gbdesk.backend.errors import PortInUseError
from gbdesk.backend.worker import WorkerOptions
from gbdesk.backend.worker_process import WorkerProcess
from gbdesk.errors import ExitCode, UsageError
from gbdesk.hardware.rpc import (
    PROTOCOL_VERSION,
    WorkerAddress,
    WorkerError,
    parse_workers,
    probe_worker,
    read_worker_record,
)
from tests.free_ports import free_port

MIB = 1 << 20


# ---------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("127.0.0.1:50052", (WorkerAddress("127.0.0.1", 50052),)),
        (
            "Box-2.lan:1, 10.0.0.3:65535",
            (WorkerAddress("box-2.lan", 1), WorkerAddress("10.0.0.3", 65535)),
        ),
    ],
)
def test_parse_workers_accepts_host_port_lists(
    text: str, expected: tuple[WorkerAddress, ...]
) -> None:
    assert parse_workers(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("127.0.0.1", "has no port"),
        (":50052", "has no port"),
        ("host:0", "no valid port"),
        ("host:65536", "no valid port"),
        ("host:5x", "no valid port"),
        ("host:-1", "no valid port"),
        ("[::1]:50052", "IPv6"),
        ("fe80::1:50052", "IPv6"),
        ("ho st:50052", "host name"),
        ("-host:50052", "host name"),
        ("a:1,,b:2", "empty entry"),
        ("a:1,", "empty entry"),
        ("127.0.0.1:50052,localhost:50052", "listed twice"),
        ("10.0.0.2:50052,10.0.0.2:50052", "listed twice"),
        (",".join(f"10.0.0.{i}:50052" for i in range(17)), "at most 16"),
    ],
)
def test_parse_workers_rejects_junk_with_a_sentence(text: str, words: str) -> None:
    with pytest.raises(WorkerError) as caught:
        parse_workers(text)
    assert words in caught.value.message
    assert caught.value.fix
    assert caught.value.exit_code == ExitCode.WORKER


def test_serve_refuses_a_worker_on_its_own_port() -> None:
    from gbdesk.backend.serve import ServeOptions

    options = ServeOptions(model="starter", port=8090, rpc="127.0.0.1:8090")
    with pytest.raises(WorkerError, match="own port"):
        options.check()
    with_embeddings = ServeOptions(
        model="starter", port=8090, embedding_model="x", embedding_port=8093, rpc="localhost:8093"
    )
    with pytest.raises(WorkerError, match="own port"):
        with_embeddings.check()


def test_the_serve_flag_comes_from_the_one_options_schema() -> None:
    from gbdesk.backend.serve import ServeOptions
    from gbdesk.options import option, serve_argv
    from gbdesk.settings import Settings

    assert option("rpc_workers").flag == "--rpc"
    options = ServeOptions.from_settings(Settings(rpc_workers="10.0.0.2:50052"))
    assert options.rpc == "10.0.0.2:50052"
    assert serve_argv({"rpc": "10.0.0.2:50052"}) == ["--rpc", "10.0.0.2:50052"]


# ---------------------------------------------------------------- the protocol probe


def _fake_server(answer: bytes | None) -> tuple[socket.socket, int]:
    """A TCP server that reads one HELLO and writes ``answer`` then waits for the client to
    go (None: says nothing; b"": hangs up at once)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        connection, _ = server.accept()
        with connection, contextlib.suppress(OSError):
            connection.recv(1 + 8 + 24)
            if answer == b"":
                return
            if answer is not None:
                connection.sendall(answer)
            connection.settimeout(10)
            connection.recv(1)  # until the client closes

    threading.Thread(target=serve, daemon=True).start()
    return server, port


def _hello(major: int, minor: int, patch: int) -> bytes:
    return struct.pack("<Q", 28) + bytes([major, minor, patch, 0]) + bytes(24)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (_hello(PROTOCOL_VERSION[0] - 1, 0, 0), "speaks RPC protocol"),
        (_hello(PROTOCOL_VERSION[0], PROTOCOL_VERSION[1] + 1, 0), "speaks RPC protocol"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not as a llama.cpp RPC worker"),
        (b"", "closed the connection"),
    ],
)
def test_probe_names_a_worker_it_cannot_use(answer: bytes, words: str) -> None:
    server, port = _fake_server(answer)
    with server, pytest.raises(WorkerError) as caught:
        probe_worker(WorkerAddress("127.0.0.1", port), timeout_s=5)
    assert words in caught.value.message
    assert f"127.0.0.1:{port}" in caught.value.message


def test_probe_of_a_silent_worker_times_out_with_a_reason() -> None:
    server, port = _fake_server(None)
    with server, pytest.raises(WorkerError, match=r"did not answer within 0\.5 s") as caught:
        probe_worker(WorkerAddress("127.0.0.1", port), timeout_s=0.5)
    assert "serving another backend" in (caught.value.fix or "")


def test_probe_of_nothing_and_of_an_unknown_host() -> None:
    port = free_port()
    with pytest.raises(WorkerError, match="is not running"):
        probe_worker(WorkerAddress("127.0.0.1", port))
    with pytest.raises(WorkerError, match="no computer is called"):
        probe_worker(WorkerAddress("no-such-host.invalid", 50052))


# ---------------------------------------------------------------- real workers


@pytest.fixture
def worker(gbdesk_home: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        WorkerOptions(port=free_port(), memory_mib=300), gbdesk_home / "logs" / "worker.log"
    )
    process.start()
    yield process
    process.stop()


@pytest.mark.slow
def test_a_worker_answers_this_llamas_protocol_with_its_capped_memory(
    worker: WorkerProcess, gbdesk_home: Path
) -> None:
    assert worker.address is not None
    status = probe_worker(worker.address)
    # The constant gbdesk checks workers against is the version this llama.cpp speaks.
    assert status.version == PROTOCOL_VERSION
    assert status.total_bytes == 300 * MIB
    assert 0 < status.free_bytes <= 300 * MIB
    assert [name for name, _ in worker.devices] == ["CPU"]
    record = read_worker_record(gbdesk_home / "data")
    assert record is not None and record.pid == worker.pid
    assert record.memory_limit_bytes == 300 * MIB
    worker.stop()
    assert read_worker_record(gbdesk_home / "data") is None


@pytest.mark.slow
def test_a_second_worker_on_the_same_port_says_so(worker: WorkerProcess, gbdesk_home: Path) -> None:
    assert worker.address is not None
    second = WorkerProcess(WorkerOptions(port=worker.address.port), gbdesk_home / "w2.log")
    with pytest.raises(PortInUseError, match=f"port {worker.address.port} is already in use"):
        second.start()
    assert not second.running


@pytest.mark.slow
def test_worker_cli_warns_when_it_listens_beyond_loopback(gbdesk_home: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gbdesk", "worker", "--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        while ready and "gbdesk worker ready" not in ready:
            ready = process.stdout.readline()
        assert f"0.0.0.0:{port}" in ready
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=15)
    assert "no password" in errors and "anyone who can reach" in errors
    assert process.returncode == 0


def test_worker_options_reject_bad_addresses() -> None:
    with pytest.raises(UsageError, match="IPv6"):
        _ = WorkerOptions(host="::1").address
    with pytest.raises(UsageError, match="no valid port"):
        _ = WorkerOptions(port=70000).address
    assert not WorkerOptions().exposed
    assert WorkerOptions(host="0.0.0.0").exposed
