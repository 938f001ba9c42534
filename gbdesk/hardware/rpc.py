"""llama.cpp's RPC workers: their addresses, a probe over the RPC protocol, the worker record.

A *worker* is llama.cpp's RPC server (``ggml_backend_rpc_start_server``) run by ``gbdesk worker``
on a machine; a backend started with ``gbdesk serve --rpc HOST:PORT,...`` places layers and
their KV cache on the workers' devices. This module is the part every layer may need:

- :func:`parse_workers` turns ``"host:port,host:port"`` into checked :class:`WorkerAddress`
  values (junk, duplicates and IPv6, which llama.cpp's endpoint parser cannot read, are a
  :class:`WorkerError`);
- :func:`probe_worker` asks a worker, over the RPC protocol itself, for its protocol version
  and each device's free and total memory. llama.cpp's own client *aborts the process* when a
  worker is unreachable or speaks another version, so gbdesk asks first, with a timeout, and
  turns every failure into one sentence naming the worker;
- :func:`read_worker_record` / :func:`write_worker_record`: the running worker of this machine,
  which the shard heartbeat reports to the fleet.

The protocol (ggml-rpc.cpp): a request is ``cmd (u8) | size (u64) | data``, a response
``size (u64) | data``. A connection starts with HELLO; a server serves one client at a time, so
a worker busy with a backend does not answer a probe until that backend lets go.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import socket
import struct
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gbdesk.errors import ExitCode, GbdeskError, os_error_words
from gbdesk.hardware.address import is_loopback
from gbdesk.options import option

DEFAULT_WORKER_PORT: int = option("worker_port").default
# ggml-rpc.h's RPC_PROTO_*_VERSION in the llama.cpp that llama-cpp-python ~=0.3.36 vendors.
# tests/backend/test_worker.py checks that a worker started from this install answers it.
PROTOCOL_VERSION = (7, 0, 0)
PROBE_TIMEOUT_S = 5.0

_CMD_GET_DEVICE_MEMORY = 11
_CMD_HELLO = 14
_CMD_DEVICE_COUNT = 15
_CONN_CAPS_SIZE = 24  # transport.h's RPC_CONN_CAPS_SIZE; all zero: plain TCP
_MAX_DEVICES = 64  # a sanity bound on what a worker may claim
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?\Z")


class WorkerError(GbdeskError):
    """An RPC worker address is invalid, or the worker cannot be used."""

    exit_code = ExitCode.WORKER


@dataclass(frozen=True, order=True)
class WorkerAddress:
    """Where a worker listens: ``host:port`` as llama.cpp's ``--rpc`` takes it."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """Whether the worker runs on this machine's loopback."""
        return is_loopback(self.host)


@dataclass(frozen=True)
class DeviceMemory:
    """One device of a worker: bytes free and in all (what llama.cpp splits layers by)."""

    free: int
    total: int


@dataclass(frozen=True)
class WorkerStatus:
    """What a worker answered: its protocol version and its devices."""

    address: WorkerAddress
    version: tuple[int, int, int]
    devices: tuple[DeviceMemory, ...]

    @property
    def free_bytes(self) -> int:
        return sum(device.free for device in self.devices)

    @property
    def total_bytes(self) -> int:
        return sum(device.total for device in self.devices)


def parse_worker(text: str) -> WorkerAddress:
    """One ``HOST:PORT``.

    Raises:
        WorkerError: not a host and a port llama.cpp can connect to.
    """
    spec = text.strip()
    fix = "write each worker as HOST:PORT, e.g. 192.168.1.20:50052"
    if spec.startswith("[") or spec.count(":") > 1:
        raise WorkerError(
            f"the worker address {spec!r} is an IPv6 address, which llama.cpp's RPC cannot use",
            fix="use the worker's IPv4 address or host name",
        )
    host, sep, port_text = spec.rpartition(":")
    if not sep or not host:
        raise WorkerError(f"the worker address {spec!r} has no port", fix=fix)
    if not _HOST_RE.match(host):
        raise WorkerError(f"the worker address {spec!r} does not start with a host name", fix=fix)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise WorkerError(
            f"the worker address {spec!r} has no valid port (1 to 65535)",
            fix=f"{fix}; gbdesk worker listens on {DEFAULT_WORKER_PORT} by default",
        )
    return WorkerAddress(host.lower(), int(port_text))


def parse_workers(text: str) -> tuple[WorkerAddress, ...]:
    """``"HOST:PORT,HOST:PORT"`` (empty: no workers), each once.

    Raises:
        WorkerError: an address is invalid, or names the same worker twice.
    """
    addresses: list[WorkerAddress] = []
    seen: dict[tuple[str, int], str] = {}
    for part in text.split(","):
        if not part.strip():
            if text.strip():
                raise WorkerError(
                    f"the worker list {text!r} has an empty entry",
                    fix="separate workers with single commas: HOST:PORT,HOST:PORT",
                )
            continue
        address = parse_worker(part)
        key = (_canonical_host(address.host), address.port)
        if key in seen:
            raise WorkerError(
                f"the worker {address} is listed twice ({seen[key]} is the same worker)",
                fix="list each worker once",
            )
        seen[key] = str(address)
        addresses.append(address)
    if len(addresses) > 16:  # ggml-rpc.h's GGML_RPC_MAX_SERVERS
        raise WorkerError(
            f"{len(addresses)} workers are listed; llama.cpp's RPC takes at most 16",
            fix="list at most 16 workers",
        )
    return tuple(addresses)


def _canonical_host(host: str) -> str:
    """``localhost`` and 127.x are one machine; names are compared as written."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    return "127.0.0.1" if address.is_loopback else str(address)


