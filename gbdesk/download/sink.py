"""Write and hash received bytes on a second thread, so reading the network never waits.

On a fast link the three jobs of a download (parsing the HTTP stream, writing the file,
SHA-256) each take a similar share of a core. The file write and ``hashlib`` release the GIL,
so running them on their own thread overlaps them with the next network read. The order of
the pieces is kept, so the file and the running digest always describe the same bytes.
"""

from __future__ import annotations

import queue
import threading
from typing import BinaryIO

# About 8 MiB of 64 KiB pieces in flight at most: enough to ride out a slow disk write,
# small enough that a cancel leaves little unwritten work.
_MAX_PIECES = 128
_END = b""


class HashingWriter:
    """``write(piece)`` queues a piece; :meth:`close` waits until all of them are on disk.

    Use it as a context manager around the read loop. An error of the writing thread (disk
    full, I/O error) is raised by the next :meth:`write` or by :meth:`close`.
    """

    def __init__(self, out: BinaryIO, digest: object) -> None:
        self._out = out
        self._digest = digest
        self._pieces: queue.Queue[bytes] = queue.Queue(maxsize=_MAX_PIECES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="gbdesk-download-writer")
        self._thread.start()

    def _drain(self) -> None:
        while (piece := self._pieces.get()) is not _END:
            if self._error is not None:
                continue  # keep emptying the queue so the reader never blocks
            try:
                self._out.write(piece)
                self._digest.update(piece)  # type: ignore[attr-defined]
            except BaseException as exc:  # handed to the reading thread
                self._error = exc

    def write(self, piece: bytes) -> None:
        """Queue ``piece`` (it must not be empty).

        Raises:
            OSError: the writing thread failed on an earlier piece.
        """
        if self._error is not None:
            raise self._error
        self._pieces.put(piece)

    def close(self) -> None:
        """Wait until every queued piece is written and hashed.

        Raises:
            OSError: writing a piece failed.
        """
        if self._thread.is_alive():
            self._pieces.put(_END)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # On an exception in the read loop the pieces received so far still reach the disk,
        # so a resume continues exactly where the file ends.
        self.close()
