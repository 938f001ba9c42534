"""Write files so that a reader, or a crash, never sees half of one.

The data goes to a temporary file in the target's folder, is flushed to disk, then replaces
the target in one ``os.replace``. On any failure the temporary file is removed and the old
target stays as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data``, creating its folder if needed.

    Args:
        mode: the file's permission bits (e.g. 0o600 for secrets); the umask's default if None.

    Raises:
        OSError: the folder cannot be created or written (disk full, permissions).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value: Any, *, indent: int = 2, mode: int | None = None) -> None:
    """Replace ``path`` with ``value`` as UTF-8 JSON and a final newline.

    Raises:
        OSError: as :func:`write_bytes_atomic`.
        TypeError: ``value`` is not JSON-serialisable (nothing is written).
    """
    text = json.dumps(value, indent=indent, sort_keys=False, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"), mode=mode)
