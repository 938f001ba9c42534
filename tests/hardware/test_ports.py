"""A port kept in a configuration must still be free next time: never one from the system's
ephemeral range (where ``bind(0)`` and every outgoing connection take ports)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from gbdesk.errors import GbdeskError
from gbdesk.hardware import ports
from gbdesk.hardware.ports import ephemeral_range, lasting_free_port, port_is_free


def test_the_ephemeral_range_is_the_systems() -> None:
    low, high = ephemeral_range()
    if sys.platform.startswith("linux"):
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        assert (low, high) == (int(text[0]), int(text[1]))
    assert 1024 < low <= high <= 65535
    with socket.socket() as sock:  # what the system picks lies in it
        sock.bind(("127.0.0.1", 0))
        assert low <= sock.getsockname()[1] <= high


def test_a_lasting_port_skips_taken_avoided_and_ephemeral_ports() -> None:
    low, high = ephemeral_range()
    with socket.socket() as taken:
        start = lasting_free_port("127.0.0.1", 20000)
        taken.bind(("127.0.0.1", start))
        taken.listen()
        assert not port_is_free("127.0.0.1", start)
        chosen = lasting_free_port("127.0.0.1", start, avoid={start + 1})
        assert chosen not in {start, start + 1}
        assert chosen > start and port_is_free("127.0.0.1", chosen)
    # Starting inside the ephemeral range moves past it (or wraps below it).
    inside = lasting_free_port("127.0.0.1", low)
    assert not low <= inside <= high and port_is_free("127.0.0.1", inside)


def test_no_port_left_is_a_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "port_is_free", lambda host, port: False)
    with pytest.raises(GbdeskError) as caught:
        lasting_free_port("127.0.0.1", 8081)
    assert caught.value.message == "no free network port on 127.0.0.1"
    assert caught.value.fix


def test_a_broken_range_file_falls_back_to_linuxs_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    for text in ("junk", "60999 32768", ""):
        bad = tmp_path / "range"
        bad.write_text(text)
        monkeypatch.setattr(ports, "_LINUX_RANGE_FILE", bad)
        assert ephemeral_range() == (32768, 60999)
