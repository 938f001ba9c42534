"""Download throughput: gbdesk's download manager against a plain streamed HTTP GET.

Both fetch the same random file (300 MB by default) from the test suite's local Hub server in
the same run. gbdesk's time includes everything a user waits for: the metadata call, the
disk-space check, the SHA-256 check and linking the file into the Hugging Face cache. The plain
GET (urllib, 1 MiB reads written to disk) does none of that. Target: ratio >= 0.8.

It also times huggingface_hub's own ``hf_hub_download`` as a second peer, and repeats all
three over a throttled link (400 Mbit/s by default), where the network rather than the CPU
sets the pace, as it does with the real Hub.

    python bench/download_bench.py [--size-mb 300] [--rounds 3] [--link-mbps 400]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support

from gbdesk.download.hub import HubConfig
from gbdesk.download.manager import DownloadManager
from gbdesk.download.spec import DownloadSpec
from tests.support.hub_server import HubServer

REPO = "bench/big-GGUF"
NAME = "big.gguf"


def make_file(path: Path, size: int) -> None:
    block = 4 * 1024 * 1024
    with open(path, "wb") as out:
        written = 0
        while written < size:
            chunk = min(block, size - written)
            out.write(os.urandom(chunk))
            written += chunk


def plain_get(url: str, dest: Path) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url) as response, open(dest, "wb") as out:
        while chunk := response.read(1024 * 1024):
            out.write(chunk)
    return time.perf_counter() - started


def gbdesk_get(endpoint: str, cache: Path) -> float:
    hub = HubConfig(endpoint=endpoint, cache_dir=cache)
    started = time.perf_counter()
    with DownloadManager(hub=hub) as manager:
        manager.submit(DownloadSpec(REPO, (NAME,))).wait()
    return time.perf_counter() - started


def hf_get(endpoint: str, cache: Path) -> float:
    """huggingface_hub's own hf_hub_download (no resume after a cut, no SHA-256 check)."""
    from huggingface_hub import hf_hub_download

    started = time.perf_counter()
    hf_hub_download(REPO, NAME, cache_dir=cache, endpoint=endpoint, token=False)
    return time.perf_counter() - started


def run_rounds(server: HubServer, size: int, rounds: int, work: Path) -> None:
    """Interleaved rounds of the three clients; prints each round and the medians."""
    url = f"{server.url}/{REPO}/resolve/main/{NAME}"
    times: dict[str, list[float]] = {"plain GET": [], "hf_hub_download": [], "gbdesk": []}
    for round_no in range(1, rounds + 1):
        times["plain GET"].append(plain_get(url, work / "plain.bin"))
        (work / "plain.bin").unlink()
        for name, client in (("hf_hub_download", hf_get), ("gbdesk", gbdesk_get)):
            cache = work / f"cache-{name}-{round_no}"
            times[name].append(client(server.url, cache))
            shutil.rmtree(cache)
        print(
            f"  round {round_no}: "
            + "   ".join(f"{name} {size / t[-1] / 1e6:7.1f} MB/s" for name, t in times.items())
        )
    medians = {name: statistics.median(t) for name, t in times.items()}
    plain = medians["plain GET"]
    print(
        "  median: "
        + ", ".join(f"{name} {size / t / 1e6:.1f} MB/s" for name, t in medians.items())
        + f"; gbdesk/plain GET {plain / medians['gbdesk']:.2f} (target >= 0.8),"
        f" gbdesk/hf_hub_download {medians['hf_hub_download'] / medians['gbdesk']:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--link-mbps",
        type=float,
        default=400,
        help="also measure over a link of this many Mbit/s (0: skip)",
    )
    args = parser.parse_args()
    size = args.size_mb * 1_000_000
    work = Path(tempfile.mkdtemp(prefix="gbdesk-download-bench-"))
    try:
        source = work / "source.gguf"
        make_file(source, size)
        with HubServer() as server:
            server.add_file(REPO, NAME, source)
            print(f"file: {size / 1e6:.0f} MB of random bytes, served from {server.url}")
            print("loopback, full speed (CPU-bound: HTTP parsing, disk writes, SHA-256):")
            run_rounds(server, size, args.rounds, work)
            if args.link_mbps:
                server.throttle(REPO, NAME, args.link_mbps * 1e6 / 8)
                print(f"over a {args.link_mbps:.0f} Mbit/s link (the server throttled):")
                run_rounds(server, size, args.rounds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
