"""RPC benchmark: a model split over two loopback workers, gbdesk against llama.cpp's own tools.

gbdesk: `gbdesk worker` x2 and `gbdesk serve --rpc`. The peer: llama.cpp's `rpc-server` x2 and
`llama-server --rpc` from ../shared/tools/build-llama-server.sh (the same llama.cpp commit),
placed exactly as gbdesk's plan places the layers (`-ngl` and `--tensor-split` from the plan
gbdesk prints), and with llama.cpp's own default (`-ngl 99`: every layer on the workers).
Each also runs on this machine alone. Printed: single-stream generation tokens/s (median of
the rounds, rounds alternate between the set-ups), load time (start to a ready /health) and
the ratios split/local and gbdesk/peer.

Loopback has no network: the figures show the RPC engine's own cost (serialising each graph,
the round trips through the kernel), not a LAN's latency or bandwidth.

    python bench/rpc_bench.py [--model PATH] [--tokens 96] [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from serve_bench import Server, llama_server_binary, stream_chat  # noqa: E402

from gbdesk.backend.model import cpu_has_amx  # noqa: E402
from gbdesk.starter import require_starter_model  # noqa: E402

PROMPT = "Tell the story of a lighthouse keeper and the first snow."
CTX = 4096


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Workers:
    """Two RPC servers on loopback (gbdesk worker or llama.cpp's rpc-server)."""

    name: str
    commands: list[list[str]]
    ports: list[int]
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, log_dir: Path) -> None:
        for index, command in enumerate(self.commands):
            handle = open(log_dir / f"{self.name}-{index}.log", "wb")  # noqa: SIM115
            self.processes.append(
                subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
            )
        for port in self.ports:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    time.sleep(0.1)
            else:
                raise SystemExit(f"{self.name}: no worker on port {port}")

    @property
    def rpc(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


@dataclass
class Setup:
    """One way of serving: a server, maybe with workers."""

    name: str
    server: Server
    workers: Workers | None = None
    rates: list[float] = field(default_factory=list)
    load_seconds: list[float] = field(default_factory=list)

    def run_round(self, log_dir: Path, tokens: int, seed: int) -> None:
        if self.workers is not None:
            self.workers.start(log_dir)
        started = time.perf_counter()
        self.server.start(log_dir)
        try:
            self.server.wait_ready()
            self.load_seconds.append(time.perf_counter() - started)
            stream_chat(self.server, PROMPT, 8, seed)  # warm-up: first graph, caches
            stream = stream_chat(self.server, PROMPT, tokens, seed)
            if stream.error or stream.tokens < tokens // 2:
                raise SystemExit(f"{self.name}: {stream.error or 'too few tokens'}")
            self.rates.append(stream.rate)
        finally:
            self.server.stop()
            if self.workers is not None:
                self.workers.stop()


def gbdesk_plan(model: Path, rpc: str, threads: int, home: Path) -> dict:
    """The plan `gbdesk serve --rpc` makes (from its ready event), to place the peer alike."""
    gbdesk = [sys.executable, "-m", "gbdesk"]
    ports = [int(item.rsplit(":", 1)[1]) for item in rpc.split(",")]
    workers = Workers("plan-workers", [[*gbdesk, "worker", "--port", str(p)] for p in ports], ports)
    env = {**os.environ, "GBDESK_HOME": str(home)}
    workers.start(home)
    try:
        command = [*gbdesk, "serve", "--events", "--model", str(model), "--rpc", rpc]
        command += ["--port", str(free_port()), "--parallel", "1", "--ctx", str(CTX)]
        command += ["--threads", str(threads)]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                event = json.loads(line)
                if event["type"] == "ready":
                    return event["pool"]
                if event["type"] == "error":
                    raise SystemExit(f"gbdesk serve --rpc failed: {event['error']['message']}")
        finally:
            process.terminate()
            process.wait(30)
            process.stdout.close()
    finally:
        workers.stop()
    raise SystemExit("gbdesk serve --rpc exited before it was ready")


def peer_binaries(explicit: str | None) -> tuple[Path, Path]:
    """llama-server and rpc-server of the same llama.cpp commit as the installed package.

    ../shared/tools/build-llama-server.sh builds llama-server and asks CMake for a target
    `rpc-server`, which this llama.cpp calls ggml-rpc-server: bench/build-rpc-server.sh builds
    that one into the same folder (after which the shared script finds all three).
    """
    if explicit:
        server = Path(explicit)
        return server, server.parent / "rpc-server"
    import importlib.metadata

    version = importlib.metadata.version("llama-cpp-python")
    cache = Path(os.environ.get("GBDESK_BENCH_CACHE", Path.home() / ".cache" / "gbdesk-bench"))
    folder = cache / f"llama.cpp-{version}" / "build" / "bin"
    if not (folder / "llama-server").exists():
        try:
            return _with_rpc_server(llama_server_binary(None))
        except subprocess.CalledProcessError:
            if not (folder / "llama-server").exists():
                raise  # the shared script failed before llama-server: its output says why
    return _with_rpc_server(folder / "llama-server")


def _with_rpc_server(llama_server: Path) -> tuple[Path, Path]:
    rpc_server = llama_server.parent / "rpc-server"
    if not rpc_server.exists():
        subprocess.run(
            ["bash", str(ROOT / "bench" / "build-rpc-server.sh"), str(llama_server.parent)],
            check=True,
            env={**os.environ, "PYTHON": sys.executable},
        )
    return llama_server, rpc_server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a GGUF file (default: the starter model)")
    parser.add_argument("--tokens", type=int, default=96, help="tokens generated per stream")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--llama-server", help="llama-server binary (default: build it)")
    args = parser.parse_args()

    model = Path(args.model) if args.model else require_starter_model()
    llama_server, rpc_server = peer_binaries(args.llama_server)
    home = Path(tempfile.mkdtemp(prefix="gbdesk-rpc-bench-"))
    env_home = {**os.environ, "GBDESK_HOME": str(home)}
    os.environ.update(env_home)
    gbdesk = [sys.executable, "-m", "gbdesk"]
    threads = str(args.threads)
    ports = [free_port(), free_port()]
    rpc = ",".join(f"127.0.0.1:{port}" for port in ports)
    plan = gbdesk_plan(model, rpc, args.threads, home)
    n_layers = plan["n_layers"]
    shares = [share["layers"] for share in plan["shares"]]
    print(f"model {model.name}: {n_layers} layers; gbdesk's plan {plan['shares']}")

    def gbdesk_server(name: str, *extra: str) -> Server:
        port = free_port()
        command = [*gbdesk, "serve", "--model", str(model), "--port", str(port)]
        command += ["--parallel", "1", "--ctx", str(CTX), "--threads", threads, *extra]
        return Server(name, command, port)

    def peer_server(name: str, *extra: str) -> Server:
        port = free_port()
        command = [str(llama_server), "-m", str(model), "--port", str(port), "-np", "1"]
        command += ["-c", str(CTX), "-t", threads, "-tb", threads, "--no-webui", *extra]
        if cpu_has_amx():
            command.append("--no-repack")
        return Server(name, command, port)

    def gbdesk_workers() -> Workers:
        return Workers(
            "gbdesk-workers",
            [[*gbdesk, "worker", "--port", str(p), "--threads", threads] for p in ports],
            ports,
        )

    def peer_workers() -> Workers:
        return Workers(
            "peer-workers",
            [[str(rpc_server), "-p", str(p), "-t", threads] for p in ports],
            ports,
        )

    matched_split = ",".join(str(layers) for layers in shares[1:])
    setups = [
        Setup("gbdesk local", gbdesk_server("gbdesk-local")),
        Setup("gbdesk split", gbdesk_server("gbdesk-split", "--rpc", rpc), gbdesk_workers()),
        Setup("llama-server local", peer_server("peer-local")),
        Setup(
            "llama-server split (gbdesk's placement)",
            peer_server(
                "peer-split",
                "--rpc",
                rpc,
                "-ngl",
                str(plan["gpu_layers"]),
                "--tensor-split",
                matched_split,
            ),
            peer_workers(),
        ),
        Setup(
            "llama-server split (-ngl 99, its default placement)",
            peer_server("peer-split-all", "--rpc", rpc, "-ngl", "99"),
            peer_workers(),
        ),
    ]
    log_dir = home / "bench-logs"
    log_dir.mkdir()
    for round_index in range(args.rounds):
        for setup in setups:
            setup.run_round(log_dir, args.tokens, seed=round_index)
            print(
                f"  round {round_index + 1}: {setup.name}: {setup.rates[-1]:.1f} tokens/s,"
                f" ready in {setup.load_seconds[-1]:.2f} s",
                flush=True,
            )

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    print()
    print(f"{'set-up':52} {'tokens/s':>9} {'load s':>7}")
    for setup in setups:
        print(f"{setup.name:52} {median(setup.rates):9.1f} {median(setup.load_seconds):7.2f}")
    by_name = {setup.name: median(setup.rates) for setup in setups}
    peer_split = by_name["llama-server split (gbdesk's placement)"]
    peer_all = by_name["llama-server split (-ngl 99, its default placement)"]
    ratios = [
        ("gbdesk split / gbdesk local", by_name["gbdesk split"] / by_name["gbdesk local"], ""),
        ("llama-server split / local", peer_split / by_name["llama-server local"], ""),
        (
            "gbdesk split / llama-server split",
            by_name["gbdesk split"] / peer_split,
            "target >= 0.90",
        ),
        ("gbdesk split / llama-server -ngl 99", by_name["gbdesk split"] / peer_all, ""),
    ]
    print()
    for label, ratio, note in ratios:
        print(f"{label:38} {ratio:5.2f}  {note}")
    print(f"({args.rounds} rounds, {args.tokens} tokens each, {threads} threads, median shown)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
