"""`gbdesk worker`: llama.cpp's RPC server, so that another machine's backend can use this one.

The server is llama.cpp's own (``ggml_backend_rpc_start_server`` from the installed
llama-cpp-python, no second build); gbdesk adds the checks a person needs before it listens
(the port, the address, a build without RPC), makes its devices report the memory really
available (capped by ``--memory``), and writes down that it runs, for the fleet registry.

The RPC protocol has no authentication: whoever reaches the port can use the machine. So the
worker listens on 127.0.0.1 unless ``--host`` says otherwise, and then prints a warning.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gbdesk.backend.errors import PortInUseError
from gbdesk.errors import UsageError
from gbdesk.hardware.rpc import (
    DeviceMemory,
    WorkerAddress,
    WorkerError,
    WorkerRecord,
    parse_worker,
    remove_worker_record,
    write_worker_record,
)
from gbdesk.options import option

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 30.0
EXPOSED_WARNING = (
    "WARNING: the worker listens on {host}, not only on this computer. llama.cpp's RPC"
    " protocol has no password: anyone who can reach {host}:{port} can run work on this"
    " computer and read what it computes. Use it only on a network you trust (a home or office"
    " LAN behind a firewall), never on the internet."
)


@dataclass(frozen=True)
class WorkerOptions:
    """How to run the worker (0 means "choose for this machine")."""

    host: str = option("worker_host").default
    port: int = option("worker_port").default
    memory_mib: int = 0  # 0: what is available
    cache: bool = False  # keep received tensors on disk (llama.cpp's rpc-server --cache)
    threads: int = 0  # 0: the physical cores

    @property
    def address(self) -> WorkerAddress:
        """Raises:
        UsageError: the host or port is not valid."""
        try:
            return parse_worker(f"{self.host}:{self.port}")
        except WorkerError as exc:
            raise UsageError(exc.message, fix=exc.fix) from None

    @property
    def exposed(self) -> bool:
        """Whether other machines can reach the worker."""
        return not self.address.is_loopback


@dataclass(frozen=True)
class WorkerReady:
    """What a started worker offers."""

    address: WorkerAddress
    devices: tuple[tuple[str, DeviceMemory], ...]  # (name, memory) per device


def run_worker(
    options: WorkerOptions,
    data_dir: Path,
    *,
    stop: threading.Event | None = None,
    on_ready: Callable[[WorkerReady], None] | None = None,
) -> int:
    """Run the RPC server until ``stop`` is set. Returns 0.

    Raises:
        UsageError: the options are invalid.
        PortInUseError: the port is taken.
        WorkerError: this llama.cpp has no RPC backend, or the server stopped on its own.
    """
    from gbdesk.backend import ggml_rpc
    from gbdesk.hardware.cpu import physical_cores

    address = options.address
    if options.memory_mib < 0:
        raise UsageError("--memory must be 0 (all available) or a number of MiB")
    _check_port(address)
    limit = options.memory_mib * 1024 * 1024 or None
    devices = ggml_rpc.worker_backend_devices()
    for device in devices:
        ggml_rpc.cap_device_memory(device, limit)
    cache_dir = None
    if options.cache:
        from gbdesk.paths import app_paths

        cache_dir = app_paths().cache_dir / "rpc"
        cache_dir.mkdir(parents=True, exist_ok=True)
    threads = options.threads or physical_cores()
    stop = stop or threading.Event()
    server = threading.Thread(
        target=ggml_rpc.start_server,
        args=(address, devices),
        kwargs={"threads": threads, "cache_dir": cache_dir},
        name="gbdesk-rpc-server",
        daemon=True,  # llama.cpp's accept loop never returns: the process ends it
    )
    server.start()
    _wait_listening(address, server)
    record = WorkerRecord(
        pid=os.getpid(),
        host=address.host,
        port=address.port,
        memory_limit_bytes=limit,
        started_at=time.time(),
    )
    write_worker_record(data_dir, record)
    try:
        offered = tuple(
            (ggml_rpc.device_name(device), DeviceMemory(*ggml_rpc.device_memory(device)))
            for device in devices
        )
        log.info("worker listening on %s with %d threads", address, threads)
        if on_ready is not None:
            on_ready(WorkerReady(address=address, devices=offered))
        while not stop.wait(0.5):
            if not server.is_alive():
                raise WorkerError(
                    f"llama.cpp's RPC server on {address} stopped on its own",
                    fix="the log file has llama.cpp's reason; start the worker again",
                )
    finally:
        remove_worker_record(data_dir, record.pid)
    return 0


def _check_port(address: WorkerAddress) -> None:
    """Raises:
    PortInUseError: something else listens on the port (the fix names a free one).
    UsageError: the host is not an address of this machine."""
    from gbdesk.backend.ports import free_port_near
    from gbdesk.hardware.ports import port_is_free

    if port_is_free(address.host, address.port):
        return
    if not port_is_free(address.host, 0):  # no port at all: the address is not this machine's
        raise UsageError(
            f"{address.host} is not an address of this computer",
            fix="use --host 127.0.0.1 (this computer only) or one of its own addresses",
        )
    suggested = free_port_near(address.host, address.port, avoid={address.port})
    raise PortInUseError(
        f"port {address.port} is already in use on {address.host}",
        fix=f"stop what uses it, or pick another port: --port {suggested}",
        details={"port": address.port, "suggested": suggested},
    )


def _wait_listening(address: WorkerAddress, server: threading.Thread) -> None:
    """Wait until llama.cpp's server accepts connections.

    Raises:
        WorkerError: the server thread ended (it could not listen) or never listened.
    """
    host = "127.0.0.1" if address.host in ("0.0.0.0", "localhost") else address.host
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not server.is_alive():
            raise WorkerError(
                f"llama.cpp's RPC server could not listen on {address}",
                fix="the port may have been taken meanwhile: pick another one with --port",
            )
        try:
            # A connection that says nothing: the server sees it close and accepts the next.
            with socket.create_connection((host, address.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise WorkerError(
        f"llama.cpp's RPC server did not start listening on {address}",
        fix="try again; the log file has llama.cpp's messages",
    )
