"""What the installed llama-cpp-python build can do, told without loading it.

Importing ``llama_cpp`` loads several megabytes of shared libraries (half a second here), which
`gbdesk probe` must not pay. llama-cpp-python builds llama.cpp with shared libraries, one per
ggml backend, into ``llama_cpp/lib``: a CPU build has ``libggml-cpu.so`` and ``libggml-base.so``,
a CUDA build adds ``libggml-cuda.so``, Metal ``libggml-metal.dylib``, Vulkan ``libggml-vulkan``,
ROCm ``libggml-hip``; Windows names them ``ggml-cuda.dll`` and so on. Those names tell the
backends. Only when no ``ggml-*`` library is found (an older, single-library layout) are the
library files scanned for the backends' registration symbols. :func:`load_backend_info` asks
the loaded library itself, for `gbdesk probe --load-backend`.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from gbdesk.hardware.profile import BackendInfo

DISTRIBUTION = "llama-cpp-python"
GPU_BACKENDS = ("cuda", "metal", "vulkan", "hip", "sycl", "opencl", "musa", "cann", "kompute")

# libggml-cuda.so, libggml-cuda.so.0, ggml-cuda.dll, libggml-metal.dylib, libggml-cpu-haswell.so
_BACKEND_LIBRARY = re.compile(r"^(?:lib)?ggml-([a-z]+)[-.\w]*\.(?:so|dylib|dll)(?:\.[\d.]+)?$")
_SHARED_LIBRARY = re.compile(r"\.(?:so|dylib|dll)(?:\.[\d.]+)?$")
# Symbols a backend's code leaves in a library it is linked into (single-library layouts).
_BACKEND_SYMBOLS = (
    (b"ggml_backend_metal_init", "metal"),
    (b"ggml_backend_vk_init", "vulkan"),
    (b"ggml_backend_sycl_init", "sycl"),
    (b"ggml_backend_cuda_init", "cuda"),
    (b"hipMalloc", "hip"),
)


def backends_from_library_names(names: list[str]) -> tuple[str, ...]:
    """Backend names (cpu, cuda, metal...) from the file names in the library folder."""
    found: set[str] = set()
    for name in names:
        match = _BACKEND_LIBRARY.match(name)
        if match and match.group(1) != "base":
            found.add(match.group(1))
    order = ("cpu", "blas", *GPU_BACKENDS)
    return tuple(sorted(found, key=lambda b: (order.index(b) if b in order else len(order), b)))


def backends_from_symbols(library_bytes: bytes) -> set[str]:
    """Backends whose registration symbols appear in a shared library's bytes."""
    found = {backend for symbol, backend in _BACKEND_SYMBOLS if symbol in library_bytes}
    if "hip" in found:
        found.discard("cuda")  # the HIP build compiles ggml's CUDA code under the same names
    return found


def parse_system_info(system_info: str) -> tuple[str, ...]:
    """Backend names from ``llama_print_system_info()`` (``CPU : AVX = 1 | CUDA : ... |``)."""
    aliases = {"mtl": "metal", "metal": "metal", "cpu": "cpu", "cuda": "cuda", "vulkan": "vulkan"}
    aliases |= {"rocm": "hip", "hip": "hip", "sycl": "sycl", "opencl": "opencl", "musa": "musa"}
    found: list[str] = []
    for part in system_info.split("|"):
        head, sep, _ = part.partition(" : ")
        name = aliases.get(head.strip().lower()) if sep else None
        if name and name not in found:
            found.append(name)
    return tuple(found)


def _library_dirs(package_dir: Path) -> list[Path]:
    return [d for d in (package_dir / "lib", package_dir) if d.is_dir()]


def installed_version(package_dir: Path) -> str:
    """The llama-cpp-python version installed beside ``package_dir``; "" when not installed.

    pip records it in the name of the ``llama_cpp_python-<version>.dist-info`` folder next to
    the package, which is read without importing importlib.metadata (and the email parser it
    pulls in: tens of milliseconds `gbdesk probe` would pay). Other layouts (editable installs)
    fall back to importlib.metadata.
    """
    found = sorted(package_dir.parent.glob("llama_cpp_python-*.dist-info"))
    if len(found) == 1:
        return found[0].name.removeprefix("llama_cpp_python-").removesuffix(".dist-info")
    import importlib.metadata

    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return ""


def probe_backend(package_dir: Path | None = None, version: str | None = None) -> BackendInfo:
    """The installed llama-cpp-python build, from its files (nothing is loaded).

    Args:
        package_dir: the ``llama_cpp`` package folder; found with importlib when None.
        version: the distribution's version; read from its install record when None.

    Raises:
        OSError: the package folder cannot be listed or read.
    """
    if package_dir is None:
        spec = importlib.util.find_spec("llama_cpp")  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            return BackendInfo(installed=False)
        package_dir = Path(next(iter(spec.submodule_search_locations)))
    if version is None:
        version = installed_version(package_dir)
        if not version:
            return BackendInfo(installed=False)
    dirs = _library_dirs(package_dir)
    names = sorted(p.name for d in dirs for p in d.iterdir())
    backends = backends_from_library_names(names)
    if not backends:
        found: set[str] = set()
        for d in dirs:
            for path in d.iterdir():
                if _SHARED_LIBRARY.search(path.name) and path.is_file():
                    found |= backends_from_symbols(path.read_bytes())
        backends = tuple(b for b in GPU_BACKENDS if b in found) or (("cpu",) if names else ())
    return BackendInfo(
        installed=True,
        version=version,
        gpu_offload=any(b in GPU_BACKENDS for b in backends),
        backends=backends,
        library_dir=str(dirs[0]) if dirs else "",
    )


def load_backend_info() -> BackendInfo:
    """Load llama-cpp-python and ask it what it supports (slow: loads the shared libraries).

    Raises:
        ImportError, OSError: llama-cpp-python is missing or its libraries fail to load.
    """
    import llama_cpp

    info = llama_cpp.llama_print_system_info()
    system_info = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    from_files = probe_backend()
    return BackendInfo(
        installed=True,
        version=getattr(llama_cpp, "__version__", from_files.version),
        # llama_supports_gpu_offload() is true for a build with RPC alone (a worker counts as
        # a device there); gbdesk's gpu_offload means a GPU in this machine.
        gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()) and from_files.gpu_offload,
        backends=from_files.backends or parse_system_info(system_info),
        system_info=system_info.strip(),
        library_dir=from_files.library_dir,
    )
