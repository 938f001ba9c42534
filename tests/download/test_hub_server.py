"""The local Hub speaks huggingface_hub's protocol: downloads, listings, errors, faults."""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
)

from tests.support.hub_server import HubServer

REPO = "test-org/tiny-GGUF"
CONTENT = bytes(range(256)) * 4096  # 1 MiB


def test_hf_hub_download_and_listing(hub_server: HubServer, tmp_path: Path) -> None:
    hub_server.add_file(REPO, "tiny-Q4_0.gguf", CONTENT)
    hub_server.add_file(REPO, "sub/part.gguf", b"GGUF" + b"\0" * 100)

    path = hf_hub_download(REPO, "tiny-Q4_0.gguf", cache_dir=tmp_path)
    assert Path(path).read_bytes() == CONTENT
    assert f"snapshots/{hub_server.commit(REPO)}/" in path

    api = HfApi(endpoint=hub_server.url)
    top = {item.path: item for item in api.list_repo_tree(REPO)}
    assert set(top) == {"tiny-Q4_0.gguf", "sub"}
    assert top["tiny-Q4_0.gguf"].lfs.sha256 == hashlib.sha256(CONTENT).hexdigest()
    everything = {item.path for item in api.list_repo_tree(REPO, recursive=True)}
    assert everything == {"tiny-Q4_0.gguf", "sub/part.gguf"}
    info = api.model_info(REPO, files_metadata=True)
    assert info.sha == hub_server.commit(REPO)
    assert {s.rfilename for s in info.siblings} == {"tiny-Q4_0.gguf", "sub/part.gguf"}


def test_metadata_headers_and_range(hub_server: HubServer) -> None:
    hub_server.add_file(REPO, "tiny-Q4_0.gguf", CONTENT)
    url = hf_hub_url(REPO, "tiny-Q4_0.gguf", endpoint=hub_server.url)
    meta = get_hf_file_metadata(url)
    assert meta.etag == hashlib.sha256(CONTENT).hexdigest()
    assert meta.size == len(CONTENT)
    assert meta.commit_hash == hub_server.commit(REPO)

    request = urllib.request.Request(url, headers={"Range": "bytes=1000-"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 1000-{len(CONTENT) - 1}/{len(CONTENT)}"
        assert response.read() == CONTENT[1000:]


def test_errors(hub_server: HubServer, tmp_path: Path) -> None:
    hub_server.add_file(REPO, "tiny-Q4_0.gguf", CONTENT)
    hub_server.add_repo("test-org/gated", gated_token="hf_right")
    hub_server.add_file("test-org/gated", "g.gguf", CONTENT)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("test-org/missing", "x.gguf", cache_dir=tmp_path)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "missing.gguf", cache_dir=tmp_path)
    with pytest.raises(GatedRepoError) as no_token:
        hf_hub_download("test-org/gated", "g.gguf", cache_dir=tmp_path, token=False)
    assert no_token.value.response.status_code == 401
    with pytest.raises(GatedRepoError) as wrong:
        hf_hub_download("test-org/gated", "g.gguf", cache_dir=tmp_path, token="hf_wrong")
    assert wrong.value.response.status_code == 403
    path = hf_hub_download("test-org/gated", "g.gguf", cache_dir=tmp_path, token="hf_right")
    assert Path(path).read_bytes() == CONTENT


def test_faults(hub_server: HubServer) -> None:
    hub_server.add_file(REPO, "tiny-Q4_0.gguf", CONTENT)
    url = hf_hub_url(REPO, "tiny-Q4_0.gguf", endpoint=hub_server.url)
    hub_server.drop_after(REPO, "tiny-Q4_0.gguf", 5000)
    with pytest.raises(http.client.IncompleteRead), urllib.request.urlopen(url) as response:
        response.read()
    assert hub_server.bytes_sent(REPO, "tiny-Q4_0.gguf") == 5000
    hub_server.corrupt(REPO, "tiny-Q4_0.gguf", 10)
    with urllib.request.urlopen(url) as response:
        body = response.read()
    assert body[10] == CONTENT[10] ^ 0xFF
    assert body[:10] + body[11:] == CONTENT[:10] + CONTENT[11:]
    assert hub_server.bytes_sent(REPO, "tiny-Q4_0.gguf") == 5000 + len(CONTENT)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(hub_server.url + "/test-org/none/resolve/main/x")
    assert missing.value.headers["X-Error-Code"] == "RepoNotFound"
    missing.value.close()


def test_model_listing_in_the_hubs_shapes(hub_server: HubServer) -> None:
    hub_server.add_file("a/Alpha-GGUF", "alpha-Q4_K_M.gguf", b"GGUF" + b"\0" * 28, pad_to=1 << 30)
    hub_server.set_meta("a/Alpha-GGUF", downloads=7, likes=3, license="mit", trending_score=1)
    hub_server.add_file("b/beta-alpha-GGUF", "b.Q8_0.gguf", b"GGUF")
    hub_server.set_meta("b/beta-alpha-GGUF", downloads=70, likes=1, trending_score=9)
    hub_server.add_file("c/alpha-weights", "model.safetensors", b"x")
    api = HfApi(endpoint=hub_server.url)

    found = list(api.list_models(search="ALPHA", filter="gguf", sort="downloads", limit=5))
    assert [m.id for m in found] == ["b/beta-alpha-GGUF", "a/Alpha-GGUF"]
    assert [m.id for m in api.list_models(search="alpha", sort="trending_score")] == [
        "b/beta-alpha-GGUF",
        "a/Alpha-GGUF",
        "c/alpha-weights",
    ]
    assert [m.id for m in api.list_models(search="alpha", sort="likes", limit=1)] == [
        "a/Alpha-GGUF"
    ]
    # Without expand or full: the Hub's default fields, no siblings, no sha.
    plain = next(iter(api.list_models(search="a/Alpha")))
    assert plain.downloads == 7 and plain.likes == 3 and "gguf" in plain.tags
    assert plain.siblings is None and plain.sha is None and plain.card_data is None
    # expand: only what was asked for (plus the ids).
    (expanded,) = api.list_models(search="a/Alpha", expand=["downloads", "cardData", "sha"])
    assert expanded.downloads == 7 and expanded.likes is None
    assert expanded.card_data is not None and expanded.card_data.license == "mit"
    assert expanded.sha == hub_server.commit("a/Alpha-GGUF")
    # full: siblings by name only (sizes come from model info with blobs=true).
    (full,) = api.list_models(search="a/Alpha", full=True)
    assert [s.rfilename for s in full.siblings] == ["alpha-Q4_K_M.gguf"]
    assert full.siblings[0].size is None and full.gated is False
    info = api.model_info("a/Alpha-GGUF", files_metadata=True)
    assert info.siblings[0].size == 1 << 30 and info.siblings[0].lfs is not None
    assert api.model_info("a/Alpha-GGUF").siblings[0].size is None
    # The padded file: the header, then zeros, up to the advertised size.
    url = hf_hub_url("a/Alpha-GGUF", "alpha-Q4_K_M.gguf", endpoint=hub_server.url)
    request = urllib.request.Request(url, headers={"Range": "bytes=0-63"})
    with urllib.request.urlopen(request) as response:
        assert response.headers["Content-Range"] == f"bytes 0-63/{1 << 30}"
        assert response.read() == b"GGUF" + b"\0" * 60
    with pytest.raises(HfHubHTTPError, match="Invalid sort: stars") as info:
        list(api.list_models(sort="stars"))  # type: ignore[arg-type]
    assert info.value.response.status_code == 400
