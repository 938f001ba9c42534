"""Search the Hub for GGUF models and say, per quantization and before download, how each runs here.

The listing comes from :mod:`gbdesk.catalog.hub_search`. For each quant the use case reads the
file's GGUF header over HTTP Range requests (:func:`gbdesk.gguf.read_remote_gguf`: a few MB,
never the whole file; every part of a split model), keeps what the estimator needs in an on-disk
cache keyed by the repo's commit (a later search of the same commit reads nothing), and gives:
the verdict, memory and speed from :func:`gbdesk.fit.estimator.estimate_fit`, the largest
context that fits, the parameter count, the architecture and whether the installed llama.cpp
can load it.

Headers are read only when asked for (:meth:`HubSearch.evaluate`), so a caller reads the rows a
person looks at first. :func:`search` streams everything for the CLI. Every loop checks a
``threading.Event`` (the cancel token) between requests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gbdesk.atomic import write_json_atomic
from gbdesk.catalog.hub_search import (
    DEFAULT_LIMIT,
    HubQuant,
    HubRepo,
    HubSearchError,
    HubSearchUnreachableError,
    search_repos,
)
from gbdesk.catalog.model import Architecture
from gbdesk.download.hub import HubConfig, load_hub_config
from gbdesk.errors import ExitCode, GbdeskError
from gbdesk.fit.calibration import Calibration
from gbdesk.fit.estimator import Fit, FitSettings, estimate_fit
from gbdesk.fit.layout import DenseExperts, ModelLayout, layout_from_gguf
from gbdesk.gguf.model import GGUFError
from gbdesk.hardware.llama_archs import installed_architectures
from gbdesk.hardware.profile import HardwareProfile

__all__ = [
    "HubQuant",
    "HubRepo",
    "HubSearch",
    "HubSearchError",
    "HubSearchUnreachableError",
    "QuantFailure",
    "QuantVerdict",
    "SearchCancelledError",
    "header_cache_dir",
    "search",
]

log = logging.getLogger(__name__)
SpeedSource = Literal["measured", "calibrated", "guess"]
_CACHE_FORMAT = 1


class SearchCancelledError(GbdeskError):
    """The search was cancelled (the cancel token was set)."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self) -> None:
        super().__init__("the search was cancelled")


@dataclass(frozen=True)
class QuantVerdict:
    """How one quantization of a Hub repo would run on this machine, from its real header."""

    repo: str
    quant: str
    files: tuple[str, ...]
    size_bytes: int  # download size, every part summed (the Hub's listing)
    architecture: str  # general.architecture
    params: int  # parameters, from the header's tensor shapes
    loadable: bool | None  # the installed llama.cpp knows the architecture (None: unknown)
    fit: Fit
    speed_source: SpeedSource
    header_bytes: int  # bytes read over the network for this verdict (0: from the cache)

    @property
    def verdict(self) -> str:
        """The estimator's verdict, or ``cannot-load`` when llama.cpp does not know the
        architecture (it would fail to load whatever the memory)."""
        return "cannot-load" if self.loadable is False else self.fit.verdict

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "quant": self.quant,
            "files": list(self.files),
            "size_bytes": self.size_bytes,
            "verdict": self.verdict,
            "architecture": self.architecture,
            "params": self.params,
            "loadable": self.loadable,
            "memory_bytes": sum(d.total for d in self.fit.devices),
            "gpu_layers": self.fit.gpu_layers,
            "max_ctx": self.fit.max_ctx,
            "tokens_per_second": round(self.fit.speed.generation_tps, 2),
            "speed_source": self.speed_source,
            "reason": self.fit.reasons[0] if self.fit.reasons else "",
            "header_bytes": self.header_bytes,
            "fit": self.fit.to_json(),
        }


@dataclass(frozen=True)
class QuantFailure:
    """A quant whose header could not be read (gated without a token, not GGUF, network)."""

    repo: str
    quant: str
    files: tuple[str, ...]
    size_bytes: int
    message: str
    fix: str
    gated: bool

    verdict = "unknown"

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "quant": self.quant,
            "files": list(self.files),
            "size_bytes": self.size_bytes,
            "verdict": self.verdict,
            "error": self.message,
            "fix": self.fix,
            "gated": self.gated,
        }


QuantResult = QuantVerdict | QuantFailure


def header_cache_dir() -> Path:
    """Where read headers are kept: ``<gbdesk cache>/hub-headers``."""
    from gbdesk.paths import app_paths

    return app_paths().cache_dir / "hub-headers"


