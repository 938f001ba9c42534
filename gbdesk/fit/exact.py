"""Exact mode: ask llama.cpp itself how much memory a local GGUF would take, without loading it.

llama.cpp's model parameter ``no_alloc`` ("only load metadata and simulate memory allocations")
builds the model and context as for a real run, places every layer, sizes the KV cache and
reserves the compute graphs, but allocates zero-sized dummy buffers instead of the weights. The
sizes it *would* allocate are read from public figures: ``llama_model_size`` (the weights) and
llama.cpp's own log lines (``llama_kv_cache: size = ...``, ``... compute buffer size = ...``,
``... output buffer size = ...``, two decimals of MiB). Only a build that can offload to a GPU
needs the split per device, which the log does not give in a dry run; there the sizes come
from ``llama_get_memory_breakdown``.

Two things make it run in a child process (``python -m gbdesk.fit.exact``): llama.cpp aborts the
whole process on an internal assertion (no_alloc with mmap is one), and its log callback is
global, so it must not be swapped under a backend running in the same process.

``llama_get_memory_breakdown`` returns a C++ ``std::map`` (llama-ext.h, not the C API), read
through ctypes with libstdc++'s layout, so a GPU build's exact mode works on Linux only and its
totals are checked against the log; elsewhere :func:`exact_memory` raises
:class:`ExactModeUnavailableError` saying why, and callers use the estimate.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from gbdesk.errors import GbdeskError

MiB = 1024 * 1024
_BREAKDOWN_SYMBOL = "_Z26llama_get_memory_breakdownPK13llama_context"  # Itanium C++ ABI
_OUTPUT_LINE = re.compile(r"(?P<buft>\S+)\s+output buffer size =\s+(?P<mib>[\d.]+) MiB")
_COMPUTE_LINE = re.compile(r"(?P<buft>\S+)\s+compute buffer size =\s+(?P<mib>[\d.]+) MiB")
_KV_LINE = re.compile(r"llama_kv_cache: size =\s+(?P<mib>[\d.]+) MiB")
_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")


class ExactModeUnavailableError(GbdeskError):
    """llama.cpp's simulated allocation cannot be used on this platform or build."""


class ExactModeError(GbdeskError):
    """llama.cpp could not simulate loading this model with these settings."""


@dataclass(frozen=True)
class BufferMemory:
    """What llama.cpp would allocate in one buffer type (e.g. ``CPU``, ``CUDA0``, ``AMX``)."""

    buffer_type: str
    model: int  # weights, bytes
    context: int  # KV cache (and recurrent state), bytes
    compute: int  # compute graph buffers, bytes

    @property
    def total(self) -> int:
        return self.model + self.context + self.compute


@dataclass(frozen=True)
class ExactMemory:
    """llama.cpp's own answer for one model and one set of context settings."""

    path: str
    n_ctx: int
    n_parallel: int
    n_gpu_layers: int
    n_batch: int
    n_ubatch: int
    type_k: str
    type_v: str
    flash_attn: bool
    buffers: tuple[BufferMemory, ...]
    output_bytes: int  # host buffer for logits/embeddings of one batch (outside the breakdown)
    probe_peak_rss: int  # peak resident memory of the child that asked, bytes
    # "log": public figures (llama_model_size and log lines, 0.01 MiB resolution);
    # "breakdown": the per-device C++ breakdown of a GPU build (bytes).
    source: str = "log"

    @property
    def weights_bytes(self) -> int:
        return sum(buffer.model for buffer in self.buffers)

    @property
    def kv_bytes(self) -> int:
        return sum(buffer.context for buffer in self.buffers)

    @property
    def compute_bytes(self) -> int:
        return sum(buffer.compute for buffer in self.buffers)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.output_bytes

    def buffer(self, buffer_type: str) -> BufferMemory | None:
        """The entry of one buffer type, or None when llama.cpp uses none of it."""
        for buffer in self.buffers:
            if buffer.buffer_type == buffer_type:
                return buffer
        return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExactMemory:
        buffers = tuple(BufferMemory(**entry) for entry in data["buffers"])
        return cls(**{**data, "buffers": buffers})


