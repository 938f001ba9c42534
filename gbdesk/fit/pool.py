"""Several machines as one: plan a model's split over this machine and RPC workers.

llama.cpp's RPC backend treats each worker's device as one more GPU: ``n_gpu_layers`` counts
from the last repeating layer, the offloaded layers are shared among the devices in proportion
to ``tensor_split``, and the first layers, the token embeddings and the output head stay here.
The plan gives every machine a share of the layers in proportion to the memory it offers (so
that no machine fills up before the others), checks that each share fits, and returns the
``n_gpu_layers`` and ``tensor_split`` that make llama.cpp place the layers exactly so.

Speed: layers run one after another, wherever they are, so a token costs the sum of each
machine's share plus the network. The estimate assumes each worker reads weights as fast as
this machine does (the speed model calibrated here), and per token and worker two round trips
(llama.cpp sends the activations in and reads the result back) plus the activations' bytes
at :data:`ASSUMED_NETWORK_BYTES_PER_S`; round trips are measured when the workers are probed.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from typing import Any, Literal

from gbdesk.fit import memory
from gbdesk.fit.calibration import Calibration
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.layout import ModelLayout
from gbdesk.hardware.profile import HardwareProfile

PoolVerdict = Literal["fits-here", "fits-pooled", "does-not-fit"]
GIB = 1 << 30
ASSUMED_NETWORK_BYTES_PER_S = 125e6  # 1 Gbit/s Ethernet
ROUND_TRIPS_PER_TOKEN = 2  # per worker: activations in, result out
ASSUMPTIONS = (
    "assumes each worker computes as fast as this computer, a 1 Gbit/s network and two round"
    " trips per token and worker (round trips as measured)"
)


@dataclass(frozen=True)
class PoolMember:
    """A machine of the pool: this one (``rtt_s`` 0) or a worker, with the memory it offers."""

    name: str  # "this computer" or the worker's HOST:PORT
    capacity_bytes: int
    rtt_s: float = 0.0


@dataclass(frozen=True)
class PoolShare:
    """What one machine holds under a plan."""

    name: str
    layers: int
    bytes: int
    capacity_bytes: int

    @property
    def fits(self) -> bool:
        return self.bytes <= self.capacity_bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.name,
            "layers": self.layers,
            "bytes": self.bytes,
            "capacity_bytes": self.capacity_bytes,
        }


@dataclass(frozen=True)
class PoolPlan:
    """Where a model's layers go across the pool, and how fast it should answer."""

    model: str
    verdict: PoolVerdict
    n_layers: int
    gpu_layers: int  # llama.cpp's n_gpu_layers: the layers on the workers
    tensor_split: tuple[float, ...]  # one weight per worker, in --rpc order
    shares: tuple[PoolShare, ...]  # this computer first, then the workers
    generation_tps: float
    network_seconds_per_token: float
    n_ctx: int
    reasons: tuple[str, ...]

    @property
    def runs(self) -> bool:
        return self.verdict != "does-not-fit"

    @property
    def machines(self) -> int:
        """Machines that hold at least one layer."""
        return sum(1 for share in self.shares if share.layers)

    def summary(self) -> str:
        """One sentence: the verdict and the split."""
        split = ", ".join(
            f"{share.name} {share.layers} layers ({share.bytes / GIB:.2f} GiB)"
            for share in self.shares
        )
        if self.verdict == "does-not-fit":
            return self.reasons[0]
        where = (
            "fits on this computer alone"
            if self.verdict == "fits-here"
            else f"fits across {self.machines} machines"
        )
        return f"{where}: {split}; about {self.generation_tps:.1f} tokens/s"

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "verdict": self.verdict,
            "n_layers": self.n_layers,
            "gpu_layers": self.gpu_layers,
            "tensor_split": list(self.tensor_split),
            "shares": [share.to_json() for share in self.shares],
            "generation_tps": self.generation_tps,
            "network_seconds_per_token": self.network_seconds_per_token,
            "n_ctx": self.n_ctx,
            "assumptions": ASSUMPTIONS,
            "reasons": list(self.reasons),
        }


def _layer_machines(n_layers: int, local_layers: int, weights: list[float]) -> list[int]:
    """The machine of each repeating layer: 0 is this computer, i + 1 the i-th worker.

    llama.cpp keeps the first ``n_layers - n_gpu_layers`` layers here and shares the rest among
    the devices by the cumulative ``tensor_split`` (llama-model.cpp's load_tensors)."""
    offloaded = n_layers - local_layers
    total = sum(weights) or 1.0
    cumulative, running = [], 0.0
    for weight in weights:
        running += weight
        cumulative.append(running / total)
    machines = []
    for layer in range(n_layers):
        if layer < local_layers or not weights:
            machines.append(0)
            continue
        share = (layer - local_layers) / offloaded
        machines.append(min(bisect.bisect_right(cumulative, share), len(weights) - 1) + 1)
    return machines


