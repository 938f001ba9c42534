"""A download job: one model (every part of a split GGUF), with progress, pause, resume, cancel.

Jobs run on the manager's worker threads; their callbacks are called from those threads (the
GUI re-emits them as Qt signals in ui/workers.py).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gbdesk.download.errors import DownloadError, DownloadInterruptedError
from gbdesk.download.hub import HubConfig
from gbdesk.download.spec import DownloadSpec
from gbdesk.download.transfer import (
    RemoteFile,
    Transfer,
    bytes_on_disk,
    check_free_space,
    offline_cached,
    resolve_remote,
)
from gbdesk.enums import StrEnum
from gbdesk.errors import GbdeskError

log = logging.getLogger(__name__)


class JobState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for the states :meth:`DownloadJob.wait` returns on."""
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.PAUSED)


class Phase(StrEnum):
    """What a download is doing."""

    DOWNLOAD = "download"  # bytes arriving; ``done``/``total`` over all parts
    HASH = "hash"  # re-reading a partial file before resuming it; ``done``/``total`` of it


@dataclass(frozen=True)
class Progress:
    """A snapshot of a job's progress (``phase``: see :class:`Phase`).

    ``speed`` is bytes/s over this run; ``eta`` seconds, None while unknown.
    """

    phase: Phase
    done: int
    total: int
    speed: float
    eta: float | None
    filename: str

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class DownloadResult:
    """The downloaded model: one path per part, in the cache."""

    spec: DownloadSpec
    paths: tuple[str, ...]
    size: int

    @property
    def path(self) -> Path:
        """The first part (what llama.cpp opens)."""
        return Path(self.paths[0])

    def to_json(self) -> dict[str, object]:
        return {"spec": self.spec.to_json(), "paths": list(self.paths), "size": self.size}


ProgressCallback = Callable[[Progress], None]
JobCallback = Callable[["DownloadJob"], None]


@dataclass
class _Callbacks:
    on_progress: ProgressCallback | None = None
    on_state: JobCallback | None = None
    on_done: JobCallback | None = None


