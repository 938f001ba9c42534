"""The OpenAI-compatible HTTP server (standard library only), a drop-in for llama-server.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions`` (streaming as server-sent events
or not), ``GET /v1/models``, ``GET /health`` (llama-server's answers: 200 ``{"status": "ok"}``,
503 while the model loads) and ``GET /metrics`` (Prometheus text). The same paths without
``/v1`` work too, as on llama-server. Errors use OpenAI's shape ``{"error": {...}}``.

The server listens before the model is loaded, so a supervisor can tell "loading" from "dead";
:meth:`BackendServer.attach` makes it ready.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import select
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from gbdesk.backend.chat_template import ChatTemplate
from gbdesk.backend.engine import Engine, Finish, Generation, GenerationRequest
from gbdesk.backend.errors import PortInUseError, RequestError
from gbdesk.backend.model import LlamaModel
from gbdesk.backend.protocol import CommonOptions, parse_common, parse_messages, parse_prompt

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
# How often a waiting handler checks whether its client hung up.
_DISCONNECT_POLL_SECONDS = 0.25
_LOADING = RequestError(503, "Loading model", kind="unavailable_error")
_KNOWN_PATHS = (
    "/health",
    "/metrics",
    "/v1/models",
    "/v1/chat/completions",
    "/v1/completions",
)
_ALIASES = {
    "/v1/health": "/health",
    "/models": "/v1/models",
    "/chat/completions": "/v1/chat/completions",
    "/completions": "/v1/completions",
}


@dataclass(frozen=True)
class ModelInfo:
    """What /v1/models says about the served model."""

    model_id: str
    n_ctx: int
    n_ctx_slot: int
    parallel: int
    n_ctx_train: int
    n_vocab: int


class BackendApp:
    """The server's state: the engine once loaded, the API key, request counters."""

    def __init__(self, *, api_key: str | None, model_id: str) -> None:
        self.api_key = api_key.encode() if api_key else None
        self.model_id = model_id
        self.engine: Engine | None = None
        self.model: LlamaModel | None = None
        self.template: ChatTemplate | None = None
        self.info: ModelInfo | None = None
        self.started = int(time.time())
        self.responses: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()

    def attach(self, engine: Engine, template: ChatTemplate) -> None:
        model = engine.model
        self.model, self.template = model, template
        self.info = ModelInfo(
            model_id=self.model_id,
            n_ctx=model.n_ctx,
            n_ctx_slot=model.n_ctx_slot,
            parallel=model.parallel,
            n_ctx_train=model.n_ctx_train,
            n_vocab=model.n_vocab,
        )
        self.engine = engine  # last: this is what makes the server "ready"

    def count(self, path: str, status: int) -> None:
        with self._lock:
            self.responses[(path if path in _KNOWN_PATHS else "other", status)] += 1

    def tokenize_chat(self, text: str) -> list[int]:
        model = self.model
        bos = self.template.bos_token
        if model.add_bos and bos and text.startswith(bos):
            text = text[len(bos) :]  # the template wrote BOS; tokenize must not add a second
        return model.tokenize(text, add_special=True)

    def metrics_text(self) -> str:
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP gbdesk_{name} {help_text}")
            lines.append(f"# TYPE gbdesk_{name} {kind}")
            lines.extend(f"gbdesk_{name}{labels} {value:g}" for labels, value in samples)

        with self._lock:
            responses = sorted(self.responses.items())
        metric(
            "requests_total",
            "counter",
            "HTTP requests answered, by path and status.",
            [
                (f'{{path="{path}",status="{status}"}}', count)
                for (path, status), count in responses
            ],
        )
        if self.engine is not None:
            stats = self.engine.stats()
            metric("prompt_tokens_total", "counter", "Prompt tokens processed.",
                   [("", stats.prompt_tokens)])  # fmt: skip
            metric("completion_tokens_total", "counter", "Tokens generated.",
                   [("", stats.completion_tokens)])  # fmt: skip
            metric("requests_processing", "gauge", "Requests holding a slot.",
                   [("", stats.active)])  # fmt: skip
            metric("requests_queued", "gauge", "Requests waiting for a slot (queue depth).",
                   [("", stats.queued)])  # fmt: skip
            metric("queue_limit", "gauge", "Waiting requests allowed before 429.",
                   [("", stats.queue_limit)])  # fmt: skip
            metric("slots", "gauge", "Parallel slots.", [("", stats.slots)])
            metric("tokens_per_second", "gauge",
                   "Generation throughput over the time spent generating.",
                   [("", stats.tokens_per_second)])  # fmt: skip
        return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gbdesk"
    disable_nagle_algorithm = True  # small SSE writes must leave at once
    server: BackendServer

    # ------------------------------------------------------------------ plumbing

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        path = urlsplit(self.path).path.rstrip("/") or "/"
        path = _ALIASES.get(path, path)
        self._status = 500
        try:
            route = _ROUTES.get((method, path))
            if route is None:
                if any(known == path for _, known in _ROUTES):
                    raise RequestError(405, f"{method} is not allowed on {path}")
                raise RequestError(404, f"no route {path}", code="not_found")
            if path != "/health":
                self._check_key(app)
            route(self, app)
        except RequestError as exc:
            self._send_error(exc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            log.exception("request %s %s failed", method, path)
            self._send_error(RequestError(500, "internal server error", kind="server_error"))
        finally:
            app.count(path, self._status)

    def _check_key(self, app: BackendApp) -> None:
        if app.api_key is None:
            return
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), app.api_key
        ):
            raise RequestError(
                401,
                "invalid or missing API key: send 'Authorization: Bearer <key>'",
                kind="authentication_error",
                code="invalid_api_key",
            )

    def _read_json(self) -> dict[str, Any]:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise RequestError(411, "a Content-Length header is required")
        try:
            length = int(length_header)
        except ValueError:
            raise RequestError(400, "the Content-Length header is not a number") from None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            # Read what was sent (up to a bound) so that the client gets to read the answer.
            remaining = min(length, 8 * MAX_BODY_BYTES)
            while remaining > 0:
                received = self.rfile.read(min(remaining, 1 << 16))
                if not received:
                    break
                remaining -= len(received)
            raise RequestError(413, f"the request body is over {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise RequestError(400, "the request body must be a JSON object")
        return body

    def _send_json(
        self, status: int, payload: Any, extra_headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: RequestError) -> None:
        headers = {"Retry-After": "1"} if error.status in (429, 503) else None
        try:
            self._send_json(error.status, error.body(), headers)
        except OSError:
            self.close_connection = True

    def _send_text(self, status: int, text: str, content_type: str) -> None:
        data = text.encode()
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _client_gone(self) -> bool:
        """True when the client closed its side of the connection."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _next_event(self, generation: Generation) -> str | Finish | None:
        """The next event, or None when the client hung up while waiting."""
        while True:
            try:
                return generation.next_event(timeout=_DISCONNECT_POLL_SECONDS)
            except queue.Empty:
                if self._client_gone():
                    return None

    # ------------------------------------------------------------------ routes

    def health(self, app: BackendApp) -> None:
        if app.engine is None:
            raise _LOADING
        self._send_json(200, {"status": "ok"})

    def metrics(self, app: BackendApp) -> None:
        self._send_text(200, app.metrics_text(), "text/plain; version=0.0.4; charset=utf-8")

    def models(self, app: BackendApp) -> None:
        info = app.info
        if info is None:
            raise _LOADING
        entry = {
            "id": info.model_id,
            "object": "model",
            "created": app.started,
            "owned_by": "gbdesk",
            "meta": {
                "n_ctx": info.n_ctx,
                "n_ctx_slot": info.n_ctx_slot,
                "parallel": info.parallel,
                "n_ctx_train": info.n_ctx_train,
                "n_vocab": info.n_vocab,
            },
        }
        self._send_json(200, {"object": "list", "data": [entry]})

    def chat_completions(self, app: BackendApp) -> None:
        body = self._read_json()
        if app.engine is None:
            raise _LOADING
        options = parse_common(body)
        prompt = app.template.render(parse_messages(body))
        self._generate(app, "chat", app.tokenize_chat(prompt), options)

    def completions(self, app: BackendApp) -> None:
        body = self._read_json()
        if app.engine is None:
            raise _LOADING
        options = parse_common(body)
        prompt = parse_prompt(body)
        if isinstance(prompt, str):
            tokens = app.model.tokenize(prompt, add_special=True)
        else:
            if not all(0 <= token < app.model.n_vocab for token in prompt):
                raise RequestError(
                    400, "a prompt token id is outside the vocabulary", param="prompt"
                )
            tokens = prompt
        self._generate(app, "text", tokens, options)

    # ------------------------------------------------------------------ generation

    def _generate(
        self, app: BackendApp, kind: str, tokens: list[int], options: CommonOptions
    ) -> None:
        request = GenerationRequest(
            prompt_tokens=tuple(tokens),
            max_tokens=options.max_tokens,
            stop=options.stop,
            sampling=options.sampling,
            ignore_eos=options.ignore_eos,
        )
        generation = app.engine.submit(
            request, prompt_param="messages" if kind == "chat" else "prompt"
        )
        response = _ResponseShape(kind, app.model_id)
        try:
            if options.stream:
                self._stream(generation, response, options.include_usage)
            else:
                self._collect(generation, response)
        finally:
            if generation.finish is None:
                generation.cancel()  # the client left or writing failed: free the slot now

    def _collect(self, generation: Generation, response: _ResponseShape) -> None:
        parts: list[str] = []
        next_check = time.monotonic() + _DISCONNECT_POLL_SECONDS
        while True:
            event = self._next_event(generation)
            if event is None:
                self.close_connection = True
                return
            if isinstance(event, Finish):
                break
            parts.append(event)
            # Nothing is written until the end, so look for a client that left meanwhile.
            if time.monotonic() >= next_check:
                if self._client_gone():
                    self.close_connection = True
                    return
                next_check = time.monotonic() + _DISCONNECT_POLL_SECONDS
        finish = generation.finish
        if finish.reason == "error":
            raise RequestError(500, finish.error or "generation failed", kind="server_error")
        self._send_json(200, response.complete("".join(parts), finish))

    def _stream(
        self, generation: Generation, response: _ResponseShape, include_usage: bool
    ) -> None:
        self._status = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        write = self.wfile.write
        first = True
        while generation.finish is None:
            event = self._next_event(generation)
            if event is None:
                self.close_connection = True
                return
            # Send every piece that is ready in one write: one event per token, fewer syscalls.
            events: list[bytes] = []
            while isinstance(event, str):
                events.append(response.delta_bytes(event, first))
                first = False
                event = generation.poll()
            if events:
                write(_chunk_bytes(b"".join(events)))
        finish = generation.finish
        if finish.reason == "error":
            error = RequestError(500, finish.error or "generation failed", kind="server_error")
            write(_chunk(error.body()))
        else:
            write(_chunk(response.last_delta(finish, first)))
            if include_usage:
                write(_chunk(response.usage_chunk(finish)))
        write(_chunk_bytes(b"data: [DONE]\n\n"))
        write(b"0\r\n\r\n")


def _chunk_bytes(data: bytes) -> bytes:
    """One piece of a chunked HTTP body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _chunk(payload: Any) -> bytes:
    return _chunk_bytes(b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n")


_PLACEHOLDER = "\u0000text\u0000"


def _delta_choice(delta: dict[str, Any]) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}


class _ResponseShape:
    """Builds OpenAI's response objects for one request (chat or text completion)."""

    def __init__(self, kind: str, model_id: str) -> None:
        self.chat = kind == "chat"
        prefix = "chatcmpl" if self.chat else "cmpl"
        self.id = f"{prefix}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model_id
        self.object = "chat.completion" if self.chat else "text_completion"
        self.chunk_object = "chat.completion.chunk" if self.chat else "text_completion"
        if self.chat:
            delta_first = {"role": "assistant", "content": _PLACEHOLDER}
            self._head_first, self._tail = self._split_template(_delta_choice(delta_first))
            self._head, _ = self._split_template(_delta_choice({"content": _PLACEHOLDER}))
        else:
            choice = {"index": 0, "text": _PLACEHOLDER, "logprobs": None, "finish_reason": None}
            self._head, self._tail = self._split_template(choice)
            self._head_first = self._head

    @staticmethod
    def usage(finish: Finish) -> dict[str, Any]:
        return {
            "prompt_tokens": finish.prompt_tokens,
            "completion_tokens": finish.completion_tokens,
            "total_tokens": finish.prompt_tokens + finish.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": finish.cached_tokens},
        }

    def complete(self, text: str, finish: Finish) -> dict[str, Any]:
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
        else:
            choice = {"index": 0, "text": text}
        choice.update(logprobs=None, finish_reason=finish.reason)
        return {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": self.usage(finish),
        }

    def _chunk(self, choice: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": self.chunk_object,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def delta_bytes(self, text: str, first: bool) -> bytes:
        """One SSE event carrying ``text``, from pre-encoded halves (no dict per token)."""
        head = self._head_first if first else self._head
        return head + json.dumps(text, ensure_ascii=False).encode() + self._tail

    def _split_template(self, choice: dict[str, Any]) -> tuple[bytes, bytes]:
        """The bytes of a chunk before and after its text (marked by a placeholder)."""
        encoded = b"data: " + json.dumps(self._chunk(choice), ensure_ascii=False).encode()
        head, tail = encoded.split(json.dumps(_PLACEHOLDER).encode())
        return head, tail + b"\n\n"

    def last_delta(self, finish: Finish, first: bool) -> dict[str, Any]:
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish.reason}
        else:
            choice = {"index": 0, "text": "", "logprobs": None, "finish_reason": finish.reason}
        return self._chunk(choice)

    def usage_chunk(self, finish: Finish) -> dict[str, Any]:
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = self.usage(finish)
        return chunk


_ROUTES: dict[tuple[str, str], Callable[[_Handler, BackendApp], None]] = {
    ("GET", "/health"): _Handler.health,
    ("GET", "/metrics"): _Handler.metrics,
    ("GET", "/v1/models"): _Handler.models,
    ("POST", "/v1/chat/completions"): _Handler.chat_completions,
    ("POST", "/v1/completions"): _Handler.completions,
}


class BackendServer(ThreadingHTTPServer):
    """The HTTP server, bound at construction (so a taken port fails at once).

    Raises (from the constructor):
        PortInUseError: another program listens on the port.
        OSError: the address cannot be bound for another reason.
    """

    daemon_threads = True
    block_on_close = False
    request_queue_size = 64

    def __init__(self, host: str, port: int, app: BackendApp) -> None:
        self.app = app
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                raise PortInUseError(
                    f"port {port} on {host} is already in use by another program",
                    fix=f"stop that program, or pick another port: --port {port + 1}",
                ) from exc
            raise

    @property
    def port(self) -> int:
        return self.server_address[1]

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="gbdesk-http", daemon=True)
        thread.start()
        return thread
