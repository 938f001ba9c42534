"""Load the catalogue: the built-in ``models.json`` plus the user's ``catalog.json``.

The user file has the same format. An entry whose id is new is added; an entry whose id exists
is merged into the built-in one: its top-level fields replace the built-in ones, its
``architecture`` and ``sources`` replace figure by figure, and its quants replace the built-in
quant of the same name or are added. ``gbdesk catalog refresh`` writes that file.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from gbdesk.atomic import write_json_atomic
from gbdesk.catalog.model import (
    FIGURE_SOURCES,
    SIZE_SOURCES,
    SWA_PATTERNS,
    Architecture,
    CatalogEntry,
    Quant,
)
from gbdesk.errors import ConfigError
from gbdesk.paths import app_paths

FORMAT_VERSION = 1
USER_FILE_NAME = "catalog.json"


class CatalogError(ConfigError):
    """The catalogue (usually the user's catalog.json) is not valid."""


@dataclass(frozen=True)
class Catalog:
    """All catalogue entries, in file order."""

    entries: tuple[CatalogEntry, ...]

    def get(self, model_id: str) -> CatalogEntry | None:
        for entry in self.entries:
            if entry.id == model_id:
                return entry
        return None

    def require(self, model_id: str) -> CatalogEntry:
        """The entry with this id.

        Raises:
            CatalogError: there is no such entry.
        """
        entry = self.get(model_id)
        if entry is None:
            known = ", ".join(e.id for e in self.entries)
            raise CatalogError(
                f"no model {model_id!r} in the catalogue",
                fix=f"use one of: {known} (see `gbdesk catalog list`)",
            )
        return entry

    def by_repo(self, repo: str) -> CatalogEntry | None:
        for entry in self.entries:
            if entry.repo.lower() == repo.lower():
                return entry
        return None


def user_catalog_path() -> Path:
    """Where the user's catalogue file lives (it may not exist)."""
    return app_paths().config_dir / USER_FILE_NAME


def builtin_catalog_data() -> dict[str, Any]:
    """The built-in catalogue as parsed JSON."""
    text = resources.files("gbdesk.catalog").joinpath("models.json").read_text(encoding="utf-8")
    return json.loads(text)


def load_catalog(user_file: Path | None = None) -> Catalog:
    """The built-in catalogue with the user file merged in.

    Args:
        user_file: the user catalogue; default ``<config dir>/catalog.json`` (absent is fine).

    Raises:
        CatalogError: the user file is not JSON, or an entry is invalid (the message names the
            file, the entry and the field).
    """
    builtin = builtin_catalog_data()
    raw_entries = {m["id"]: (m, "built-in") for m in builtin["models"]}
    path = user_file if user_file is not None else user_catalog_path()
    if path.exists():
        user = read_user_file(path)
        for index, item in enumerate(user["models"]):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise CatalogError(
                    f"{path}: models[{index}] has no string 'id'",
                    fix='give every entry an id, e.g. "id": "my-model"',
                )
            base = raw_entries.get(item["id"])
            merged = merge_entry(base[0], item) if base else item
            raw_entries[item["id"]] = (merged, str(path))
    entries = tuple(parse_entry(data, origin) for data, origin in raw_entries.values())
    return Catalog(entries)


def read_user_file(path: Path) -> dict[str, Any]:
    """Parse the user catalogue file and check its outer shape.

    Raises:
        CatalogError: unreadable, not JSON, or not ``{"format_version": 1, "models": [...]}``.
    """
    fix = f"fix the JSON in {path} (format in docs/catalog.md) or delete it"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"cannot read the user catalogue {path}: {exc}", fix=fix) from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise CatalogError(f"{path} must hold an object with a 'models' list", fix=fix)
    version = data.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise CatalogError(
            f"{path} has format_version {version!r}; this gbdesk reads {FORMAT_VERSION}", fix=fix
        )
    return data


