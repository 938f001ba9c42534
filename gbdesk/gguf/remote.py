"""Read a remote GGUF file's header over HTTP Range requests, before (or instead of) downloading it.

The parser asks for bytes as it needs them; the first request takes 2 MiB and each later one at
least doubles what is held, so a header of H bytes costs about log2(H / 2 MiB) + 1 requests and
never much more than H bytes. A server that ignores ``Range`` and answers 200 with the whole
file is read only as far as the header goes, then the connection is closed.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from http.client import HTTPResponse

from gbdesk.gguf.assemble import assemble
from gbdesk.gguf.model import GGUFError, GGUFMetadata
from gbdesk.gguf.parser import ParsedHeader, parse_header
from gbdesk.logs import redact

MAX_REMOTE_HEADER_BYTES = 64 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"^bytes\s+(?:(?P<start>\d+)-(?P<end>\d+)|\*)/(?P<total>\d+|\*)$")
_SKIP_CHUNK = 1024 * 1024
_PIECE = 64 * 1024
_USER_AGENT = "gbdesk (GGUF header reader)"


def _http_error(url: str, status: int, reason: str) -> GGUFError:
    """The error for an HTTP status; ``details["http_status"]`` carries the status itself."""
    details = {"http_status": status}
    if status in (401, 403):
        return GGUFError(
            f"{url}: access denied (HTTP {status} {reason})",
            fix="the repository may be gated: accept its licence on the Hub and set a token "
            "(gbdesk stores it in the keyring)",
            details=details,
        )
    if status == 404:
        return GGUFError(
            f"{url}: not found (HTTP 404)",
            fix="check the repository id, revision and file name",
            details=details,
        )
    return GGUFError(f"{url}: the server answered HTTP {status} {reason}", details=details)


class _HttpSource:
    """Byte ranges of one remote file, fetched with Range requests (or one plain stream)."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        timeout: float,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self._url = url
        self._on_bytes = on_bytes
        self.name = redact(url)
        self._headers = {"User-Agent": _USER_AGENT, **headers}
        self._timeout = timeout
        self._total: int | None = None
        # Set when the server ignored Range: the body from byte 0, read sequentially.
        self._stream: HTTPResponse | None = None
        self._stream_pos = 0
        self.requests = 0

    @property
    def total_size(self) -> int | None:
        return self._total

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def read_at(self, offset: int, size: int) -> bytes:
        if self._stream is None:
            response = self._open(offset, size)
            if response is None:  # 416: nothing at or after this offset
                return b""
            if response.status == 206:
                with response:
                    return self._read_exactly(response, size)
            self._stream = response  # 200: the server sent the whole file from byte 0
            self._stream_pos = 0
        return self._read_stream(offset, size)

    def _open(self, offset: int, size: int) -> HTTPResponse | None:
        headers = dict(self._headers)
        headers["Range"] = f"bytes={offset}-{offset + size - 1}"
        request = urllib.request.Request(self._url, headers=headers)
        self.requests += 1
        try:
            response: HTTPResponse = urllib.request.urlopen(request, timeout=self._timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code == 416:
                    self._parse_content_range(exc.headers.get("Content-Range"), offset)
                    return None
                raise _http_error(self.name, exc.code, exc.reason) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GGUFError(
                f"{self.name}: cannot be reached ({reason})",
                fix="check the network connection and the Hub address (HF_ENDPOINT)",
            ) from None
        if response.status == 206:
            self._parse_content_range(response.headers.get("Content-Range"), offset)
        elif response.status == 200:
            length = response.headers.get("Content-Length")
            self._total = int(length) if length and length.isdigit() else None
        else:
            response.close()
            raise _http_error(self.name, response.status, response.reason)
        return response

    def _parse_content_range(self, value: str | None, offset: int) -> None:
        match = _CONTENT_RANGE.match((value or "").strip())
        if match is None:
            raise GGUFError(f"{self.name}: the server sent an unreadable Content-Range {value!r}")
        if match["start"] is not None and int(match["start"]) != offset:
            raise GGUFError(
                f"{self.name}: asked for bytes from {offset}, the server sent them "
                f"from {match['start']}"
            )
        if match["total"] != "*":
            self._total = int(match["total"])

    def _read_exactly(self, response: HTTPResponse, size: int) -> bytes:
        """Read up to ``size`` bytes; a body longer than asked for is never read past it."""
        chunks: list[bytes] = []
        remaining = size
        try:
            while remaining > 0:
                # Pieces of at most 64 KiB, so ``on_bytes`` hears of progress on a slow line.
                chunk = response.read(min(remaining, _PIECE))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
                if self._on_bytes is not None:
                    self._on_bytes(len(chunk))
        except (TimeoutError, OSError) as exc:
            raise GGUFError(f"{self.name}: the connection failed while reading ({exc})") from None
        return b"".join(chunks)

    def _read_stream(self, offset: int, size: int) -> bytes:
        assert self._stream is not None
        if offset < self._stream_pos:
            raise GGUFError(f"{self.name}: cannot re-read bytes at {offset} from a plain stream")
        while self._stream_pos < offset:  # never happens with the parser, which reads in order
            skipped = self._read_exactly(self._stream, min(_SKIP_CHUNK, offset - self._stream_pos))
            if not skipped:
                return b""
            self._stream_pos += len(skipped)
        data = self._read_exactly(self._stream, size)
        self._stream_pos += len(data)
        return data


def read_remote_gguf(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
    max_header_bytes: int = MAX_REMOTE_HEADER_BYTES,
    on_bytes: Callable[[int], None] | None = None,
) -> GGUFMetadata:
    """Read a remote GGUF file's key-values and tensor infos with HTTP Range requests.

    Only the header is fetched. For part 1 of a split model (``...-00001-of-0000N.gguf``) the
    other parts' headers are fetched too, from the URLs with the same naming, and merged.
    ``headers`` go with every request (e.g. ``Authorization: Bearer hf_...`` for gated repos).
    ``on_bytes(n)`` is called with every piece of body received (at most 64 KiB), to count
    what a read cost; an exception it raises (a cancel) ends the read and is passed on.

    Raises:
        GGUFError: an HTTP error (with its status), an unreachable server, a header larger than
            ``max_header_bytes``, or a header that is not valid GGUF v2/v3.
    """

    def read_one(part_url: str, index: int) -> ParsedHeader:
        source = _HttpSource(part_url, headers or {}, timeout, on_bytes)
        try:
            return parse_header(source, max_header_bytes=max_header_bytes, file_index=index)
        finally:
            source.close()

    return assemble(url, read_one(url, 0), read_one)


def read_remote_bytes(
    url: str, size: int, *, headers: Mapping[str, str] | None = None, timeout: float = 30
) -> bytes:
    """The first ``size`` bytes of a remote file (one HTTP Range request, or a stream read only
    as far as needed when the server ignores ranges).

    Raises:
        GGUFError: an HTTP error, an unreachable server, or a file shorter than ``size``.
    """
    source = _HttpSource(url, headers or {}, timeout)
    try:
        data = source.read_at(0, size)
    finally:
        source.close()
    if len(data) != size:
        raise GGUFError(f"{url}: the file ends after {len(data)} of {size} header bytes")
    return data
