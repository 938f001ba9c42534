"""llama.cpp's RPC engine, reached through the ggml library llama-cpp-python ships.

llama-cpp-python has no Python API for RPC, but its ggml library carries the RPC backend when
it was built with ``-DGGML_RPC=ON``; ggml's backend registry hands out the two entry points
llama.cpp's own tools use (``ggml_backend_rpc_add_server``, ``ggml_backend_rpc_start_server``).
gbdesk calls exactly those: the worker is llama.cpp's RPC server, the split is llama.cpp's.

Two things gbdesk adds around them, each because llama.cpp's default is wrong for a desktop:

- **Faults.** llama.cpp's RPC client aborts the whole process when a worker stops answering
  (``GGML_ABORT``). :func:`install_fault_guard` installs ggml's abort callback: the thread that
  hit the fault is parked instead of killing the process, and the listeners (the engine) fail
  the requests in flight with one sentence, so the server keeps answering ``/health``.
- **Memory.** The CPU device reports all physical memory as free; a worker that says so invites
  a backend to put more on it than it holds. :func:`cap_device_memory` makes the worker's
  devices report what is available now, capped at ``gbdesk worker --memory``.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from gbdesk.errors import GbdeskError
from gbdesk.hardware.rpc import WorkerAddress, WorkerError, worker_memory

log = logging.getLogger(__name__)
T = TypeVar("T")

_DEVICE_TYPE_GPU = 1  # ggml_backend_dev_type: CPU 0, GPU 1, IGPU 2, ACCEL 3, META 4
_GET_MEMORY_SLOT = 2  # ggml_backend_device_i: get_name, get_description, get_memory, ...

_GET_MEMORY = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)
)
_GET_NAME = ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.c_void_p)
_ABORT_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
_ADD_SERVER = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)
_START_SERVER = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p
)

_lock = threading.Lock()
_library: list[ctypes.CDLL] = []  # the one library, once its prototypes are declared
_keep_alive: list[object] = []  # ctypes callbacks C holds pointers to


def _ggml() -> ctypes.CDLL:
    """The ggml library llama-cpp-python loaded (with its prototypes declared once)."""
    with _lock:
        if not _library:
            from llama_cpp._ggml import libggml

            lib = libggml
            lib.ggml_backend_reg_by_name.argtypes = [ctypes.c_char_p]
            lib.ggml_backend_reg_by_name.restype = ctypes.c_void_p
            lib.ggml_backend_reg_get_proc_address.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.ggml_backend_reg_get_proc_address.restype = ctypes.c_void_p
            lib.ggml_backend_reg_dev_count.argtypes = [ctypes.c_void_p]
            lib.ggml_backend_reg_dev_count.restype = ctypes.c_size_t
            lib.ggml_backend_reg_dev_get.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            lib.ggml_backend_reg_dev_get.restype = ctypes.c_void_p
            lib.ggml_backend_dev_count.argtypes = []
            lib.ggml_backend_dev_count.restype = ctypes.c_size_t
            lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
            lib.ggml_backend_dev_get.restype = ctypes.c_void_p
            lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
            lib.ggml_backend_dev_type.restype = ctypes.c_int
            lib.ggml_backend_dev_name.argtypes = [ctypes.c_void_p]
            lib.ggml_backend_dev_name.restype = ctypes.c_char_p
            lib.ggml_backend_dev_memory.argtypes = [
                ctypes.c_void_p,
                ctypes.POINTER(ctypes.c_size_t),
                ctypes.POINTER(ctypes.c_size_t),
            ]
            lib.ggml_backend_dev_memory.restype = None
            lib.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
            lib.ggml_backend_dev_by_type.restype = ctypes.c_void_p
            lib.ggml_set_abort_callback.argtypes = [_ABORT_CALLBACK]
            lib.ggml_set_abort_callback.restype = ctypes.c_void_p
            _library.append(lib)
        return _library[0]


def _rpc_proc(name: str) -> int:
    """The address of an RPC entry point from ggml's registry.

    Raises:
        WorkerError: this llama-cpp-python was built without the RPC backend.
    """
    lib = _ggml()
    reg = lib.ggml_backend_reg_by_name(b"RPC")
    proc = lib.ggml_backend_reg_get_proc_address(reg, name.encode()) if reg else None
    if not proc:
        raise WorkerError(
            "this llama-cpp-python was built without llama.cpp's RPC backend",
            fix="run scripts/setup.sh again (it builds llama-cpp-python with -DGGML_RPC=ON),"
            ' or reinstall it with CMAKE_ARGS="-DGGML_RPC=ON" and pip\'s --no-cache-dir',
        )
    return int(proc)


def rpc_available() -> bool:
    """Whether the installed llama.cpp can run workers and use them."""
    try:
        _rpc_proc("ggml_backend_rpc_add_server")
    except (WorkerError, OSError, AttributeError):
        return False
    return True


# ---------------------------------------------------------------- faults


class _FaultGuard:
    """ggml's abort callback: remember the fault, tell the listeners, park the thread."""

    def __init__(self) -> None:
        self.message: str | None = None
        self.event = threading.Event()
        self.listeners: list[Callable[[str], None]] = []
        self._park = threading.Event()  # never set: a parked thread waits on it for good

    def __call__(self, raw: bytes | None) -> None:
        text = (raw or b"").decode("utf-8", errors="replace").strip()
        # "ggml-rpc.cpp:35: Remote RPC server crashed..." -> the part after the location
        message = text.split(": ", 1)[1] if ": " in text else text
        log.error("llama.cpp stopped on a fault: %s", message)
        first = self.message is None
        if first:
            self.message = message
            self.event.set()
            for listener in list(self.listeners):
                try:
                    listener(message)
                except Exception:  # a listener's failure must not abort the process
                    log.exception("a fault listener failed")
        # Returning would let ggml call abort(): this thread waits forever instead.
        self._park.wait()


