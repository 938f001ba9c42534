"""The one HTTP client of gbdesk's backend (or any OpenAI-compatible server).

Plain urllib: the chat, the Dashboard's figures and the self-test need nothing beyond the
standard library. Every caller (the app layer's chat and metrics, the self-test) goes through
:class:`BackendClient`, so the URL, the API key header, timeouts and the "cannot reach" error
are written once.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any

from gbdesk.errors import GbdeskError

# URLError, ConnectionError and TimeoutError are OSErrors; a broken reply is an HTTPException.
_NETWORK_ERRORS = (OSError, HTTPException)


class BackendUnreachableError(GbdeskError):
    """Nothing answers at the backend's address (or the connection broke)."""


@dataclass(frozen=True)
class Response:
    """A finished request: the status and the raw body."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON (None for an empty body).

        Raises:
            ValueError: the body is not JSON.
        """
        return json.loads(self.body or b"null")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class BackendClient:
    """Requests to ``base_url`` (``http://host:port``, with or without ``/v1``).

    Args:
        base_url: where the server listens; paths are appended to it.
        api_key: sent as ``Authorization: Bearer`` when given (never logged).
        timeout_s: per request (for a stream: between two chunks).
    """

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0

    def _request(self, method: str, path: str, body: Any, accept: str) -> urllib.request.Request:
        headers = {"Accept": accept}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = self.base_url.rstrip("/") + path
        return urllib.request.Request(url, data=data, headers=headers, method=method)

    def request(
        self, method: str, path: str, body: Any = None, *, timeout_s: float | None = None
    ) -> Response:
        """Send one request; an HTTP error status is a :class:`Response` too.

        Raises:
            BackendUnreachableError: no connection, or it broke before the answer.
        """
        request = self._request(method, path, body, "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s) as answer:
                return Response(answer.status, answer.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read())
        except _NETWORK_ERRORS as exc:
            raise self._unreachable(exc) from exc

    def get(self, path: str, *, timeout_s: float | None = None) -> Response:
        """GET ``path`` (see :meth:`request`)."""
        return self.request("GET", path, timeout_s=timeout_s)

    def post(self, path: str, body: Any, *, timeout_s: float | None = None) -> Response:
        """POST ``body`` as JSON to ``path`` (see :meth:`request`)."""
        return self.request("POST", path, body, timeout_s=timeout_s)

    def health(self, *, timeout_s: float = 1.0) -> int | None:
        """The status of ``/health`` (200 ready, 503 loading), or None when nothing answers."""
        try:
            return self.get("/health", timeout_s=timeout_s).status
        except BackendUnreachableError:
            return None

    def stream_events(
        self, path: str, body: Any, *, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """POST ``body`` and yield each server-sent ``data:`` payload until ``[DONE]``.

        Leaving the loop (or setting ``cancel``) closes the connection, so the server stops.

        Raises:
            BackendUnreachableError: no connection, or it broke mid-stream.
            BackendHTTPError: the server answered with an error status.
        """
        request = self._request("POST", path, body, "text/event-stream")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                for raw_line in answer:
                    if cancel is not None and cancel.is_set():
                        return
                    line = raw_line.decode("utf-8", errors="replace").strip()
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        return
                    yield payload
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")[:300]
            raise BackendHTTPError(
                f"the server at {self.base_url} answered HTTP {exc.code}: {detail or exc.reason}",
                details={"status": exc.code},
            ) from exc
        except _NETWORK_ERRORS as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: BaseException) -> BackendUnreachableError:
        reason = getattr(exc, "reason", exc)
        return BackendUnreachableError(
            f"cannot reach the server at {self.base_url}: {reason}",
            fix="start the backend, or check its port in Settings",
        )


class BackendHTTPError(GbdeskError):
    """The server answered a stream request with an error status (``details["status"]``)."""
