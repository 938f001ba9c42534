"""This node's capacity measured from a real running backend (the starter model over HTTP), the
measured speeds and the worker record, then registered and routed through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gbdesk.app.fleet import capacity_source, this_node_capacity
from gbdesk.botserver import read_config_csv
from gbdesk.cli import main
from gbdesk.fit.measured import record_measured
from gbdesk.hardware.address import lan_address
from gbdesk.hardware.probe import probe
from gbdesk.hardware.rpc import WorkerRecord, write_worker_record
from gbdesk.paths import app_paths
from gbdesk.settings import load_settings
from tests.backend.conftest import RunningBackend, start_backend
from tests.free_ports import free_port
from tests.support.processes import child_process, read_until

pytestmark = [pytest.mark.postgres, pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(
    starter_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBackend]:
    """The starter model with 2 slots of 512 tokens, on an ephemeral port."""
    home = tmp_path_factory.mktemp("capacity-home")
    with pytest.MonkeyPatch.context() as patch:  # the backend writes into its own home only
        patch.setenv("GBDESK_HOME", str(home))
        running = start_backend(starter_model, ctx=1024, parallel=2)
        yield running
        running.stop.set()
        running.thread.join(30)


@pytest.fixture
def this_machine(served: RunningBackend, monkeypatch: pytest.MonkeyPatch) -> RunningBackend:
    """Settings that name the running backend's port; its speed measured; a worker running."""
    monkeypatch.setenv("GBDESK_BACKEND_PORT", served.url.rsplit(":", 1)[1])
    cpu = probe().cpu
    model_file = Path(served.options.model).name
    record_measured(
        model_file,
        generation_tps=41.5,
        prompt_tps=0.0,
        cpu_brand=cpu.brand,
        physical_cores=cpu.physical_cores,
        source="serve",
    )
    record = WorkerRecord(
        pid=os.getpid(),
        host="0.0.0.0",
        port=50099,
        memory_limit_bytes=2**30,
        started_at=time.time(),
    )
    write_worker_record(app_paths().data_dir, record)
    return served


def test_the_capacity_comes_from_the_backend_the_measures_and_the_worker(
    this_machine: RunningBackend,
) -> None:
    capacity = this_node_capacity(load_settings())
    port = this_machine.url.rsplit(":", 1)[1]
    assert capacity.llm_url == f"http://127.0.0.1:{port}/v1" and not capacity.reachable
    assert capacity.llm_model == Path(this_machine.options.model).name
    assert capacity.slots == 2 and capacity.context_tokens == 512  # 1024 shared by 2 slots
    assert capacity.tokens_per_second == 41.5
    lan = lan_address()
    assert capacity.worker_endpoint == f"{lan or '127.0.0.1'}:50099"
    assert capacity.worker_total_bytes == 2**30
    assert capacity.worker_free_bytes is not None and capacity.worker_free_bytes <= 2**30

    # The heartbeat's source measures the same at each beat.
    assert capacity_source(load_settings())() == capacity

    # Told another address, the backend's URL is that address.
    chosen = this_node_capacity(load_settings(), advertise="192.0.2.44")
    assert chosen.llm_url == f"http://192.0.2.44:{port}/v1" and chosen.reachable
    assert chosen.worker_endpoint == "192.0.2.44:50099"


