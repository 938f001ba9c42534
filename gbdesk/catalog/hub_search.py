"""Search the Hugging Face Hub for GGUF repositories: what the listings say, per quantization.

``HfApi.list_models`` (the ``gguf`` filter, a text query, a sort) finds the repos; one
``HfApi.model_info(files_metadata=True)`` per repo gives its commit, licence, gated state and every
file with its size. GGUF files are grouped by quantization (``...-Q4_K_M.gguf``; the parts of a
split model are one quant, their sizes summed). Nothing here reads a GGUF header: that is the
app layer's job (``gbdesk.app.hub_search``), which does it lazily.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from gbdesk.errors import ExitCode, GbdeskError, UsageError, os_error_words

# The CLI's and the GUI's sort names -> huggingface_hub's ``sort`` values.
SORTS: dict[str, str] = {
    "downloads": "downloads",
    "trending": "trending_score",
    "likes": "likes",
    "updated": "last_modified",
}
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_QUANT = re.compile(r"[-.]((?:I?Q\d[\w]*?)|F16|BF16|F32)(?:-\d{5}-of-\d{5})?\.gguf$", re.IGNORECASE)
_SPLIT_PART = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")
# Other files that end in .gguf but are not a model to serve on their own.
_NOT_A_MODEL = re.compile(r"(^|/)(mmproj|imatrix)[^/]*\.gguf$", re.IGNORECASE)


class HubSearchError(GbdeskError):
    """The Hub's listing could not be read (a bad answer, or an unreachable endpoint)."""

    exit_code = ExitCode.HUB_SEARCH


def endpoint_words(endpoint: str) -> str:
    """The endpoint as a person says it: the Hugging Face Hub itself is named by its address,
    any other endpoint is a mirror ("mirror: URL")."""
    if urlsplit(endpoint).hostname == "huggingface.co":
        return endpoint.rstrip("/")
    return f"mirror: {endpoint}"


class HubSearchUnreachableError(HubSearchError):
    """The endpoint (the Hub or its mirror) cannot be reached, or offline mode is on."""

    def __init__(self, endpoint: str, detail: str) -> None:
        super().__init__(
            f"the Hub is unreachable ({endpoint_words(endpoint)}): {detail}",
            fix="check the network connection, or set a Hub mirror in Settings (Hub "
            "endpoint) or with HF_ENDPOINT; models already on this computer still work",
        )
        self.endpoint = endpoint


@dataclass(frozen=True)
class HubQuant:
    """One quantization of a repo: its file (or split parts, in order) and their total size."""

    name: str
    files: tuple[str, ...]
    size_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "files": list(self.files), "size_bytes": self.size_bytes}


@dataclass(frozen=True)
class HubRepo:
    """A GGUF repository as the Hub lists it."""

    repo: str
    sha: str  # the commit the files were listed at (header cache key)
    downloads: int
    likes: int
    last_modified: datetime | None
    licence: str | None
    gated: bool  # accepting a licence (and a token) is needed to download
    quants: tuple[HubQuant, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "sha": self.sha,
            "downloads": self.downloads,
            "likes": self.likes,
            "last_modified": self.last_modified.isoformat() if self.last_modified else None,
            "licence": self.licence,
            "gated": self.gated,
            "quants": [q.to_json() for q in self.quants],
        }


def quant_name(filename: str) -> str | None:
    """The quantization a GGUF file name carries (``Q4_K_M``, ``F16``...), upper-case, or None."""
    match = _QUANT.search(filename)
    return match.group(1).upper() if match else None


