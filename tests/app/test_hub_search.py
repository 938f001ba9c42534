"""The Hub search use case against the local Hub: listings, lazy header reads, verdicts."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest

from gbdesk.app.hub_search import (
    HeaderCache,
    HubSearch,
    HubSearchUnreachableError,
    QuantFailure,
    QuantVerdict,
    SearchCancelledError,
    search,
)
from gbdesk.catalog.hub_search import group_quants
from gbdesk.catalog.presets import load_hardware
from gbdesk.download.hub import HubConfig, hub_cache_dir
from gbdesk.errors import UsageError
from tests.free_ports import free_port
from tests.support import hub_repos as hr
from tests.support.hub_server import HubServer

MIB = 1 << 20


def _searcher(hub: HubServer, tmp_path: Path, *, token: str | None = None, profile=None):
    config = HubConfig(endpoint=hub.url, cache_dir=hub_cache_dir(), token=token)
    return HubSearch(
        profile or load_hardware("rtx-3060-12gb"),
        hub=config,
        cache=HeaderCache(tmp_path / "headers"),
    )


def _every_file(hub: HubServer) -> list[tuple[str, str]]:
    with hub._lock:
        return [(r.repo, name) for r in hub._repos.values() for (_c, name) in r.files]


def test_lists_gguf_repos_in_the_hubs_order_with_quants(search_hub: HubServer, tmp_path: Path):
    repos = list(_searcher(search_hub, tmp_path).repos("", sort="downloads"))
    assert [r.repo for r in repos] == [
        hr.STARTER_REPO,
        hr.QUANTS_REPO,
        hr.BIG_REPO,
        hr.GATED_REPO,
        hr.ALIEN_REPO,
        hr.SPLIT_REPO,
    ]  # the safetensors repo has no GGUF: the gguf filter leaves it out
    by_id = {r.repo: r for r in repos}
    quants = by_id[hr.QUANTS_REPO]
    assert [q.name for q in quants.quants] == ["Q4_K_M", "Q8_0", "F16"]  # smallest first
    assert quants.licence == "llama3.2" and not quants.gated
    assert quants.downloads == 5000 and quants.likes == 120
    assert quants.last_modified is not None and quants.last_modified.year == 2025
    assert quants.sha == search_hub.commit(hr.QUANTS_REPO)
    for quant in quants.quants:
        (name,) = quant.files
        assert quant.size_bytes == search_hub.file(hr.QUANTS_REPO, name).size
    split = by_id[hr.SPLIT_REPO].quants
    assert len(split) == 1 and len(split[0].files) == 2
    assert split[0].size_bytes == sum(
        search_hub.file(hr.SPLIT_REPO, name).size for name in split[0].files
    )
    assert by_id[hr.GATED_REPO].gated
    # Listing reads no GGUF byte.
    assert all(search_hub.bytes_sent(repo, name) == 0 for repo, name in _every_file(search_hub))


def test_query_sort_and_limit(search_hub: HubServer, tmp_path: Path):
    searcher = _searcher(search_hub, tmp_path)
    llamas = [r.repo for r in searcher.repos("LLAMA", sort="likes")]
    assert llamas == [hr.QUANTS_REPO, hr.BIG_REPO, hr.GATED_REPO]
    trending = [r.repo for r in searcher.repos("", sort="trending", limit=2)]
    assert trending == [hr.QUANTS_REPO, hr.STARTER_REPO]
    assert list(searcher.repos("no such model")) == []
    with pytest.raises(UsageError):
        list(searcher.repos("x", sort="stars"))
    with pytest.raises(UsageError):
        list(searcher.repos("x", limit=0))


def test_headers_are_read_lazily_only_the_header_and_cached_by_commit(
    search_hub: HubServer, tmp_path: Path
):
    searcher = _searcher(search_hub, tmp_path)
    repos = {r.repo: r for r in searcher.repos("")}
    starter = repos[hr.STARTER_REPO]
    result = searcher.evaluate(starter, starter.quants[0])
    assert isinstance(result, QuantVerdict)
    sent = search_hub.bytes_sent(hr.STARTER_REPO, hr.STARTER_FILE)
    size = search_hub.file(hr.STARTER_REPO, hr.STARTER_FILE).size
    assert result.header_bytes == sent
    assert 0 < sent <= 4 * MIB < size / 10  # the header, never the whole file
    others = [(r, n) for r, n in _every_file(search_hub) if r != hr.STARTER_REPO]
    assert all(search_hub.bytes_sent(r, n) == 0 for r, n in others)  # nothing else was read

    big = repos[hr.BIG_REPO]
    big_result = searcher.evaluate(big, big.quants[0])
    big_file = big.quants[0].files[0]
    assert search_hub.bytes_sent(hr.BIG_REPO, big_file) <= 4 * MIB
    assert big.quants[0].size_bytes > 30 * (1 << 30)
    assert big_result.header_bytes > 0

    # A second search (a new process, the same cache folder) reads nothing: same commit.
    again = _searcher(search_hub, tmp_path)
    repeat = again.evaluate(starter, starter.quants[0])
    assert repeat.header_bytes == 0 and repeat.params == result.params
    assert search_hub.bytes_sent(hr.STARTER_REPO, hr.STARTER_FILE) == sent
    cached = list((tmp_path / "headers").rglob("*.json"))
    assert any(starter.sha in path.name for path in cached)


def test_verdicts_memory_speed_context_and_architecture(search_hub: HubServer, tmp_path: Path):
    searcher = _searcher(search_hub, tmp_path)  # an RTX 3060 12 GB machine, 16 GB RAM
    repos = {r.repo: r for r in searcher.repos("")}
    results = {
        (repo.repo, r.quant): r for repo in repos.values() for r in searcher.evaluate_repo(repo)
    }
    small = results[(hr.QUANTS_REPO, "Q4_K_M")]
    assert isinstance(small, QuantVerdict)
    assert small.verdict == "full-gpu" and small.fit.gpu_layers == small.fit.n_layers + 1
    assert small.architecture == "llama" and small.loadable is True
    assert 2.5e9 < small.params < 3.2e9  # 26 layers x 3072 wide, 32k vocabulary
    assert small.fit.max_ctx >= 8192 and small.fit.speed.generation_tps > 0
    assert small.speed_source in {"calibrated", "guess"}
    sizes = [results[(hr.QUANTS_REPO, q)].fit.devices[1].weights for q in ("Q4_K_M", "Q8_0", "F16")]
    assert sizes == sorted(sizes) and sizes[0] < sizes[2] / 3
    huge = results[(hr.BIG_REPO, "Q4_K_M")]
    assert huge.verdict in {"partial-gpu", "does-not-fit"}
    assert huge.params > 60e9
    starter = results[(hr.STARTER_REPO, "Q4_1")]
    split = results[(hr.SPLIT_REPO, "Q4_1")]
    assert split.params == starter.params and split.architecture == starter.architecture
    assert split.size_bytes > starter.size_bytes  # two files, each with its own header
    alien = results[(hr.ALIEN_REPO, "Q4_K_M")]
    assert alien.loadable is False and alien.verdict == "cannot-load"
    assert alien.architecture == hr.ALIEN_ARCH
    json_row = small.to_json()
    assert json_row["verdict"] == "full-gpu" and json_row["max_ctx"] == small.fit.max_ctx

    # The same files on a small CPU-only laptop.
    laptop = dataclasses.replace(load_hardware("rtx-3050-8gb"), gpus=())
    cpu_results = {
        r.quant: r
        for r in _searcher(search_hub, tmp_path, profile=laptop).evaluate_repo(
            repos[hr.QUANTS_REPO]
        )
    }
    assert {r.verdict for r in cpu_results.values()} <= {"cpu-only", "does-not-fit"}
    assert cpu_results["Q4_K_M"].verdict == "cpu-only"


def test_a_gated_repo_says_how_to_get_in(search_hub: HubServer, tmp_path: Path):
    searcher = _searcher(search_hub, tmp_path)
    (gated,) = [r for r in searcher.repos("gated")]
    (result,) = list(searcher.evaluate_repo(gated))
    assert isinstance(result, QuantFailure) and result.gated
    assert "gated" in result.message and "licence" in result.message
    assert f"{search_hub.url}/{hr.GATED_REPO}" in result.fix and "token" in result.fix
    with_token = _searcher(search_hub, tmp_path, token=hr.GATED_TOKEN)
    (ok,) = list(with_token.evaluate_repo(gated))
    assert isinstance(ok, QuantVerdict) and ok.verdict == "full-gpu"


def test_offline_and_unreachable_fail_clearly_and_fast(search_hub: HubServer, tmp_path: Path):
    offline = HubSearch(
        load_hardware("rtx-3060-12gb"),
        hub=HubConfig(endpoint=search_hub.url, cache_dir=hub_cache_dir(), offline=True),
        cache=HeaderCache(tmp_path),
    )
    with pytest.raises(HubSearchUnreachableError) as info:
        list(offline.repos("llama"))
    assert f"the Hub is unreachable (mirror: {search_hub.url})" in info.value.message
    assert search_hub.requests == []
    closed = f"http://127.0.0.1:{free_port()}"  # a port nothing listens on
    gone = HubSearch(
        load_hardware("rtx-3060-12gb"),
        hub=HubConfig(endpoint=closed, cache_dir=hub_cache_dir()),
        cache=HeaderCache(tmp_path),
    )
    began = time.monotonic()
    with pytest.raises(HubSearchUnreachableError) as info:
        list(gone.repos("llama"))
    assert time.monotonic() - began < 10  # not huggingface_hub's half-minute of retries
    assert f"mirror: {closed}" in info.value.message and "Settings" in (info.value.fix or "")


def test_cancel_stops_between_requests(search_hub: HubServer, tmp_path: Path):
    cancel = threading.Event()
    seen = []

    def on_repo(repo):
        seen.append(repo.repo)
        cancel.set()

    with pytest.raises(SearchCancelledError):
        search(
            "",
            load_hardware("rtx-3060-12gb"),
            hub=HubConfig(endpoint=search_hub.url, cache_dir=hub_cache_dir()),
            cancel=cancel,
            on_repo=on_repo,
        )
    assert seen == [hr.STARTER_REPO]
    # Cancelled before its first header: not one GGUF byte was asked for.
    assert all(search_hub.bytes_sent(r, n) == 0 for r, n in _every_file(search_hub))


def test_group_quants_sums_split_parts_and_skips_incomplete_ones():
    sizes = {
        "a-Q4_K_M-00001-of-00002.gguf": 10,
        "a-Q4_K_M-00002-of-00002.gguf": 5,
        "a-Q8_0-00001-of-00003.gguf": 9,  # part 2 and 3 missing
        "sub/a.F16.gguf": 40,
        "mmproj-a-f16.gguf": 2,
        "README.md": 1,
    }
    quants = {q.name: q for q in group_quants(sizes)}
    assert set(quants) == {"Q4_K_M", "F16"}
    assert quants["Q4_K_M"].size_bytes == 15 and len(quants["Q4_K_M"].files) == 2
    assert quants["F16"].files == ("sub/a.F16.gguf",)


def test_a_damaged_cache_file_is_read_again_from_the_hub(search_hub: HubServer, tmp_path: Path):
    searcher = _searcher(search_hub, tmp_path)
    (starter,) = [r for r in searcher.repos("SmolLM2-135M-Instruct")]
    first = searcher.evaluate(starter, starter.quants[0])
    (cached,) = list((tmp_path / "headers").rglob("*.json"))
    cached.write_text("{ not json", encoding="utf-8")
    again = searcher.evaluate(starter, starter.quants[0])
    assert isinstance(again, QuantVerdict) and again.header_bytes > 0
    assert again.params == first.params
    assert json.loads(cached.read_text(encoding="utf-8"))["sha"] == starter.sha  # rewritten
