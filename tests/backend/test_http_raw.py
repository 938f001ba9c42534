"""HTTP framing from raw sockets: what pooled clients, slow clients and odd requests send.

The server here has no model attached (it answers like a loading llama-server), so these tests
exercise the transport, routing and error shapes in a second each.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from gbdesk.backend import transport
from gbdesk.backend.server import MAX_BODY_BYTES, BackendApp, BackendServer
from gbdesk.backend.transport import bind_socket
from gbdesk.errors import UsageError

KEY = "sk-raw-0123456789"
_OPEN: list[Raw] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


class Raw:
    """One client connection that reads whole HTTP/1.1 responses."""

    def __init__(self, port: int, host: str = "127.0.0.1", family: int = socket.AF_INET) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect((host, port))
        self.buffer = b""
        _OPEN.append(self)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed(self) -> bool:
        """True once the server closed the connection (after any buffered bytes)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            return True

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the server")
        self.buffer += data

    def close(self) -> None:
        self.sock.close()


def request(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}{length}\r\n".encode() + body


def error_of(body: bytes) -> dict:
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[BackendServer]:
    monkeypatch.setattr(transport.GbdeskProtocol, "request_timeout", 1.0)
    running = BackendServer("127.0.0.1", 0, BackendApp(api_key=None, model_id="m"))
    running.serve_in_thread()
    yield running
    running.shutdown()
    running.server_close()


@pytest.fixture
def keyed_server() -> Iterator[BackendServer]:
    running = BackendServer("127.0.0.1", 0, BackendApp(api_key=KEY, model_id="m"))
    running.serve_in_thread()
    yield running
    running.shutdown()
    running.server_close()


def metrics(port: int) -> str:
    client = Raw(port)
    client.send(request("GET", "/metrics"))
    status, _, body = client.response()
    client.close()
    assert status == 200
    return body.decode()


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "+5", "99999999999999999999999"])
def test_bad_content_length_is_a_json_400_and_closes(server: BackendServer, length: str) -> None:
    client = Raw(server.port)
    client.send(
        f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()
        + b"x" * 1000
    )
    status, headers, body = client.response()
    if length == "99999999999999999999999":
        assert status in (400, 413)
    else:
        assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert error_of(body)["code"] == status
    if status == 400:
        assert client.closed()


def test_oversized_body_is_413_and_the_connection_still_works(
    server: BackendServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 8 MB must arrive within the request deadline: the default one here, not the tests' 1 s.
    monkeypatch.setattr(transport.GbdeskProtocol, "request_timeout", 30.0)
    client = Raw(server.port)
    size = MAX_BODY_BYTES + 100
    client.send(request("POST", "/v1/completions", b"x" * size))
    status, _, body = client.response()
    assert status == 413
    assert error_of(body)["code"] == 413
    client.send(request("GET", "/health"))
    status, _, body = client.response()
    assert status == 503  # still loading: the next request on the connection is parsed right


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v1/nothing", 404),
        ("PUT", "/v1/chat/completions", 405),
        ("DELETE", "/v1/chat/completions", 405),
        ("POST", "/health", 405),
    ],
)
def test_body_left_after_an_early_error_is_not_a_next_request(
    server: BackendServer, method: str, path: str, status: int
) -> None:
    smuggled = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    client = Raw(server.port)
    client.send(request(method, path, smuggled))
    got, headers, body = client.response()
    assert got == status
    assert headers["content-type"].startswith("application/json")
    assert error_of(body)["code"] in (status, "not_found")
    # The same (pooled) connection: the next request gets its own answer, not an HTML 400.
    client.send(request("GET", "/health"))
    got, _, body = client.response()
    assert got == 503
    assert error_of(body)["message"] == "Loading model"
    assert 'path="/metrics"' not in metrics(server.port)


def test_unauthorised_request_body_is_skipped_too(keyed_server: BackendServer) -> None:
    client = Raw(keyed_server.port)
    client.send(request("POST", "/v1/chat/completions", b"GET /metrics HTTP/1.1\r\n\r\n"))
    status, _, body = client.response()
    assert status == 401
    assert error_of(body)["type"] == "authentication_error"
    client.send(request("GET", "/health"))
    assert client.response()[0] == 503


