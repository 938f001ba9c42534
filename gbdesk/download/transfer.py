"""Fetch one file from the Hub into the Hugging Face cache: resumable, verified, stoppable.

Why not plain ``hf_hub_download``: huggingface_hub 2.x writes each attempt to a fresh temporary
file and deletes it on failure, so a cut download starts again from zero; and it reads the body in
10 MiB pieces, so a cancel on a slow line would wait for the next 10 MiB. This module keeps the
cache layout and the protocol of huggingface_hub (its metadata call, HTTP session, headers,
errors, cache folders and snapshot links) and changes only the transfer: the body goes to
``blobs/<sha256>.incomplete``, which the next attempt continues with a ``Range`` request; the
SHA-256 is computed while the bytes arrive, checked against the Hub's LFS hash, and only a
verified file is moved to ``blobs/<sha256>`` and linked into ``snapshots/``.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gbdesk.download.errors import (
    ChecksumMismatchError,
    DiskFullError,
    DownloadInterruptedError,
    HubAccessDeniedError,
    HubNotFoundError,
    HubUnreachableError,
    NotEnoughSpaceError,
    NotInCacheError,
)
from gbdesk.download.hashing import is_sha256, sha256_file
from gbdesk.download.hub import HubConfig
from gbdesk.download.sink import HashingWriter

log = logging.getLogger(__name__)

# Free space kept beyond the file itself: other programs and the OS need some too.
SPACE_MARGIN_BYTES = 512 * 1024 * 1024
SPACE_MARGIN_FRACTION = 0.02
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0  # a silent connection is reopened (with Range) after this long
RETRIES_WITHOUT_PROGRESS = 4
RETRY_BASE_DELAY_S = 0.5  # doubles after each attempt that received nothing, up to 8 s
_PROGRESS_EVERY_BYTES = 256 * 1024

ProgressFn = Callable[[str, int, int], None]  # (phase, bytes done, bytes total)


@dataclass(frozen=True)
class RemoteFile:
    """A file on the Hub, as its metadata call describes it."""

    repo: str
    filename: str
    revision: str
    commit: str
    etag: str  # the sha256 for LFS files
    size: int
    url: str


def _folder(hub: HubConfig, repo: str) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return hub.cache_dir / repo_folder_name(repo_id=repo, repo_type="model")


def cached_file(hub: HubConfig, repo: str, filename: str, revision: str = "main") -> Path | None:
    """The file's path in the cache, when that revision of it is there."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, cache_dir=hub.cache_dir, revision=revision)
    return Path(found) if isinstance(found, str) else None


def access_denied(hub: HubConfig, repo: str) -> HubAccessDeniedError:
    """The error for a gated or private repo (401/403)."""
    how = "the token you gave has no access" if hub.token else "no Hub token was given"
    return HubAccessDeniedError(
        f"{repo} is gated or private and {how}",
        fix=f"accept the licence at {hub.model_page(repo)} (signed in), then add a token with"
        " `gbdesk models token --set` (or set HF_TOKEN)",
    )


def resolve_remote(hub: HubConfig, repo: str, filename: str, revision: str = "main") -> RemoteFile:
    """Ask the Hub for a file's commit, sha256 and size (a HEAD request; no body).

    Raises:
        NotInCacheError: offline mode is on (the caller looks in the cache first).
        HubAccessDeniedError: 401/403 (gated or private repo).
        HubNotFoundError: the repo, revision or file does not exist.
        HubUnreachableError: the endpoint cannot be reached or does not answer like the Hub.
    """
    import httpx2
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if hub.offline:
        raise NotInCacheError(
            f"{repo}/{filename} is not in the local cache and offline mode is on (HF_HUB_OFFLINE)",
            fix="unset HF_HUB_OFFLINE to download it, or choose a model from `gbdesk models list`",
        )
    url = hf_hub_url(repo, filename, revision=revision, endpoint=hub.endpoint)
    try:
        meta = get_hf_file_metadata(url, token=hub.token or False, endpoint=hub.endpoint)
    except GatedRepoError as exc:
        raise access_denied(hub, repo) from exc
    except RepositoryNotFoundError as exc:
        if hub.token is None:
            raise HubNotFoundError(
                f"the repo {repo} was not found on {hub.endpoint}",
                fix="check the name; if the repo is private, add a token with"
                " `gbdesk models token --set`",
            ) from exc
        raise HubNotFoundError(
            f"the repo {repo} was not found on {hub.endpoint} (or your token cannot see it)",
            fix="check the name and that your token has read access",
        ) from exc
    except RevisionNotFoundError as exc:
        raise HubNotFoundError(
            f"{repo} has no revision {revision!r}", fix="use an existing branch, tag or commit"
        ) from exc
    except EntryNotFoundError as exc:
        raise HubNotFoundError(
            f"{repo} has no file {filename!r} (revision {revision})",
            fix=f"check the file name against the list at {hub.model_page(repo)}",
        ) from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise access_denied(hub, repo) from exc
        raise HubUnreachableError(
            f"the Hub at {hub.endpoint} answered {status} for {repo}/{filename}",
            fix="try again later; behind a firewall, set a mirror with HF_ENDPOINT",
        ) from exc
    except (httpx2.TransportError, OfflineModeIsEnabled) as exc:
        raise HubUnreachableError(
            f"cannot reach {hub.endpoint}: {exc}",
            fix="check the network connection, or set a reachable mirror with HF_ENDPOINT or"
            " the hub_endpoint setting",
        ) from exc
    if meta.commit_hash is None or meta.etag is None or meta.size is None:
        raise HubUnreachableError(
            f"{hub.endpoint} did not answer like a Hugging Face Hub (no commit, ETag or size)",
            fix="check that HF_ENDPOINT points to a Hub-compatible mirror",
        )
    return RemoteFile(
        repo=repo,
        filename=filename,
        revision=revision,
        commit=meta.commit_hash,
        etag=meta.etag,
        size=meta.size,
        url=meta.location,
    )


