"""The pool planner: a model's layers over this machine and RPC workers, as llama.cpp splits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gbdesk.catalog.loader import load_catalog
from gbdesk.catalog.presets import load_hardware
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.layout import ModelLayout, layout_from_catalog, layout_from_gguf
from gbdesk.fit.pool import PoolMember, _layer_machines, plan_pool
from gbdesk.gguf import read_gguf
from gbdesk.hardware.profile import HardwareProfile

GIB = 1 << 30


def machine(ram_gib: float) -> HardwareProfile:
    """A CPU-only desktop with ``ram_gib`` available (a preset's CPU, its GPUs removed)."""
    profile = load_hardware("rtx-3060-12gb")
    memory = dataclasses.replace(
        profile.memory,
        total_bytes=int(ram_gib * GIB) * 2,
        available_bytes=int(ram_gib * GIB),
    )
    return dataclasses.replace(profile, gpus=(), memory=memory)


def catalog_layout(model_id: str, quant: str) -> ModelLayout:
    entry = load_catalog().get(model_id)
    assert entry is not None
    chosen = entry.quant(quant)
    assert chosen is not None
    return layout_from_catalog(entry, chosen)


def test_layer_machines_mirror_llamas_split() -> None:
    # 10 layers, 4 kept here, the 6 offloaded shared 1:2 between two workers.
    assert _layer_machines(10, 4, [1.0, 2.0]) == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert _layer_machines(4, 4, [1.0]) == [0, 0, 0, 0]
    assert _layer_machines(3, 0, [1.0, 1.0, 1.0]) == [1, 2, 3]


def test_a_model_too_big_for_one_machine_fits_across_three() -> None:
    layout = catalog_layout("glm-4-9b-chat", "Q8_0")
    here = machine(4)
    settings = FitSettings(n_ctx=4096, n_parallel=1)
    assert not estimate_fit(layout, here, settings).runs
    workers = [PoolMember("10.0.0.2:50052", 4 * GIB, 0.0005), PoolMember("10.0.0.3:50052", 4 * GIB)]
    plan = plan_pool(layout, here, workers, settings)
    assert plan.verdict == "fits-pooled"
    assert plan.machines == 3
    assert all(share.fits for share in plan.shares)
    assert sum(share.layers for share in plan.shares) == layout.architecture.n_layers
    assert plan.gpu_layers == plan.shares[1].layers + plan.shares[2].layers
    assert "fits across 3 machines" in plan.summary()
    # The network costs time: slower than the model alone on one (big enough) machine.
    alone = estimate_fit(layout, machine(64), settings)
    assert 0 < plan.generation_tps < alone.speed.generation_tps
    assert plan.network_seconds_per_token > 0
    assert plan.to_json()["assumptions"]


def test_shares_follow_the_memory_each_machine_offers() -> None:
    layout = catalog_layout("llama-3.1-8b-instruct", "Q4_K_M")
    plan = plan_pool(
        layout,
        machine(2),
        [PoolMember("big:1", 12 * GIB), PoolMember("small:1", 4 * GIB)],
        FitSettings(n_ctx=2048),
    )
    assert plan.runs
    here, big, small = plan.shares
    assert big.layers > small.layers > 0
    assert here.layers < big.layers


def test_too_little_memory_even_pooled_says_how_much_is_missing() -> None:
    layout = catalog_layout("glm-4-9b-chat", "Q8_0")
    plan = plan_pool(layout, machine(2), [PoolMember("10.0.0.2:50052", 1 * GIB)], FitSettings())
    assert plan.verdict == "does-not-fit"
    assert "does not fit even pooled" in plan.reasons[0]
    assert "this computer and 1 worker offer" in plan.reasons[0]
    assert plan.generation_tps == 0


def test_no_workers_is_this_machine_alone() -> None:
    layout = catalog_layout("llama-3.2-3b-instruct", "Q4_K_M")
    plan = plan_pool(layout, machine(16), [], FitSettings())
    assert plan.verdict == "fits-here"
    assert plan.gpu_layers == 0
    assert plan.shares[0].layers == layout.architecture.n_layers


@settings(max_examples=150, deadline=None)
@given(
    local=st.floats(0, 64),
    workers=st.lists(st.floats(0, 64), min_size=0, max_size=5),
    ctx=st.sampled_from([512, 4096, 32768]),
)
def test_any_pool_gives_a_consistent_plan(local: float, workers: list[float], ctx: int) -> None:
    layout = catalog_layout("mistral-7b-instruct-v0.2", "Q4_K_M")
    members = [PoolMember(f"10.0.0.{i}:50052", int(gib * GIB)) for i, gib in enumerate(workers)]
    plan = plan_pool(layout, machine(local), members, FitSettings(n_ctx=ctx))
    assert sum(share.layers for share in plan.shares) == layout.architecture.n_layers
    assert len(plan.tensor_split) == len(members)
    if plan.runs:
        assert all(share.fits for share in plan.shares)
        assert plan.generation_tps > 0
    else:
        assert plan.reasons and plan.generation_tps == 0


def test_the_plan_for_the_starter_matches_its_real_header(starter_model: Path) -> None:
    layout = layout_from_gguf(read_gguf(starter_model), starter_model.name)
    plan = plan_pool(
        layout, machine(8), [PoolMember("a:1", 8 * GIB), PoolMember("b:1", 8 * GIB)], FitSettings()
    )
    assert plan.verdict == "fits-pooled"
    assert [share.layers for share in plan.shares] == [10, 10, 10]


@pytest.mark.parametrize("bad", [-1, 0])
def test_settings_are_checked(bad: int) -> None:
    from gbdesk.errors import UsageError

    with pytest.raises(UsageError):
        plan_pool(catalog_layout("llama-3.2-3b-instruct", "Q4_K_M"), machine(8), [],
                  FitSettings(n_ctx=bad))  # fmt: skip
