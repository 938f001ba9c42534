"""The download manager against the local Hub: real files, real HTTP, faults injected."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub import try_to_load_from_cache

from gbdesk.download import transfer
from gbdesk.download.errors import (
    ChecksumMismatchError,
    DownloadInterruptedError,
    HubAccessDeniedError,
    HubNotFoundError,
    HubUnreachableError,
    NotEnoughSpaceError,
    NotInCacheError,
)
from gbdesk.download.hub import HubConfig
from gbdesk.download.job import DownloadJob, JobState, Progress
from gbdesk.download.manager import DownloadManager
from gbdesk.download.spec import DownloadSpec, with_split_parts
from gbdesk.gguf.local import read_gguf
from tests.download.conftest import FILENAME, REPO, SPLIT_REPO
from tests.support.hub_server import HubServer

SPEC = DownloadSpec(REPO, (FILENAME,))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cache_files(hub_config: HubConfig) -> list[Path]:
    return sorted(p for p in hub_config.cache_dir.rglob("*") if p.is_file() or p.is_symlink())


def _wait_for_bytes(job: DownloadJob, nbytes: int) -> None:
    deadline = time.monotonic() + 30
    while (job.progress is None or job.progress.done < nbytes) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.progress is not None and job.progress.done >= nbytes, job


def test_download_lands_verified_in_the_hf_cache(
    hub: HubServer, manager: DownloadManager, hub_config: HubConfig, starter_model: Path
) -> None:
    seen: list[Progress] = []
    done: list[DownloadJob] = []
    job = manager.submit(SPEC, on_progress=seen.append, on_done=done.append)
    result = job.wait(60)

    assert job.state is JobState.DONE and done == [job]
    assert result.size == starter_model.stat().st_size
    assert _sha256(result.path) == _sha256(starter_model)
    cached = try_to_load_from_cache(REPO, FILENAME, cache_dir=hub_config.cache_dir)
    assert cached == str(result.path)
    downloads = [p for p in seen if p.phase == "download"]
    assert downloads[-1].done == downloads[-1].total == result.size
    assert [p.done for p in downloads] == sorted(p.done for p in downloads)
    assert hub.bytes_sent(REPO, FILENAME) == result.size
    assert not list(hub_config.cache_dir.rglob("*.incomplete"))

    # A second download of the same file sends no body bytes.
    again = manager.submit(SPEC).wait(60)
    assert again.paths == result.paths
    assert hub.bytes_sent(REPO, FILENAME) == result.size


def test_cut_connections_resume_with_little_sent_twice(
    hub: HubServer, manager: DownloadManager, starter_model: Path
) -> None:
    size = starter_model.stat().st_size
    hub.drop_after(REPO, FILENAME, size // 3, times=-1)  # every response is cut after 1/3
    result = manager.submit(SPEC).wait(120)
    assert _sha256(result.path) == _sha256(starter_model)
    assert hub.bytes_sent(REPO, FILENAME) < size * 1.05


def test_repeated_failures_keep_the_partial_for_the_next_attempt(
    hub: HubServer,
    manager: DownloadManager,
    hub_config: HubConfig,
    starter_model: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transfer, "RETRY_BASE_DELAY_S", 0.01)
    size = starter_model.stat().st_size
    hub.drop_after(REPO, FILENAME, size // 2, times=1)  # cut at half, then cut every retry
    job = manager.submit(SPEC)
    _wait_for_bytes(job, size // 4)
    hub.drop_after(REPO, FILENAME, 0, times=-1)
    with pytest.raises(HubUnreachableError) as failed:
        job.wait(60)
    assert "run the download again" in str(failed.value)
    partial = list(hub_config.cache_dir.rglob("*.incomplete"))
    assert len(partial) == 1
    kept = partial[0].stat().st_size
    assert kept >= size // 4

    hub.clear_faults()
    sent_before = hub.bytes_sent(REPO, FILENAME)
    job.resume()
    result = job.wait(60)
    assert _sha256(result.path) == _sha256(starter_model)
    assert hub.bytes_sent(REPO, FILENAME) - sent_before == size - kept
    assert hub.bytes_sent(REPO, FILENAME) < size * 1.05


def test_corrupt_bytes_are_refused_and_removed(
    hub: HubServer, manager: DownloadManager, hub_config: HubConfig
) -> None:
    hub.corrupt(REPO, FILENAME, 12345)
    job = manager.submit(SPEC)
    with pytest.raises(ChecksumMismatchError) as corrupt:
        job.wait(60)
    assert "corrupt" in corrupt.value.message and "removed" in corrupt.value.message
    assert job.state is JobState.FAILED
    assert try_to_load_from_cache(REPO, FILENAME, cache_dir=hub_config.cache_dir) is None
    blobs = [p for p in _cache_files(hub_config) if "blobs" in p.parts]
    assert blobs == []


def test_cancel_on_a_slow_server_is_quick_and_the_next_job_resumes(
    hub: HubServer, manager: DownloadManager, hub_config: HubConfig, starter_model: Path
) -> None:
    size = starter_model.stat().st_size
    hub.throttle(REPO, FILENAME, 2_000_000)
    job = manager.submit(SPEC)
    _wait_for_bytes(job, 500_000)
    asked = time.monotonic()
    job.cancel()
    with pytest.raises(DownloadInterruptedError):
        job.wait(10)
    assert time.monotonic() - asked < 1.0  # a behaviour (stops within one read), not a benchmark
    assert job.state is JobState.CANCELLED
    (partial,) = hub_config.cache_dir.rglob("*.incomplete")
    kept = partial.stat().st_size
    assert kept >= 500_000

    hub.throttle(REPO, FILENAME, None)
    phases: list[str] = []
    result = manager.submit(SPEC, on_progress=lambda p: phases.append(p.phase)).wait(60)
    assert "hash" in phases  # the kept bytes were hashed, not downloaded again
    assert _sha256(result.path) == _sha256(starter_model)
    assert hub.bytes_sent(REPO, FILENAME) < size * 1.05


def test_pause_and_resume(
    hub: HubServer, manager: DownloadManager, hub_config: HubConfig, starter_model: Path
) -> None:
    hub.throttle(REPO, FILENAME, 2_000_000)
    states: list[JobState] = []
    job = manager.submit(SPEC, on_state=lambda j: states.append(j.state))
    _wait_for_bytes(job, 200_000)
    job.pause()
    with pytest.raises(DownloadInterruptedError):
        job.wait(10)
    assert job.state is JobState.PAUSED
    assert list(hub_config.cache_dir.rglob("*.incomplete"))
    hub.throttle(REPO, FILENAME, None)
    job.resume()
    result = job.wait(60)
    assert _sha256(result.path) == _sha256(starter_model)
    assert states == [
        JobState.RUNNING,
        JobState.PAUSED,
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.DONE,
    ]


def test_queue_runs_one_at_a_time(hub: HubServer, hub_config: HubConfig) -> None:
    hub.add_file(REPO, "other.gguf", b"GGUF" + bytes(1000))
    running = 0
    most = 0
    lock = threading.Lock()

    def on_state(job: DownloadJob) -> None:
        nonlocal running, most
        with lock:
            running += 1 if job.state is JobState.RUNNING else 0
            running -= 1 if job.state.finished else 0
            most = max(most, running)

    with DownloadManager(hub=hub_config, max_parallel=1) as queue:
        jobs = [
            queue.submit(SPEC, on_state=on_state),
            queue.submit(DownloadSpec(REPO, ("other.gguf",)), on_state=on_state),
        ]
        for job in jobs:
            job.wait(60)
    assert most == 1
    assert [j.state for j in jobs] == [JobState.DONE, JobState.DONE]


def test_not_enough_disk_is_refused_before_any_byte(
    hub_server: HubServer, manager: DownloadManager, hub_config: HubConfig, starter_model: Path
) -> None:
    hub_server.add_file(REPO, "huge.gguf", starter_model, advertised_size=10**18)
    with pytest.raises(NotEnoughSpaceError) as refused:
        manager.submit(DownloadSpec(REPO, ("huge.gguf",))).wait(30)
    assert "not enough disk space" in refused.value.message
    assert ("GET", f"/{REPO}/resolve/main/huge.gguf") not in hub_server.requests
    assert hub_server.bytes_sent(REPO, "huge.gguf") == 0
    assert [p for p in _cache_files(hub_config) if "blobs" in p.parts] == []


def test_free_space_margin_uses_the_injected_disk_probe(
    hub: HubServer, hub_config: HubConfig, starter_model: Path
) -> None:
    size = starter_model.stat().st_size
    tight = DownloadManager(hub=hub_config, disk_free=lambda _: size + 1000)
    with tight, pytest.raises(NotEnoughSpaceError):
        tight.submit(SPEC).wait(30)
    assert hub.bytes_sent(REPO, FILENAME) == 0


def test_gated_repo_needs_a_token(
    hub_server: HubServer, hub_config: HubConfig, starter_model: Path
) -> None:
    gated = "test-org/gated-GGUF"
    secret = "hf_testtoken_abcdefghijklmnop"
    hub_server.add_repo(gated, gated_token=secret)
    hub_server.add_file(gated, FILENAME, starter_model)
    spec = DownloadSpec(gated, (FILENAME,))

    with (
        DownloadManager(hub=hub_config) as anonymous,
        pytest.raises(HubAccessDeniedError) as denied,
    ):
        anonymous.submit(spec).wait(30)
    text = str(denied.value)
    assert f"accept the licence at {hub_server.url}/{gated}" in text
    assert "gbdesk models token" in text

    wrong = HubConfig(hub_config.endpoint, hub_config.cache_dir, token="hf_wrongtoken_000000")
    wrong_token = DownloadManager(hub=wrong)
    with wrong_token, pytest.raises(HubAccessDeniedError) as denied_again:
        wrong_token.submit(spec).wait(30)
    assert "hf_wrongtoken" not in str(denied_again.value)
    assert "hf_wrongtoken" not in repr(wrong)

    right = HubConfig(hub_config.endpoint, hub_config.cache_dir, token=secret)
    with DownloadManager(hub=right) as with_token:
        result = with_token.submit(spec).wait(60)
    assert _sha256(result.path) == _sha256(starter_model)


def test_missing_repo_and_file_say_so(hub: HubServer, manager: DownloadManager) -> None:
    with pytest.raises(HubNotFoundError) as no_file:
        manager.submit(DownloadSpec(REPO, ("nope.gguf",))).wait(30)
    assert "has no file 'nope.gguf'" in no_file.value.message
    with pytest.raises(HubNotFoundError) as no_repo:
        manager.submit(DownloadSpec("test-org/nothing-here", ("x.gguf",))).wait(30)
    assert "was not found" in no_repo.value.message


def test_offline_mode_uses_the_cache_only(
    hub: HubServer, manager: DownloadManager, hub_config: HubConfig
) -> None:
    online = manager.submit(SPEC).wait(60)
    requests_before = len(hub.requests)
    offline = HubConfig(hub_config.endpoint, hub_config.cache_dir, offline=True)
    with DownloadManager(hub=offline) as offline_manager:
        assert offline_manager.submit(SPEC).wait(30).paths == online.paths
        with pytest.raises(NotInCacheError) as missing:
            offline_manager.submit(DownloadSpec(REPO, ("other.gguf",))).wait(30)
    assert "offline mode is on" in missing.value.message
    assert len(hub.requests) == requests_before


def test_split_gguf_is_one_job(
    hub_server: HubServer, manager: DownloadManager, split_parts: list[Path]
) -> None:
    for part in split_parts:
        hub_server.add_file(SPLIT_REPO, part.name, part)
    spec = with_split_parts(SPLIT_REPO, split_parts[0].name)
    assert spec.filenames == tuple(p.name for p in split_parts)
    totals: set[int] = set()
    result = manager.submit(spec, on_progress=lambda p: totals.add(p.total)).wait(60)
    assert totals == {sum(p.stat().st_size for p in split_parts)}
    assert [Path(p).name for p in result.paths] == [p.name for p in split_parts]
    assert read_gguf(result.path).split_count == 2
