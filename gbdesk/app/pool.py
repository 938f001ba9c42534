"""Models that run only with other machines' help: the catalogue planned over RPC workers.

Both faces use it: `gbdesk recommend --rpc HOST:PORT,...` and the desktop app when the
``rpc_workers`` setting names workers. The workers are asked over the RPC protocol what they
offer (:func:`gbdesk.hardware.rpc.probe_worker`); each catalogue model x quant that does not
fit this machine alone is planned over the pool (:func:`gbdesk.fit.pool.plan_pool`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gbdesk.catalog.loader import Catalog, load_catalog
from gbdesk.fit.calibration import Calibration
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.layout import layout_from_catalog
from gbdesk.fit.pool import PoolMember, PoolPlan, plan_pool
from gbdesk.hardware.profile import HardwareProfile
from gbdesk.hardware.rpc import parse_workers, probe_worker, round_trip_s


@dataclass(frozen=True)
class PooledOption:
    """A catalogue model x quant that fits only across the pool, with its plan."""

    model_id: str
    model_name: str
    quant: str
    plan: PoolPlan

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "model_name": self.model_name,
            "quant": self.quant,
            "plan": self.plan.to_json(),
        }


def pool_members(workers: str) -> list[PoolMember]:
    """Each worker of ``"HOST:PORT,..."`` with the memory it offers and its round trip.

    Raises:
        WorkerError: an address is invalid or a worker cannot be used (named in the message).
    """
    members = []
    for address in parse_workers(workers):
        status = probe_worker(address)
        members.append(PoolMember(str(address), status.free_bytes, round_trip_s(address)))
    return members


def pooled_options(
    profile: HardwareProfile,
    members: list[PoolMember],
    settings: FitSettings | None = None,
    *,
    catalog: Catalog | None = None,
    calibration: Calibration | None = None,
) -> list[PooledOption]:
    """Chat models of the catalogue that do not fit ``profile`` alone but fit with ``members``,
    fastest first.

    Raises:
        UsageError: the settings are out of range.
    """
    settings = settings or FitSettings()
    catalog = catalog or load_catalog()
    options = []
    for entry in catalog.entries:
        if entry.is_embedding_model:
            continue
        for quant in entry.quants:
            layout = layout_from_catalog(entry, quant)
            if estimate_fit(layout, profile, settings, calibration=calibration).runs:
                continue
            plan = plan_pool(layout, profile, members, settings, calibration=calibration)
            if plan.verdict == "fits-pooled":
                options.append(PooledOption(entry.id, entry.name, quant.name, plan))
    options.sort(key=lambda option: -option.plan.generation_tps)
    return options
