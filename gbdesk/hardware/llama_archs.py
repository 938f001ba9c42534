"""Which model architectures the installed llama.cpp can load, told without loading it.

llama.cpp keeps the names of the architectures it knows (``general.architecture`` values:
``llama``, ``qwen3``, ``gemma3``...) in one table, ``LLM_ARCH_NAMES``, which the compiler lays out
as consecutive strings in ``libllama``'s read-only data, starting ``unknown``, ``clip``,
``llama``. The linker may fold a name into the tail of a longer string (``qwen2`` inside
``rwkv6qwen2``); such a name still has its model class, whose type name
(``llama_model_qwen2``) is in the library too. A name found neither way is an architecture
this build cannot load.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path

_TABLE_START = b"unknown\0clip\0llama\0"
_NAME = re.compile(rb"[a-z0-9][a-z0-9_.-]*")


def architecture_names(library_bytes: bytes) -> frozenset[str]:
    """The architecture table's names from ``libllama``'s bytes (empty if there is none)."""
    start = library_bytes.find(_TABLE_START)
    if start < 0:
        return frozenset()
    names: list[str] = []
    pos = start
    while True:
        end = library_bytes.find(b"\0", pos)
        if end < 0 or not _NAME.fullmatch(library_bytes[pos:end]):
            break
        names.append(library_bytes[pos:end].decode())
        pos = end + 1
    return frozenset(names) - {"unknown"}


def _libllama(package_dir: Path) -> Path | None:
    for folder in (package_dir / "lib", package_dir):
        for pattern in ("libllama.so", "libllama.dylib", "llama.dll", "libllama.so.*"):
            found = sorted(folder.glob(pattern))
            if found:
                return found[0].resolve()
    return None


class LlamaArchitectures:
    """The architectures one ``libllama`` build knows."""

    def __init__(self, library_bytes: bytes) -> None:
        self._bytes = library_bytes
        self.table = architecture_names(library_bytes)

    def can_load(self, architecture: str) -> bool:
        """True when this build knows ``architecture`` (``general.architecture``)."""
        if not architecture:
            return False
        if architecture in self.table:
            return True
        class_name = b"llama_model_" + architecture.replace("-", "_").replace(".", "_").encode()
        return class_name + b"\0" in self._bytes


@lru_cache(maxsize=1)
def installed_architectures() -> LlamaArchitectures | None:
    """What the installed llama-cpp-python's ``libllama`` knows; None when it is not installed
    or its library has no architecture table (then nothing can be said either way)."""
    spec = importlib.util.find_spec("llama_cpp")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    library = _libllama(Path(next(iter(spec.submodule_search_locations))))
    if library is None:
        return None
    archs = LlamaArchitectures(library.read_bytes())
    return archs if archs.table else None
