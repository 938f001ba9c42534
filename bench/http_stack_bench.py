"""HTTP stack overhead: gbdesk's transport (uvicorn h11 + Starlette) against alternatives.

Each server runs in its own process and answers ``GET /health`` with the same small JSON body
(the backend's "Loading model" 503, no model loaded), and ``GET /stream`` with 200 server-sent
events written one by one (the shape of a token stream). One keep-alive client measures
requests per second and the median latency; a second measure times the 200-event stream.
Rounds alternate between the stacks.

    python bench/http_stack_bench.py [--requests 2000] [--rounds 3]

Stacks: ``gbdesk`` (uvicorn with its h11 protocol and gbdesk's protocol subclass, Starlette
routes: what `gbdesk serve` runs), ``uvicorn-httptools`` (the same app on uvicorn's httptools
protocol, if httptools is installed) and ``stdlib`` (``http.server.ThreadingHTTPServer``, what
gbdesk used before).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVENTS = 200
BODY = json.dumps(
    {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
).encode()
EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"tok"}}]}\n\n'


def _starlette_app():
    from starlette.responses import StreamingResponse

    from gbdesk.backend.server import BackendApp, build_asgi

    app = build_asgi(BackendApp(api_key=None, model_id="m"))

    async def stream(_request):
        async def events():
            for _ in range(EVENTS):
                yield EVENT

        return StreamingResponse(events(), media_type="text/event-stream")

    app.add_route("/stream", stream, methods=["GET"])
    return app


def serve(kind: str, port: int) -> None:
    if kind == "stdlib":

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as gbdesk's old server had it

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/stream":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for _ in range(EVENTS):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(EVENT), EVENT))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY)

        ThreadingHTTPServer.daemon_threads = True
        ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
        return
    import uvicorn

    from gbdesk.backend.transport import GbdeskProtocol, bind_socket

    protocol = GbdeskProtocol if kind == "gbdesk" else "httptools"
    config = uvicorn.Config(
        _starlette_app(), http=protocol, lifespan="off", log_config=None, access_log=False
    )
    uvicorn.Server(config).run(sockets=[bind_socket("127.0.0.1", port)])


def wait(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"no server on {port}")


def requests_per_second(port: int, count: int) -> tuple[float, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        begin = time.perf_counter()
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed, statistics.median(latencies) * 1e6


def stream_ms(port: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    begin = time.perf_counter()
    connection.request("GET", "/stream")
    body = connection.getresponse().read()
    elapsed = time.perf_counter() - begin
    connection.close()
    assert body.count(b"data: ") == EVENTS
    return elapsed * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    kinds = ["gbdesk", "stdlib"]
    try:
        import httptools  # noqa: F401

        kinds.insert(1, "uvicorn-httptools")
    except ImportError:
        print("(httptools is not installed: uvicorn-httptools left out)")
    processes = {}
    try:
        for offset, kind in enumerate(kinds):
            port = 18700 + offset
            processes[kind] = (
                subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port)]),
                port,
            )
        for _, port in processes.values():
            wait(port)
        figures: dict[str, list[tuple[float, float, float]]] = {kind: [] for kind in kinds}
        for _ in range(args.rounds):
            for kind, (_, port) in processes.items():
                rate, latency = requests_per_second(port, args.requests)
                figures[kind].append((rate, latency, stream_ms(port)))
    finally:
        for process, _ in processes.values():
            process.terminate()
            process.wait(10)
    print(f"http_stack_bench: {args.requests} keep-alive requests x {args.rounds} rounds, 1 client")
    print(f"\n{'stack':<20}{'req/s':>8}{'median us':>11}{f'{EVENTS} SSE events ms':>20}")
    for kind, runs in figures.items():
        print(
            f"{kind:<20}{statistics.median(r[0] for r in runs):>8.0f}"
            f"{statistics.median(r[1] for r in runs):>11.0f}"
            f"{statistics.median(r[2] for r in runs):>20.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
