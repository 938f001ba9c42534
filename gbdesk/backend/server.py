"""The OpenAI-compatible HTTP API (Starlette on uvicorn), a drop-in for llama-server.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions`` (streaming as server-sent events
or not), ``POST /v1/embeddings``, ``GET /v1/models``, ``POST /tokenize``, ``POST /detokenize``,
``GET /props``, ``GET /health`` (llama-server's answers: 200 ``{"status": "ok"}``, 503 while the
model loads) and ``GET /metrics`` (Prometheus text). The same paths without ``/v1`` work too, as
on llama-server. Every error, 404 and 405 included, has OpenAI's shape ``{"error": {...}}``.

The server listens before the models are loaded, so a supervisor can tell "loading" from "dead";
:meth:`BackendApp.attach` (and :meth:`BackendApp.attach_embeddings`) make it ready.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gbdesk.backend.chat_template import ChatTemplate, missing_template_warning
from gbdesk.backend.engine import (
    Engine,
    Event,
    Finish,
    Generation,
    GenerationRequest,
    TokenLogprob,
)
from gbdesk.backend.errors import RequestError
from gbdesk.backend.json_body import clip, decode_json_body
from gbdesk.backend.model import LlamaModel
from gbdesk.backend.protocol import (
    IGNORE_EOS_WITH_GRAMMAR,
    ChatOptions,
    CommonOptions,
    check_strings,
    check_token_ids,
    parse_chat_options,
    parse_common,
    parse_embedding_input,
    parse_messages,
    parse_prompt,
    reject_unknown,
)
from gbdesk.backend.reasoning import CONTENT, REASONING, ReasoningSplitter
from gbdesk.backend.responses import (
    SSE_DONE,
    ResponseShape,
    chat_logprobs,
    sse,
    text_logprobs,
)
from gbdesk.backend.tools import (
    HERMES,
    ToolCall,
    ToolDialect,
    call_parser,
    dialect_for,
    parse_tools,
    prepare_messages,
    tool_grammar,
)
from gbdesk.backend.transport import HttpServer

if TYPE_CHECKING:
    from gbdesk.backend.embeddings import EmbeddingEngine

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
_DRAIN_LIMIT_BYTES = 8 * MAX_BODY_BYTES
_LOADING = RequestError(503, "Loading model", kind="unavailable_error")
_KNOWN_PATHS = (
    "/health",
    "/metrics",
    "/props",
    "/tokenize",
    "/detokenize",
    "/v1/models",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
)


def printable(text: str) -> str:
    """``text`` with control characters escaped (for log lines built from client input)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


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
    """The server's state: the engines once loaded, the API key, request counters.

    Args:
        chat: whether a chat model is served (False: embeddings only).
        embedding_model_id: the id of the embedding model, when one is served.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        model_id: str,
        chat: bool = True,
        embedding_model_id: str | None = None,
        reasoning_format: str = "deepseek",
    ) -> None:
        self.api_key = api_key.encode() if api_key else None
        self.model_id = model_id
        self.serves_chat = chat
        self.embedding_model_id = embedding_model_id
        self.reasoning_format = reasoning_format
        self.engine: Engine | None = None
        self.model: LlamaModel | None = None
        self.template: ChatTemplate | None = None
        self.info: ModelInfo | None = None
        self.embedder: EmbeddingEngine | None = None
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

    def attach_embeddings(self, embedder: EmbeddingEngine) -> None:
        self.embedder = embedder

    @property
    def ready(self) -> bool:
        chat_ready = self.engine is not None or not self.serves_chat
        embeddings_ready = self.embedder is not None or self.embedding_model_id is None
        return chat_ready and embeddings_ready

    def count(self, path: str, status: int) -> None:
        with self._lock:
            self.responses[(path if path in _KNOWN_PATHS else "other", status)] += 1

    def tokenize_chat(self, text: str) -> list[int]:
        _, model, template = _require_chat(self)
        bos = template.bos_token
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
        if self.embedder is not None:
            metric("embedding_inputs_total", "counter", "Texts embedded.",
                   [("", self.embedder.inputs_done)])  # fmt: skip
            metric("embedding_tokens_total", "counter", "Tokens embedded.",
                   [("", self.embedder.tokens_done)])  # fmt: skip
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- request plumbing


def _error_response(error: RequestError) -> Response:
    headers = {"Retry-After": "1"} if error.status in (429, 503) else {}
    # After a 413 the transport reads the rest of the body and throws it away (within the
    # request deadline), so that the client gets to read the answer and the connection is kept.
    # ASCII JSON: a message that quotes client text (a lone surrogate even) always encodes.
    body = json.dumps(error.body(), separators=(",", ":")).encode()
    return Response(body, status_code=error.status, headers=headers, media_type="application/json")


def _check_key(app: BackendApp, request: Request) -> None:
    if app.api_key is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(errors="replace"), app.api_key
    ):
        raise RequestError(
            401,
            "invalid or missing API key: send 'Authorization: Bearer <key>'",
            kind="authentication_error",
            code="invalid_api_key",
        )


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, at most MAX_BODY_BYTES long.

    Raises:
        RequestError: 413 for a body over the limit, 400 for anything but a JSON object that
            Python handles safely (see :func:`gbdesk.backend.json_body.decode_json_body`).
    """
    too_large = RequestError(413, f"the request body is over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                # Read on (throwing it away, up to a bound) so that a client that sends its
                # whole body before reading gets to read the answer.
                if size > _DRAIN_LIMIT_BYTES:
                    raise too_large
                chunks.clear()
                continue
            chunks.append(chunk)
    except ClientDisconnect:
        raise RequestError(400, "the client closed the connection mid-request") from None
    if size > MAX_BODY_BYTES:
        raise too_large
    return decode_json_body(b"".join(chunks))


Handler = Callable[[BackendApp, Request], Awaitable[Response]]
INTERNAL_ERROR = RequestError(500, "internal server error", kind="server_error")


def _log_refusal(request: Request, error: RequestError) -> None:
    """One log line for a request answered with an error (client input escaped)."""
    if error.status in (400, 413, 429):
        level = logging.INFO  # the client's mistake or a full queue: worth a line, not an alarm
    elif error.status == 500:
        level = logging.ERROR
    else:
        level = logging.DEBUG  # 401, 404, 405, 501 and 503 while loading (polled)
    param = f" ({printable(clip(error.param))})" if error.param else ""
    log.log(
        level,
        "%s %s -> %d %s%s",
        printable(request.method),
        printable(request.url.path),
        error.status,
        printable(error.message),
        param,
    )


def log_failure(what: str, exc: BaseException) -> None:
    """One escaped error line for an unexpected exception: its type, message and where.

    Never a traceback: the message may quote client input, and a log reader needs one line.
    """
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = ""
    if frame is not None:
        code = frame.tb_frame.f_code
        where = f" (at {code.co_filename.rsplit('/', 2)[-1]}:{frame.tb_lineno} in {code.co_name})"
    text = printable(clip(str(exc), 300))
    log.error("%s failed: %s: %s%s", printable(clip(what, 300)), type(exc).__name__, text, where)


def _endpoint(
    app: BackendApp, path: str, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """Key check, error mapping, counting and a debug log line around one route's handler."""

    async def endpoint(request: Request) -> Response:
        try:
            if path != "/health":
                _check_key(app, request)
            response = await handler(app, request)
        except RequestError as exc:
            response = _error_response(exc)
            _log_refusal(request, exc)
        except Exception as exc:
            log_failure(f"{request.method} {printable(request.url.path)}", exc)
            response = _error_response(INTERNAL_ERROR)
        status = response.status_code
        app.count(path, status)
        log.debug("%s %s -> %d", request.method, printable(request.url.path), status)
        return response

    return endpoint


def _http_exception_handler(app: BackendApp) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        path = printable(request.url.path)
        if exc.status_code == 405:
            error = RequestError(405, f"{printable(request.method)} is not allowed on {path}")
        elif exc.status_code == 404:
            error = RequestError(404, f"no route {path}", code="not_found")
        else:
            error = RequestError(exc.status_code, str(exc.detail))
        app.count("other", error.status)
        log.debug("%s %s -> %d", printable(request.method), path, error.status)
        response = _error_response(error)
        if exc.headers and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response

    return handle


# ---------------------------------------------------------------------- generation bridge


class _Waker:
    """Wakes the event loop from the engine thread, at most once per pending wake-up."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.event = asyncio.Event()
        self._pending = False

    def notify(self) -> None:  # engine thread
        if not self._pending:
            self._pending = True
            self.loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        self._pending = False
        self.event.set()


Piece = tuple[str, "str | ToolCall"]  # (content | reasoning_content | tool, value)


class OutputPipeline:
    """Generated text -> content, reasoning and tool-call pieces, for one response."""

    def __init__(self, reasoning: ReasoningSplitter | None, tools: ToolDialect | None) -> None:
        self.reasoning = reasoning
        self.tools = call_parser(tools) if tools is not None else None

    @property
    def plain(self) -> bool:
        return self.reasoning is None and self.tools is None

    def _content(self, pieces: list[tuple[str, str]]) -> list[Piece]:
        out: list[Piece] = []
        for field, text in pieces:
            if field != CONTENT or self.tools is None:
                out.append((field, text))
                continue
            for item in self.tools.feed(text):
                out.append(("tool", item) if isinstance(item, ToolCall) else (CONTENT, item))
        return out

    def feed(self, text: str) -> list[Piece]:
        if self.reasoning is None:
            return self._content([(CONTENT, text)])
        return self._content(self.reasoning.feed(text))

    def flush(self, finish: Finish) -> list[Piece]:
        """The held-back rest, once ``finish`` ended the generation."""
        out = self._content(self.reasoning.flush()) if self.reasoning is not None else []
        if self.tools is not None:
            for item in self.tools.flush(cut=finish.reason != "stop"):
                out.append(("tool", item) if isinstance(item, ToolCall) else (CONTENT, item))
        return out

    @property
    def called(self) -> bool:
        return bool(self.tools is not None and self.tools.calls)

    def unfinished_note(self, finish: Finish, max_tokens: int | None) -> dict[str, Any] | None:
        """``{"name", "message"}`` for a tool call begun but not returned (after flush)."""
        unfinished = self.tools.unfinished if self.tools is not None else None
        if unfinished is None:
            return None
        return {
            "name": unfinished.name,
            "message": unfinished.message(finish.reason, max_tokens, finish.completion_tokens),
        }


class GenerationResponse(Response):
    """Runs one generation and sends it whole (JSON) or as server-sent events.

    A client that hangs up (``http.disconnect``) cancels the generation: its slot is freed at
    the engine's next step.
    """

    def __init__(
        self,
        generation: Generation,
        waker: _Waker,
        shape: ResponseShape,
        options: CommonOptions,
        pipeline: OutputPipeline,
    ) -> None:
        self.generation = generation
        self.waker = waker
        self.shape = shape
        self.options = options
        self.pipeline = pipeline
        self.status_code = 200
        self.background = None
        self._gone = False
        self._first = True
        self._calls = 0
        self._logprobs: list[TokenLogprob] = []  # not yet sent (streaming)
        self._offset = 0  # characters of text sent (the completions API's text_offset)

    async def _watch_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._gone = True
                self.generation.cancel()
                self.waker.event.set()
                return

    async def _events(self) -> list[Event]:
        """The events ready now (waiting for at least one); [] when the client left."""
        generation = self.generation
        while not self._gone:
            self.waker.event.clear()
            ready: list[Event] = []
            while (event := generation.poll()) is not None:
                ready.append(event)
                if isinstance(event, Finish):
                    break
            if ready:
                return ready
            await self.waker.event.wait()
        return []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(self._watch_disconnect(receive))
        try:
            if self.options.stream:
                await self._stream(send)
            else:
                await self._collect(send)
        finally:
            watcher.cancel()
            if self.generation.finish is None:
                self.generation.cancel()  # the client left or writing failed: free the slot

    async def _collect(self, send: Send) -> None:
        parts: list[str] = []
        logprobs: list[TokenLogprob] = []
        while self.generation.finish is None:
            events = await self._events()
            if not events:
                return
            for event in events:
                if isinstance(event, str):
                    parts.append(event)
                elif isinstance(event, TokenLogprob):
                    logprobs.append(event)
        finish = self.generation.finish
        if finish.reason == "error":
            error = RequestError(500, finish.error or "generation failed", kind="server_error")
            await _error_response(error)({"type": "http"}, _no_receive, send)
            return
        pipeline = self.pipeline
        pieces = [*pipeline.feed("".join(parts)), *pipeline.flush(finish)]
        text = "".join(v for f, v in pieces if f == CONTENT and isinstance(v, str))
        reasoning = "".join(v for f, v in pieces if f == REASONING and isinstance(v, str))
        calls = [v.as_dict() for f, v in pieces if isinstance(v, ToolCall)]
        payload = self.shape.complete(
            text,
            finish,
            reasoning=reasoning or None,
            tool_calls=calls or None,
            logprobs=logprobs if self.options.logprobs is not None else None,
            unfinished_call=pipeline.unfinished_note(finish, self.options.max_tokens),
        )
        body = json.dumps(payload, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _encode(self, pieces: list[Piece], out: list[bytes]) -> None:
        for field, value in pieces:
            if isinstance(value, ToolCall):
                out.append(self.shape.tool_call_events(value.as_dict(), self._calls, self._first))
                self._calls += 1
            elif value and self.options.logprobs is not None:
                out.append(
                    self.shape.delta_with_logprobs(
                        value, self._first, field, self._logprobs, self._offset
                    )
                )
                self._logprobs = []
                self._offset += len(value)
            elif value:
                out.append(self.shape.delta_bytes(value, self._first, field=field))
            else:
                continue
            self._first = False

    async def _stream(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        shape, pipeline = self.shape, self.pipeline
        while self.generation.finish is None:
            events = await self._events()
            if not events:
                return
            # Every event that is ready goes out in one write: whole events, fewer syscalls.
            out: list[bytes] = []
            for event in events:
                if isinstance(event, TokenLogprob):
                    self._logprobs.append(event)
                    continue
                if not isinstance(event, str):
                    continue
                if pipeline.plain and self.options.logprobs is None:
                    out.append(shape.delta_bytes(event, self._first))
                    self._first = False
                else:
                    self._encode(pipeline.feed(event), out)
            if out:
                await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
        finish = self.generation.finish
        tail: list[bytes] = []
        if finish.reason == "error":
            error = RequestError(500, finish.error or "generation failed", kind="server_error")
            tail.append(sse(error.body()))
        else:
            self._encode(pipeline.flush(finish), tail)
            last = shape.last_delta(
                finish,
                self._first,
                tool_calls=pipeline.called,
                unfinished_call=pipeline.unfinished_note(finish, self.options.max_tokens),
            )
            if self._logprobs:  # tokens whose text never came out (held back, then cut)
                last["choices"][0]["logprobs"] = (
                    chat_logprobs(self._logprobs) if shape.chat else text_logprobs(self._logprobs)
                )
            tail.append(sse(last))
            if self.options.include_usage:
                tail.append(sse(shape.usage_chunk(finish)))
        tail.append(SSE_DONE)
        await send({"type": "http.response.body", "body": b"".join(tail), "more_body": False})


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def _start_generation(
    app: BackendApp,
    kind: str,
    tokens: list[int],
    options: CommonOptions,
    *,
    chat: ChatOptions | None = None,
    tools: ToolDialect | None = None,
) -> GenerationResponse:
    check_token_ids(options.sampling, _require_chat(app).model.n_vocab)
    request = GenerationRequest(
        prompt_tokens=tuple(tokens),
        max_tokens=options.max_tokens,
        stop=options.stop,
        sampling=options.sampling,
        ignore_eos=options.ignore_eos,
        grammar=options.grammar,
        grammar_triggers=options.grammar_triggers,
        logprobs=options.logprobs,
    )
    waker = _Waker(asyncio.get_running_loop())
    generation = _require_chat(app).engine.submit(
        request, prompt_param="messages" if kind == "chat" else "prompt", notify=waker.notify
    )
    reasoning = None
    if chat is not None and chat.reasoning_format != "none":
        reasoning = ReasoningSplitter(started=chat.thinking_started)
    return GenerationResponse(
        generation,
        waker,
        ResponseShape(kind, app.model_id),
        options,
        OutputPipeline(reasoning, tools),
    )


# ---------------------------------------------------------------------- routes


class ChatParts(NamedTuple):
    """What a chat or completion request needs, once the chat model is loaded."""

    engine: Engine
    model: LlamaModel
    template: ChatTemplate


def _require_chat(app: BackendApp) -> ChatParts:
    """The loaded chat model's parts.

    Raises:
        RequestError: 501 when this server only embeds, 503 while the model loads.
    """
    if not app.serves_chat:
        raise RequestError(
            501,
            "this server only serves embeddings (start gbdesk serve with a chat model)",
            kind="not_supported_error",
        )
    if app.engine is None or app.model is None or app.template is None:
        raise _LOADING
    return ChatParts(app.engine, app.model, app.template)


async def health(app: BackendApp, request: Request) -> Response:
    if not app.ready:
        raise _LOADING
    if app.engine is not None and app.engine.failure is not None:
        raise RequestError(503, app.engine.failure, kind="unavailable_error")
    return JSONResponse({"status": "ok"})


async def metrics(app: BackendApp, request: Request) -> Response:
    return Response(app.metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def models(app: BackendApp, request: Request) -> Response:
    if not app.ready:
        raise _LOADING
    data = []
    info = app.info
    if info is not None:
        data.append(
            {
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
        )
    if app.embedder is not None:
        embedder = app.embedder
        data.append(
            {
                "id": embedder.model_id,
                "object": "model",
                "created": app.started,
                "owned_by": "gbdesk",
                "meta": {
                    "n_ctx": embedder.n_ctx,
                    "n_embd": embedder.n_embd,
                    "pooling": embedder.pooling,
                    "n_vocab": embedder.n_vocab,
                },
            }
        )
    return JSONResponse({"object": "list", "data": data})


async def props(app: BackendApp, request: Request) -> Response:
    if not app.ready:
        raise _LOADING
    if app.info is None:
        return JSONResponse({"total_slots": 0, "embeddings": True})
    info = app.info
    _, model, template = _require_chat(app)
    return JSONResponse(
        {
            "default_generation_settings": {
                "n_ctx": info.n_ctx_slot,
                "params": {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05},
            },
            "total_slots": info.parallel,
            "model_alias": info.model_id,
            "model_path": str(model.path),
            "chat_template": template.source,
            # Which template answers: the model's own, or the built-in one standing in for a
            # model without any (a base model, likely to loop), with the warning in words.
            "chat_template_from_model": template.from_model,
            "chat_template_name": template.name,
            "chat_template_warning": ""
            if template.from_model
            else missing_template_warning(model.path.name, template.name),
            "bos_token": template.bos_token,
            "eos_token": template.eos_token,
            "n_ctx": info.n_ctx,
            "n_ctx_train": info.n_ctx_train,
            "embeddings": app.embedder is not None,
            "reasoning_format": app.reasoning_format,
        }
    )


async def tokenize(app: BackendApp, request: Request) -> Response:
    body = await read_json(request)
    model = _require_chat(app).model
    content = body.get("content")
    if not isinstance(content, str):
        raise RequestError(400, "'content' must be a string", param="content")
    reject_unknown(body, {"content", "add_special", "with_pieces", "model"})
    check_strings(body, "model")
    flags = {name: body.get(name, False) for name in ("add_special", "with_pieces")}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise RequestError(400, f"'{name}' must be true or false", param=name)
    add_special, with_pieces = flags["add_special"], flags["with_pieces"]
    tokens = model.tokenize(content, add_special=add_special)
    if not with_pieces:
        return JSONResponse({"tokens": tokens})
    pieces = [
        {"id": token, "piece": model.piece(token).decode("utf-8", errors="replace")}
        for token in tokens
    ]
    return JSONResponse({"tokens": pieces})


async def detokenize(app: BackendApp, request: Request) -> Response:
    body = await read_json(request)
    model = _require_chat(app).model
    tokens = body.get("tokens")
    if not isinstance(tokens, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) and 0 <= t < model.n_vocab for t in tokens
    ):
        raise RequestError(400, "'tokens' must be a list of token ids", param="tokens")
    reject_unknown(body, {"tokens", "model"})
    check_strings(body, "model")
    data = b"".join(model.piece(token) for token in tokens)
    return JSONResponse({"content": data.decode("utf-8", errors="replace")})


async def chat_completions(app: BackendApp, request: Request) -> Response:
    body = await read_json(request)
    template = _require_chat(app).template
    options = parse_common(body, chat=True)
    chat = parse_chat_options(body, app.reasoning_format)
    tool_options = parse_tools(body)
    source = "" if template.builtin else template.source
    messages, tools = prepare_messages(parse_messages(body), source, tool_options)
    # Calls come in the format the template asks for; gbdesk's own instructions ask for Hermes'.
    dialect = dialect_for(source) if tools is not None else HERMES
    if tool_options is not None:
        if options.ignore_eos:
            raise RequestError(400, IGNORE_EOS_WITH_GRAMMAR, param="ignore_eos")
        if options.grammar is not None:
            raise RequestError(
                400, "'tools' cannot be combined with a grammar or a JSON response_format",
                param="response_format" if body.get("response_format") else "grammar",
            )  # fmt: skip
        options = replace(
            options,
            grammar=tool_grammar(tool_options, dialect),
            grammar_triggers=dialect.triggers if tool_options.choice == "auto" else (),
        )
    prompt = template.render(messages, tools=tools)
    chat = chat.after_prompt(prompt)
    return _start_generation(
        app,
        "chat",
        app.tokenize_chat(prompt),
        options,
        chat=chat,
        tools=dialect if tool_options is not None else None,
    )


async def completions(app: BackendApp, request: Request) -> Response:
    body = await read_json(request)
    model = _require_chat(app).model
    options = parse_common(body, chat=False)
    prompt = parse_prompt(body)
    if isinstance(prompt, str):
        tokens = model.tokenize(prompt, add_special=True)
    else:
        if not all(0 <= token < model.n_vocab for token in prompt):
            raise RequestError(400, "a prompt token id is outside the vocabulary", param="prompt")
        tokens = prompt
    return _start_generation(app, "text", tokens, options)


async def embeddings(app: BackendApp, request: Request) -> Response:
    body = await read_json(request)
    if app.embedding_model_id is None:
        raise RequestError(
            501,
            "this server has no embedding model: start it with --embedding-model",
            kind="not_supported_error",
        )
    embedder = app.embedder
    if embedder is None:
        raise _LOADING
    texts, encoding = parse_embedding_input(body)
    vectors, n_tokens = await asyncio.wrap_future(embedder.submit(texts))
    data = []
    for index, vector in enumerate(vectors):
        if encoding == "base64":
            value: Any = base64.b64encode(vector.tobytes()).decode("ascii")
        else:
            value = vector.tolist()
        data.append({"object": "embedding", "index": index, "embedding": value})
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": embedder.model_id,
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
        }
    )


_ROUTES: list[tuple[str, str, Handler, tuple[str, ...]]] = [
    # (path, method, handler, aliases)
    ("/health", "GET", health, ("/v1/health",)),
    ("/metrics", "GET", metrics, ()),
    ("/props", "GET", props, ()),
    ("/tokenize", "POST", tokenize, ()),
    ("/detokenize", "POST", detokenize, ()),
    ("/v1/models", "GET", models, ("/models",)),
    ("/v1/chat/completions", "POST", chat_completions, ("/chat/completions",)),
    ("/v1/completions", "POST", completions, ("/completions",)),
    ("/v1/embeddings", "POST", embeddings, ("/embeddings", "/embedding")),
]


async def _internal_error(request: Request, exc: Exception) -> Response:
    """Starlette's answer to an exception no route caught: OpenAI's 500 (logged by _Guard)."""
    return _error_response(INTERNAL_ERROR)


class _Guard:
    """The outermost ASGI layer: an exception that escaped everything else becomes one log line.

    Starlette has already answered it with OpenAI's 500 when the response had not started (and
    re-raises it, which uvicorn would log as a traceback). A response cut mid-way is left
    incomplete, so that uvicorn closes the connection and the client sees it end early.
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            what = f"{printable(scope.get('method', '?'))} {printable(scope.get('path', '?'))}"
            log_failure(what, exc)


def build_asgi(app: BackendApp) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI application serving ``app``."""
    routes = []
    for path, method, handler, aliases in _ROUTES:
        endpoint = _endpoint(app, path, handler)
        for route_path in (path, *aliases):
            routes.append(Route(route_path, endpoint, methods=[method]))
    starlette = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_exception_handler(app),
            Exception: _internal_error,
        },
    )
    return _Guard(starlette)


class BackendServer(HttpServer):
    """The HTTP server for ``app``, bound at construction (so a taken port fails at once).

    ``extra_ports`` are more ports on the same host serving the same app (the embeddings port).

    Raises (from the constructor):
        PortInUseError: another program listens on the port.
        UsageError: the host is not an address of this machine or cannot be resolved.
        OSError: the address cannot be bound for another reason.
    """

    def __init__(
        self, host: str, port: int, app: BackendApp, extra_ports: tuple[int, ...] = ()
    ) -> None:
        self.app = app
        super().__init__(build_asgi(app), [(host, p) for p in (port, *extra_ports)])