def speed_source(fit: Fit) -> SpeedSource:
    """Where the speed figure comes from: measured, a calibration of this CPU, or a guess.

    The estimator's own ``SpeedEstimate.basis`` when it has one (the fit engine's newer
    versions), else ``calibrated`` / ``guess`` from its ``calibrated`` flag.
    """
    basis = getattr(fit.speed, "basis", None)
    if basis in ("measured", "calibrated", "guess"):
        return basis
    return "calibrated" if fit.speed.calibrated else "guess"


# -- header cache --------------------------------------------------------------------------


def _layout_to_json(layout: ModelLayout) -> dict[str, Any]:
    return dataclasses.asdict(layout)


def _layout_from_json(data: dict[str, Any]) -> ModelLayout:
    return ModelLayout(
        name=data["name"],
        architecture=Architecture(**data["architecture"]),
        layers=tuple(DenseExperts(**item) for item in data["layers"]),
        layer_params=tuple(DenseExperts(**item) for item in data["layer_params"]),
        token_embd_bytes=data["token_embd_bytes"],
        output_bytes=data["output_bytes"],
        file_bytes=data["file_bytes"],
        exact=data["exact"],
        has_output_tensor=data["has_output_tensor"],
        output_params=data["output_params"],
    )


@dataclass(frozen=True)
class _Header:
    """What the use case keeps of one quant's header."""

    layout: ModelLayout
    architecture: str
    params: int


