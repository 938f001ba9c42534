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
