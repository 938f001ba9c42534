"""The machine as the probe sees it: plain frozen dataclasses, serialisable to JSON.

Field names are stable: they are the JSON that ``gbdesk probe --json`` prints and the format of
the hardware preset files that ``gbdesk recommend --hardware FILE`` reads. Sizes are bytes,
clocks MHz, bandwidths GB/s (10^9 bytes per second).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1

Level = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the probe: a level, a plain sentence, and what to do about it."""

    code: str
    level: Level
    message: str
    fix: str = ""

    def __post_init__(self) -> None:
        # An OSError's text in a finding is told in words: a person never sees an errno.
        from gbdesk.errors import without_errno

        object.__setattr__(self, "message", without_errno(self.message))
        object.__setattr__(self, "fix", without_errno(self.fix))


@dataclass(frozen=True)
class CpuInfo:
    brand: str
    arch: str
    physical_cores: int
    logical_cores: int
    # ISA features llama.cpp cares about: avx, avx2, avx512f, fma, f16c, neon, dotprod, amx...
    features: tuple[str, ...] = ()
    # performance / efficiency split where the OS tells (Apple); 0 when unknown
    performance_cores: int = 0
    efficiency_cores: int = 0


@dataclass(frozen=True)
class MemoryInfo:
    total_bytes: int
    available_bytes: int
    swap_total_bytes: int = 0
    swap_free_bytes: int = 0
    # Peak DRAM bandwidth when known (GB/s); 0 when unknown (the estimator then assumes).
    bandwidth_gbps: float = 0.0


@dataclass(frozen=True)
class DiskInfo:
    path: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class GpuInfo:
    """One GPU. ``vendor`` is nvidia, apple, amd or intel."""

    vendor: str
    index: int
    name: str
    total_memory_bytes: int = 0
    free_memory_bytes: int = 0
    used_memory_bytes: int = 0
    driver_version: str = ""
    cuda_version: str = ""
    compute_capability: str = ""
    memory_bus_width_bits: int = 0
    memory_clock_mhz: int = 0
    pci_bus_id: str = ""
    # Apple: GPU core count; unified memory is the same pool as RAM.
    gpu_cores: int = 0
    unified_memory: bool = False
    # Apple: what Metal lets the GPU use (recommendedMaxWorkingSetSize rule, see apple.py).
    working_set_limit_bytes: int = 0
    # Can the installed llama-cpp-python build use this GPU?
    usable_by_backend: bool = False
    # One plain sentence on what the installed build can do with this GPU (empty when obvious).
    note: str = ""

    @property
    def peak_bandwidth_gbps(self) -> float:
        """Peak memory bandwidth from bus width and clock; 0 when either is unknown.

        NVML reports the memory clock in MHz of the base clock; GDDR transfers twice per clock
        on each edge of that clock, so the effective rate is 2 x clock (DDR).
        """
        if not (self.memory_bus_width_bits and self.memory_clock_mhz):
            return 0.0
        return self.memory_bus_width_bits / 8 * self.memory_clock_mhz * 2 / 1000

    @property
    def usable_memory_bytes(self) -> int:
        """Memory a model may take on this GPU: free VRAM, or Metal's working-set limit."""
        if self.unified_memory and self.working_set_limit_bytes:
            return self.working_set_limit_bytes
        return self.free_memory_bytes


@dataclass(frozen=True)
class BackendInfo:
    """What the installed llama-cpp-python can do."""

    installed: bool
    version: str = ""
    gpu_offload: bool = False
    # cuda, metal, vulkan, hip, sycl, cpu ... as far as the build tells
    backends: tuple[str, ...] = ()
    # llama.cpp's own system info line; only filled by `gbdesk probe --load-backend`.
    system_info: str = ""
    # The folder holding the build's shared libraries, whose names tell the backends.
    library_dir: str = ""