def merge_entry(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A built-in entry with a user entry's fields applied (see the module docstring)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key in {"architecture", "sources", "guide"} and isinstance(value, dict):
            merged.setdefault(key, {}).update(value)
        elif key == "quants" and isinstance(value, list):
            by_name = {q.get("name"): q for q in merged.get("quants", [])}
            for quant in value:
                name = quant.get("name") if isinstance(quant, dict) else None
                by_name[name] = {**by_name.get(name, {}), **quant} if name in by_name else quant
            merged["quants"] = list(by_name.values())
        else:
            merged[key] = value
    return merged


def _fail(origin: str, entry_id: str, what: str) -> CatalogError:
    return CatalogError(
        f"catalogue entry {entry_id!r} ({origin}): {what}",
        fix=f"correct the entry in {origin} (format in docs/catalog.md)"
        if origin != "built-in"
        else "reinstall gbdesk: its built-in catalogue is damaged",
    )


def _int(data: dict[str, Any], key: str, fail: Any, *, minimum: int = 0) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise fail(f"{key!r} must be an integer >= {minimum}, not {value!r}")
    return value


def parse_architecture(data: Any, fail: Any) -> Architecture:
    """Validate and build an :class:`Architecture` from a JSON object."""
    if not isinstance(data, dict):
        raise fail("'architecture' must be an object")
    known = {f.name for f in dataclasses.fields(Architecture)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise fail(f"unknown architecture figure(s) {unknown}; known: {sorted(known)}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Architecture):
        if f.name == "arch":
            if not isinstance(data.get("arch"), str) or not data["arch"]:
                raise fail("'architecture.arch' must name the llama.cpp architecture")
            values["arch"] = data["arch"]
        elif f.name == "swa_layers":
            pattern = data.get("swa_layers", "none")
            if pattern not in SWA_PATTERNS:
                raise fail(f"'swa_layers' must be one of {SWA_PATTERNS}, not {pattern!r}")
            values["swa_layers"] = pattern
        elif f.type in {"bool", bool}:
            value = data.get(f.name, f.default)
            if not isinstance(value, bool):
                raise fail(f"{f.name!r} must be true or false, not {value!r}")
            values[f.name] = value
        else:
            required = f.default is dataclasses.MISSING
            if required and f.name not in data:
                raise fail(f"the architecture lacks {f.name!r}")
            values[f.name] = _int(data, f.name, fail, minimum=1 if required else 0)
    arch = Architecture(**values)
    if arch.n_head % arch.n_head_kv:
        raise fail(f"n_head {arch.n_head} is not a multiple of n_head_kv {arch.n_head_kv}")
    if arch.is_moe and not (0 < arch.n_expert_used <= arch.n_expert and arch.n_ff_expert):
        raise fail("a MoE model needs 0 < n_expert_used <= n_expert and n_ff_expert")
    return arch


def parse_quant(data: Any, fail: Any) -> Quant:
    """Validate and build a :class:`Quant` from a JSON object."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise fail("every quant needs a 'name' string")
    name = data["name"]
    files = data.get("files")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise fail(f"quant {name}: 'files' must be a non-empty list of file names")
    if not all(f.endswith(".gguf") for f in files):
        raise fail(f"quant {name}: every file must end in .gguf")
    size = data.get("size_bytes")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise fail(f"quant {name}: 'size_bytes' must be a positive integer, not {size!r}")
    size_source = data.get("size_source", "estimate")
    if size_source not in SIZE_SOURCES:
        raise fail(f"quant {name}: 'size_source' must be one of {SIZE_SOURCES}")
    part_sizes = data.get("part_sizes", [])
    if not isinstance(part_sizes, list) or (part_sizes and len(part_sizes) != len(files)):
        raise fail(f"quant {name}: 'part_sizes' must list one size per file")
    guide = data.get("guide", {})
    if not isinstance(guide, dict):
        raise fail(f"quant {name}: 'guide' must be an object")
    return Quant(
        name=name,
        files=tuple(files),
        size_bytes=size,
        size_source=size_source,
        files_source=str(data.get("files_source", "hub")),
        part_sizes=tuple(int(p) for p in part_sizes),
        guide=guide,
    )


def parse_entry(data: dict[str, Any], origin: str) -> CatalogEntry:
    """Validate one catalogue entry.

    Raises:
        CatalogError: a field is missing or has the wrong type or value.
    """
    entry_id = str(data.get("id", "?"))

    def fail(what: str) -> CatalogError:
        return _fail(origin, entry_id, what)

    for key in ("name", "repo"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise fail(f"{key!r} must be a non-empty string")
    if data["repo"].count("/") != 1:
        raise fail(f"'repo' must be a Hub repo id 'owner/name', not {data['repo']!r}")
    use_cases = data.get("use_cases", [])
    if not isinstance(use_cases, list) or not all(isinstance(u, str) for u in use_cases):
        raise fail("'use_cases' must be a list of strings")
    sources = data.get("sources", {"default": "estimate"})
    if not isinstance(sources, dict) or any(v not in FIGURE_SOURCES for v in sources.values()):
        raise fail(f"'sources' values must be one of {FIGURE_SOURCES}")
    quants = data.get("quants")
    if not isinstance(quants, list) or not quants:
        raise fail("'quants' must be a non-empty list")
    if not isinstance(data.get("gated", False), bool):
        raise fail("'gated' must be true or false")
    return CatalogEntry(
        id=entry_id,
        name=data["name"],
        repo=data["repo"],
        licence=str(data.get("licence", "unknown")),
        gated=data.get("gated", False),
        quality_tier=_int(data, "quality_tier", fail),
        use_cases=tuple(use_cases),
        summary=str(data.get("summary", "")),
        architecture=parse_architecture(data.get("architecture"), fail),
        sources=dict(sources),
        quants=tuple(parse_quant(q, fail) for q in quants),
        guide=dict(data.get("guide", {})),
        origin=origin,
    )


def write_user_entries(entries: list[dict[str, Any]], path: Path | None = None) -> Path:
    """Add or replace entries (by id) in the user catalogue file, atomically.

    Raises:
        CatalogError: the existing user file is invalid.
        OSError: the config folder cannot be written.
    """
    path = path if path is not None else user_catalog_path()
    existing: list[dict[str, Any]] = read_user_file(path)["models"] if path.exists() else []
    by_id = {m["id"]: m for m in existing}
    for entry in entries:
        by_id[entry["id"]] = entry
    document = {"format_version": FORMAT_VERSION, "models": list(by_id.values())}
    write_json_atomic(path, document, indent=1)
    return path