def exact_memory(
    path: str | Path,
    *,
    n_ctx: int,
    n_parallel: int = 1,
    n_gpu_layers: int = 0,
    n_batch: int = 512,
    n_ubatch: int = 512,
    type_k: str = "f16",
    type_v: str = "f16",
    flash_attn: bool = False,
    use_extra_bufts: bool = True,
    timeout: float = 300,
) -> ExactMemory:
    """Ask llama.cpp what it would allocate to run ``path`` with these settings.

    The defaults are llama-cpp-python's ``Llama`` defaults (batch 512, f16 cache, flash attention
    off, extra buffer types such as AMX or CPU repacking on). Nothing is allocated for the
    weights; the child process reads the header and vocabulary only.

    Raises:
        ExactModeUnavailableError: a GPU build off Linux, or one whose breakdown cannot be read.
        ExactModeError: the file is missing or llama.cpp refused the model or the settings.
        UsageError: an argument is out of range.
    """
    from gbdesk.errors import UsageError

    for name, value in (("n_ctx", n_ctx), ("n_parallel", n_parallel), ("n_batch", n_batch)):
        if value < 1:
            raise UsageError(f"{name} must be at least 1, not {value}")
    for name, cache_type in (("type_k", type_k), ("type_v", type_v)):
        if cache_type not in _CACHE_TYPES:
            raise UsageError(
                f"{name} {cache_type!r} is not a KV cache type",
                fix=f"use one of {', '.join(_CACHE_TYPES)}",
            )
    path = Path(path)
    if not path.is_file():
        raise ExactModeError(f"{path}: no such file", fix="exact mode needs the GGUF on disk")
    request = {
        "path": str(path),
        "n_ctx": n_ctx,
        "n_parallel": n_parallel,
        "n_gpu_layers": n_gpu_layers,
        "n_batch": n_batch,
        "n_ubatch": min(n_ubatch, n_batch),
        "type_k": type_k,
        "type_v": type_v,
        "flash_attn": flash_attn,
        "use_extra_bufts": use_extra_bufts,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gbdesk.fit.exact", json.dumps(request)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ExactModeError(f"{path}: llama.cpp did not answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        raise _child_error(path, done.returncode, done.stdout, done.stderr)
    return ExactMemory.from_json(json.loads(done.stdout))


def write_stand_in(
    url: str,
    folder: Path,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Path:
    """A stand-in for a remote GGUF before download: a sparse file of the real size holding the
    real header (a dry run reads no tensor bytes). Returns its path in ``folder``.

    Raises:
        ExactModeUnavailableError: a split model (the dry run would need every part's stand-in).
        GGUFError: the header cannot be fetched or is not valid GGUF.
        OSError: the folder cannot be written.
    """
    from gbdesk.gguf import read_remote_bytes, read_remote_gguf

    meta = read_remote_gguf(url, headers=headers, timeout=timeout)
    if len(meta.file_sizes) != 1 or not meta.data_offsets:
        raise ExactModeUnavailableError(
            f"{url}: a model split in {len(meta.file_sizes)} parts has no single stand-in file",
            fix="use the estimate from its header, or download it and ask again",
        )
    header = read_remote_bytes(url, meta.data_offsets[0], headers=headers, timeout=timeout)
    path = folder / url.rsplit("/", 1)[-1].split("?", 1)[0]
    with path.open("wb") as out:
        out.write(header)
        out.truncate(meta.file_sizes[0])  # the tensor data is a hole: no disk, no download
    return path


def exact_memory_remote(
    url: str, *, headers: dict[str, str] | None = None, **settings: Any
) -> ExactMemory:
    """:func:`exact_memory` for a GGUF not yet downloaded, run on :func:`write_stand_in`'s file.

    Raises:
        ExactModeUnavailableError, ExactModeError, UsageError: as :func:`exact_memory`.
        GGUFError: the header cannot be fetched.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gbdesk-stand-in-") as folder:
        path = write_stand_in(url, Path(folder), headers=headers)
        result = exact_memory(path, **settings)
    return replace(result, path=url)


def _child_error(path: Path, returncode: int, stdout: str, stderr: str) -> GbdeskError:
    try:
        reported = json.loads(stdout)
    except json.JSONDecodeError:
        reported = None
    if isinstance(reported, dict) and "error" in reported:
        kind = ExactModeUnavailableError if reported.get("unavailable") else ExactModeError
        return kind(f"{path}: {reported['error']}", fix=reported.get("fix"))
    last = [line for line in stderr.splitlines() if line.strip()][-3:]
    return ExactModeError(
        f"{path}: llama.cpp stopped (exit status {returncode}): {' / '.join(last)}",
        fix="the file may be damaged or need a newer llama.cpp; the estimate still works",
    )


# --- the child process ----------------------------------------------------------------------


def _read_breakdown(lib: ctypes.CDLL, ggml: ctypes.CDLL, ctx: int) -> list[BufferMemory]:
    """Call ``llama_get_memory_breakdown`` and walk the returned libstdc++ ``std::map``.

    The map (48 bytes: comparator, header node {colour, parent=root, left, right}, node count)
    is returned through a hidden pointer. Each node is the 32-byte node base {colour, parent,
    left, right} followed by the value ``pair<ggml_backend_buffer_type_t, {model, context,
    compute}>``. The map is left to the child's exit to free (a few nodes).
    """
    function = getattr(lib, _BREAKDOWN_SYMBOL)
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    function.restype = ctypes.c_void_p
    result = (ctypes.c_uint64 * 6)()
    function(ctypes.addressof(result), ctx)
    root, count = result[2], result[5]
    ggml.ggml_backend_buft_name.argtypes = [ctypes.c_void_p]
    ggml.ggml_backend_buft_name.restype = ctypes.c_char_p
    buffers: list[BufferMemory] = []
    pending = [root] if root else []
    while pending and len(buffers) <= count:
        node = pending.pop()
        fields = (ctypes.c_uint64 * 8).from_address(node)
        left, right, buft, model, context, compute = fields[2:8]
        name = ggml.ggml_backend_buft_name(buft).decode()
        buffers.append(BufferMemory(name, model, context, compute))
        pending.extend(child for child in (left, right) if child)
    if len(buffers) != count:
        raise RuntimeError(f"read {len(buffers)} entries of a {count}-entry breakdown")
    return sorted(buffers, key=lambda buffer: buffer.buffer_type)


def _mib_lines(pattern: re.Pattern[str], lines: list[str]) -> dict[str, int]:
    """Bytes per buffer type from llama.cpp's "<buft> ... size = N MiB" log lines."""
    sizes: dict[str, int] = {}
    for line in lines:
        match = pattern.search(line)
        if match:
            buft = match.groupdict().get("buft") or "CPU"
            sizes[buft] = sizes.get(buft, 0) + round(float(match["mib"]) * MiB)
    return sizes


def _from_log(lib: object, model: int, lines: list[str]) -> list[BufferMemory]:
    """A CPU build's figures from public sources: the weights from ``llama_model_size``, the
    KV cache and compute buffers from the log lines."""
    import llama_cpp

    weights = int(llama_cpp.llama_model_size(model))
    kv = sum(_mib_lines(_KV_LINE, lines).values())
    compute = sum(_mib_lines(_COMPUTE_LINE, lines).values())
    return [BufferMemory("CPU", weights, kv, compute)]


def _measure(request: dict[str, Any]) -> dict[str, Any]:
    import llama_cpp
    from gguf import GGMLQuantizationType
    from llama_cpp import llama_cpp as bindings

    lib = bindings._lib
    from gbdesk.hardware.backend import probe_backend

    # llama_supports_gpu_offload() is also true for a CPU build with RPC (a worker counts as a
    # device there): a GPU build is one with a GPU backend's library.
    gpu_build = bool(llama_cpp.llama_supports_gpu_offload()) and probe_backend().gpu_offload
    if gpu_build and not (sys.platform.startswith("linux") and hasattr(lib, _BREAKDOWN_SYMBOL)):
        return {
            "error": "this GPU build gives the memory per device only through a C++ structure "
            "that gbdesk can read on Linux alone",
            "unavailable": True,
            "fix": "use the estimate, which needs no llama.cpp",
        }

    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def on_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(on_log, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    model_params = llama_cpp.llama_model_default_params()
    model_params.no_alloc = True
    model_params.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE  # no_alloc asserts without mmap
    model_params.n_gpu_layers = request["n_gpu_layers"]
    model_params.use_extra_bufts = request["use_extra_bufts"]
    model = llama_cpp.llama_model_load_from_file(request["path"].encode(), model_params)
    if not model:
        return {"error": "llama.cpp could not load the model: " + _last_error(lines)}
    context_params = llama_cpp.llama_context_default_params()
    context_params.n_ctx = request["n_ctx"]
    context_params.n_seq_max = request["n_parallel"]
    context_params.n_batch = request["n_batch"]
    context_params.n_ubatch = request["n_ubatch"]
    context_params.type_k = int(GGMLQuantizationType[request["type_k"].upper()])
    context_params.type_v = int(GGMLQuantizationType[request["type_v"].upper()])
    context_params.flash_attn_type = (
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        if request["flash_attn"]
        else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    )
    ctx = llama_cpp.llama_init_from_model(model, context_params)
    if not ctx:
        return {
            "error": "llama.cpp refused these context settings: " + _last_error(lines),
            "fix": "a quantized V cache needs flash attention; lower n_ctx or n_parallel",
        }
    if gpu_build:
        ggml_name = Path(lib._name).name.replace("libllama", "libggml-base")
        ggml = ctypes.CDLL(str(Path(lib._name).with_name(ggml_name)))
        buffers = _read_breakdown(lib, ggml, ctx)
        logged_kv = sum(_mib_lines(_KV_LINE, lines).values())
        if abs(sum(b.context for b in buffers) - logged_kv) > 0.01 * MiB:
            return {
                "error": "llama.cpp's memory breakdown disagrees with its log (the C++ "
                "structure changed in this build)",
                "unavailable": True,
                "fix": "use the estimate, which needs no llama.cpp",
            }
        source = "breakdown"
    else:
        buffers = _from_log(lib, model, lines)
        source = "log"
    output_bytes = sum(_mib_lines(_OUTPUT_LINE, lines).values())
    return {
        **{key: request[key] for key in request if key != "use_extra_bufts"},
        "buffers": [asdict(buffer) for buffer in buffers],
        "output_bytes": output_bytes,
        "probe_peak_rss": _peak_rss(),
        "source": source,
    }


def _peak_rss() -> int:
    """This process's peak resident memory since exec (VmHWM; ru_maxrss survives exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _last_error(lines: list[str]) -> str:
    errors = [line.strip() for line in lines if "error" in line.lower() or "failed" in line]
    return errors[-1] if errors else "no reason given in its log"


def _main(argv: list[str]) -> int:
    result = _measure(json.loads(argv[1]))
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    # Skip interpreter teardown: llama.cpp objects and the log callback die with the process.
    os._exit(1 if "error" in result else 0)


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