def _existing_dir(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_free_space(
    hub: HubConfig, needed: int, *, disk_free: Callable[[Path], int] | None = None
) -> None:
    """Refuse when ``needed`` bytes plus a margin do not fit in the cache's file system.

    Raises:
        NotEnoughSpaceError: with how much is needed and how much is free.
    """
    where = _existing_dir(hub.cache_dir)
    free = disk_free(where) if disk_free else shutil.disk_usage(where).free
    margin = max(SPACE_MARGIN_BYTES, int(needed * SPACE_MARGIN_FRACTION))
    if needed + margin > free:
        raise NotEnoughSpaceError(
            f"not enough disk space in {hub.cache_dir}: the download needs {_gb(needed)} GB"
            f" (plus {_gb(margin)} GB to spare), {_gb(free)} GB are free",
            fix="free some space (e.g. `gbdesk models rm`), choose a smaller quant, or move the"
            " cache to a larger disk with HF_HUB_CACHE",
        )


def _gb(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f}"


def partial_path(hub: HubConfig, remote: RemoteFile) -> Path:
    """Where the bytes received so far wait for the next attempt."""
    return _folder(hub, remote.repo) / "blobs" / f"{remote.etag}.incomplete"


def bytes_on_disk(hub: HubConfig, remote: RemoteFile) -> int:
    """Bytes of ``remote`` already here (all of it when the blob exists, else the partial)."""
    blobs = _folder(hub, remote.repo) / "blobs"
    if (blobs / remote.etag).exists():
        return remote.size
    try:
        return (blobs / f"{remote.etag}.incomplete").stat().st_size
    except FileNotFoundError:
        return 0


class Transfer:
    """Brings one :class:`RemoteFile` into the cache; call :meth:`run` on a worker thread.

    ``stop`` (set by cancel or pause) ends it within one network read: the partial file stays.
    ``on_progress(phase, done, total)`` reports ``"hash"`` while an existing partial file is
    re-read and ``"download"`` while bytes arrive.
    """

    def __init__(
        self,
        hub: HubConfig,
        remote: RemoteFile,
        *,
        stop: threading.Event,
        on_progress: ProgressFn,
    ) -> None:
        self.hub = hub
        self.remote = remote
        self.stop = stop
        self.on_progress = on_progress
        self.folder = _folder(hub, remote.repo)
        self.blob = self.folder / "blobs" / remote.etag
        self.partial = partial_path(hub, remote)
        self._digest = hashlib.sha256()

    def run(self) -> Path:
        """Download (or resume), verify and link the file; return its snapshot path.

        Raises:
            DownloadInterruptedError: ``stop`` was set (partial file kept).
            ChecksumMismatchError: the bytes do not match the Hub's sha256 (partial file removed).
            HubUnreachableError: the connection failed repeatedly (partial file kept).
            DiskFullError: the disk filled up (partial file kept).
            HubAccessDeniedError, HubNotFoundError: the server refused the download.
        """
        from filelock import FileLock, Timeout

        if not self.blob.exists():
            self.blob.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.partial) + ".lock")
            try:
                lock.acquire(timeout=0)
            except Timeout as exc:
                raise HubUnreachableError(
                    f"{self.remote.filename} is already being downloaded by another job or program",
                    fix="wait for that download to finish",
                ) from exc
            try:
                if not self.blob.exists():
                    self._download_and_verify()
            finally:
                lock.release()
                Path(lock.lock_file).unlink(missing_ok=True)
        return self._link()

    # -- steps --------------------------------------------------------------------------------

    def _download_and_verify(self) -> None:
        offset = self.partial.stat().st_size if self.partial.exists() else 0
        if offset > self.remote.size:  # a stale partial of another size: start again
            self.partial.unlink()
            offset = 0
        if offset:
            # Resume: the hash must cover the bytes already here, so read them once.
            sha256_file(
                self.partial,
                digest=self._digest,
                cancel=self.stop,
                on_progress=lambda done, total: self.on_progress("hash", done, total),
            )
        self._stream(offset)
        self._verify()
        os.replace(self.partial, self.blob)

    def _verify(self) -> None:
        size = self.partial.stat().st_size
        if size != self.remote.size:
            self.partial.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                f"{self.remote.filename} arrived with {size} bytes instead of {self.remote.size};"
                " the file was removed",
                fix="download it again",
            )
        if not is_sha256(self.remote.etag):
            log.info("%s has no LFS sha256 to check against", self.remote.filename)
            return
        actual = self._digest.hexdigest()
        if actual != self.remote.etag:
            self.partial.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                f"{self.remote.filename} is corrupt: its SHA-256 is {actual}, the Hub says"
                f" {self.remote.etag}; the file was removed",
                fix="download it again; if it fails again, the mirror or a proxy is altering"
                " the file (try another HF_ENDPOINT)",
            )

    def _stream(self, offset: int) -> None:
        import httpx2

        failures = 0
        while offset < self.remote.size:
            self._check_stop()
            before = offset
            try:
                offset = self._request(offset)
            except httpx2.TransportError as exc:
                offset = self.partial.stat().st_size
                failures = 0 if offset > before else failures + 1
                if failures > RETRIES_WITHOUT_PROGRESS:
                    raise HubUnreachableError(
                        f"the download of {self.remote.filename} keeps failing ({exc}); the"
                        f" {offset} bytes received are kept",
                        fix="check the network and run the download again: it resumes",
                    ) from exc
                log.info("connection lost at byte %d (%s); resuming", offset, exc)
                if failures and self.stop.wait(min(8.0, RETRY_BASE_DELAY_S * 2 ** (failures - 1))):
                    self._check_stop()

    def _request(self, offset: int) -> int:
        """One GET from ``offset``; returns the new offset. Raises httpx2 errors on a cut."""
        import httpx2
        from huggingface_hub import get_session
        from huggingface_hub.errors import HfHubHTTPError
        from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

        headers = build_hf_headers(token=self.hub.token or False)
        headers["Accept-Encoding"] = "identity"
        if offset:
            headers["Range"] = f"bytes={offset}-"
        timeout = httpx2.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        with get_session().stream(
            "GET", self.remote.url, headers=headers, timeout=timeout, follow_redirects=True
        ) as response:
            try:
                hf_raise_for_status(response)
            except HfHubHTTPError as exc:
                if response.status_code in (401, 403):
                    raise access_denied(self.hub, self.remote.repo) from exc
                raise HubUnreachableError(
                    f"the Hub answered {response.status_code} for {self.remote.filename}",
                    fix="run the download again later: it resumes",
                ) from exc
            if offset and response.status_code != 206:
                log.info("the server ignored the Range request; starting from zero")
                offset = 0
                self._digest = hashlib.sha256()
            return self._write_body(response, offset)

    def _write_body(self, response: object, offset: int) -> int:
        # a literal mode, so the type checker knows the file is binary
        mode: Literal["r+b", "wb"] = "r+b" if offset else "wb"
        reported = offset
        try:
            with open(self.partial, mode) as out:
                out.seek(offset)
                out.truncate()
                with HashingWriter(out, self._digest) as writer:
                    for piece in response.iter_bytes():  # type: ignore[attr-defined]
                        if not piece:
                            continue
                        self._check_stop()
                        writer.write(piece)
                        offset += len(piece)
                        if offset - reported >= _PROGRESS_EVERY_BYTES:
                            reported = offset
                            self.on_progress("download", offset, self.remote.size)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DiskFullError(
                    f"the disk holding {self.hub.cache_dir} is full; the {offset} bytes of"
                    f" {self.remote.filename} received so far are kept",
                    fix="free some space and run the download again: it resumes",
                ) from exc
            raise
        self.on_progress("download", offset, self.remote.size)
        return offset

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise DownloadInterruptedError(f"the download of {self.remote.filename} was stopped")

    def _link(self) -> Path:
        """Create the snapshot link (and ``refs/<revision>``) with huggingface_hub itself."""
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(
            self.remote.repo,
            self.remote.filename,
            revision=self.remote.revision,
            cache_dir=self.hub.cache_dir,
            endpoint=self.hub.endpoint,
            token=self.hub.token or False,
        )
        return Path(path)


def offline_cached(hub: HubConfig, repo: str, filename: str, revision: str) -> Path:
    """The cached file in offline mode.

    Raises:
        NotInCacheError: it is not in the cache.
    """
    found = cached_file(hub, repo, filename, revision)
    if found is None:
        raise NotInCacheError(
            f"{repo}/{filename} is not in the local cache ({hub.cache_dir}) and offline mode is"
            " on (HF_HUB_OFFLINE)",
            fix="unset HF_HUB_OFFLINE and download it, or choose a model from `gbdesk models list`",
        )
    return found
