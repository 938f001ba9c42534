"""A local Hugging Face Hub for tests: real HTTP, real files, and faults on demand.

It speaks enough of the Hub's protocol for huggingface_hub (``hf_hub_download``,
``get_hf_file_metadata``, ``HfApi.model_info`` / ``list_repo_tree``) and for plain HTTP clients:

- ``HEAD``/``GET /{repo}/resolve/{revision}/{filename}`` with ``Range`` (206, ``Content-Range``,
  ``Accept-Ranges``), ``X-Repo-Commit``, ``ETag`` and ``X-Linked-Etag`` (the quoted sha256, as the
  Hub sends for LFS files), ``X-Linked-Size`` and ``Content-Length``;
- ``GET /api/models`` (``HfApi.list_models``): ``search`` (a substring of the repo id, any case),
  ``filter`` (tags, e.g. ``gguf``; all must match), ``sort`` (``downloads``, ``likes``,
  ``trendingScore``, ``lastModified``, ``createdAt``; largest first), ``limit``, ``expand``
  (only those fields, plus ``_id`` and ``id``), ``full`` (siblings without sizes, sha, gated...),
  ``cardData``; items in the Hub's shape (``downloads``, ``likes``, ``trendingScore``,
  ``tags``, ``createdAt``, ``lastModified``, ``gated``: ``false`` / ``"auto"`` / ``"manual"``);
- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{revision}`` (model info:
  ``sha``, ``gated``, ``cardData.license``, ``lastModified``; siblings, with ``size`` and
  ``lfs`` only when ``blobs=true``, as the Hub does), ``GET /api/models/{repo}/tree/{revision}
  [/{path}]`` (listing with size and LFS info);
- gated repos: 401 without ``Authorization: Bearer <token>``, 403 with a wrong one, both with the
  Hub's ``X-Error-Code: GatedRepo``; 404 with ``RepoNotFound`` / ``RevisionNotFound`` /
  ``EntryNotFound``.

It never sends Xet headers, so huggingface_hub downloads over plain HTTP.

Faults, set per file: drop the connection after N body bytes (once, a few times or always),
corrupt one byte of the served content, throttle to B bytes/s. ``bytes_sent`` counts the body
bytes sent per file so a test can tell how much was sent twice (or, for a header read, that only
the header was sent). ``add_file(..., pad_to=N)`` serves a GGUF header followed by zeros up to N
bytes, so a "7B" file costs only its header in memory (its sha256 is of the header alone: such a
file is for header reads and listings, not for downloads).

Usage::

    with HubServer() as hub:
        hub.add_file("org/model-GGUF", "model-Q4_K_M.gguf", path)
        hf_hub_download("org/model-GGUF", "model-Q4_K_M.gguf", endpoint=hub.url)

or the ``hub_server`` pytest fixture (see :func:`hub_server_fixture`), which also points
``HF_ENDPOINT`` and huggingface_hub's constants at the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

_CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class _Faults:
    drop_after: int | None = None  # close the connection after this many body bytes
    drops_left: int = 0  # how many more responses to cut; -1: every one
    corrupt_offset: int | None = None  # flip this byte of the file in every response
    bytes_per_second: float | None = None


@dataclass
class HubFile:
    """One file of a repo revision, served from disk or from memory."""

    repo: str
    revision: str
    filename: str
    source: Path | bytes
    sha256: str
    size: int  # real size of the content
    advertised_size: int  # what X-Linked-Size says (tests may lie about it)
    faults: _Faults = field(default_factory=_Faults)

    def read(self, start: int, end: int) -> Iterator[bytes]:
        """The content from ``start`` to ``end`` (exclusive), in chunks."""
        if isinstance(self.source, bytes):
            stored = len(self.source)
            for pos in range(start, end, _CHUNK):
                stop = min(end, pos + _CHUNK)
                chunk = self.source[pos:stop] if pos < stored else b""
                yield chunk + b"\0" * (stop - pos - len(chunk))  # padding past the header
            return
        with open(self.source, "rb") as handle:
            handle.seek(start)
            pos = start
            while pos < end:
                chunk = handle.read(min(_CHUNK, end - pos))
                if not chunk:
                    return
                yield chunk
                pos += len(chunk)


@dataclass
class RepoMeta:
    """What the Hub's listings say about a repo besides its files."""

    downloads: int = 0
    likes: int = 0
    trending_score: int = 0
    license: str | None = None
    created_at: str = "2025-01-02T03:04:05.000Z"
    last_modified: str = "2025-01-02T03:04:05.000Z"
    pipeline_tag: str | None = "text-generation"
    tags: tuple[str, ...] = ()


