"""The model library: downloads from the HF cache, imports from disk, removal frees space."""

from __future__ import annotations

from pathlib import Path

import pytest

from gbdesk.download.errors import LibraryError
from gbdesk.download.hub import HubConfig
from gbdesk.download.library import ModelLibrary, quant_of
from gbdesk.download.manager import DownloadManager
from gbdesk.download.spec import DownloadSpec, with_split_parts
from tests.download.conftest import FILENAME, REPO, SPLIT_REPO
from tests.support.hub_server import HubServer


@pytest.fixture
def library(hub_config: HubConfig, tmp_path: Path) -> ModelLibrary:
    return ModelLibrary(cache_dir=hub_config.cache_dir, models_dir=tmp_path / "models")


def test_quant_from_name_or_header(starter_model: Path, tmp_path: Path) -> None:
    assert quant_of(Path("Llama-3.2-3B-Instruct-Q4_K_M.gguf")) == "Q4_K_M"
    assert quant_of(Path("model-IQ2_XXS-00001-of-00002.gguf")) == "IQ2_XXS"
    assert quant_of(Path("x.f16.gguf")) == "F16"
    assert quant_of(starter_model) == "Q4_1"
    unnamed = tmp_path / "model.gguf"
    unnamed.symlink_to(starter_model)
    assert quant_of(unnamed) == "Q4_1"  # from general.file_type in the header


def test_downloads_are_listed_and_removed(
    hub: HubServer,
    manager: DownloadManager,
    library: ModelLibrary,
    *,
    split_parts: list[Path],
    starter_model: Path,
) -> None:
    for part in split_parts:
        hub.add_file(SPLIT_REPO, part.name, part)
    hub.add_file(REPO, "other-Q8_0.gguf", starter_model)  # same blob, another name
    single = manager.submit(DownloadSpec(REPO, (FILENAME,))).wait(60)
    manager.submit(DownloadSpec(REPO, ("other-Q8_0.gguf",))).wait(60)
    split = manager.submit(with_split_parts(SPLIT_REPO, split_parts[0].name)).wait(60)

    models = {m.id: m for m in library.list_models()}
    assert set(models) == {
        f"{REPO}/{FILENAME}",
        f"{REPO}/other-Q8_0.gguf",
        f"{SPLIT_REPO}/{split_parts[0].name}",
    }
    mine = models[f"{REPO}/{FILENAME}"]
    assert (mine.source, mine.quant, mine.path) == ("hub", "Q4_1", str(single.path))
    assert mine.size == starter_model.stat().st_size
    split_model = models[f"{SPLIT_REPO}/{split_parts[0].name}"]
    assert split_model.paths == split.paths
    assert split_model.size == sum(p.stat().st_size for p in split_parts)

    # The blob is shared with other-Q8_0.gguf: removing one keeps the other working.
    assert library.remove(f"{REPO}/{FILENAME}") == 0
    assert Path(models[f"{REPO}/other-Q8_0.gguf"].path).read_bytes()[:4] == b"GGUF"
    assert library.remove(f"{REPO}/other-Q8_0.gguf") == starter_model.stat().st_size
    assert library.remove(split_model.id) == split_model.size
    assert library.list_models() == []
    assert not [p for p in library.cache_dir.rglob("*") if p.is_file() and "blobs" in p.parts]
    with pytest.raises(LibraryError, match="no installed model"):
        library.remove(split_model.id)


def test_import_copies_and_validates(
    library: ModelLibrary, starter_model: Path, split_parts: list[Path], tmp_path: Path
) -> None:
    model = library.import_file(starter_model)
    assert model.id == f"local/{starter_model.name}"
    assert model.source == "imported" and model.quant == "Q4_1"
    assert Path(model.path).parent == library.models_dir
    assert Path(model.path).read_bytes() == starter_model.read_bytes()
    with pytest.raises(LibraryError, match="already in the library"):
        library.import_file(starter_model)

    split = library.import_file(split_parts[0])
    assert len(split.paths) == 2

    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello, not a model")
    with pytest.raises(LibraryError, match="not a GGUF model"):
        library.import_file(not_gguf)
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(starter_model.read_bytes()[:1000])
    with pytest.raises(LibraryError, match="not a usable GGUF model"):
        library.import_file(truncated)
    assert sorted(p.name for p in library.models_dir.iterdir()) == sorted(
        [starter_model.name, *(p.name for p in split_parts)]
    )

    freed = library.remove(model.id)
    assert freed == starter_model.stat().st_size
    assert not Path(model.path).exists()
    assert [m.id for m in library.list_models()] == [split.id]