def plan_pool(
    layout: ModelLayout,
    profile: HardwareProfile,
    workers: list[PoolMember],
    settings: FitSettings | None = None,
    *,
    calibration: Calibration | None = None,
) -> PoolPlan:
    """Split ``layout`` over this machine (``profile``, its CPU) and ``workers``.

    Raises:
        UsageError: the settings are out of range.
    """
    settings = replace(settings or FitSettings(), gpu_layers=0)
    arch = layout.architecture
    cpu_profile = replace(profile, gpus=())
    alone = estimate_fit(layout, cpu_profile, settings, calibration=calibration)
    cells = memory.kv_cells(
        arch,
        settings.n_ctx,
        settings.n_parallel,
        n_ubatch=settings.n_ubatch,
        unified=settings.kv_unified,
        swa_full=settings.swa_full,
    )
    per_layer = [
        piece.total + memory.kv_bytes_per_layer(arch, cells, il, settings.cache_type)
        for il, piece in enumerate(layout.layers)
    ]
    # What this computer holds besides its layers: embeddings, head, buffers, the runtime.
    local_fixed = max(alone.cpu.total - sum(per_layer), 0)
    worker_compute = memory.compute_buffer_bytes(
        arch,
        n_ubatch=settings.n_ubatch,
        kv_cells_per_seq=cells.per_sequence,
        flash_attn=settings.flash_attn,
        holds_output=False,
    )
    local_room = max(profile.memory.available_bytes - local_fixed, 0)
    worker_room = [max(w.capacity_bytes - worker_compute, 0) for w in workers]
    weights = [float(room) for room in worker_room]
    n_layers = arch.n_layers
    pool_room = local_room + sum(worker_room)
    proportional = round(n_layers * local_room / pool_room) if pool_room else n_layers
    if not workers:
        proportional = n_layers
    candidates = sorted(range(n_layers + 1), key=lambda k: (abs(k - proportional), -k))
    best: tuple[int, list[PoolShare]] | None = None
    for local_layers in candidates:
        shares = _shares(
            local_layers,
            per_layer=per_layer,
            local_fixed=local_fixed,
            worker_compute=worker_compute,
            weights=weights,
            profile=profile,
            workers=workers,
        )
        if all(share.fits for share in shares):
            best = (local_layers, shares)
            break
    seconds_alone = 1 / alone.speed.generation_tps if alone.speed.generation_tps > 0 else 0.0
    activation_bytes = 2 * arch.n_embd * 4
    if best is None:
        shares = _shares(
            proportional,
            per_layer=per_layer,
            local_fixed=local_fixed,
            worker_compute=worker_compute,
            weights=weights,
            profile=profile,
            workers=workers,
        )
        need = local_fixed + sum(per_layer) + worker_compute * len(workers)
        offered = profile.memory.available_bytes + sum(w.capacity_bytes for w in workers)
        machines = f"this computer and {len(workers)} worker{'s' * (len(workers) != 1)}"
        return PoolPlan(
            model=layout.name,
            verdict="does-not-fit",
            n_layers=n_layers,
            gpu_layers=n_layers - proportional,
            tensor_split=tuple(weights),
            shares=tuple(shares),
            generation_tps=0.0,
            network_seconds_per_token=0.0,
            n_ctx=cells.total,
            reasons=(
                f"does not fit even pooled: needs {need / GIB:.1f} GiB but {machines} offer"
                f" {offered / GIB:.1f} GiB",
            ),
        )
    local_layers, shares = best
    used = [share for share in shares[1:] if share.layers]
    network = sum(
        ROUND_TRIPS_PER_TOKEN * member.rtt_s + activation_bytes / ASSUMED_NETWORK_BYTES_PER_S
        for member, share in zip(workers, shares[1:], strict=True)
        if share.layers
    )
    seconds = seconds_alone + network
    verdict: PoolVerdict = "fits-pooled" if used else "fits-here"
    reasons = [f"{share.name}: {share.layers} layers" for share in shares if share.layers]
    if alone.runs and used:
        reasons.append("it also fits on this computer alone (without the network's cost)")
    return PoolPlan(
        model=layout.name,
        verdict=verdict,
        n_layers=n_layers,
        gpu_layers=n_layers - local_layers,
        tensor_split=tuple(weights),
        shares=tuple(shares),
        generation_tps=1 / seconds if seconds > 0 else 0.0,
        network_seconds_per_token=network,
        n_ctx=cells.total,
        reasons=tuple(reasons),
    )


def _shares(
    local_layers: int,
    *,
    per_layer: list[int],
    local_fixed: int,
    worker_compute: int,
    weights: list[float],
    profile: HardwareProfile,
    workers: list[PoolMember],
) -> list[PoolShare]:
    machines = _layer_machines(len(per_layer), local_layers, weights)
    held = [0] * (len(workers) + 1)
    layers = [0] * (len(workers) + 1)
    for layer, machine in enumerate(machines):
        held[machine] += per_layer[layer]
        layers[machine] += 1
    shares = [
        PoolShare("this computer", layers[0], local_fixed + held[0], profile.memory.available_bytes)
    ]
    for index, worker in enumerate(workers, start=1):
        total = held[index] + (worker_compute if layers[index] else 0)
        shares.append(PoolShare(worker.name, layers[index], total, worker.capacity_bytes))
    return shares
