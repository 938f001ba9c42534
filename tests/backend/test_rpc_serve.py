"""`gbdesk serve --rpc`: the starter model split over two real `gbdesk worker` processes.

Everything here is real: llama.cpp's RPC server in two worker processes on loopback, the
backend in its own process, the official openai client. Loopback cannot show the network's
cost (bench/rpc_bench.py measures speed); these tests show that the split is llama.cpp's, that
its answers are the same tokens as on one machine, and that a lost worker is one sentence.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from gbdesk.backend.worker import WorkerOptions
from gbdesk.backend.worker_process import WorkerProcess
from gbdesk.errors import ExitCode
from tests.backend.conftest import http_request
from tests.free_ports import free_port

openai = pytest.importorskip("openai")

pytestmark = [pytest.mark.slow, pytest.mark.model]
PROMPT = [{"role": "user", "content": "Name three colours of the rainbow."}]


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    url: str
    ready: dict[str, Any]

    def client(self) -> Any:
        return openai.OpenAI(base_url=self.url + "/v1", api_key="none", max_retries=0)

    def stop(self, *, signal_it: bool = True) -> int:
        if signal_it and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()


def start_serve(*args: str, home: Path) -> ServeProcess:
    """`gbdesk serve --events ARGS` in its own process, once ready (or failed)."""
    port = free_port()
    env = {**os.environ, "GBDESK_HOME": str(home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "gbdesk", "serve", "--events", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert process.stdout is not None
    for line in process.stdout:
        event = json.loads(line)
        if event["type"] in {"ready", "error"}:
            return ServeProcess(process, f"http://127.0.0.1:{port}", event)
    return ServeProcess(process, f"http://127.0.0.1:{port}", {"type": "exited"})


def answer_tokens(serve: ServeProcess) -> tuple[str, list[str]]:
    """The greedy answer and its tokens (as logprobs name them)."""
    with serve.client() as client:
        reply = client.chat.completions.create(
            model="x", messages=PROMPT, max_tokens=24, temperature=0, logprobs=True
        )
    choice = reply.choices[0]
    return choice.message.content, [item.token for item in choice.logprobs.content]


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[WorkerProcess]]:
    logs = tmp_path_factory.mktemp("workers")
    started = [WorkerProcess(WorkerOptions(port=free_port()), logs / f"w{i}.log") for i in (1, 2)]
    for worker in started:
        worker.start()
    yield started
    for worker in started:
        worker.stop()


def rpc_flag(workers: list[WorkerProcess]) -> str:
    return ",".join(str(worker.address) for worker in workers)


def rss(pid: int | None) -> int:
    assert pid is not None
    return int(psutil.Process(pid).memory_info().rss)


def test_split_over_two_workers_answers_the_same_tokens_as_one_machine(
    workers: list[WorkerProcess], gbdesk_home: Path
) -> None:
    before = [rss(worker.pid) for worker in workers]
    split = start_serve("--rpc", rpc_flag(workers), "--parallel", "1", home=gbdesk_home)
    try:
        assert split.ready["type"] == "ready", split.ready
        plan = split.ready["pool"]
        assert plan["verdict"] == "fits-pooled"
        shares = plan["shares"]
        assert [share["machine"] for share in shares[1:]] == [str(w.address) for w in workers]
        assert all(share["layers"] > 0 for share in shares), shares
        assert sum(share["layers"] for share in shares) == plan["n_layers"]
        # The workers hold their layers: each grew by most of what the plan gives it.
        grown = [rss(worker.pid) - start for worker, start in zip(workers, before, strict=True)]
        for share, growth in zip(shares[1:], grown, strict=True):
            assert growth >= 0.6 * share["bytes"], (share, growth)
        split_answer = answer_tokens(split)
    finally:
        assert split.stop() == 0
    local = start_serve("--parallel", "1", home=gbdesk_home)
    try:
        assert local.ready["type"] == "ready"
        assert "pool" not in local.ready
        local_answer = answer_tokens(local)
    finally:
        local.stop()
    assert split_answer[1], "no tokens"
    assert split_answer == local_answer


def test_a_worker_killed_mid_stream_is_one_sentence_and_the_server_stays_up(
    gbdesk_home: Path, tmp_path: Path
) -> None:
    doomed = [
        WorkerProcess(WorkerOptions(port=free_port()), tmp_path / f"w{i}.log") for i in (1, 2)
    ]
    for worker in doomed:
        worker.start()
    serve = start_serve("--rpc", rpc_flag(doomed), "--parallel", "2", home=gbdesk_home)
    try:
        assert serve.ready["type"] == "ready", serve.ready
        client = serve.client()
        stream = client.chat.completions.create(
            model="x",
            messages=[{"role": "user", "content": "Tell a very long story about a ship."}],
            max_tokens=400,
            stream=True,
        )
        lost = doomed[1]
        pieces = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in stream:
                pieces.append(chunk)
                if len(pieces) == 3:
                    os.kill(lost.pid or 0, signal.SIGKILL)
        assert len(pieces) >= 3
        message = str(caught.value)
        assert f"the worker {lost.address} stopped answering" in message
        assert "gbdesk worker" in message
        # The server keeps answering: /health says why it cannot generate.
        status, body = http_request(serve.url + "/health")
        assert status == 503
        assert str(lost.address) in json.loads(body)["error"]["message"]
        with pytest.raises(openai.APIStatusError) as refused:
            client.chat.completions.create(model="x", messages=PROMPT, max_tokens=4)
        stream.close()
        client.close()
        assert refused.value.status_code == 503
        assert str(lost.address) in str(refused.value)
    finally:
        started = time.monotonic()
        assert serve.stop() == 0
        assert time.monotonic() - started < 30
        for worker in doomed:
            worker.stop()


def test_serve_refuses_to_start_on_a_worker_that_is_not_running(gbdesk_home: Path) -> None:
    port = free_port()
    serve = start_serve("--rpc", f"127.0.0.1:{port}", home=gbdesk_home)
    assert serve.ready["type"] == "error"
    error = serve.ready["error"]
    assert error["kind"] == "WorkerError"
    assert f"127.0.0.1:{port} is not running" in error["message"]
    assert "gbdesk worker" in error["fix"]
    assert serve.stop(signal_it=False) == ExitCode.WORKER


def test_serve_refuses_junk_worker_addresses_before_anything_else(gbdesk_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gbdesk", "serve", "--rpc", "10.0.0.2:50052,10.0.0.2:50052"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "GBDESK_HOME": str(gbdesk_home)},
    )
    assert result.returncode == ExitCode.WORKER
    assert "listed twice" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_says_when_even_the_pool_is_too_small(gbdesk_home: Path, tmp_path: Path) -> None:
    # A million-token context needs ~24 GiB of KV cache for the starter: more than this machine
    # and a worker offering 64 MiB hold together.
    small = WorkerProcess(WorkerOptions(port=free_port(), memory_mib=64), tmp_path / "w.log")
    small.start()
    try:
        serve = start_serve(
            "--rpc", str(small.address), "--ctx", "1048576", "--parallel", "1", home=gbdesk_home
        )
        assert serve.ready["type"] == "error"
        error = serve.ready["error"]
        assert error["kind"] == "WorkerError"
        assert "does not fit even pooled" in error["message"]
        assert "this computer and 1 worker offer" in error["message"]
        assert "--memory" in error["fix"] or "add a worker" in error["fix"]
        assert serve.stop(signal_it=False) == ExitCode.WORKER
        # The worker is free again for the next backend.
        assert small.running
    finally:
        small.stop()
