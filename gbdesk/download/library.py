"""The model library: GGUF models in the Hugging Face cache plus GGUF files imported from disk.

Downloads live in the Hugging Face cache (shared with other tools) and are found with
huggingface_hub's ``scan_cache_dir``. Imported files are *copied* into gbdesk's models folder
(the ``models_dir`` setting, default ``<data>/models``), so the library owns them: moving or
deleting the original later breaks nothing, and ``remove`` frees the space. Split models count
as one model (found by their first part; every part is listed in ``paths``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from gbdesk.download.errors import DownloadInterruptedError, LibraryError
from gbdesk.download.hub import hub_cache_dir
from gbdesk.gguf.split import parse_split_name

GGUF_MAGIC = b"GGUF"
IMPORTED_PREFIX = "local/"
_QUANT = re.compile(
    r"(?<![A-Za-z0-9])("
    r"I?Q\d_K_(?:XXS|XS|XL|S|M|L)|IQ\d_(?:XXS|XS|S|M|NL)|I?Q\d_K|Q\d_\d|TQ\d_\d|MXFP4|BF16|F16|F32"
    r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_COPY_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class InstalledModel:
    """A GGUF model on this machine. ``path`` is the first part (what llama.cpp opens)."""

    id: str  # "owner/repo/file.gguf" for downloads, "local/file.gguf" for imports
    name: str
    path: str
    paths: tuple[str, ...]
    size: int  # bytes on disk, all parts
    quant: str  # e.g. "Q4_K_M"; empty when neither the name nor the header tells
    source: str  # "hub" or "imported"
    repo: str = ""
    revision: str = ""  # the commit, for downloads

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["paths"] = list(self.paths)
        return data


def quant_of(path: Path) -> str:
    """The quantization named in the file name, else the one in the GGUF header, else ""."""
    if match := _QUANT.search(path.name):
        return match.group(1).upper()
    try:
        import gguf

        from gbdesk.gguf.local import read_gguf

        file_type = read_gguf(path).get("general.file_type")
        if isinstance(file_type, int):
            return gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_")
    except Exception:  # an unreadable header only costs the label
        return ""
    return ""


def _models_dir_from_settings() -> Path:
    from gbdesk.paths import app_paths
    from gbdesk.settings import load_settings

    configured = load_settings().models_dir
    return Path(configured).expanduser() if configured else app_paths().models_dir


class ModelLibrary:
    """Lists, imports and removes GGUF models. Paths default to the settings and environment."""

    def __init__(self, *, cache_dir: Path | None = None, models_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir or hub_cache_dir()
        self.models_dir = models_dir or _models_dir_from_settings()

    # -- listing ------------------------------------------------------------------------------

    def list_models(self) -> list[InstalledModel]:
        """Every installed model, downloads first, each sorted by id."""
        return self._hub_models() + self._imported_models()

    def get(self, model_id: str) -> InstalledModel:
        """The model with this id.

        Raises:
            LibraryError: there is no such model.
        """
        for model in self.list_models():
            if model.id == model_id:
                return model
        raise LibraryError(
            f"no installed model {model_id!r}",
            fix="see the ids with `gbdesk models list`",
        )

    def _scan(self):  # -> HFCacheInfo | None
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound

        try:
            return scan_cache_dir(self.cache_dir)
        except CacheNotFound:
            return None

    def _hub_models(self) -> list[InstalledModel]:
        info = self._scan()
        if info is None:
            return []
        found: dict[str, tuple[float, InstalledModel]] = {}
        for repo in info.repos:
            if repo.repo_type != "model":
                continue
            for revision in repo.revisions:
                files = {
                    f.file_path.relative_to(revision.snapshot_path).as_posix(): f
                    for f in revision.files
                    if f.file_name.lower().endswith(".gguf")
                }
                for name, first in files.items():
                    parts = _parts_of(name, files)
                    if parts is None:
                        continue
                    model = InstalledModel(
                        id=f"{repo.repo_id}/{name}",
                        name=Path(name).name,
                        path=str(first.file_path),
                        paths=tuple(str(files[p].file_path) for p in parts),
                        size=sum(files[p].size_on_disk for p in parts),
                        quant=quant_of(first.file_path),
                        source="hub",
                        repo=repo.repo_id,
                        revision=revision.commit_hash,
                    )
                    # The same file in several revisions: list the newest.
                    if model.id not in found or revision.last_modified > found[model.id][0]:
                        found[model.id] = (revision.last_modified, model)
        return [model for _, model in sorted(found.values(), key=lambda item: item[1].id)]

    def _imported_models(self) -> list[InstalledModel]:
        if not self.models_dir.is_dir():
            return []
        files = {p.name: p for p in self.models_dir.glob("*.gguf") if p.is_file()}
        models = []
        for name, path in sorted(files.items()):
            parts = _parts_of(name, files)
            if parts is None:
                continue
            models.append(
                InstalledModel(
                    id=IMPORTED_PREFIX + name,
                    name=name,
                    path=str(path),
                    paths=tuple(str(files[p]) for p in parts),
                    size=sum(files[p].stat().st_size for p in parts),
                    quant=quant_of(path),
                    source="imported",
                )
            )
        return models

    # -- import -------------------------------------------------------------------------------

    def import_file(
        self,
        path: str | Path,
        *,
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> InstalledModel:
        """Copy a GGUF file (every part, for a split model) into the models folder.

        The header is checked first; each part is copied to a temporary file and renamed, so an
        interrupted import leaves nothing behind. Call it on a worker thread for large files.

        Raises:
            LibraryError: the file is missing, not a GGUF file, already imported, or does not
                fit on the disk.
            DownloadInterruptedError: ``cancel`` was set.
            OSError: the copy failed.
        """
        from gbdesk.gguf.local import read_gguf
        from gbdesk.gguf.model import GGUFError

        source = Path(path).expanduser()
        if not source.is_file():
            raise LibraryError(f"{source} does not exist", fix="check the path")
        with open(source, "rb") as handle:
            magic = handle.read(4)
        if magic != GGUF_MAGIC:
            raise LibraryError(
                f"{source.name} is not a GGUF model (it does not start with 'GGUF')",
                fix="import a .gguf file, e.g. one converted with llama.cpp's convert script",
            )
        try:
            read_gguf(source)
        except GGUFError as exc:
            raise LibraryError(
                f"{source.name} is not a usable GGUF model: {exc.message}",
                fix=exc.fix or "download the file again",
            ) from exc
        split = parse_split_name(source.name)
        if split is None:
            sources = [source]
        else:
            sources = [source.with_name(split.part(n)) for n in range(1, split.count + 1)]
        targets = [self.models_dir / s.name for s in sources]
        if any(t.exists() for t in targets):
            raise LibraryError(
                f"{sources[0].name} is already in the library",
                fix=f"remove it first with `gbdesk models rm {IMPORTED_PREFIX}{sources[0].name}`",
            )
        total = sum(s.stat().st_size for s in sources)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.models_dir).free
        if total > free:
            raise LibraryError(
                f"{sources[0].name} needs {total / 1e9:.2f} GB, {free / 1e9:.2f} GB are free in"
                f" {self.models_dir}",
                fix="free some space or set models_dir to a larger disk",
            )
        copied = 0
        for src, target in zip(sources, targets, strict=True):
            copied = _copy_atomically(
                src, target, copied=copied, total=total, on_progress=on_progress, cancel=cancel
            )
        return self.get(IMPORTED_PREFIX + sources[0].name)

    # -- removal ------------------------------------------------------------------------------

    def remove(self, model_id: str) -> int:
        """Delete a model's files (every part); returns the bytes freed.

        A download is removed from the Hugging Face cache: when its revision holds nothing
        else, huggingface_hub's own delete strategy drops the revision; otherwise only this
        model's snapshot links go, and its blobs when no other snapshot uses them.

        Raises:
            LibraryError: there is no such model.
        """
        model = self.get(model_id)
        if model.source == "imported":
            for part in model.paths:
                Path(part).unlink(missing_ok=True)
            return model.size
        return self._remove_from_cache(model)

    def _remove_from_cache(self, model: InstalledModel) -> int:
        info = self._scan()
        if info is None:
            return 0
        names = {Path(p).name for p in model.paths}
        freed = 0
        for repo in info.repos:
            if repo.repo_id != model.repo or repo.repo_type != "model":
                continue
            # Blobs referenced by files that stay.
            for revision in repo.revisions:
                ours = [f for f in revision.files if f.file_name in names]
                if not ours:
                    continue
                if len(ours) == len(revision.files):
                    strategy = info.delete_revisions(revision.commit_hash)
                    freed += strategy.expected_freed_size
                    strategy.execute()
                    continue
                kept_blobs = {
                    f.blob_path
                    for other in repo.revisions
                    for f in other.files
                    if not (other is revision and f.file_name in names)
                }
                for cached in ours:
                    cached.file_path.unlink(missing_ok=True)
                    if cached.blob_path not in kept_blobs and cached.blob_path.exists():
                        freed += cached.size_on_disk
                        cached.blob_path.unlink()
        return freed


def _parts_of(name: str, files: Mapping[str, object]) -> list[str] | None:
    """The part names of the model whose file is ``name``; None when ``name`` is not a part 1.

    Parts that are missing (a download in progress) are left out.
    """
    split = parse_split_name(name)
    if split is None:
        return [name]
    if split.number != 1:
        return None
    return [p for p in (split.part(n) for n in range(1, split.count + 1)) if p in files]


def _copy_atomically(
    source: Path,
    target: Path,
    *,
    copied: int,
    total: int,
    on_progress: Callable[[int, int], None] | None,
    cancel: threading.Event | None,
) -> int:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            while block := src.read(_COPY_BLOCK):
                if cancel is not None and cancel.is_set():
                    raise DownloadInterruptedError(f"the import of {source.name} was stopped")
                out.write(block)
                copied += len(block)
                if on_progress is not None:
                    on_progress(copied, total)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return copied