def test_register_fleet_and_route_this_machines_tenant(
    this_machine: RunningBackend,
    fresh_db: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["shard", "register", "--database-url", fresh_db, "--tenant", "gamma"]
    assert main([*args, "--shard-id", "3"]) == 0
    out = capsys.readouterr().out
    port = this_machine.url.rsplit(":", 1)[1]
    assert f"http://127.0.0.1:{port}/v1  (this machine only)" in out

    assert main(["fleet", "--json"]) == 0  # the registry this node registered in
    listed = json.loads(capsys.readouterr().out)
    (node,) = listed["nodes"]
    assert node["node_id"] == listed["this_node_id"] and node["tenants"] == ["gamma"]
    assert (node["slots"], node["context_tokens"], node["tokens_per_second"]) == (2, 512, 41.5)
    assert node["llm_model"] == Path(this_machine.options.model).name
    assert not node["llm_url_reachable"] and node["state"] == "live"

    # The tenant's node is this machine: its loopback URL is right here, no key needed.
    bot = tmp_path / "gamma.gbai"
    (bot / "gamma.gbot").mkdir(parents=True)
    assert main(["botserver-config", "--tenant", "gamma", "--bot-dir", str(bot)]) == 0
    config = read_config_csv(bot / "gamma.gbot" / "config.csv")
    assert config["llm-url"] == f"http://127.0.0.1:{port}"
    assert config["llm-model"] == node["llm_model"]
    assert load_settings().botserver_config_csv == str(bot / "gamma.gbot" / "config.csv")

    # Re-registered with an address other machines use: the fleet says so at once.
    assert main(["shard", "register", "--advertise-host", "192.0.2.45"]) == 0
    capsys.readouterr()
    assert main(["fleet", "--json"]) == 0
    (node,) = json.loads(capsys.readouterr().out)["nodes"]
    assert node["llm_url"] == f"http://192.0.2.45:{port}/v1" and node["llm_url_reachable"]
    # ... and the heartbeat keeps it (remembered in shard.json).
    assert main(["shard", "heartbeat"]) == 0
    capsys.readouterr()
    assert main(["fleet", "--json"]) == 0
    (node,) = json.loads(capsys.readouterr().out)["nodes"]
    assert node["llm_url"] == f"http://192.0.2.45:{port}/v1" and node["slots"] == 2


def test_a_worker_and_a_backend_started_from_the_cli_keep_the_row_current(
    fresh_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """`gbdesk worker` and `gbdesk serve` beat for a registered node: the fleet then shows the
    worker with its memory, and the served model with its slots (both processes see the
    backend where the settings say it listens)."""
    assert main(["shard", "register", "--database-url", fresh_db, "--shard-id", "5"]) == 0
    capsys.readouterr()
    worker_port, serve_port = free_port(), free_port()
    monkeypatch.setenv("GBDESK_BACKEND_PORT", str(serve_port))
    logs = (tmp_path / "worker.log", tmp_path / "serve.log")  # why a process failed, if one does
    worker_argv = [
        sys.executable,
        "-m",
        "gbdesk",
        "worker",
        f"--port={worker_port}",
        "--memory=512",
    ]
    serve_argv = [sys.executable, "-m", "gbdesk", "serve", "--parallel", "3"]
    with (
        logs[0].open("w") as worker_log,
        logs[1].open("w") as serve_log,
        child_process(worker_argv, stdout=subprocess.PIPE, stderr=worker_log, text=True) as worker,
        child_process(serve_argv, stdout=subprocess.PIPE, stderr=serve_log, text=True) as serve,
    ):
        # llama.cpp's server prints its banner first
        for process, ready in ((worker, "gbdesk worker ready"), (serve, "gbdesk backend ready")):
            assert ready in read_until(process.stdout, ready), logs

        def row() -> dict:
            assert main(["fleet", "--json"]) == 0
            (node,) = json.loads(capsys.readouterr().out)["nodes"]
            return node

        deadline = time.monotonic() + 60
        node = row()
        while (node["worker_endpoint"] is None or node["slots"] != 3) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.5)
            node = row()
        assert node["worker_endpoint"] == f"127.0.0.1:{worker_port}"
        assert 0 < node["worker_free_bytes"] <= 512 * 2**20
        assert node["slots"] == 3 and node["llm_model"]
        assert node["state"] == "live"
        for process in (serve, worker):
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in (serve, worker)]
    assert codes == [0, 0], "\n".join(log.read_text() for log in logs)
