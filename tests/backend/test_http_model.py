"""HTTP behaviour that needs the real model: bursts, HTTP/1.0 streams, whole SSE events, drain."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backend.conftest import (
    HELLO,
    RunningBackend,
    http_request,
    start_backend,
    wait_for,
)
from tests.free_ports import free_port

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def queue_backend(starter_model: Path, backend_home: Path) -> Iterator[RunningBackend]:
    """llama-server's sizes: 4 slots and 16 queue places."""
    running = start_backend(starter_model, ctx=2048, parallel=4, queue_limit=16)
    yield running
    running.stop.set()
    running.thread.join(30)


def _host_port(backend: RunningBackend) -> tuple[str, int]:
    host, port = backend.url.removeprefix("http://").split(":")
    return host, int(port)


def test_a_burst_within_slots_and_queue_gets_no_429(queue_backend: RunningBackend) -> None:
    body = json.dumps({"messages": HELLO, "max_tokens": 3}).encode()
    statuses: list[int] = []
    barrier = threading.Barrier(18)

    def one() -> None:
        barrier.wait()
        status, _ = http_request(queue_backend.url + "/v1/chat/completions", data=body)
        statuses.append(status)

    threads = [threading.Thread(target=one) for _ in range(18)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(statuses) == [200] * 18


def _sse_events(raw: bytes) -> list[str]:
    return [line for line in raw.decode().split("\n") if line.startswith("data: ")]


def test_http_1_0_stream_is_sent_unchunked_and_closed(queue_backend: RunningBackend) -> None:
    body = json.dumps(
        {"messages": HELLO, "max_tokens": 6, "stream": True, "ignore_eos": True}
    ).encode()
    with socket.create_connection(_host_port(queue_backend), timeout=60) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"chunked" not in head.lower()
    events = _sse_events(payload)
    assert events[-1] == "data: [DONE]"
    deltas = [json.loads(e[6:]) for e in events[:-1]]
    assert deltas[-1]["choices"][0]["finish_reason"] == "length"


def _dechunk_reads(sock: socket.socket) -> list[bytes]:
    """The body bytes of each network read of a chunked response (framing removed)."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    _, _, buffer = buffer.partition(b"\r\n\r\n")
    reads, pending = [], buffer
    done = False
    while not done:
        if not pending:
            pending = sock.recv(65536)
            assert pending, "closed mid-stream"
        body = b""
        while pending:  # every read must hold whole chunks
            size_line, sep, rest = pending.partition(b"\r\n")
            assert sep, f"a chunk header split across reads: {pending[:40]!r}"
            size = int(size_line, 16)
            assert len(rest) >= size + 2, "a chunk split across reads"
            body += rest[:size]
            pending = rest[size + 2 :]
            if size == 0:
                done = True
        reads.append(body)
    return reads


def test_botserver_reads_whole_events_per_network_read(queue_backend: RunningBackend) -> None:
    """botserver keeps lines that start with 'data: ' per read, without buffering across reads."""
    body = json.dumps(
        {
            "model": "",
            "messages": HELLO,
            "stream": True,
            "max_tokens": 40,
            "temperature": 1.0,
            "top_p": 1.0,
        }
    ).encode()
    with socket.create_connection(_host_port(queue_backend), timeout=60) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        reads = _dechunk_reads(sock)
    text, saw_done = "", False
    for read in reads:
        if not read:
            continue
        assert read.endswith(b"\n\n"), f"an SSE event split across reads: {read[-60:]!r}"
        for line in read.decode().split("\n"):  # botserver's own parsing, per read
            if not line.startswith("data: "):
                continue
            if "[DONE]" in line:
                saw_done = True
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"]
            text += delta.get("content") or ""
    assert saw_done
    assert text


def test_sigterm_drains_a_stream_in_flight(starter_model: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "GBDESK_HOME": str(tmp_path)}
    command = [
        sys.executable, "-m", "gbdesk", "serve", "--model", str(starter_model), "--port",
        str(port), "--ctx", "1024", "--parallel", "2", "--threads", "1", "--gpu-layers", "0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for(lambda: _health(port) == 200 or process.poll() is not None, "the server", 120)
        assert process.poll() is None, process.stdout.read()
        body = json.dumps(
            {"messages": HELLO, "max_tokens": 60, "stream": True, "ignore_eos": True}
        ).encode()
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        raw = sock.recv(65536)
        while b"data: " not in raw:
            raw += sock.recv(65536)
        process.send_signal(signal.SIGTERM)
        while b"data: [DONE]" not in raw:
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
        sock.close()
        assert b"data: [DONE]" in raw
        assert b'"finish_reason": "length"' in raw
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def _health(port: int) -> int:
    try:
        return http_request(f"http://127.0.0.1:{port}/health")[0]
    except OSError:
        return 0
