"""The models that fit only with the workers of Settings > Workers, on the Models page and in the
wizard: real `gbdesk worker` children probed over llama.cpp's RPC protocol, the real catalogue
planned over the pool, real Qt widgets."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from gbdesk.backend.worker import WorkerOptions
from gbdesk.backend.worker_process import WorkerProcess
from gbdesk.hardware.profile import HardwareProfile
from gbdesk.hardware.rpc import WorkerError, parse_workers, probe_worker
from tests.free_ports import free_port

GIB = 1 << 30
WORKER_MIB = 4096  # each worker offers 4 GiB (the cap: this machine has more available)
# With 4 GiB here and two such workers, a 9B model at Q8_0 fits only across the three machines
# (tests/fit/test_pool.py plans the same model on the same pool).
POOLED = ("glm-4-9b-chat", "Q8_0")


def small_machine(ram_gib: float = 4) -> HardwareProfile:
    """A CPU-only desktop with ``ram_gib`` available: a preset's CPU, its GPUs removed."""
    from gbdesk.catalog.presets import load_hardware

    profile = load_hardware("rtx-3060-12gb")
    memory = dataclasses.replace(
        profile.memory, total_bytes=int(ram_gib * GIB) * 2, available_bytes=int(ram_gib * GIB)
    )
    return dataclasses.replace(profile, gpus=(), memory=memory)


def start_worker(tmp_path: Path, name: str, port: int | None = None) -> WorkerProcess:
    worker = WorkerProcess(
        WorkerOptions(port=port or free_port(), memory_mib=WORKER_MIB), tmp_path / f"{name}.log"
    )
    worker.start()
    return worker


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[str]:
    """Two real workers on loopback, as the Workers setting lists them."""
    started = []
    try:
        for name in ("worker-a", "worker-b"):
            started.append(start_worker(tmp_path, name))
        yield ",".join(str(worker.address) for worker in started)
    finally:
        for worker in started:
            worker.stop()


def small_pool_state(state, workers: str):
    state.set_profile(small_machine())
    state.update_settings(rpc_workers=workers, context_length=4096, parallel=1)
    return state


def expected_pooled(state) -> set[tuple[str, str]]:
    """What the core itself finds for the same pool (the page must list exactly these)."""
    from gbdesk.app.pool import pool_members, pooled_options
    from gbdesk.fit.calibration import load_calibration
    from gbdesk.fit.estimator import FitSettings

    members = pool_members(state.settings.rpc_workers)
    options = pooled_options(
        state.profile,
        members,
        FitSettings(n_ctx=4096, n_parallel=1),
        calibration=load_calibration(),
    )
    return {(option.model_id, option.quant) for option in options}


def listed(section) -> set[tuple[str, str]]:
    return {(row.model.option.model_id, row.model.option.quant) for row in section.rows}


def pooled_row(section, key: tuple[str, str]):
    return next(
        row for row in section.rows if (row.model.option.model_id, row.model.option.quant) == key
    )


@pytest.mark.slow
def test_the_models_page_lists_what_fits_only_with_the_workers(qtbot, state, workers: str) -> None:
    from gbdesk.ui.pages.models import ModelsPage

    small_pool_state(state, workers)
    page = ModelsPage(state)
    qtbot.addWidget(page)
    page.show()
    page.tabs.setCurrentIndex(2)  # From the handbook
    section = page.pooled
    qtbot.waitUntil(lambda: section.result is not None, timeout=60_000)
    assert section.isVisible() and section.banner.isHidden()
    assert section.heading.text() == "Fit only with your workers (3 machines)"
    expected = expected_pooled(state)
    assert POOLED in expected
    assert listed(section) == expected
    row = pooled_row(section, POOLED)
    split = row.split.text()
    assert split.startswith("Fits across 3 machines: this computer")
    for address in parse_workers(workers):
        assert f"{address} " in split and "layers" in split
    assert "tokens/s" in row.speed.text() and "Estimate" in row.speed.text()
    assert "1 Gbit/s network" in row.speed.toolTip()  # what the estimate assumes
    assert row.button.isEnabled() and row.button.text().startswith("Download ")
    # A model that fits this computer alone is the handbook table's, not the section's.
    qtbot.waitUntil(lambda: bool(page.recommendations), timeout=60_000)
    alone = {(r.model_id, r.quant) for r in page.recommendations if r.fit.runs}
    assert alone and not alone & listed(section)


