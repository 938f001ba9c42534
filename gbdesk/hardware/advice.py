"""Match the GPUs found against the llama-cpp-python build: who can use what, and how to fix it.

The most common way local LLM tools disappoint is a GPU that is present but silently unused
because the installed llama-cpp-python was compiled for the CPU only. Each such case becomes a
diagnostic carrying the exact reinstall command for the installed version.
"""

from __future__ import annotations

import dataclasses

from gbdesk.hardware.profile import BackendInfo, Diagnostic, GpuInfo

# Which llama.cpp backends drive which vendor's GPUs.
_BACKENDS_FOR_VENDOR = {
    "nvidia": ("cuda", "vulkan"),
    "apple": ("metal",),
    "amd": ("hip", "vulkan"),
    "intel": ("sycl", "vulkan"),
}
# The build flag to suggest for each vendor, first choice first.
_BUILD_FLAGS = {
    "nvidia": ("-DGGML_CUDA=on", "the CUDA toolkit (nvcc)"),
    "apple": ("-DGGML_METAL=on", "the Xcode command line tools"),
    "amd": ("-DGGML_VULKAN=on", "the Vulkan SDK (or ROCm with -DGGML_HIP=on)"),
    "intel": ("-DGGML_VULKAN=on", "the Vulkan SDK (or oneAPI with -DGGML_SYCL=on)"),
}
_VENDOR_NAMES = {
    "nvidia": "an NVIDIA",
    "apple": "an Apple Silicon",
    "amd": "an AMD",
    "intel": "an Intel",
}
_BACKEND_NAMES = {"cuda": "CUDA", "metal": "Metal", "vulkan": "Vulkan", "hip": "ROCm/HIP"}
_BACKEND_NAMES |= {"sycl": "SYCL"}


def reinstall_command(flag: str, version: str, system: str) -> str:
    """The pip command that rebuilds llama-cpp-python ``version`` with a CMake ``flag``."""
    pin = f"llama-cpp-python=={version}" if version else "llama-cpp-python"
    pip = f"pip install --force-reinstall --no-cache-dir {pin}"
    flag = f"{flag} -DGGML_RPC=ON"  # keep llama.cpp's RPC backend (gbdesk worker, serve --rpc)
    if system == "Windows":
        return f'$env:CMAKE_ARGS="{flag}"; {pip}'
    return f'CMAKE_ARGS="{flag}" {pip}'


def _usable(gpu: GpuInfo, backend: BackendInfo) -> bool:
    return backend.installed and any(
        b in backend.backends for b in _BACKENDS_FOR_VENDOR.get(gpu.vendor, ())
    )


def _note(gpu: GpuInfo, backend: BackendInfo, usable: bool) -> str:
    if not backend.installed:
        return "llama-cpp-python is not installed"
    if usable:
        used = [b for b in _BACKENDS_FOR_VENDOR[gpu.vendor] if b in backend.backends]
        return f"used through {_BACKEND_NAMES.get(used[0], used[0])}"
    built = ", ".join(backend.backends) or "no known backend"
    wanted = " or ".join(_BACKEND_NAMES[b] for b in _BACKENDS_FOR_VENDOR.get(gpu.vendor, ()))
    return f"not used: llama-cpp-python is built with {built}, this GPU needs {wanted}"


def match_gpus_to_backend(
    gpus: list[GpuInfo], backend: BackendInfo, system: str
) -> tuple[list[GpuInfo], list[Diagnostic]]:
    """Mark each GPU usable or not by the build, and explain the ones that are not."""
    marked = []
    for gpu in gpus:
        usable = _usable(gpu, backend)
        marked.append(
            dataclasses.replace(gpu, usable_by_backend=usable, note=_note(gpu, backend, usable))
        )
    diagnostics: list[Diagnostic] = []
    if not backend.installed:
        diagnostics.append(
            Diagnostic(
                code="backend-missing",
                level="error",
                message="llama-cpp-python is not installed, so no model can run",
                fix="pip install llama-cpp-python (it compiles llama.cpp: allow several minutes)",
            )
        )
        return marked, diagnostics
    for vendor in ("nvidia", "apple", "amd", "intel"):
        # An integrated Intel GPU is rarely faster than the CPU beside it: a note, no advice.
        unused = [
            g
            for g in marked
            if g.vendor == vendor
            and not g.usable_by_backend
            and not (vendor == "intel" and g.unified_memory)
        ]
        if not unused:
            continue
        flag, needs = _BUILD_FLAGS[vendor]
        wanted = " or ".join(_BACKEND_NAMES[b] for b in _BACKENDS_FOR_VENDOR[vendor])
        if vendor == "nvidia":
            wanted = "CUDA"  # Vulkan also drives NVIDIA cards, but CUDA is the one to build
        built = ", ".join(backend.backends) or "no backend"
        names = ", ".join(sorted({g.name for g in unused}))
        diagnostics.append(
            Diagnostic(
                code=f"{vendor}-gpu-unused",
                # A discrete NVIDIA or Apple GPU left idle costs the most speed; AMD and Intel
                # builds are less common and need extra SDKs, so they are advice.
                level="error" if vendor in {"nvidia", "apple"} else "info",
                message=(
                    f"{_VENDOR_NAMES[vendor]} GPU is present ({names}) but llama-cpp-python "
                    f"{backend.version} was built without {wanted} (it has: {built}), "
                    "so models run on the CPU only"
                ),
                fix=f"with {needs} installed, run: "
                f"{reinstall_command(flag, backend.version, system)}",
            )
        )
    return marked, diagnostics