@dataclass
class _Repo:
    repo: str
    commits: dict[str, str] = field(default_factory=dict)  # revision name -> commit sha
    token: str | None = None  # set: gated, this bearer token is let in
    files: dict[tuple[str, str], HubFile] = field(default_factory=dict)  # (commit, name) -> file
    meta: RepoMeta = field(default_factory=RepoMeta)

    @property
    def gated(self) -> str | bool:
        return "manual" if self.token else False

    def tags(self, commit: str) -> list[str]:
        tags = list(self.meta.tags)
        if any(c == commit and n.endswith(".gguf") for c, n in self.files):
            tags.insert(0, "gguf")
        if self.meta.license:
            tags.append(f"license:{self.meta.license}")
        return tags


def _commit_for(repo: str, revision: str) -> str:
    return hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest()


def _sha256_of(source: Path | bytes) -> str:
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    digest = hashlib.sha256()
    with open(source, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class HubServer:
    """A Hub-compatible HTTP server on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._repos: dict[str, _Repo] = {}
        self._sent: dict[tuple[str, str], int] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> HubServer:
        handler = type("_BoundHandler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="hub-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The endpoint, e.g. ``http://127.0.0.1:40123`` (use it as ``HF_ENDPOINT``)."""
        if self._httpd is None:
            raise RuntimeError("the hub server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- content ----------------------------------------------------------------------------

    def add_repo(self, repo: str, *, gated_token: str | None = None) -> None:
        """Create ``repo`` (``owner/name``); with ``gated_token`` only that token gets in."""
        with self._lock:
            entry = self._repos.setdefault(repo, _Repo(repo))
            entry.token = gated_token
            entry.commits.setdefault("main", _commit_for(repo, "main"))

    def set_meta(self, repo: str, **fields: object) -> None:
        """Set what the listings say about ``repo`` (see :class:`RepoMeta`: downloads, likes,
        trending_score, license, created_at, last_modified, pipeline_tag, tags)."""
        with self._lock:
            entry = self._repos.setdefault(repo, _Repo(repo))
            entry.commits.setdefault("main", _commit_for(repo, "main"))
            for name, value in fields.items():
                if not hasattr(entry.meta, name):
                    raise TypeError(f"RepoMeta has no field {name!r}")
                setattr(entry.meta, name, value)

    def add_file(
        self,
        repo: str,
        filename: str,
        source: Path | bytes,
        *,
        revision: str = "main",
        advertised_size: int | None = None,
        pad_to: int | None = None,
    ) -> HubFile:
        """Serve ``source`` (a path or bytes) as ``filename`` in ``repo`` at ``revision``.

        ``advertised_size`` makes ``X-Linked-Size`` and the listings claim another size (for
        disk-space tests); the body is still the real content. ``pad_to`` (bytes sources only)
        serves the bytes followed by zeros up to that size.
        """
        sha256 = _sha256_of(source)
        size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
        if pad_to is not None:
            if not isinstance(source, bytes) or pad_to < size:
                raise ValueError("pad_to needs bytes no longer than pad_to")
            size = pad_to
        with self._lock:
            entry = self._repos.setdefault(repo, _Repo(repo))
            entry.commits.setdefault("main", _commit_for(repo, "main"))
            commit = entry.commits.setdefault(revision, _commit_for(repo, revision))
            hub_file = HubFile(
                repo=repo,
                revision=commit,
                filename=filename,
                source=source,
                sha256=sha256,
                size=size,
                advertised_size=size if advertised_size is None else advertised_size,
            )
            entry.files[(commit, filename)] = hub_file
        return hub_file

    def commit(self, repo: str, revision: str = "main") -> str:
        """The commit sha that ``revision`` of ``repo`` resolves to."""
        return self._repos[repo].commits[revision]

    def file(self, repo: str, filename: str, revision: str = "main") -> HubFile:
        return self._repos[repo].files[(self.commit(repo, revision), filename)]

    # -- faults and counters ----------------------------------------------------------------

    def drop_after(self, repo: str, filename: str, nbytes: int, *, times: int = 1) -> None:
        """Cut the next ``times`` GET responses (``-1``: all) after ``nbytes`` body bytes."""
        faults = self.file(repo, filename).faults
        with self._lock:
            faults.drop_after = nbytes
            faults.drops_left = times

    def corrupt(self, repo: str, filename: str, offset: int) -> None:
        """Serve the byte at ``offset`` of the file flipped (in every response)."""
        self.file(repo, filename).faults.corrupt_offset = offset

    def throttle(self, repo: str, filename: str, bytes_per_second: float | None) -> None:
        """Send the file at about ``bytes_per_second`` (``None``: full speed)."""
        self.file(repo, filename).faults.bytes_per_second = bytes_per_second

    def clear_faults(self) -> None:
        with self._lock:
            for entry in self._repos.values():
                for hub_file in entry.files.values():
                    hub_file.faults = _Faults()

    def bytes_sent(self, repo: str, filename: str) -> int:
        """Body bytes sent so far for ``filename`` (all responses, cut ones included)."""
        with self._lock:
            return self._sent.get((repo, filename), 0)

    def _count(self, hub_file: HubFile, nbytes: int) -> None:
        with self._lock:
            key = (hub_file.repo, hub_file.filename)
            self._sent[key] = self._sent.get(key, 0) + nbytes

    def _take_drop(self, hub_file: HubFile) -> int | None:
        """The byte count after which this response is cut, or None."""
        with self._lock:
            faults = hub_file.faults
            if faults.drop_after is None or faults.drops_left == 0:
                return None
            if faults.drops_left > 0:
                faults.drops_left -= 1
            return faults.drop_after

    def _find_repo(self, repo: str) -> _Repo | None:
        with self._lock:
            return self._repos.get(repo)


def _resolve_commit(entry: _Repo, revision: str) -> str | None:
    if revision in entry.commits:
        return entry.commits[revision]
    if revision in entry.commits.values():
        return revision
    return None


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    server_version = "gbdesk-test-hub/1"

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default stderr access log."""

    # -- routing ----------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, *, head: bool) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        self.hub.requests.append((self.command, path))
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            if path.rstrip("/") == "/api/models":
                self._list_models(parse_qs(parts.query))
            elif path.startswith("/api/models/"):
                self._api(path[len("/api/models/") :], query, head=head)
            elif "/resolve/" in path:
                repo, _, rest = path.lstrip("/").partition("/resolve/")
                revision, _, filename = rest.partition("/")
                self._resolve(repo, revision, filename, head=head)
            else:
                self._error(404, "RepoNotFound", "Repository not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- responses --------------------------------------------------------------------------

    def _error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorised(self, entry: _Repo) -> bool:
        """Send 401/403 and return False when a gated repo is asked for without its token."""
        if entry.token is None:
            return True
        given = self.headers.get("Authorization", "")
        if given == f"Bearer {entry.token}":
            return True
        if not given:
            self._error(
                401,
                "GatedRepo",
                f"Access to model {entry.repo} is restricted. You must have access to it and be"
                " authenticated to access it. Please log in.",
            )
        else:
            self._error(
                403,
                "GatedRepo",
                f"Access to model {entry.repo} is restricted and you are not in the authorized"
                " list. Visit the model page to ask for access.",
            )
        return False

    def _resolve(self, repo: str, revision: str, filename: str, *, head: bool) -> None:
        entry = self.hub._find_repo(repo)
        if entry is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        if not self._authorised(entry):
            return
        commit = _resolve_commit(entry, revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        hub_file = entry.files.get((commit, filename))
        if hub_file is None:
            self._error(404, "EntryNotFound", "Entry not found", headers={"X-Repo-Commit": commit})
            return

        start, end = 0, hub_file.size
        status = 200
        range_header = self.headers.get("Range")
        if range_header:
            match = _RANGE.match(range_header.strip())
            first = int(match.group(1)) if match and match.group(1) else None
            last = int(match.group(2)) if match and match.group(2) else None
            if match is None or first is None or first >= hub_file.size:
                self._error(
                    416,
                    "RangeNotSatisfiable",
                    "Requested range not satisfiable",
                    headers={"Content-Range": f"bytes */{hub_file.size}"},
                )
                return
            start = first
            end = hub_file.size if last is None else min(last + 1, hub_file.size)
            status = 206

        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", f'"{hub_file.sha256}"')
        self.send_header("X-Linked-Etag", f'"{hub_file.sha256}"')
        self.send_header("X-Linked-Size", str(hub_file.advertised_size))
        self.send_header("Content-Length", str(end - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{hub_file.size}")
        self.end_headers()
        if not head:
            self._send_body(hub_file, start, end)

    def _send_body(self, hub_file: HubFile, start: int, end: int) -> None:
        faults = hub_file.faults
        drop_after = self.hub._take_drop(hub_file)
        rate = faults.bytes_per_second
        piece = _CHUNK if rate is None else max(1024, int(rate / 20))
        sent = 0
        began = time.monotonic()
        pos = start
        for chunk in hub_file.read(start, end):
            for offset in range(0, len(chunk), piece):
                data = chunk[offset : offset + piece]
                corrupt = faults.corrupt_offset
                if corrupt is not None and pos <= corrupt < pos + len(data):
                    flipped = bytearray(data)
                    flipped[corrupt - pos] ^= 0xFF
                    data = bytes(flipped)
                if drop_after is not None and sent + len(data) >= drop_after:
                    data = data[: max(0, drop_after - sent)]
                    # Counted before sending: a client that has read the bytes must see them
                    # in bytes_sent() already.
                    self.hub._count(hub_file, len(data))
                    self.wfile.write(data)
                    self._cut()
                    return
                if self.hub._stopping.is_set():
                    self._cut()
                    return
                self.hub._count(hub_file, len(data))
                self.wfile.write(data)
                sent += len(data)
                pos += len(data)
                if rate is not None:
                    # Sleep until the bytes sent so far match the target rate.
                    ahead = sent / rate - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)

    def _cut(self) -> None:
        """Close the connection in the middle of a body, as a broken network does."""
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _api(self, rest: str, query: dict[str, str], *, head: bool) -> None:
        segments = rest.split("/")
        repo = "/".join(segments[:2])
        tail = segments[2:]
        entry = self.hub._find_repo(repo)
        if entry is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        blobs = query.get("blobs", "false").lower() in {"1", "true"}
        if not tail:
            self._model_info(entry, "main", blobs=blobs)
        elif tail[0] == "revision" and len(tail) >= 2:
            self._model_info(entry, "/".join(tail[1:]), blobs=blobs)
        elif tail[0] == "tree" and len(tail) >= 2:
            if not self._authorised(entry):
                return
            recursive = query.get("recursive", "false").lower() in {"1", "true"}
            self._tree(entry, tail[1], "/".join(tail[2:]), recursive=recursive)
        else:
            self._error(404, "EntryNotFound", "Not found")

    def _model_info(self, entry: _Repo, revision: str, *, blobs: bool) -> None:
        commit = _resolve_commit(entry, revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        self._json(_info(entry, commit, siblings=True, blobs=blobs))

    def _list_models(self, query: dict[str, list[str]]) -> None:
        """``GET /api/models``: the Hub's search, as ``HfApi.list_models`` calls it."""

        def values(name: str) -> list[str]:
            return [v for key in (name, f"{name}[]") for v in query.get(key, [])]

        def last(name: str, default: str = "") -> str:
            found = values(name)
            return found[-1] if found else default

        search = last("search").lower()
        filters = values("filter")
        with self.hub._lock:
            repos = list(self.hub._repos.values())
        items = []
        for entry in repos:
            commit = entry.commits["main"]
            if search and search not in entry.repo.lower():
                continue
            if not set(filters) <= set(entry.tags(commit)):
                continue
            items.append(_info(entry, commit, siblings=True, blobs=False))
        sort = last("sort")
        if sort:
            if sort not in _SORTS:
                self._error(400, "BadRequest", f"Invalid sort: {sort}")
                return
            items.sort(key=lambda item: item[sort], reverse=last("direction", "-1") == "-1")
        limit = last("limit")
        if limit:
            items = items[: int(limit)]
        expand = values("expand")
        full = last("full").lower() in {"1", "true"}
        card = last("cardData").lower() in {"1", "true"}
        shaped = []
        for item in items:
            if expand:
                keep = {"_id", "id", *expand}
            elif full:
                keep = set(item) - {"cardData"} | ({"cardData"} if card else set())
                item["siblings"] = [{"rfilename": s["rfilename"]} for s in item["siblings"]]
            else:
                keep = set(_LISTING_FIELDS) | ({"cardData"} if card else set())
            shaped.append({k: v for k, v in item.items() if k in keep})
        self._json(shaped)

    def _tree(self, entry: _Repo, revision: str, folder: str, *, recursive: bool) -> None:
        commit = _resolve_commit(entry, revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        listing: list[dict[str, object]] = []
        folders: set[str] = set()
        for (file_commit, name), hub_file in sorted(entry.files.items()):
            if file_commit != commit or not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if "/" in rest and not recursive:
                sub = prefix + rest.split("/")[0]
                if sub not in folders:
                    folders.add(sub)
                    listing.append({"type": "directory", "oid": _blob_id(sub), "path": sub})
                continue
            listing.append(
                {
                    "type": "file",
                    "oid": _blob_id(hub_file),
                    "size": hub_file.advertised_size,
                    "path": name,
                    "lfs": {
                        "oid": hub_file.sha256,
                        "size": hub_file.advertised_size,
                        "pointerSize": 135,
                    },
                }
            )
        if not listing and prefix:
            self._error(404, "EntryNotFound", f"{folder} does not exist on {revision}")
            return
        self._json(listing)


# What ``/api/models`` returns per repo when neither ``expand`` nor ``full`` is given.
_LISTING_FIELDS = (
    "_id",
    "id",
    "likes",
    "trendingScore",
    "private",
    "downloads",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
    "modelId",
)
_SORTS = {"downloads", "likes", "trendingScore", "lastModified", "createdAt"}


def _info(entry: _Repo, commit: str, *, siblings: bool, blobs: bool) -> dict[str, object]:
    """A repo in the Hub's model-info shape (``/api/models/{repo}`` and the listing)."""
    meta = entry.meta
    files = [f for (c, _), f in sorted(entry.files.items()) if c == commit]
    info: dict[str, object] = {
        "_id": hashlib.sha1(entry.repo.encode()).hexdigest()[:24],
        "id": entry.repo,
        "modelId": entry.repo,
        "author": entry.repo.split("/")[0],
        "sha": commit,
        "lastModified": meta.last_modified,
        "createdAt": meta.created_at,
        "private": False,
        "gated": entry.gated,
        "disabled": False,
        "downloads": meta.downloads,
        "likes": meta.likes,
        "trendingScore": meta.trending_score,
        "tags": entry.tags(commit),
        "pipeline_tag": meta.pipeline_tag,
        "library_name": "gguf" if "gguf" in entry.tags(commit) else None,
        "cardData": {"license": meta.license} if meta.license else {},
    }
    if siblings:
        info["siblings"] = [
            {
                "rfilename": f.filename,
                "size": f.advertised_size,
                "blobId": _blob_id(f),
                "lfs": {"sha256": f.sha256, "size": f.advertised_size, "pointerSize": 135},
            }
            if blobs
            else {"rfilename": f.filename}
            for f in files
        ]
    return info


def _blob_id(item: HubFile | str) -> str:
    """A stable git-like object id (the Hub's ``oid``) for a file or folder."""
    key = item if isinstance(item, str) else f"{item.repo}/{item.filename}/{item.sha256}"
    return hashlib.sha1(key.encode()).hexdigest()


def hub_server_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """Body of the ``hub_server`` fixture: a started server that huggingface_hub talks to.

    Points ``HF_ENDPOINT`` (for code that reads it at call time) and huggingface_hub's
    import-time constants (``ENDPOINT``, the URL template) at the server, and disables Xet.
    """
    from huggingface_hub import constants

    with HubServer() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(
            constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        )
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        yield hub


@pytest.fixture
def hub_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A local Hub (see :class:`HubServer`), with huggingface_hub pointed at it."""
    yield from hub_server_fixture(monkeypatch)
