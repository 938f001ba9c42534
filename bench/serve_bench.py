"""Serving benchmark: gbdesk serve against llama.cpp's llama-server and llama-cpp-python's server.

Same model, threads, context and machine, in one run. Each server is driven by 1, 4 and 8
concurrent streaming chat clients (fixed prompts, EOS ignored so every stream asks for the same
number of tokens; 4 slots, so 8 clients queue). Rounds alternate between the servers so that
noise from a shared machine hits them alike. Then botserver's own traffic: 6 conversations at
once, 4 turns each, the whole history flattened into one user message every turn, against
``llama-server -np 6 --cont-batching`` (aggregate tokens/s and the time to first token of turns
2-4, where prefix reuse counts). Last, gbdesk's and llama-server's resident memory before and
after 1,000 short requests, and with 200 idle keep-alive connections open.

    python bench/serve_bench.py [--model PATH] [--threads N] [--tokens 128] [--rounds 3]

llama-server comes from ../shared/tools/build-llama-server.sh (or --llama-server PATH);
`python -m llama_cpp.server` needs uvicorn, fastapi, sse-starlette, starlette-context and
pydantic-settings.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gbdesk.backend.model import cpu_has_amx  # noqa: E402
from gbdesk.starter import require_starter_model  # noqa: E402

BUILD_SCRIPT = ROOT.parent / "shared" / "tools" / "build-llama-server.sh"
TOPICS = ("the sea", "a lighthouse keeper", "a robot learning to cook", "the first snow")
CTX, PARALLEL = 4096, 4
CLIENTS = (1, 4, 8)
BOTSERVER_CHATS, BOTSERVER_TURNS, BOTSERVER_ANSWER = 6, 4, 48
QUESTIONS = (
    "What is a lighthouse for?", "How do ships find their way at night?",
    "Who keeps the light burning?", "What happens in a storm?",
)  # fmt: skip
SAMPLING = {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05}
# llama_cpp.server ignores `ignore_eos`; a -100 bias on SmolLM2's end tokens does the same.
EOG_BIAS = {"0": -100.0, "2": -100.0, "4": -100.0}
# llama_cpp.server cannot switch off llama.cpp's extra buffer types from its command line.
LCP_WRAPPER = """
import runpy, sys, llama_cpp.llama_cpp as bindings
if sys.argv.pop(1) == "norepack":
    default_params = bindings.llama_model_default_params
    def no_repack():
        params = default_params()
        params.use_extra_bufts = False
        return params
    bindings.llama_model_default_params = no_repack
sys.argv[0] = "llama_cpp.server"
runpy.run_module("llama_cpp.server", run_name="__main__")
"""


@dataclass
class Stream:
    tokens: int = 0
    started: float = 0.0
    first: float = 0.0
    last: float = 0.0
    error: str = ""

    @property
    def ttft_ms(self) -> float:
        return (self.first - self.started) * 1000 if self.tokens else float("nan")

    @property
    def rate(self) -> float:
        """Tokens per second after the first one (the generation speed)."""
        return (self.tokens - 1) / (self.last - self.first) if self.tokens > 1 else 0.0


@dataclass
class Server:
    name: str
    command: list[str]
    port: int
    extra_body: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log: Path | None = None

    def start(self, log_dir: Path) -> None:
        self.log = log_dir / f"{self.name}.log"
        with open(self.log, "wb") as handle:
            self.process = subprocess.Popen(
                self.command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise SystemExit(f"{self.name} exited with {self.process.returncode}:\n{tail}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/v1/models")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.name} did not become ready")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def rss_mib(self) -> float:
        process = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [process, *process.children(True)]) / 2**20


def stream_chat(
    server: Server, prompt: str, max_tokens: int, seed: int, pieces: list[str] | None = None
) -> Stream:
    """One streaming chat request; counts the content chunks (one per token on all servers)."""
    body = {
        "model": "bench",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": True,
        "ignore_eos": True,
        "seed": seed,
        **SAMPLING,
        **server.extra_body,
    }
    result = Stream(started=time.perf_counter())
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        connection.request(
            "POST",
            "/v1/chat/completions",
            json.dumps(body),
            {"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        if response.status != 200:
            result.error = f"HTTP {response.status}"
            return result
        while True:
            line = response.readline()
            if not line:
                break
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                break
            choices = json.loads(data).get("choices") or [{}]
            content = choices[0].get("delta", {}).get("content")
            if content:
                if pieces is not None:
                    pieces.append(content)
                now = time.perf_counter()
                if not result.tokens:
                    result.first = now
                result.tokens += 1
                result.last = now
        connection.close()
    except (OSError, http.client.HTTPException) as exc:
        result.error = str(exc)
    return result


def botserver_conversation(server: Server, index: int, seed: int) -> list[tuple[Stream, str]]:
    """One botserver web chat: each turn re-sends the history flattened into one message."""
    history = f"System: You are a helpful assistant for conversation {index}.\n\n"
    turns = []
    for turn in range(BOTSERVER_TURNS):
        history += f"User: {QUESTIONS[turn % len(QUESTIONS)]}\nAssistant: "
        stream, text = stream_chat_text(server, history, BOTSERVER_ANSWER, seed + turn)
        turns.append((stream, text))
        history += text + "\n"
    return turns


def stream_chat_text(server: Server, prompt: str, max_tokens: int, seed: int) -> tuple[Stream, str]:
    """Like stream_chat, also returning the answer's text."""
    pieces: list[str] = []
    result = stream_chat(server, prompt, max_tokens, seed, pieces)
    return result, "".join(pieces)