@pytest.mark.slow
def test_the_filled_section_keeps_the_layout_rules(qtbot, state, workers: str) -> None:
    """The Models page in the main window, the handbook tab with the section filled, at the
    sizes tests/ui/test_layouts.py checks every page at."""
    from gbdesk.ui.main_window import WINDOW_SIZE, MainWindow
    from tests.ui.test_layouts import _sizes, window_problems

    small_pool_state(state, workers)
    window = MainWindow(state)
    qtbot.addWidget(window)
    window.show()
    page = window.show_page("models")
    page.tabs.setCurrentIndex(2)  # From the handbook
    qtbot.waitUntil(lambda: page.pooled.result is not None, timeout=60_000)
    qtbot.waitUntil(lambda: bool(page.recommendations), timeout=60_000)
    assert page.pooled.rows
    problems = []
    for size_name, width, height in _sizes(window, WINDOW_SIZE, real_screen=False):
        window.resize(width, height)
        qtbot.wait(50)
        problems += window_problems(window, f"models at {size_name} {width}x{height}")
    # A worker that stops: the banner takes the list's place, at every size too.
    state.update_settings(rpc_workers=f"127.0.0.1:{free_port()}")
    qtbot.waitUntil(lambda: not page.pooled.banner.isHidden(), timeout=30_000)
    for size_name, width, height in _sizes(window, WINDOW_SIZE, real_screen=False):
        window.resize(width, height)
        qtbot.wait(50)
        problems += window_problems(window, f"models, worker down, at {size_name}")
    assert problems == []


@pytest.mark.slow
def test_download_queues_the_pooled_model_in_the_apps_queue(
    qtbot, state, workers: str, hub_server, starter_model
) -> None:
    """Download on a pooled row: the app's download queue fetches it from the Hub (the local
    one, serving a real GGUF under the catalogue's file name) and it shows under Installed."""
    from gbdesk.catalog.loader import load_catalog
    from gbdesk.ui.pages.models import ModelsPage

    entry = load_catalog().get(POOLED[0])
    assert entry is not None
    quant = entry.quant(POOLED[1])
    assert quant is not None
    hub_server.add_file(entry.repo, quant.files[0], starter_model)
    small_pool_state(state, workers)
    page = ModelsPage(state)
    qtbot.addWidget(page)
    page.show()
    page.tabs.setCurrentIndex(2)
    section = page.pooled
    qtbot.waitUntil(lambda: section.result is not None, timeout=60_000)
    row = pooled_row(section, POOLED)
    row.button.click()
    assert not row.button.isEnabled()
    qtbot.waitUntil(
        lambda: row.button.text() == "Downloaded" or section.banner.level == "error",
        timeout=60_000,
    )
    assert row.button.text() == "Downloaded", section.banner.text()
    assert "Installed tab" in section.banner.text()
    qtbot.waitUntil(
        lambda: any(m.path.endswith(quant.files[0]) for m in page.installed), timeout=30_000
    )


def test_an_unreachable_worker_is_named_in_plain_words_and_the_page_goes_on(
    qtbot, state, tmp_path: Path
) -> None:
    from gbdesk.ui.pages.models import ModelsPage

    port = free_port()  # nothing listens there
    small_pool_state(state, f"127.0.0.1:{port}")
    page = ModelsPage(state)
    qtbot.addWidget(page)
    page.show()
    page.tabs.setCurrentIndex(2)
    section = page.pooled
    banner = section.banner
    qtbot.waitUntil(lambda: not banner.isHidden(), timeout=30_000)
    text = banner.text()
    assert f"the worker 127.0.0.1:{port} is not running" in text
    assert "Node page > Lend this computer" in text
    for technical in ("`", "--", "gbdesk worker", "Traceback", "Errno"):
        assert technical not in text
    assert banner.level == "error" and not section.rows
    # The rest of the page works as before: the handbook's table for this computer.
    qtbot.waitUntil(lambda: bool(page.recommendations), timeout=60_000)
    assert page.catalogue_table.rowCount() == len(page.recommendations)
    assert page.banner.isHidden()
    # The worker is started there: "Try again" lists the pool's models.
    worker = start_worker(tmp_path, "late", port)
    try:
        banner.action_button.click()
        qtbot.waitUntil(lambda: section.result is not None, timeout=60_000)
        assert banner.isHidden()
        assert section.heading.text() == "Fit only with your workers (2 machines)"
    finally:
        worker.stop()


