"""SHA-256 of files: incremental while downloading, or of a whole file with progress."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

from gbdesk.download.errors import DownloadInterruptedError

_BLOCK = 4 * 1024 * 1024


def sha256_file(
    path: Path,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    digest: hashlib._Hash | None = None,
) -> str:
    """The hex SHA-256 of ``path``. Reports ``(bytes_done, total)``; stops when ``cancel`` is set.

    Call it on a worker thread for large files. ``digest`` continues an existing hash object
    (it is updated in place), which is how a resumed download hashes the bytes it already has.

    Raises:
        DownloadInterruptedError: ``cancel`` was set.
        OSError: the file cannot be read.
    """
    digest = digest if digest is not None else hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            if cancel is not None and cancel.is_set():
                raise DownloadInterruptedError(f"hashing {path.name} was stopped")
            digest.update(block)  # releases the GIL: other threads keep running
            done += len(block)
            if on_progress is not None:
                on_progress(done, total)
    return digest.hexdigest()


def is_sha256(value: str | None) -> bool:
    """True for a 64-digit hex string (the Hub's LFS etag; plain git files have a sha1)."""
    return value is not None and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