def run_botserver_pattern(server: Server, seed: int) -> tuple[float, list[float], int, int]:
    """(aggregate tok/s, TTFT ms of turns 2+, tokens delivered, tokens asked for)."""
    results: list[list[tuple[Stream, str]]] = [[] for _ in range(BOTSERVER_CHATS)]

    def chat(index: int) -> None:
        results[index] = botserver_conversation(server, index, seed + 100 * index)

    started = time.perf_counter()
    threads = [threading.Thread(target=chat, args=(i,)) for i in range(BOTSERVER_CHATS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    streams = [stream for conversation in results for stream, _ in conversation]
    later = [s.ttft_ms for c in results for s, _ in c[1:] if s.tokens]
    total = sum(s.tokens for s in streams)
    return total / wall, later, total, BOTSERVER_CHATS * BOTSERVER_TURNS * BOTSERVER_ANSWER


def run_clients(server: Server, clients: int, max_tokens: int, seed: int) -> list[Stream]:
    results: list[Stream | None] = [None] * clients

    def client(index: int) -> None:
        prompt = f"Write a long story about {TOPICS[index % len(TOPICS)]}."
        results[index] = stream_chat(server, prompt, max_tokens, seed + index)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@dataclass
class Figures:
    aggregate: list[float] = field(default_factory=list)
    per_stream: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    delivered: int = 0
    requested: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, streams: list[Stream], max_tokens: int) -> None:
        wall = max(s.last or s.started for s in streams) - min(s.started for s in streams)
        total = sum(s.tokens for s in streams)
        self.aggregate.append(total / wall if wall > 0 else 0.0)
        self.per_stream.extend(s.rate for s in streams if s.tokens > 1)
        self.ttft.extend(s.ttft_ms for s in streams if s.tokens)
        self.delivered += total
        self.requested += max_tokens * len(streams)
        self.errors.extend(s.error for s in streams if s.error)


def idle_connections(server: Server, count: int) -> list[socket.socket]:
    """``count`` keep-alive connections, each after one answered request, left open."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(4096)
        sockets.append(sock)
    return sockets


def hammer(server: Server, requests: int, clients: int = 4) -> None:
    """``requests`` short chats (half streamed), ``clients`` at a time."""
    counter = iter(range(requests))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            body = {
                "messages": [{"role": "user", "content": f"Say a number: {index}"}],
                "max_tokens": 8,
                "stream": index % 2 == 0,
            }
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            connection.request("POST", "/v1/chat/completions", json.dumps(body))
            response = connection.getresponse()
            response.read()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def llama_server_binary(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    folder = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},  # the llama-cpp-python of this venv
    ).stdout.split()[-1]
    return Path(folder) / "llama-server"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="GGUF file (default: the starter model)")
    parser.add_argument("--threads", type=int, default=psutil.cpu_count(logical=False) or 1)
    parser.add_argument("--tokens", type=int, default=128, help="tokens per stream")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rss-requests", type=int, default=1000)
    parser.add_argument("--idle-connections", type=int, default=200)
    parser.add_argument("--skip-botserver", action="store_true", help="skip botserver's pattern")
    parser.add_argument("--llama-server", default=None, help="path of llama-server")
    parser.add_argument("--skip-llama-cpp-python", action="store_true")
    args = parser.parse_args()

    model = Path(args.model) if args.model else require_starter_model()
    no_repack = cpu_has_amx()
    threads = str(args.threads)
    base_port = 18600
    servers = [
        Server(
            "llama-server",
            [
                str(llama_server_binary(args.llama_server)),
                "-m", str(model), "--host", "127.0.0.1", "--port", str(base_port),
                "-t", threads, "-tb", threads, "-c", str(CTX), "--parallel", str(PARALLEL),
                "-ngl", "0", *(["--no-repack"] if no_repack else []),
            ],
            base_port,
        ),
        Server(
            "gbdesk",
            [
                sys.executable, "-m", "gbdesk", "serve", "--model", str(model),
                "--port", str(base_port + 1), "--threads", threads, "--ctx", str(CTX),
                "--parallel", str(PARALLEL), "--gpu-layers", "0", "--queue-size", "64",
                "--repack" if not no_repack else "--no-repack",
            ],
            base_port + 1,
        ),
    ]  # fmt: skip
    if not args.skip_llama_cpp_python:
        servers.append(
            Server(
                "llama_cpp.server",
                [
                    sys.executable, "-c", LCP_WRAPPER, "norepack" if no_repack else "repack",
                    "--model", str(model), "--host", "127.0.0.1", "--port", str(base_port + 2),
                    "--n_ctx", str(CTX), "--n_threads", threads, "--n_threads_batch", threads,
                    "--n_gpu_layers", "0",
                ],
                base_port + 2,
                extra_body={"logit_bias": EOG_BIAS},
            )
        )  # fmt: skip

    print(
        f"serve_bench: {model.name}, {args.threads} threads, ctx {CTX}, parallel {PARALLEL},"
        f" {args.tokens} tokens per stream, {args.rounds} rounds, CPU {psutil.cpu_count()} logical;"
        f" weight repacking {'off (AMX CPU)' if no_repack else 'on'} for every server"
    )
    figures = {(s.name, n): Figures() for s in servers for n in CLIENTS}
    pattern: dict[str, list[tuple[float, list[float], int, int]]] = {}
    idle: dict[str, tuple[float, float, bool]] = {}
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as log_dir:
        env_home = Path(log_dir) / "home"
        os.environ["GBDESK_HOME"] = str(env_home)  # gbdesk serve: default settings, no real home
        try:
            for server in servers:
                server.start(Path(log_dir))
            for server in servers:
                server.wait_ready()
                run_clients(server, 1, 8, seed=0)  # warm-up
            for round_index in range(args.rounds):
                for clients in CLIENTS:
                    for server in servers:
                        streams = run_clients(server, clients, args.tokens, seed=round_index * 10)
                        figures[(server.name, clients)].add(streams, args.tokens)
            rss = {}
            for server in servers[:2]:
                before = server.rss_mib()
                hammer(server, args.rss_requests)
                rss[server.name] = (before, server.rss_mib())
            for server in servers[:2]:
                before = server.rss_mib()
                sockets = idle_connections(server, args.idle_connections)
                with_idle = server.rss_mib()
                status = http_status(server, "/health")  # still served meanwhile
                for sock in sockets:
                    sock.close()
                idle[server.name] = (before, with_idle, status == 200)
        finally:
            for server in servers:
                server.stop()
        if not args.skip_botserver:
            pattern = botserver_phase(args, model, threads, no_repack, Path(log_dir))

    print(
        f"\n{'server':<18}{'clients':>8}{'agg tok/s':>11}{'tok/s/stream':>14}"
        f"{'TTFT ms':>9}{'delivered':>16}{'agg ratio':>11}{'TTFT ratio':>12}"
    )
    verdicts = []
    for clients in CLIENTS:
        peer = figures[("llama-server", clients)]
        peer_agg = statistics.median(peer.aggregate)
        peer_ttft = statistics.median(peer.ttft)
        for server in servers:
            f = figures[(server.name, clients)]
            agg = statistics.median(f.aggregate)
            ttft = statistics.median(f.ttft) if f.ttft else float("nan")
            per_stream = statistics.median(f.per_stream) if f.per_stream else 0.0
            print(
                f"{server.name:<18}{clients:>8}{agg:>11.1f}{per_stream:>14.1f}{ttft:>9.0f}"
                f"{f'{f.delivered}/{f.requested}':>16}{agg / peer_agg:>11.2f}"
                f"{ttft / peer_ttft:>12.2f}"
                + (f"  errors: {sorted(set(f.errors))}" if f.errors else "")
            )
        ours = figures[("gbdesk", clients)]
        target = {1: 0.95, 4: 0.9}.get(clients)
        ratio = statistics.median(ours.aggregate) / peer_agg
        verdicts.append(
            f"{clients} stream(s): gbdesk/llama-server {ratio:.2f}"
            + (
                f" (target >= {target}): {'met' if ratio >= target else 'NOT met'}"
                if target
                else " (no target)"
            )
        )
        complete = ours.delivered == ours.requested and not ours.errors
        verdicts.append(
            f"{clients} stream(s): every gbdesk stream complete: {'yes' if complete else 'NO'}"
        )
    print()
    for name, (before, after) in rss.items():
        print(
            f"RSS {name:<13} before {before:7.1f} MiB, after {args.rss_requests} requests"
            f" {after:7.1f} MiB ({after - before:+.1f} MiB)"
        )
    for name, (before, with_idle, served) in idle.items():
        print(
            f"RSS {name:<13} before {before:7.1f} MiB, with {args.idle_connections} idle"
            f" connections {with_idle:7.1f} MiB ({with_idle - before:+.1f} MiB);"
            f" /health answered meanwhile: {'yes' if served else 'NO'}"
        )
    if pattern:
        print(
            f"\nbotserver's pattern: {BOTSERVER_CHATS} conversations x {BOTSERVER_TURNS} turns,"
            f" history flattened into one user message, {BOTSERVER_ANSWER} tokens per answer,"
            f" {BOTSERVER_CHATS} slots (llama-server -np {BOTSERVER_CHATS} --cont-batching)"
        )
        print(
            f"{'server':<18}{'agg tok/s':>11}{'turn 2+ TTFT ms':>17}{'delivered':>12}"
            f"{'agg ratio':>11}{'TTFT ratio':>12}"
        )
        peer_rate = statistics.median(r[0] for r in pattern["llama-server"])
        peer_ttft = statistics.median(t for r in pattern["llama-server"] for t in r[1])
        for name, runs in pattern.items():
            rate = statistics.median(r[0] for r in runs)
            ttft = statistics.median(t for r in runs for t in r[1])
            delivered = f"{sum(r[2] for r in runs)}/{sum(r[3] for r in runs)}"
            print(
                f"{name:<18}{rate:>11.1f}{ttft:>17.0f}{delivered:>12}{rate / peer_rate:>11.2f}"
                f"{ttft / peer_ttft:>12.2f}"
            )
        ours_rate = statistics.median(r[0] for r in pattern["gbdesk"])
        verdicts.append(f"botserver's pattern: gbdesk/llama-server {ours_rate / peer_rate:.2f}")
    print()
    print("\n".join(verdicts))
    return 0


def http_status(server: Server, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return 0
    finally:
        connection.close()


def botserver_phase(
    args: argparse.Namespace, model: Path, threads: str, no_repack: bool, log_dir: Path
) -> dict[str, list[tuple[float, list[float], int, int]]]:
    """Both servers with botserver's 6 slots; the pattern run ``args.rounds`` times, interleaved."""
    port = 18610
    n = str(BOTSERVER_CHATS)
    servers = [
        Server(
            "llama-server",
            [
                str(llama_server_binary(args.llama_server)),
                "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
                "-t", threads, "-tb", threads, "-c", str(CTX), "-np", n, "--cont-batching",
                "-ngl", "0", *(["--no-repack"] if no_repack else []),
            ],
            port,
        ),
        Server(
            "gbdesk",
            [
                sys.executable, "-m", "gbdesk", "serve", "--model", str(model),
                "--port", str(port + 1), "--threads", threads, "--ctx", str(CTX),
                "--parallel", n, "--gpu-layers", "0",
                "--repack" if not no_repack else "--no-repack",
            ],
            port + 1,
        ),
    ]  # fmt: skip
    runs: dict[str, list[tuple[float, list[float], int, int]]] = {s.name: [] for s in servers}
    try:
        for server in servers:
            server.start(log_dir)
        for server in servers:
            server.wait_ready()
        for round_index in range(args.rounds):
            for server in servers:
                runs[server.name].append(run_botserver_pattern(server, seed=round_index * 1000))
    finally:
        for server in servers:
            server.stop()
    return runs


if __name__ == "__main__":
    raise SystemExit(main())