@pytest.mark.parametrize("method", ["DELETE", "PUT", "OPTIONS", "PATCH", "BREW"])
def test_other_methods_get_openai_json(server: BackendServer, method: str) -> None:
    client = Raw(server.port)
    client.send(request(method, "/v1/chat/completions"))
    status, headers, body = client.response()
    assert status == 405
    assert "POST" in headers["allow"]
    assert method in error_of(body)["message"]
    client.send(request(method, "/v1/no-such-thing"))
    status, _, body = client.response()
    assert status == 404
    assert error_of(body)["code"] == "not_found"


def test_head_is_answered_without_a_body(server: BackendServer) -> None:
    client = Raw(server.port)
    client.send(request("HEAD", "/health"))
    status, headers, _ = _head_response(client)
    assert status == 503
    assert headers["content-type"].startswith("application/json")
    client.send(request("GET", "/health"))
    assert client.response()[0] == 503


def _head_response(client: Raw) -> tuple[int, dict[str, str], bytes]:
    while b"\r\n\r\n" not in client.buffer:
        client._fill()
    head, client.buffer = client.buffer.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return int(lines[0].split()[1]), headers, b""


def test_slow_headers_get_408_then_close(server: BackendServer) -> None:
    client = Raw(server.port)
    client.send(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")  # never finished
    status, _, body = client.response()
    assert status == 408
    assert error_of(body)["code"] == 408
    assert client.closed()


def test_content_length_longer_than_the_body_times_out(server: BackendServer) -> None:
    client = Raw(server.port)
    client.send(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{}")
    started = time.monotonic()
    status, _, _ = client.response()
    assert status == 408
    assert client.closed()
    assert time.monotonic() - started < 15  # guard: the handler did not wait for the client


def test_idle_connection_without_a_request_is_closed(server: BackendServer) -> None:
    client = Raw(server.port)
    assert client.closed()  # within the 1 s request deadline, no answer owed


def test_two_hundred_slow_clients_take_no_threads(server: BackendServer) -> None:
    before = threading.active_count()
    clients = [Raw(server.port) for _ in range(200)]
    for client in clients:
        client.send(b"GET /health HTTP/1.1\r\n")
    assert threading.active_count() <= before + 1
    fresh = Raw(server.port)
    fresh.send(request("GET", "/health"))
    assert fresh.response()[0] == 503  # others still get served meanwhile
    for client in clients:
        client.close()


def test_headers_over_the_limit_get_431(server: BackendServer) -> None:
    client = Raw(server.port)
    client.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    status, _, body = client.response()
    assert status == 431
    assert error_of(body)["code"] == 431


def test_invalid_utf8_json_is_400(server: BackendServer) -> None:
    app = server.app
    app.serves_chat = False  # embeddings-only, so the body is parsed before "loading"
    app.embedding_model_id = None
    client = Raw(server.port)
    client.send(request("POST", "/v1/embeddings", b'{"input": "caf\xe9\xff"}'))
    status, _, body = client.response()
    assert status == 400
    assert "UTF-8" in error_of(body)["message"]
    client.send(request("POST", "/v1/embeddings", b'{"input": '))
    status, _, body = client.response()
    assert status == 400
    assert "JSON" in error_of(body)["message"]


def test_control_bytes_in_paths_are_escaped_in_the_log(
    server: BackendServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gbdesk.backend.server")
    client = Raw(server.port)
    client.send(request("GET", "/v1/%1b%5b31mred%07%0d%0aFAKE%20LINE"))
    assert client.response()[0] == 404
    lines = [record.getMessage() for record in caplog.records]
    assert any("\\x1b[31mred" in line for line in lines)
    for line in lines:
        assert not any(ord(c) < 0x20 for c in line), line


def test_unresolvable_and_foreign_hosts_are_clear_errors() -> None:
    with pytest.raises(UsageError, match="not an IP address or a known host name"):
        bind_socket("no-such-host.invalid", 0)
    with pytest.raises(UsageError, match="not an address of this computer"):
        bind_socket("192.0.2.1", 0)  # TEST-NET-1: never this machine's


def test_ipv6_loopback_serves_or_says_why() -> None:
    try:
        running = BackendServer("::1", 0, BackendApp(api_key=None, model_id="m"))
    except UsageError as exc:
        assert "IPv6" in exc.message
        return
    running.serve_in_thread()
    try:
        client = Raw(running.port, "::1", socket.AF_INET6)
        client.send(request("GET", "/health"))
        assert client.response()[0] == 503
    finally:
        running.shutdown()
        running.server_close()