def format_workers(addresses: tuple[WorkerAddress, ...] | list[WorkerAddress]) -> str:
    """The ``--rpc`` text for ``addresses``."""
    return ",".join(str(address) for address in addresses)


def probe_worker(address: WorkerAddress, *, timeout_s: float = PROBE_TIMEOUT_S) -> WorkerStatus:
    """Ask a worker its protocol version and its devices' memory, over the RPC protocol.

    Raises:
        WorkerError: the worker cannot be reached, is busy with another backend, is not a
            llama.cpp RPC server, or speaks a protocol version this llama.cpp cannot use.
    """
    try:
        infos = socket.getaddrinfo(address.host, address.port, socket.AF_INET, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WorkerError(
            f"the worker {address}: no computer is called {address.host!r}",
            fix="check the worker's address (its IP address always works)",
        ) from None
    deadline = time.monotonic() + timeout_s
    try:
        host, port = str(infos[0][4][0]), int(infos[0][4][1])
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reply = _request(sock, _CMD_HELLO, bytes(_CONN_CAPS_SIZE), deadline, address)
            if len(reply) != 4 + _CONN_CAPS_SIZE:
                raise _not_a_worker(address)
            version = (reply[0], reply[1], reply[2])
            _check_version(address, version)
            count_reply = _request(sock, _CMD_DEVICE_COUNT, b"", deadline, address)
            (count,) = struct.unpack("<I", count_reply)
            if not 0 < count <= _MAX_DEVICES:
                raise _not_a_worker(address)
            devices = []
            for index in range(count):
                memory = _request(
                    sock, _CMD_GET_DEVICE_MEMORY, struct.pack("<I", index), deadline, address
                )
                if len(memory) != 16:
                    raise _not_a_worker(address)
                free, total = struct.unpack("<QQ", memory)
                devices.append(DeviceMemory(free=min(free, total), total=total))
    except ConnectionRefusedError:
        raise WorkerError(
            f"the worker {address} is not running (nothing listens on port {address.port})",
            fix=f"start `gbdesk worker --port {address.port}` on {address.host}, or check the port",
        ) from None
    except TimeoutError:
        raise WorkerError(
            f"the worker {address} did not answer within {timeout_s:g} s",
            fix="it may be serving another backend (a worker serves one at a time), or a"
            " firewall blocks the port: stop the other backend or open the port",
        ) from None
    except OSError as exc:
        raise WorkerError(
            f"the worker {address} cannot be reached ({os_error_words(exc)})",
            fix="check that the worker's computer is on and on this network",
        ) from None
    return WorkerStatus(address=address, version=version, devices=tuple(devices))


def round_trip_s(address: WorkerAddress, *, tries: int = 3) -> float:
    """The fastest of a few TCP connects to the worker: one round trip on its network (0 when
    it cannot be reached)."""
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        try:
            with socket.create_connection((address.host, address.port), timeout=2):
                best = min(best, time.perf_counter() - start)
        except OSError:
            break
    return best if best != float("inf") else 0.0


def unreachable_workers(
    addresses: tuple[WorkerAddress, ...], *, timeout_s: float = 1.0
) -> list[WorkerAddress]:
    """The workers nothing answers on now (a TCP connect only: a busy worker still accepts)."""
    lost = []
    for address in addresses:
        try:
            with socket.create_connection((address.host, address.port), timeout=timeout_s):
                pass
        except OSError:
            lost.append(address)
    return lost


def lost_worker_message(addresses: tuple[WorkerAddress, ...], fault: str) -> str:
    """One sentence for a fault of llama.cpp's RPC client, naming the worker that went away."""
    lost = unreachable_workers(addresses)
    for _ in range(10):  # a worker that just died may still hold its port for a moment
        if lost:
            break
        time.sleep(0.2)
        lost = unreachable_workers(addresses)
    if len(lost) == 1:
        which = f"the worker {lost[0]}"
    elif lost:
        which = "the workers " + ", ".join(map(str, lost))
    else:
        which = "one of the workers " + ", ".join(map(str, addresses))
    return (
        f"{which} stopped answering ({fault.rstrip('.')}); start `gbdesk worker` there"
        " again, then restart the backend"
    )


def _request(
    sock: socket.socket, cmd: int, payload: bytes, deadline: float, address: WorkerAddress
) -> bytes:
    """One request and its response (a size-prefixed body)."""
    sock.settimeout(max(0.05, deadline - time.monotonic()))
    sock.sendall(struct.pack("<BQ", cmd, len(payload)) + payload)
    header = _receive(sock, 8, address)
    (size,) = struct.unpack("<Q", header)
    if size > 1024:  # every answer gbdesk asks for is a few bytes
        raise _not_a_worker(address)
    return _receive(sock, size, address)


def _receive(sock: socket.socket, size: int, address: WorkerAddress) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise WorkerError(
                f"the worker {address} closed the connection during the handshake",
                fix="it may run another llama.cpp version: install the same gbdesk (and"
                " llama-cpp-python) version on every machine",
            )
        data.extend(chunk)
    return bytes(data)


def _check_version(address: WorkerAddress, version: tuple[int, int, int]) -> None:
    """llama.cpp's own rule: the same major version, a minor version no newer than ours."""
    if version[0] != PROTOCOL_VERSION[0] or version[1] > PROTOCOL_VERSION[1]:
        theirs = ".".join(map(str, version))
        ours = ".".join(map(str, PROTOCOL_VERSION))
        raise WorkerError(
            f"the worker {address} speaks RPC protocol {theirs}, this llama.cpp speaks {ours}",
            fix="install the same gbdesk (and llama-cpp-python) version on every machine",
            details={"worker": str(address), "version": theirs},
        )


def _not_a_worker(address: WorkerAddress) -> WorkerError:
    return WorkerError(
        f"{address} answered, but not as a llama.cpp RPC worker",
        fix="check the port: `gbdesk worker` listens on 50052 unless told otherwise",
    )


# ---------------------------------------------------------------- this machine's worker


@dataclass(frozen=True)
class WorkerRecord:
    """The worker running on this machine, as ``gbdesk worker`` writes it down."""

    pid: int
    host: str
    port: int
    memory_limit_bytes: int | None
    started_at: float


def worker_record_path(data_dir: Path) -> Path:
    return data_dir / "worker.json"


def write_worker_record(data_dir: Path, record: WorkerRecord) -> None:
    """Write the record atomically (a reader never sees half of it)."""
    from gbdesk.atomic import write_json_atomic

    data_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(worker_record_path(data_dir), asdict(record))


def remove_worker_record(data_dir: Path, pid: int) -> None:
    """Remove the record if it is still ``pid``'s."""
    record = read_worker_record(data_dir, check_alive=False)
    if record is not None and record.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            worker_record_path(data_dir).unlink()


def read_worker_record(data_dir: Path, *, check_alive: bool = True) -> WorkerRecord | None:
    """This machine's running worker, or None (no record, a damaged one, or its process ended)."""
    try:
        data = json.loads(worker_record_path(data_dir).read_text(encoding="utf-8"))
        limit = data.get("memory_limit_bytes")
        record = WorkerRecord(
            pid=int(data["pid"]),
            host=str(data["host"]),
            port=int(data["port"]),
            memory_limit_bytes=int(limit) if limit is not None else None,
            started_at=float(data["started_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if check_alive and not _process_alive(record.pid):
        return None
    return record


def _process_alive(pid: int) -> bool:
    try:
        import psutil

        return bool(psutil.pid_exists(pid)) and psutil.Process(pid).status() != "zombie"
    except Exception:  # psutil.NoSuchProcess between the two calls, or no permission
        return False


def worker_memory(limit_bytes: int | None) -> DeviceMemory:
    """What a CPU worker offers: the memory available now, capped at ``limit_bytes``.

    llama.cpp's CPU device reports all physical memory as free; a worker that says so invites
    a backend to put more on it than it can hold, so gbdesk's worker answers this instead.
    """
    import psutil

    memory = psutil.virtual_memory()
    total = min(int(memory.total), limit_bytes) if limit_bytes else int(memory.total)
    return DeviceMemory(free=min(int(memory.available), total), total=total)
