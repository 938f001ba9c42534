"""`gbdesk catalog refresh`: list a Hub repo's GGUF files and read their headers over HTTP.

Only headers are read (``read_remote_gguf`` uses Range requests: a few MB per file, never the
whole file). The file sizes come from the Hub listing, the architecture figures from part 1's
key-values; the refreshed entries are written to the user catalogue file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gbdesk.catalog.hub_search import quant_name
from gbdesk.catalog.loader import Catalog, CatalogError, write_user_entries
from gbdesk.catalog.model import CatalogEntry
from gbdesk.fit.layout import architecture_from_gguf


@dataclass(frozen=True)
class Change:
    model_id: str
    what: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.model_id}: {self.what}: {self.old} -> {self.new}"


def _quant_files(listing: dict[str, int]) -> dict[str, list[str]]:
    """GGUF files grouped by quantization name; split parts in order."""
    groups: dict[str, list[str]] = {}
    for path in sorted(listing):
        name = quant_name(path)
        if name:
            groups.setdefault(name, []).append(path)
    return groups


def refresh_entry(
    entry: CatalogEntry,
    *,
    endpoint: str,
    token: str | None = None,
    report: Callable[[str], None] = lambda _: None,
) -> tuple[dict[str, Any], list[Change]]:
    """The entry with sizes and figures from the Hub, and what changed.

    Raises:
        CatalogError: the Hub cannot be reached or the repo has no GGUF files.
        GGUFError: a file's header is not valid GGUF.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.utils import HfHubHTTPError

    from gbdesk.gguf import read_remote_gguf

    api = HfApi(endpoint=endpoint, token=token)
    try:
        listing: dict[str, int] = {}
        for item in api.list_repo_tree(entry.repo, recursive=True):
            size = getattr(item, "size", None)  # folders have none
            if item.path.endswith(".gguf") and size is not None:
                listing[item.path] = int(size)
    except (HfHubHTTPError, OSError) as exc:
        raise CatalogError(
            f"cannot list {entry.repo} on {endpoint}: {exc}",
            fix="check the network, HF_ENDPOINT or the hub_endpoint setting",
        ) from exc
    groups = _quant_files(listing)
    data = entry.to_json()
    changes: list[Change] = []
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    arch_read = False
    for quant in data["quants"]:
        files = groups.get(quant["name"].upper())
        if not files:
            report(f"{entry.id}:{quant['name']}: not in {entry.repo}")
            continue
        sizes = [listing[f] for f in files]
        if files != quant["files"]:
            changes.append(Change(entry.id, f"{quant['name']} files", quant["files"], files))
        if sum(sizes) != quant["size_bytes"]:
            changes.append(
                Change(entry.id, f"{quant['name']} size", quant["size_bytes"], sum(sizes))
            )
        quant.update(
            files=files,
            size_bytes=sum(sizes),
            size_source="hub",
            files_source="hub",
            part_sizes=sizes,
        )
        if not arch_read:
            url = f"{endpoint}/{entry.repo}/resolve/main/{files[0]}"
            report(f"reading the header of {files[0]}")
            meta = read_remote_gguf(url, headers=headers)
            figures = architecture_from_gguf(meta).to_json()
            for key, value in figures.items():
                if data["architecture"].get(key) != value:
                    changes.append(Change(entry.id, key, data["architecture"].get(key), value))
            data["architecture"] = figures
            data["sources"] = {"default": "gguf-header"}
            arch_read = True
    data.pop("origin", None)
    return data, changes


def refresh_catalog(
    catalog: Catalog,
    repo: str | None = None,
    *,
    report: Callable[[str], None] = print,
) -> list[Change]:
    """Refresh one repo's entry (or every entry) and write the user catalogue file.

    Raises:
        CatalogError: no catalogue entry for ``repo``, or the Hub cannot be reached.
        GGUFError: a header is not valid GGUF.
    """
    from gbdesk.download.hub import find_token, load_hub_config

    if repo:
        entry = catalog.by_repo(repo) or catalog.get(repo)
        if entry is None:
            raise CatalogError(
                f"no catalogue entry for {repo!r}",
                fix="add an entry for it to the user catalogue first (docs/catalog.md)",
            )
        entries = [entry]
    else:
        entries = list(catalog.entries)
    endpoint = load_hub_config().endpoint
    token = find_token()
    refreshed, changes = [], []
    for entry in entries:
        report(f"refreshing {entry.id} from {endpoint}/{entry.repo}")
        data, entry_changes = refresh_entry(entry, endpoint=endpoint, token=token, report=report)
        refreshed.append(data)
        changes.extend(entry_changes)
    write_user_entries(refreshed)
    return changes