def test_no_workers_no_section_and_it_follows_the_settings(qtbot, state) -> None:
    from gbdesk.ui.pages.models import ModelsPage

    state.set_profile(small_machine())
    assert state.settings.rpc_workers == ""
    page = ModelsPage(state)
    qtbot.addWidget(page)
    page.show()
    page.tabs.setCurrentIndex(2)
    assert page.pooled.isHidden() and page.pooled._task is None
    # Settings > Workers saved: the section appears (here: a worker that is not running) ...
    port = free_port()
    state.update_settings(rpc_workers=f"127.0.0.1:{port}")
    assert page.pooled.isVisible()
    qtbot.waitUntil(lambda: not page.pooled.banner.isHidden(), timeout=30_000)
    assert f"127.0.0.1:{port}" in page.pooled.banner.text()
    # ... and goes when the workers are removed.
    state.update_settings(rpc_workers="")
    assert page.pooled.isHidden()
    qtbot.waitUntil(lambda: page.pooled._task is None, timeout=30_000)
    assert page.pooled.isHidden() and page.pooled.banner.isHidden()


@pytest.mark.slow
def test_the_wizard_step_shows_the_pooled_section(qtbot, state, workers: str) -> None:
    from gbdesk.ui.wizard import FirstRunWizard
    from gbdesk.ui.wizard.base import WIZARD_SIZE
    from gbdesk.ui.wizard.choose_model import ChooseModelPage
    from tests.ui.test_layouts import _sizes, window_problems

    small_pool_state(state, workers)
    wizard = FirstRunWizard(state)
    qtbot.addWidget(wizard)
    wizard.show()
    index = next(i for i, p in enumerate(wizard.pages) if isinstance(p, ChooseModelPage))
    wizard.go_to(index)
    page = wizard.pages[index]
    section = page.pooled
    qtbot.waitUntil(lambda: section.result is not None, timeout=60_000)
    assert section.isVisible()
    assert section.heading.text() == "Fit only with your workers (3 machines)"
    assert listed(section) == expected_pooled(state)
    assert pooled_row(section, POOLED).split.text().startswith("Fits across 3 machines")
    # The wizard's own list is unchanged: the models for this computer, one of them picked.
    qtbot.waitUntil(lambda: bool(page.recommendations), timeout=60_000)
    assert page.chosen() is not None
    problems = []
    for size_name, width, height in _sizes(wizard, WIZARD_SIZE, real_screen=False):
        wizard.resize(width, height)
        qtbot.wait(50)
        problems += window_problems(wizard, f"choose a model at {size_name} {width}x{height}")
    assert problems == []


@pytest.mark.slow
def test_workers_serving_this_backend_are_not_asked_until_it_stops(
    qtbot, state, workers: str, starter_model
) -> None:
    """A worker serves one backend at a time: while this computer's backend holds them, the
    section says so (no 5 s wait per worker, no error) and plans once the backend stops."""
    from gbdesk.ui.pages.models import ModelsPage

    small_pool_state(state, workers)
    state.update_settings(backend_port=free_port(), context_length=1024)
    backend = state.backend
    backend.start(str(starter_model))
    qtbot.waitUntil(
        lambda: not backend.is_busy() and backend.view.phase in {"ready", "failed"},
        timeout=120_000,
    )
    assert backend.is_ready(), backend.view
    with pytest.raises(WorkerError, match="did not answer"):  # held by the backend
        probe_worker(parse_workers(workers)[0], timeout_s=1)
    page = ModelsPage(state)
    qtbot.addWidget(page)
    page.show()
    section = page.pooled
    assert section.banner.level == "info" and not section.banner.isHidden()
    assert "busy serving this computer's backend" in section.banner.text()
    assert section._task is None and section.result is None
    backend.stop()
    qtbot.waitUntil(lambda: section.result is not None, timeout=60_000)
    assert section.banner.isHidden()
    assert section.heading.text() == "Fit only with your workers (3 machines)"


@pytest.mark.parametrize(
    "workers",
    ["127.0.0.1", "host:0", "[::1]:50052", "a:1,,b:2", "127.0.0.1:1,127.0.0.1:1", "-h:5"],
)
def test_every_worker_fix_reads_as_the_desktop_apps_words(workers: str) -> None:
    from gbdesk.ui.pooled_models import plain_fix

    with pytest.raises(WorkerError) as caught:
        parse_workers(workers)
    fix = plain_fix(caught.value)
    assert fix
    for technical in ("`", "--", "gbdesk worker"):
        assert technical not in fix


def test_a_worker_that_is_not_running_gets_the_node_page_as_its_fix() -> None:
    from gbdesk.ui.pooled_models import START_WORKER, plain_fix

    (address,) = parse_workers(f"127.0.0.1:{free_port()}")
    with pytest.raises(WorkerError) as caught:
        probe_worker(address, timeout_s=2)
    assert "gbdesk worker" in (caught.value.fix or "")  # the CLI's words ...
    assert plain_fix(caught.value).startswith(START_WORKER)  # ... and the app's