_guard = _FaultGuard()


def install_fault_guard() -> None:
    """Route ggml's aborts (a worker lost mid-request) to :func:`on_fault` listeners.

    Safe to call more than once. Without it, llama.cpp ends the process on the first fault.
    """
    with _lock:
        if _guard in _keep_alive:
            return
        callback = _ABORT_CALLBACK(_guard)
        _keep_alive.extend([_guard, callback])
    _ggml().ggml_set_abort_callback(callback)


def on_fault(listener: Callable[[str], None]) -> None:
    """Call ``listener(message)`` (from the faulting thread) on the first fault."""
    _guard.listeners.append(listener)
    if _guard.message is not None:
        listener(_guard.message)


def run_guarded(what: str, function: Callable[[], T]) -> T:
    """Run ``function`` in a thread of its own and return its result, unless ggml faults.

    A fault parks the thread that hit it; run in the caller's thread, a fault while loading a
    model over RPC would hang ``gbdesk serve`` for good.

    Raises:
        WorkerError: ggml faulted (a worker stopped answering) while doing ``what``.
        GbdeskError: whatever ``function`` raised.
    """
    install_fault_guard()
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"gbdesk-{what}", daemon=True).start()
    while not done.wait(0.1):
        if _guard.event.is_set():
            raise WorkerError(
                f"a worker stopped answering while gbdesk was trying to {what} ({_guard.message})",
                fix="check that every worker is running, then start the backend again",
            )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# ---------------------------------------------------------------- the backend's side


def worker_devices(addresses: Sequence[WorkerAddress]) -> list[int]:
    """The ggml devices of ``addresses`` (each worker's devices, in order), for model loading.

    Probe the workers first (:func:`gbdesk.hardware.rpc.probe_worker`): llama.cpp connects here
    and aborts on a worker it cannot reach (the fault guard then names it).

    Raises:
        WorkerError: no RPC backend in this build, or a worker has no device.
    """
    add_server = _ADD_SERVER(_rpc_proc("ggml_backend_rpc_add_server"))
    install_fault_guard()
    lib = _ggml()
    devices: list[int] = []
    for address in addresses:
        reg = add_server(str(address).encode())
        if not reg:
            raise WorkerError(
                f"the worker {address} has no device to offer",
                fix=f"restart `gbdesk worker` on {address.host}",
            )
        devices.extend(
            int(lib.ggml_backend_reg_dev_get(reg, index))
            for index in range(lib.ggml_backend_reg_dev_count(reg))
        )
    return devices