def group_quants(sizes: Mapping[str, int]) -> tuple[HubQuant, ...]:
    """GGUF files (name -> size) grouped by quantization, split parts summed, smallest first.

    A split model is listed by its parts (``-00001-of-00003.gguf``...); a quant whose parts are
    not all present is left out (it could not be downloaded whole). Files without a quant in
    their name are their own entry, named after the file.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for path in sorted(sizes):
        if not path.endswith(".gguf") or _NOT_A_MODEL.search(path):
            continue
        split = _SPLIT_PART.search(path)
        stem = path[: split.start()] if split else path.removesuffix(".gguf")
        name = quant_name(path) or stem.rsplit("/", 1)[-1]
        groups.setdefault((name, stem), []).append(path)
    quants = []
    for (name, _stem), files in groups.items():
        split = _SPLIT_PART.search(files[0])
        if split and len(files) != int(split.group(2)):
            continue
        quants.append(HubQuant(name, tuple(files), sum(sizes[f] for f in files)))
    return tuple(sorted(quants, key=lambda q: (q.size_bytes, q.name)))


def _licence(info: Any) -> str | None:
    card = getattr(info, "card_data", None)
    licence = card.get("license") if card is not None else None
    if isinstance(licence, list):
        licence = ", ".join(str(item) for item in licence)
    if licence:
        return str(licence)
    for tag in getattr(info, "tags", None) or ():
        if tag.startswith("license:"):
            return tag.partition(":")[2]
    return None


def repo_from_info(info: Any) -> HubRepo:
    """A :class:`HubRepo` from huggingface_hub's ``ModelInfo`` (fetched with file sizes)."""
    sizes = {
        sibling.rfilename: int(sibling.size)
        for sibling in info.siblings or ()
        if sibling.size is not None
    }
    return HubRepo(
        repo=info.id,
        sha=info.sha or "",
        downloads=int(info.downloads or 0),
        likes=int(info.likes or 0),
        last_modified=info.last_modified,
        licence=_licence(info),
        gated=bool(info.gated),
        quants=group_quants(sizes),
    )


def _check_reachable(endpoint: str, timeout: float = 3.0) -> None:
    """Fail fast when nothing listens at the endpoint (huggingface_hub would retry for ~30 s).

    Skipped behind a proxy, where only the proxy knows.

    Raises:
        HubSearchUnreachableError: the host does not resolve or refuses the connection.
    """
    if any(
        os.environ.get(name)
        for name in (
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
        )
    ):
        return
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            pass
    except OSError as exc:
        raise HubSearchUnreachableError(endpoint, os_error_words(exc)) from None


def search_repos(
    query: str,
    *,
    endpoint: str,
    token: str | None = None,
    sort: str = "downloads",
    limit: int = DEFAULT_LIMIT,
    offline: bool = False,
    timeout: float = 20.0,
) -> Iterator[HubRepo]:
    """GGUF repos matching ``query`` (empty: all), in the Hub's order, one at a time.

    Each repo costs one model-info request after the listing; stop iterating to stop asking.
    A repo that vanished between the listing and its info is skipped.

    Raises:
        UsageError: an unknown sort or a limit out of 1..100.
        HubSearchUnreachableError: offline mode, or the endpoint cannot be reached.
        HubSearchError: the endpoint answered with an error.
    """
    if sort not in SORTS:
        raise UsageError(f"unknown sort {sort!r}", fix=f"use one of {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(
            f"the limit must be between 1 and {MAX_LIMIT}, not {limit}", fix="give --limit 20"
        )
    if offline:
        raise HubSearchUnreachableError(endpoint, "offline mode is on (HF_HUB_OFFLINE)")
    _check_reachable(endpoint)
    import httpx2
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    api = HfApi(endpoint=endpoint, token=token or False)
    try:
        listing = list(
            api.list_models(
                search=query.strip() or None,
                filter="gguf",
                sort=SORTS[sort],  # type: ignore[arg-type]
                limit=limit,
                expand=["downloads", "likes", "lastModified", "gated", "sha"],
            )
        )
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "no"
        raise HubSearchError(
            f"the Hub at {endpoint} answered {status} to the search",
            fix="try again later, or set another mirror in Settings (Hub endpoint)",
        ) from exc
    except (httpx2.TransportError, OSError) as exc:
        raise HubSearchUnreachableError(endpoint, os_error_words(exc)) from exc
    for item in listing:
        try:
            info = api.model_info(item.id, files_metadata=True, timeout=timeout)
        except RepositoryNotFoundError:
            continue
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "no"
            raise HubSearchError(
                f"the Hub at {endpoint} answered {status} for {item.id}",
                fix="try again later, or set another mirror in Settings (Hub endpoint)",
            ) from exc
        except (httpx2.TransportError, OSError) as exc:
            raise HubSearchUnreachableError(endpoint, os_error_words(exc)) from exc
        yield repo_from_info(info)