@dataclass(frozen=True)
class HardwareProfile:
    os: str
    os_version: str
    cpu: CpuInfo
    memory: MemoryInfo
    disk: DiskInfo
    gpus: tuple[GpuInfo, ...] = ()
    backend: BackendInfo = field(default_factory=lambda: BackendInfo(installed=False))
    diagnostics: tuple[Diagnostic, ...] = ()
    # Where the profile came from: "probe" for this machine, or a preset's name.
    source: str = "probe"
    schema_version: int = SCHEMA_VERSION

    @property
    def nvidia_gpus(self) -> tuple[GpuInfo, ...]:
        return tuple(g for g in self.gpus if g.vendor == "nvidia")

    @property
    def usable_gpus(self) -> tuple[GpuInfo, ...]:
        """GPUs the installed backend can offload to."""
        return tuple(g for g in self.gpus if g.usable_by_backend)

    @property
    def total_gpu_memory_bytes(self) -> int:
        """Sum of what usable GPUs offer (free VRAM, or Metal's limit)."""
        return sum(g.usable_memory_bytes for g in self.usable_gpus)

    def to_json(self) -> dict[str, Any]:
        """The profile as plain JSON values (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> HardwareProfile:
        """Rebuild a profile from :meth:`to_json` output or a preset file, checking every value.

        Raises:
            ProfileFormatError: a section or field is missing, has the wrong type, is negative
                or is not a field of the profile (the message names the field).
        """
        section = _section(data, "profile")
        _reject_unknown(section, {f.name for f in dataclasses.fields(cls)}, "")
        cpu_data = _section(section.get("cpu"), "cpu")
        return cls(
            os=_value(section, "os", str, ""),
            os_version=_value(section, "os_version", str, "", default=""),
            cpu=_build(CpuInfo, cpu_data, "cpu."),
            memory=_build(MemoryInfo, _section(section.get("memory"), "memory"), "memory."),
            disk=_build(DiskInfo, _section(section.get("disk"), "disk"), "disk."),
            gpus=tuple(
                _build(GpuInfo, _section(g, f"gpus[{i}]"), f"gpus[{i}].")
                for i, g in enumerate(_list(section, "gpus"))
            ),
            backend=_build(
                BackendInfo,
                _section(section.get("backend", {"installed": False}), "backend"),
                "backend.",
            ),
            diagnostics=tuple(
                _build(Diagnostic, _section(d, f"diagnostics[{i}]"), f"diagnostics[{i}].")
                for i, d in enumerate(_list(section, "diagnostics"))
            ),
            source=_value(section, "source", str, "", default="file"),
            schema_version=_value(section, "schema_version", int, "", default=SCHEMA_VERSION),
        )


class ProfileFormatError(ValueError):
    """A hardware profile (file or preset) does not have the profile's shape."""


_MISSING = object()


def _section(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        raise ProfileFormatError(f"the {name!r} section is missing")
    if not isinstance(value, dict):
        raise ProfileFormatError(
            f"{name!r} must be an object of fields, not {type(value).__name__}"
        )
    return value


def _list(section: dict[str, Any], key: str) -> list[Any]:
    value = section.get(key, [])
    if not isinstance(value, (list, tuple)):
        raise ProfileFormatError(f"{key!r} must be a list, not {type(value).__name__}")
    return list(value)


def _reject_unknown(section: dict[str, Any], known: set[str], prefix: str) -> None:
    unknown = sorted(set(section) - known)
    if unknown:
        raise ProfileFormatError(
            f"unknown field {prefix}{unknown[0]} (known: {', '.join(sorted(known))})"
        )


def _value(
    section: dict[str, Any], key: str, kind: Any, prefix: str, default: Any = _MISSING
) -> Any:
    """One field checked against its type; numbers must not be negative."""
    name = f"{prefix}{key}"
    if key not in section:
        if default is _MISSING:
            raise ProfileFormatError(f"the field {name} is missing")
        return default
    value = section[key]
    if kind is bool:
        if not isinstance(value, bool):
            raise ProfileFormatError(f"{name} must be true or false, not {value!r}")
        return value
    if kind in (int, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is int and ok and isinstance(value, float):
            ok = value.is_integer()
        if not ok:
            raise ProfileFormatError(f"{name} must be a number, not {value!r}")
        if not math.isfinite(value):
            raise ProfileFormatError(f"{name} must be a finite number, not {value!r}")
        if value < 0:
            raise ProfileFormatError(f"{name} cannot be negative ({value!r})")
        return kind(value)
    if kind is str:
        if not isinstance(value, str):
            raise ProfileFormatError(f"{name} must be text, not {value!r}")
        return value
    # tuple[str, ...]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ProfileFormatError(f"{name} must be a list of text values, not {value!r}")
    return tuple(value)


_KINDS = {"int": int, "float": float, "str": str, "bool": bool, "tuple[str, ...]": tuple}


def _build(cls: Any, section: dict[str, Any], prefix: str) -> Any:
    """An instance of the dataclass ``cls`` from ``section``, every field checked."""
    fields = dataclasses.fields(cls)
    _reject_unknown(section, {f.name for f in fields}, prefix)
    values = {}
    for item in fields:
        kind = _KINDS.get(str(item.type), str)
        if item.type == "Level":
            level = _value(section, item.name, str, prefix)
            if level not in ("info", "warning", "error"):
                raise ProfileFormatError(f"{prefix}{item.name} must be info, warning or error")
            values[item.name] = level
            continue
        if item.default is not dataclasses.MISSING:
            default: Any = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        else:
            default = _MISSING
        values[item.name] = _value(section, item.name, kind, prefix, default)
    return cls(**values)
