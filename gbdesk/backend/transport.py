"""The HTTP transport: uvicorn (h11) serving an ASGI app from sockets bound up front.

HTTP/1.1 framing, keep-alive, chunked bodies, HTTP/1.0 and graceful shutdown are uvicorn's and
h11's. This module adds what they leave to the application, in one place:

- the listening sockets are bound before anything loads, so a taken port fails at once, and
  IPv6 or unresolvable hosts get a clear error;
- errors the protocol layer answers itself (a malformed request line, a bad Content-Length,
  headers over the limit) get OpenAI's JSON error shape instead of uvicorn's plain text;
- a whole request (headers and body) must arrive within ``request_timeout`` seconds, else the
  client gets 408 and the connection closes (slow clients cannot hold connections forever);
- at most ``max_connections`` connections are open at once; more get 503 and are closed.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
import threading
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from gbdesk.backend.errors import PortInUseError
from gbdesk.errors import UsageError

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 30.0
KEEP_ALIVE_SECONDS = 30.0
MAX_CONNECTIONS = 1024
MAX_HEADER_BYTES = 16 * 1024
SHUTDOWN_GRACE_SECONDS = 30.0
_REASONS = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large",
            503: "Service Unavailable"}  # fmt: skip


def error_bytes(status: int, message: str, kind: str = "invalid_request_error") -> bytes:
    """A complete HTTP/1.1 response with an OpenAI error body that closes the connection."""
    body = json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": status}}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "content-type: application/json; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class GbdeskProtocol(H11Protocol):
    """uvicorn's h11 protocol with JSON protocol errors, a request deadline and a connection cap."""

    request_timeout = REQUEST_TIMEOUT_SECONDS
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(
                error_bytes(503, "too many open connections; retry later", "unavailable_error")
            )
            transport.close()
            return
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._head_too_long(data):
            self._disarm_deadline()
            self.transport.write(
                error_bytes(431, f"the request headers are over {MAX_HEADER_BYTES} bytes")
            )
            self.transport.close()
            return
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm_deadline()  # the whole request is in

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_deadline()  # the next request on this connection gets its own deadline

    def _head_too_long(self, data: bytes) -> bool:
        """Whether the request line and headers, with ``data``, run over MAX_HEADER_BYTES."""
        pending = bytes(getattr(self.conn, "_receive_buffer", b"")) + data
        end = pending.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES + 4)
        return end < 0 and len(pending) > MAX_HEADER_BYTES

    def send_400_response(self, msg: str) -> None:
        self._disarm_deadline()
        if not self.transport.is_closing():
            self.transport.write(
                error_bytes(
                    400,
                    "the request is not valid HTTP/1.1 (request line, header or Content-Length)",
                )
            )
            self.transport.close()

    def _arm_deadline(self) -> None:
        self._disarm_deadline()
        self._deadline = self.loop.call_later(self.request_timeout, self._on_deadline)

    def _disarm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state in (h11.DONE, h11.MUST_CLOSE):
            return  # the whole request is in (a pipelined one, too): the app answers it
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        if self.conn.their_state is h11.IDLE and not getattr(self.conn, "_receive_buffer", b""):
            self.transport.close()  # an idle keep-alive connection: close quietly
            return
        log.info("closing a connection whose request did not arrive within %gs",
                 self.request_timeout)  # fmt: skip
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.write(
            error_bytes(408, f"the request did not arrive within {self.request_timeout:g} s")
        )
        self.transport.close()


def bind_socket(host: str, port: int, *, flag: str = "--port") -> socket.socket:
    """A listening TCP socket on ``host`` (IPv4 or IPv6 address, or a name) and ``port``.
    ``flag`` names the option that sets this port, for the fix of a taken one.

    Raises:
        PortInUseError: another program listens on the port.
        UsageError: the host is not an address of this machine or cannot be resolved.
        OSError: the address cannot be bound for another reason.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(
            f"cannot listen on {host!r}: it is not an IP address or a known host name",
            fix="use --host 127.0.0.1 (this computer only) or an address of this computer",
        ) from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, 48, 10048):
            from gbdesk.backend.ports import free_port_near

            suggested = free_port_near(host, port)  # free now, and not the embedding port
            raise PortInUseError(
                f"port {port} on {host} is already in use by another program",
                fix=f"stop that program, or pick a free port: {flag} {suggested}",
                details={"port": port, "suggested_port": suggested},
            ) from exc
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            raise UsageError(
                f"cannot listen on {host}: it is not an address of this computer"
                + (" (IPv6 may be off here)" if family == socket.AF_INET6 else ""),
                fix="use --host 127.0.0.1, or an address this computer has",
            ) from exc
        raise
    sock.listen(512)
    sock.setblocking(False)
    return sock


def url_for(host: str, port: int) -> str:
    """``http://host:port`` with IPv6 addresses in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class HttpServer:
    """uvicorn serving ``app`` on sockets bound at construction, in a thread of its own.

    Raises (from the constructor): see :func:`bind_socket`.
    """

    def __init__(self, app: Any, listen: list[tuple[str, int]]) -> None:
        self.sockets: list[socket.socket] = []
        try:
            for index, (host, port) in enumerate(listen):
                # The first address is the chat port; more are the embedding port.
                flag = "--port" if index == 0 else "--embedding-port"
                self.sockets.append(bind_socket(host, port, flag=flag))
        except BaseException:
            for sock in self.sockets:
                sock.close()
            raise
        config = uvicorn.Config(
            app,
            http=GbdeskProtocol,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_keep_alive=int(KEEP_ALIVE_SECONDS),
            timeout_graceful_shutdown=int(SHUTDOWN_GRACE_SECONDS),
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            server_header=False,
            date_header=True,
            ws="none",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def ports(self) -> list[int]:
        return [sock.getsockname()[1] for sock in self.sockets]

    @property
    def port(self) -> int:
        return self.ports[0]

    def serve_in_thread(self) -> threading.Thread:
        self._thread = threading.Thread(target=self._serve, name="gbdesk-http", daemon=True)
        self._thread.start()
        return self._thread

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=self.sockets))

    def shutdown(self) -> None:
        """Stop accepting, let requests in flight finish (up to the grace period), stop."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(SHUTDOWN_GRACE_SECONDS + 5)

    def server_close(self) -> None:
        for sock in self.sockets:
            sock.close()