class DownloadJob:
    """One model download. Create it with ``DownloadManager.submit``.

    ``pause()`` and ``cancel()`` stop the transfer within one network read and keep the partial
    file, so ``resume()`` (or a later job for the same file) continues where it stopped.
    """

    def __init__(
        self,
        spec: DownloadSpec,
        hub: HubConfig,
        *,
        enqueue: Callable[[DownloadJob], None],
        on_progress: ProgressCallback | None = None,
        on_state: JobCallback | None = None,
        on_done: JobCallback | None = None,
        disk_free: Callable[[Path], int] | None = None,
    ) -> None:
        self.spec = spec
        self.hub = hub
        self._enqueue = enqueue
        self._callbacks = _Callbacks(on_progress, on_state, on_done)
        self._disk_free = disk_free
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stop_to: JobState = JobState.CANCELLED
        self._finished = threading.Event()
        self.state = JobState.QUEUED
        self.error: GbdeskError | None = None
        self.result: DownloadResult | None = None
        self.progress: Progress | None = None

    def __repr__(self) -> str:
        return f"DownloadJob({self.spec.label!r}, {self.state.value})"

    # -- control (any thread) -----------------------------------------------------------------

    def cancel(self) -> None:
        """Stop; the partial file stays so a later download of the same file resumes it."""
        self._request_stop(JobState.CANCELLED)

    def pause(self) -> None:
        """Stop for now; :meth:`resume` continues from the partial file."""
        self._request_stop(JobState.PAUSED)

    def resume(self) -> None:
        """Queue a paused, cancelled or failed job again (it continues from its partial files)."""
        with self._lock:
            if self.state not in (JobState.PAUSED, JobState.CANCELLED, JobState.FAILED):
                return
            self._stop.clear()
            self._finished.clear()
            self.error = None
        self._set_state(JobState.QUEUED)
        self._enqueue(self)

    def wait(self, timeout: float | None = None) -> DownloadResult:
        """Block until the job is done, failed, cancelled or paused.

        Raises:
            TimeoutError: ``timeout`` passed first.
            DownloadError: the job failed (the job's error), or was cancelled or paused
                (:class:`DownloadInterruptedError`).
        """
        if not self._finished.wait(timeout):
            raise TimeoutError(f"{self.spec.label} is still {self.state.value}")
        if self.state is JobState.DONE and self.result is not None:
            return self.result
        if self.error is not None:
            raise self.error
        raise DownloadInterruptedError(
            f"the download of {self.spec.label} was {self.state.value}",
            fix="run it again: it continues from the bytes already received",
        )

    def _request_stop(self, target: JobState) -> None:
        with self._lock:
            state = self.state
            if state.finished:
                return
            self._stop_to = target
            self._stop.set()
        if state is JobState.QUEUED:  # not started: the worker will skip it
            self._finish(target)

    # -- the worker's side ----------------------------------------------------------------------

    def run(self) -> None:
        """Do the download (called by a manager worker thread)."""
        with self._lock:
            if self.state is not JobState.QUEUED or self._stop.is_set():
                return
        self._set_state(JobState.RUNNING)
        try:
            self.result = self._download()
        except DownloadInterruptedError:
            self._finish(self._stop_to if self._stop.is_set() else JobState.CANCELLED)
        except GbdeskError as exc:
            self.error = exc
            self._finish(JobState.FAILED)
        except Exception as exc:  # a bug or an unexpected OS error: report, never hang waiters
            log.exception("download of %s failed", self.spec.label)
            self.error = DownloadError(
                f"the download of {self.spec.label} failed: {exc}",
                fix="run it again; if it keeps failing, report it with the log file",
            )
            self._finish(JobState.FAILED)
        else:
            self._finish(JobState.DONE)

    def _download(self) -> DownloadResult:
        spec, hub = self.spec, self.hub
        if hub.offline:
            cached = [offline_cached(hub, spec.repo, f, spec.revision) for f in spec.filenames]
            size = sum(p.stat().st_size for p in cached)
            return DownloadResult(spec, tuple(str(p) for p in cached), size)
        remotes = [resolve_remote(hub, spec.repo, name, spec.revision) for name in spec.filenames]
        total = sum(r.size for r in remotes)
        have = [bytes_on_disk(hub, r) for r in remotes]
        missing = total - sum(have)
        if missing:  # refuse before the first byte is written
            check_free_space(hub, missing, disk_free=self._disk_free)
        meter = _Meter(self, total, resumed=sum(have))
        paths: list[str] = []
        for index, remote in enumerate(remotes):
            before = sum(r.size for r in remotes[:index])
            transfer = Transfer(
                hub, remote, stop=self._stop, on_progress=meter.bind(before, remote)
            )
            paths.append(str(transfer.run()))
            meter.report("download", before + remote.size, remote)
        return DownloadResult(spec, tuple(paths), total)

    def _set_state(self, state: JobState) -> None:
        with self._lock:
            self.state = state
        if self._callbacks.on_state is not None:
            self._callbacks.on_state(self)

    def _finish(self, state: JobState) -> None:
        self._set_state(state)
        self._finished.set()
        if self._callbacks.on_done is not None and state is not JobState.PAUSED:
            self._callbacks.on_done(self)

    def _report(self, progress: Progress) -> None:
        self.progress = progress
        if self._callbacks.on_progress is not None:
            self._callbacks.on_progress(progress)


@dataclass
class _Meter:
    """Turns per-file byte counts into job :class:`Progress` with speed and ETA."""

    job: DownloadJob
    total: int
    resumed: int  # bytes already on disk when this run started (not counted in the speed)
    started: float = field(default_factory=time.monotonic)

    def bind(self, before: int, remote: RemoteFile) -> Callable[[str, int, int], None]:
        def on_file_progress(phase: str, done: int, total: int) -> None:
            if phase == Phase.HASH:
                self.job._report(Progress(Phase.HASH, done, total, 0.0, None, remote.filename))
            else:
                self.report(phase, before + done, remote)

        return on_file_progress

    def report(self, phase: str, done: int, remote: RemoteFile) -> None:
        elapsed = time.monotonic() - self.started
        fresh = max(0, done - self.resumed)
        speed = fresh / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / speed if speed > 0 else None
        self.job._report(Progress(Phase(phase), done, self.total, speed, eta, remote.filename))
