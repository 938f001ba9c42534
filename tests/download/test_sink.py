from __future__ import annotations

import errno
import hashlib
import io

import pytest

from gbdesk.download.sink import HashingWriter


def test_pieces_reach_the_file_and_the_digest_in_order() -> None:
    out, digest = io.BytesIO(), hashlib.sha256()
    pieces = [bytes([i % 256]) * (1000 + i) for i in range(300)]
    with HashingWriter(out, digest) as writer:
        for piece in pieces:
            writer.write(piece)
    assert out.getvalue() == b"".join(pieces)
    assert digest.hexdigest() == hashlib.sha256(b"".join(pieces)).hexdigest()


class _FullDisk(io.BytesIO):
    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() >= 4096:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_a_full_disk_is_raised_to_the_reader_and_the_file_holds_whole_pieces() -> None:
    out, digest = _FullDisk(), hashlib.sha256()
    with pytest.raises(OSError) as caught, HashingWriter(out, digest) as writer:
        for _ in range(10_000):
            writer.write(b"x" * 1024)
    assert caught.value.errno == errno.ENOSPC
    # The digest covers exactly the bytes that reached the file, so a resume stays correct.
    assert digest.hexdigest() == hashlib.sha256(out.getvalue()).hexdigest()
