"""Download throughput: gbdesk's download manager against a plain streamed HTTP GET.

Both fetch the same random file (300 MB by default) from the test suite's local Hub server in
the same run. gbdesk's time includes everything a user waits for: the metadata call, the
disk-space check, the SHA-256 check and linking the file into the Hugging Face cache. The plain
GET (urllib, 1 MiB reads written to disk) does none of that. Target: ratio >= 0.8.

    python bench/download_bench.py [--size-mb 300] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    size = args.size_mb * 1_000_000
    work = Path(tempfile.mkdtemp(prefix="gbdesk-download-bench-"))
    try:
        source = work / "source.gguf"
        make_file(source, size)
        with HubServer() as server:
            server.add_file(REPO, NAME, source)
            url = f"{server.url}/{REPO}/resolve/main/{NAME}"
            print(f"file: {size / 1e6:.0f} MB of random bytes, served from {server.url}")
            best_plain = best_gbdesk = float("inf")
            for round_no in range(1, args.rounds + 1):
                plain = plain_get(url, work / "plain.bin")
                (work / "plain.bin").unlink()
                ours = gbdesk_get(server.url, work / f"cache-{round_no}")
                shutil.rmtree(work / f"cache-{round_no}")
                best_plain, best_gbdesk = min(best_plain, plain), min(best_gbdesk, ours)
                print(
                    f"round {round_no}: plain GET {size / plain / 1e6:7.1f} MB/s   gbdesk"
                    f" {size / ours / 1e6:7.1f} MB/s   ratio {plain / ours:.2f}"
                )
            print(
                f"best: plain GET {size / best_plain / 1e6:.1f} MB/s, gbdesk (with SHA-256)"
                f" {size / best_gbdesk / 1e6:.1f} MB/s, ratio {best_plain / best_gbdesk:.2f}"
                " (target >= 0.8)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