def local_gpu_devices() -> list[int]:
    """This machine's own GPU devices (after the workers in llama.cpp's order)."""
    lib = _ggml()
    return [
        int(device)
        for device in (lib.ggml_backend_dev_get(i) for i in range(lib.ggml_backend_dev_count()))
        if lib.ggml_backend_dev_type(device) == _DEVICE_TYPE_GPU
    ]


# ---------------------------------------------------------------- the worker's side


def worker_backend_devices() -> list[int]:
    """The devices a worker offers: the GPUs, else the CPU (what llama.cpp's rpc-server picks)."""
    gpus = local_gpu_devices()
    if gpus:
        return gpus
    cpu = _ggml().ggml_backend_dev_by_type(0)
    if not cpu:
        raise GbdeskError("llama.cpp found no device to run on", fix="reinstall gbdesk")
    return [int(cpu)]


def cap_device_memory(device: int, limit_bytes: int | None) -> None:
    """Make ``device`` report the memory available now, capped at ``limit_bytes``.

    Replaces the device's ``get_memory`` in its interface table (this process is the worker:
    nothing else uses the device). The table's layout is checked first: the slot must hold the
    function ``ggml_backend_dev_memory`` calls.

    Raises:
        WorkerError: the device's table is not laid out as this gbdesk expects.
    """
    lib = _ggml()
    table = ctypes.cast(device, ctypes.POINTER(ctypes.c_void_p))
    name = _GET_NAME(table[0])(device)
    if name != lib.ggml_backend_dev_name(device):
        raise WorkerError(
            "this llama.cpp's device table is not the one gbdesk knows",
            fix="install the llama-cpp-python version gbdesk asks for (pyproject.toml)",
        )
    original = _GET_MEMORY(table[_GET_MEMORY_SLOT])
    is_cpu = lib.ggml_backend_dev_type(device) == 0

    def get_memory(dev: int, free: ctypes._Pointer, total: ctypes._Pointer) -> None:
        if is_cpu:
            memory = worker_memory(limit_bytes)
            free[0], total[0] = memory.free, memory.total
            return
        original(dev, free, total)
        if limit_bytes:
            total[0] = min(total[0], limit_bytes)
            free[0] = min(free[0], total[0])

    callback = _GET_MEMORY(get_memory)
    _keep_alive.extend([callback, original])
    table[_GET_MEMORY_SLOT] = ctypes.cast(callback, ctypes.c_void_p).value


def device_name(device: int) -> str:
    """ggml's name of ``device`` ("CPU", "CUDA0", "RPC0")."""
    name = _ggml().ggml_backend_dev_name(device)
    return name.decode("utf-8", errors="replace") if name else "?"


def device_memory(device: int) -> tuple[int, int]:
    """(free, total) bytes as ggml reports them for ``device``."""
    free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
    _ggml().ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(total))
    return free.value, total.value


def start_server(
    address: WorkerAddress, devices: Sequence[int], *, threads: int, cache_dir: Path | None
) -> None:
    """Run llama.cpp's RPC server on ``address`` (blocks until the server gives up).

    Raises:
        WorkerError: no RPC backend in this build.
    """
    start = _START_SERVER(_rpc_proc("ggml_backend_rpc_start_server"))
    array = (ctypes.c_void_p * len(devices))(*devices)
    cache = str(cache_dir).encode() if cache_dir is not None else None
    start(str(address).encode(), cache, threads, len(devices), ctypes.cast(array, ctypes.c_void_p))