class HeaderCache:
    """Headers already read, one JSON file per (repo, commit, file); commits never change."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, repo: str, sha: str, filename: str) -> Path:
        key = hashlib.sha256(f"{repo}\0{sha}\0{filename}".encode()).hexdigest()[:32]
        return self.folder / repo.replace("/", "--") / f"{sha or 'no-commit'}-{key}.json"

    def get(self, repo: str, sha: str, filename: str) -> _Header | None:
        if not sha:
            return None
        path = self._path(repo, sha, filename)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != _CACHE_FORMAT:
                return None
            return _Header(_layout_from_json(data["layout"]), data["architecture"], data["params"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a damaged header cache file %s: %s", path, exc)
            return None

    def put(self, repo: str, sha: str, filename: str, header: _Header) -> None:
        if not sha:
            return
        data = {
            "format": _CACHE_FORMAT,
            "repo": repo,
            "sha": sha,
            "file": filename,
            "architecture": header.architecture,
            "params": header.params,
            "layout": _layout_to_json(header.layout),
        }
        try:
            write_json_atomic(self._path(repo, sha, filename), data, indent=0)
        except OSError as exc:  # a full or read-only cache only costs a re-read next time
            log.warning("cannot write the header cache: %s", exc)


# -- the use case --------------------------------------------------------------------------


def _gated_failure(repo: HubRepo, quant: HubQuant, hub: HubConfig) -> QuantFailure:
    return QuantFailure(
        repo=repo.repo,
        quant=quant.name,
        files=quant.files,
        size_bytes=quant.size_bytes,
        message=f"{repo.repo} is gated: its licence must be accepted before its files can be "
        "read or downloaded",
        fix=f"accept the licence at {hub.model_page(repo.repo)} (signed in), then add your Hub "
        "token in Settings (or `gbdesk models token --set`)",
        gated=True,
    )


class HubSearch:
    """The Hub search for one machine and one set of load settings."""

    def __init__(
        self,
        profile: HardwareProfile,
        settings: FitSettings | None = None,
        *,
        hub: HubConfig | None = None,
        calibration: Calibration | None = None,
        cache: HeaderCache | None = None,
        header_timeout: float = 20.0,
    ) -> None:
        """Raises:
        ConfigError: the settings file is invalid (when ``hub`` is not given)."""
        self.profile = profile
        self.settings = settings or FitSettings()
        self.hub = hub or load_hub_config()
        self.calibration = calibration
        self.cache = cache or HeaderCache(header_cache_dir())
        self.header_timeout = header_timeout
        self._archs = installed_architectures()

    def repos(
        self,
        query: str,
        *,
        sort: str = "downloads",
        limit: int = DEFAULT_LIMIT,
        cancel: threading.Event | None = None,
    ) -> Iterator[HubRepo]:
        """GGUF repos matching ``query``, as the Hub lists them (no header read yet).

        Raises:
            UsageError: an unknown sort or a limit out of range.
            HubSearchUnreachableError: offline, or the Hub (mirror) cannot be reached.
            HubSearchError: the Hub answered with an error.
            SearchCancelledError: ``cancel`` was set.
        """
        for repo in search_repos(
            query,
            endpoint=self.hub.endpoint,
            token=self.hub.token,
            sort=sort,
            limit=limit,
            offline=self.hub.offline,
        ):
            if cancel is not None and cancel.is_set():
                raise SearchCancelledError
            yield repo

    def _read_header(
        self, repo: HubRepo, quant: HubQuant, cancel: threading.Event | None
    ) -> tuple[_Header, int]:
        """The quant's header (from the cache or the network) and the bytes it cost.

        Raises:
            GGUFError: the header cannot be read or is not valid GGUF.
            SearchCancelledError: ``cancel`` was set while reading.
        """
        from gbdesk.gguf.remote import read_remote_gguf

        first = quant.files[0]
        cached = self.cache.get(repo.repo, repo.sha, first)
        if cached is not None:
            return cached, 0
        revision = repo.sha or "main"
        url = f"{self.hub.endpoint}/{repo.repo}/resolve/{revision}/{first}"
        headers = {"Authorization": f"Bearer {self.hub.token}"} if self.hub.token else {}
        counter = _ByteCounter(cancel)
        meta = read_remote_gguf(url, headers=headers, timeout=self.header_timeout, on_bytes=counter)
        layout = layout_from_gguf(meta, name=f"{repo.repo}:{quant.name}")
        header = _Header(layout, meta.architecture, sum(t.n_elements for t in meta.tensors))
        self.cache.put(repo.repo, repo.sha, first, header)
        return header, counter.total

    def evaluate(
        self, repo: HubRepo, quant: HubQuant, cancel: threading.Event | None = None
    ) -> QuantResult:
        """Read the quant's header (or take it from the cache) and estimate how it runs.

        A gated repo without a valid token, a damaged header or a network failure while
        reading gives a :class:`QuantFailure` with its message and fix.

        Raises:
            UsageError: the load settings are out of range.
            SearchCancelledError: ``cancel`` was set (checked with every 64 KiB received).
        """
        try:
            header, cost = self._read_header(repo, quant, cancel)
        except GGUFError as exc:
            if exc.details.get("http_status") in (401, 403):
                return _gated_failure(repo, quant, self.hub)
            return QuantFailure(
                repo=repo.repo,
                quant=quant.name,
                files=quant.files,
                size_bytes=quant.size_bytes,
                message=exc.message,
                fix=exc.fix or "try again later",
                gated=False,
            )
        fit = estimate_fit(
            header.layout,
            self.profile,
            self.settings,
            calibration=self.calibration,
            download_bytes=quant.size_bytes,
        )
        loadable = None if self._archs is None else self._archs.can_load(header.architecture)
        return QuantVerdict(
            repo=repo.repo,
            quant=quant.name,
            files=quant.files,
            size_bytes=quant.size_bytes,
            architecture=header.architecture,
            params=header.params,
            loadable=loadable,
            fit=fit,
            speed_source=speed_source(fit),
            header_bytes=cost,
        )

    def evaluate_repo(
        self, repo: HubRepo, cancel: threading.Event | None = None
    ) -> Iterator[QuantResult]:
        """Every quant of ``repo``, smallest first, one header at a time.

        Raises:
            SearchCancelledError: ``cancel`` was set (checked before each header).
            UsageError: the load settings are out of range.
        """
        for quant in repo.quants:
            if cancel is not None and cancel.is_set():
                raise SearchCancelledError
            yield self.evaluate(repo, quant, cancel)


class _ByteCounter:
    """Counts the bytes the header reader receives, and stops it when ``cancel`` is set."""

    def __init__(self, cancel: threading.Event | None) -> None:
        self.total = 0
        self._cancel = cancel

    def __call__(self, n_bytes: int) -> None:
        self.total += n_bytes
        if self._cancel is not None and self._cancel.is_set():
            raise SearchCancelledError


def search(
    query: str,
    profile: HardwareProfile,
    settings: FitSettings | None = None,
    *,
    sort: str = "downloads",
    limit: int = DEFAULT_LIMIT,
    hub: HubConfig | None = None,
    calibration: Calibration | None = None,
    cancel: threading.Event | None = None,
    on_repo: Callable[[HubRepo], None] = lambda _repo: None,
    on_result: Callable[[QuantResult], None] = lambda _result: None,
) -> list[tuple[HubRepo, list[QuantResult]]]:
    """Search, then read every listed quant's header; each result is passed on as it comes.

    Raises:
        UsageError: an unknown sort, a limit out of range or bad load settings.
        HubSearchUnreachableError: offline, or the Hub (mirror) cannot be reached.
        HubSearchError: the Hub answered with an error.
        SearchCancelledError: ``cancel`` was set.
        ConfigError: the settings file is invalid (when ``hub`` is not given).
    """
    searcher = HubSearch(profile, settings, hub=hub, calibration=calibration)
    found: list[tuple[HubRepo, list[QuantResult]]] = []
    for repo in searcher.repos(query, sort=sort, limit=limit, cancel=cancel):
        on_repo(repo)
        results: list[QuantResult] = []
        for result in searcher.evaluate_repo(repo, cancel):
            on_result(result)
            results.append(result)
        found.append((repo, results))
    return found
