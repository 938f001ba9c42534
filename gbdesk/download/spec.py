"""What to download: a repo and file names, parsed from ``repo/file`` or a catalogue id."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gbdesk.errors import UsageError
from gbdesk.gguf.split import parse_split_name
from gbdesk.options import DEFAULT_QUANT, parse_model_ref

_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")


@dataclass(frozen=True)
class DownloadSpec:
    """One model to download: every part of a split GGUF is listed in ``filenames``."""

    repo: str
    filenames: tuple[str, ...]
    revision: str = "main"

    @property
    def label(self) -> str:
        """``repo/first-file`` (what the CLI and the GUI show)."""
        return f"{self.repo}/{self.filenames[0]}"

    def to_json(self) -> dict[str, object]:
        return {"repo": self.repo, "filenames": list(self.filenames), "revision": self.revision}


def with_split_parts(repo: str, filename: str, revision: str = "main") -> DownloadSpec:
    """A spec for ``filename``; a split part name (``-00001-of-00003.gguf``) brings every part."""
    split = parse_split_name(filename)
    if split is None:
        return DownloadSpec(repo, (filename,), revision)
    parts = tuple(split.part(number) for number in range(1, split.count + 1))
    return DownloadSpec(repo, parts, revision)


def parse_spec(text: str, *, revision: str = "main") -> DownloadSpec:
    """Parse ``owner/repo/file.gguf`` (the file may sit in a folder of the repo).

    Raises:
        UsageError: the text is not ``owner/repo/file``.
    """
    parts = text.strip().strip("/").split("/")
    if len(parts) < 3 or not all(_REPO_PART.match(p) for p in parts[:2]) or not parts[-1]:
        raise UsageError(
            f"{text!r} is not a model to download",
            fix="give OWNER/REPO/FILE, e.g. "
            "bartowski/Llama-3.2-3B-Instruct-GGUF/Llama-3.2-3B-Instruct-Q4_K_M.gguf, "
            "or a catalogue id such as llama-3.2-3b:Q4_K_M",
        )
    return with_split_parts("/".join(parts[:2]), "/".join(parts[2:]), revision)


def resolve_spec(text: str, *, revision: str = "main") -> DownloadSpec:
    """``owner/repo/file.gguf``, or a catalogue id with an optional quant (``id[:QUANT]``).

    Without a quant: Q4_K_M (the usual balance of size and quality), or the only quant listed.

    Raises:
        UsageError: the text is neither form, or the quant is not in the catalogue.
        ConfigError: the catalogue cannot be read (CatalogError) or has no such id.
    """
    if text.count("/") >= 2:
        return parse_spec(text, revision=revision)
    if "/" in text:
        parse_spec(text)  # raises the usage message for "owner/repo" without a file
    from gbdesk.catalog.loader import load_catalog

    ref = parse_model_ref(text)
    quant_name = ref.quant
    entry = load_catalog().require(ref.id)
    wanted = quant_name or DEFAULT_QUANT
    if not quant_name and entry.quant(DEFAULT_QUANT) is None and len(entry.quants) == 1:
        wanted = entry.quants[0].name  # the only quant the catalogue lists
    quant = entry.quant(wanted)
    if quant is None:
        names = ", ".join(q.name for q in entry.quants)
        raise UsageError(
            f"{entry.id} has no quant {wanted!r} in the catalogue",
            fix=f"use {entry.id}:<QUANT> with one of: {names}",
        )
    return DownloadSpec(entry.repo, tuple(quant.files), revision)
