"""Remote GGUF headers over HTTP Range: against the local Hub, and servers that misbehave."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gbdesk.gguf import GGUFError, read_gguf, read_remote_gguf
from tests.free_ports import free_port
from tests.gguf.builders import gguf_string, kv_entry, raw_gguf, tensor_entry
from tests.support.hub_server import HubServer, hub_server

__all__ = ["hub_server"]

REPO = "test-org/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MiB = 1024 * 1024


def _url(hub: HubServer, repo: str, filename: str) -> str:
    return f"{hub.url}/{repo}/resolve/main/{filename}"


def test_starter_header_matches_the_local_file(hub_server: HubServer, starter_model: Path) -> None:
    hub_server.add_file(REPO, FILE, starter_model)
    remote = read_remote_gguf(_url(hub_server, REPO, FILE))
    local = read_gguf(starter_model)
    assert remote.kv == local.kv
    assert remote.tensors == local.tensors
    assert remote.file_sizes == (starter_model.stat().st_size,)
    assert remote.data_offsets == local.data_offsets
    # A 1.7 MiB header costs one 2 MiB request, not the 98 MB file.
    assert hub_server.bytes_sent(REPO, FILE) <= 2 * MiB


def test_split_model_reads_every_part_header(
    hub_server: HubServer, starter_model: Path, split_starter: list[Path]
) -> None:
    for part in split_starter:
        hub_server.add_file(REPO, part.name, part)
    remote = read_remote_gguf(_url(hub_server, REPO, split_starter[0].name))
    local = read_gguf(split_starter[0])
    assert remote.split_count == 3
    assert remote.tensors == local.tensors
    assert remote.file_sizes == local.file_sizes
    assert remote.tensor_bytes == read_gguf(starter_model).tensor_bytes
    for part in split_starter:
        assert hub_server.bytes_sent(REPO, part.name) <= 2 * MiB


def test_gated_repo_needs_the_token(hub_server: HubServer, starter_model: Path) -> None:
    token = "hf_testtoken0123456789"
    hub_server.add_repo("gated/model", gated_token=token)
    hub_server.add_file("gated/model", FILE, starter_model)
    url = _url(hub_server, "gated/model", FILE)
    with pytest.raises(GGUFError, match=r"access denied \(HTTP 401") as caught:
        read_remote_gguf(url)
    assert caught.value.fix and "gated" in caught.value.fix
    with pytest.raises(GGUFError, match=r"access denied \(HTTP 403"):
        read_remote_gguf(url, headers={"Authorization": "Bearer hf_wrongtoken000000"})
    meta = read_remote_gguf(url, headers={"Authorization": f"Bearer {token}"})
    assert meta.architecture == "llama"


def test_missing_file_is_404(hub_server: HubServer, starter_model: Path) -> None:
    hub_server.add_file(REPO, FILE, starter_model)
    with pytest.raises(GGUFError, match=r"not found \(HTTP 404") as caught:
        read_remote_gguf(_url(hub_server, REPO, "absent.gguf"))
    assert caught.value.fix


def test_header_over_the_cap(hub_server: HubServer, starter_model: Path) -> None:
    hub_server.add_file(REPO, FILE, starter_model)
    with pytest.raises(GGUFError, match="header is larger than 1048576 bytes"):
        read_remote_gguf(_url(hub_server, REPO, FILE), max_header_bytes=MiB)
    assert hub_server.bytes_sent(REPO, FILE) <= MiB


def test_truncated_remote_file(hub_server: HubServer, starter_model: Path) -> None:
    with starter_model.open("rb") as handle:
        head = handle.read(500_000)
    hub_server.add_file(REPO, FILE, head)
    with pytest.raises(GGUFError, match="truncated"):
        read_remote_gguf(_url(hub_server, REPO, FILE))


def test_unreachable_server() -> None:
    port = free_port()  # a port nobody listens on
    with pytest.raises(GGUFError, match="cannot be reached") as caught:
        read_remote_gguf(f"http://127.0.0.1:{port}/model.gguf", timeout=5)
    assert caught.value.fix


# --- a small server whose Range behaviour each test chooses --------------------------------


class _Server:
    """Serves one bytes object; records the Range of each request; may ignore Range."""

    def __init__(self, data: bytes, *, honour_range: bool, range_shift: int = 0) -> None:
        self.data = data
        self.honour_range = honour_range
        self.range_shift = range_shift
        self.ranges: list[str | None] = []
        self.body_bytes_written = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/model.gguf"

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        requested = handler.headers.get("Range")
        self.ranges.append(requested)
        start, end = 0, len(self.data) - 1
        if self.honour_range and requested:
            first, last = requested.removeprefix("bytes=").split("-")
            start, end = int(first), min(int(last), len(self.data) - 1)
            handler.send_response(206)
            shown = start + self.range_shift
            handler.send_header("Content-Range", f"bytes {shown}-{end}/{len(self.data)}")
        else:
            handler.send_response(200)
        handler.send_header("Content-Length", str(end - start + 1))
        handler.end_headers()
        try:
            for chunk_start in range(start, end + 1, 64 * 1024):
                chunk = self.data[chunk_start : min(chunk_start + 64 * 1024, end + 1)]
                handler.wfile.write(chunk)
                self.body_bytes_written += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client had what it needed and hung up


@pytest.fixture
def serve() -> Iterator[type[_Server]]:
    started: list[_Server] = []

    def start(data: bytes, **kwargs: object) -> _Server:
        server = _Server(data, **kwargs)  # type: ignore[arg-type]
        server.thread.start()
        started.append(server)
        return server

    yield start  # type: ignore[misc]
    for server in started:
        server.httpd.shutdown()
        server.httpd.server_close()


def _big_header_model(vocabulary_bytes: int) -> bytes:
    """A valid GGUF whose header is mostly a vocabulary of about ``vocabulary_bytes``."""
    count = vocabulary_bytes // 40
    tokens = struct.pack("<IQ", 8, count) + b"".join(
        gguf_string(f"token-{i:026d}") for i in range(count)
    )
    kvs = [
        kv_entry("general.architecture", 8, gguf_string("llama")),
        kv_entry("tokenizer.ggml.tokens", 9, tokens),
    ]
    return raw_gguf(kvs=kvs, tensors=[tensor_entry("w", [8], 0, 0)], data=b"\0" * 32)


def test_requests_grow_geometrically(serve: type[_Server]) -> None:
    data = _big_header_model(9 * MiB)
    server = serve(data, honour_range=True)
    meta = read_remote_gguf(server.url)
    assert len(meta.kv["tokenizer.ggml.tokens"]) == 9 * MiB // 40
    assert meta.file_sizes == (len(data),)
    # 2 MiB, then doubling what is held: 4, 8, then the rest of the 9.4 MB file.
    assert server.ranges == [
        f"bytes=0-{2 * MiB - 1}",
        f"bytes={2 * MiB}-{4 * MiB - 1}",
        f"bytes={4 * MiB}-{8 * MiB - 1}",
        f"bytes={8 * MiB}-{len(data) - 1}",
    ]


def test_server_that_ignores_range_is_read_only_as_far_as_needed(
    serve: type[_Server], starter_model: Path
) -> None:
    data = starter_model.read_bytes()
    server = serve(data, honour_range=False)
    meta = read_remote_gguf(server.url)
    assert meta.tensors == read_gguf(starter_model).tensors
    assert len(server.ranges) == 1  # one streamed response, not one per range
    server.httpd.shutdown()  # waits for the handler: it stops once the client has hung up
    # The client took ~2 MiB; socket buffers let the server push a few MiB more, not 98 MB.
    assert server.body_bytes_written < 24 * MiB


def test_server_that_sends_the_wrong_range(serve: type[_Server], small_model: Path) -> None:
    server = serve(small_model.read_bytes(), honour_range=True, range_shift=16)
    with pytest.raises(GGUFError, match="asked for bytes from 0, the server sent them from 16"):
        read_remote_gguf(server.url)
