"""The download queue: jobs run one (or N) at a time on worker threads."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from gbdesk.download.hub import HubConfig, load_hub_config
from gbdesk.download.job import DownloadJob, JobCallback, ProgressCallback
from gbdesk.download.spec import DownloadSpec

log = logging.getLogger(__name__)


class DownloadManager:
    """Runs :class:`DownloadJob` objects, ``max_parallel`` at a time, on daemon worker threads.

    Example::

        manager = DownloadManager()
        job = manager.submit(spec, on_progress=print)
        result = job.wait()
        manager.shutdown()

    ``hub`` fixes the endpoint, cache, token and offline mode; by default each job reads them
    from the settings and the environment when it is submitted.
    """

    def __init__(
        self,
        *,
        max_parallel: int = 1,
        hub: HubConfig | None = None,
        disk_free: Callable[[Path], int] | None = None,
    ) -> None:
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self.max_parallel = max_parallel
        self._hub = hub
        self._disk_free = disk_free
        self._queue: queue.Queue[DownloadJob | None] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._jobs: list[DownloadJob] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(
        self,
        spec: DownloadSpec,
        *,
        on_progress: ProgressCallback | None = None,
        on_state: JobCallback | None = None,
        on_done: JobCallback | None = None,
    ) -> DownloadJob:
        """Queue a download and return its job at once (callbacks come from a worker thread).

        Raises:
            RuntimeError: the manager was shut down.
            ConfigError: the settings file is invalid (when ``hub`` was not given).
        """
        hub = self._hub or load_hub_config()
        job = DownloadJob(
            spec,
            hub,
            enqueue=self._enqueue,
            on_progress=on_progress,
            on_state=on_state,
            on_done=on_done,
            disk_free=self._disk_free,
        )
        with self._lock:
            self._jobs.append(job)
        self._enqueue(job)
        return job

    @property
    def jobs(self) -> list[DownloadJob]:
        """Every job submitted, in order."""
        with self._lock:
            return list(self._jobs)

    def shutdown(self, *, cancel: bool = True, timeout: float = 5.0) -> None:
        """Stop the workers; with ``cancel`` the running and queued jobs are cancelled first."""
        with self._lock:
            self._closed = True
            workers = list(self._workers)
            jobs = list(self._jobs)
        if cancel:
            for job in jobs:
                job.cancel()
        for _ in workers:
            self._queue.put(None)
        for worker in workers:
            worker.join(timeout)

    def __enter__(self) -> DownloadManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def _enqueue(self, job: DownloadJob) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the download manager is shut down")
            if len(self._workers) < self.max_parallel:
                worker = threading.Thread(
                    target=self._work, name=f"download-{len(self._workers) + 1}", daemon=True
                )
                self._workers.append(worker)
                worker.start()
        self._queue.put(job)

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            job.run()
