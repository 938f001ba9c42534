"""Embeddings benchmark: gbdesk serve --embedding-model against llama-server --embeddings.

Same model (the starter model by default, mean pooling), threads and machine, in one run.
llama-server runs with the command line botserver gives its own embedding server
(``--embeddings --pooling mean --ctx-size 512 --ubatch-size 512 --n-gpu-layers 0``). One
client, as botserver's ``embedding-concurrent`` default, sends the same texts in requests of 1
and of 16 inputs (botserver's ``embedding-batch-size``); rounds alternate between the servers.
The vectors of both servers are compared too (cosine).

    python bench/embed_bench.py [--model PATH] [--threads N] [--texts 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serve_bench import Server, llama_server_binary  # noqa: E402
from gbdesk.backend.model import cpu_has_amx  # noqa: E402
from gbdesk.starter import require_starter_model  # noqa: E402

BATCHES = (1, 16)
SUBJECTS = ("the harbour", "a tax form", "the garden", "an invoice", "the school", "a recipe")


def texts(count: int) -> list[str]:
    """Knowledge-base-like paragraphs of about 50-70 tokens, all different."""
    return [
        f"Document {i}: notes about {SUBJECTS[i % len(SUBJECTS)]}. The team met on day {i % 28 + 1}"
        f" and agreed that item {i * 7 % 101} needs review before the next meeting, because the"
        f" figures for section {i % 9} did not match the report sent on week {i % 52}."
        for i in range(count)
    ]


def embed(server: Server, inputs: list[str]) -> list[list[float]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    try:
        body = json.dumps({"input": inputs, "model": "bench"})
        connection.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise SystemExit(f"{server.name}: HTTP {response.status}: {payload[:300]!r}")
        data = sorted(json.loads(payload)["data"], key=lambda item: item["index"])
        return [item["embedding"] for item in data]
    finally:
        connection.close()


def run(server: Server, corpus: list[str], batch: int) -> float:
    """Texts per second for ``corpus`` sent ``batch`` at a time by one client."""
    started = time.perf_counter()
    for start in range(0, len(corpus), batch):
        vectors = embed(server, corpus[start : start + batch])
        assert len(vectors) == len(corpus[start : start + batch])
    return len(corpus) / (time.perf_counter() - started)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="GGUF file (default: the starter model)")
    parser.add_argument("--threads", type=int, default=psutil.cpu_count(logical=False) or 1)
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--llama-server", default=None, help="path of llama-server")
    args = parser.parse_args()

    model = Path(args.model) if args.model else require_starter_model()
    threads = str(args.threads)
    repack = ["--no-repack"] if cpu_has_amx() else []
    port = 18620
    servers = [
        Server(
            "llama-server",
            [
                str(llama_server_binary(args.llama_server)),
                "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "--embeddings",
                "--pooling", "mean", "--ctx-size", "512", "--ubatch-size", "512",
                "--n-gpu-layers", "0", "-t", threads, "-tb", threads, *repack,
            ],
            port,
        ),
        Server(
            "gbdesk",
            [
                sys.executable, "-m", "gbdesk", "serve", "--model", str(model),
                "--port", str(port + 2), "--embedding-model", str(model),
                "--embedding-port", str(port + 1), "--embedding-pooling", "mean",
                "--embedding-ctx", "512", "--threads", threads, "--gpu-layers", "0",
                "--ctx", "1024", "--parallel", "1", *repack,
            ],
            port + 1,
        ),
    ]  # fmt: skip
    corpus = texts(args.texts)
    print(
        f"embed_bench: {model.name}, mean pooling, {args.threads} threads, {len(corpus)} texts,"
        f" {args.rounds} rounds, 1 client, CPU {psutil.cpu_count()} logical"
    )
    rates: dict[tuple[str, int], list[float]] = {(s.name, b): [] for s in servers for b in BATCHES}
    with tempfile.TemporaryDirectory(prefix="embed-bench-") as log_dir:
        os.environ["GBDESK_HOME"] = str(Path(log_dir) / "home")
        try:
            for server in servers:
                server.start(Path(log_dir))
            for server in servers:
                server.wait_ready()
                run(server, corpus[:4], 4)  # warm-up
            first = [embed(server, corpus[:1])[0] for server in servers]
            for _ in range(args.rounds):
                for batch in BATCHES:
                    for server in servers:
                        rates[(server.name, batch)].append(run(server, corpus, batch))
        finally:
            for server in servers:
                server.stop()

    print(f"\n{'server':<14}{'inputs/request':>16}{'texts/s':>10}{'ratio':>8}")
    verdicts = []
    for batch in BATCHES:
        peer = statistics.median(rates[("llama-server", batch)])
        for server in servers:
            rate = statistics.median(rates[(server.name, batch)])
            print(f"{server.name:<14}{batch:>16}{rate:>10.1f}{rate / peer:>8.2f}")
        ratio = statistics.median(rates[("gbdesk", batch)]) / peer
        verdicts.append(
            f"{batch} input(s)/request: gbdesk/llama-server {ratio:.2f} (target >= 0.9):"
            f" {'met' if ratio >= 0.9 else 'NOT met'}"
        )
    print(f"\ncosine(gbdesk, llama-server) on the first text: {cosine(*first):.6f}")
    print("\n".join(verdicts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
