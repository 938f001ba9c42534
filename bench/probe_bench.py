"""How long `gbdesk probe --json` takes as a whole process, against a bare Python with psutil.

Peer: ``python -c "import psutil"`` (what any psutil-based probe pays at the least), run
interleaved with ``python -m gbdesk probe --json`` and, when it is on PATH, the ``gbdesk``
console script, in the same run on the same machine. Prints each median, the difference in
milliseconds and the ratio. Target: the probe adds under 300 ms; exit status 1 when it does not.

    python bench/probe_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 300.0


def _time_once(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, cwd=REPO_ROOT, env=env, check=True, stdout=subprocess.DEVNULL, timeout=120
    )
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gbdesk-probe-bench-") as home:
        env = {**os.environ, "GBDESK_HOME": home, "PYTHONPATH": str(REPO_ROOT)}
        commands = {
            "bare python -c 'import psutil'": [sys.executable, "-c", "import psutil"],
            "python -m gbdesk probe --json": [sys.executable, "-m", "gbdesk", "probe", "--json"],
        }
        script = shutil.which("gbdesk")
        if script:
            commands["gbdesk probe --json (console script)"] = [script, "probe", "--json"]
        for command in commands.values():  # warm the OS file cache and the .pyc files
            _time_once(command, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(_time_once(command, env))

    peer_name = next(iter(commands))
    peer = statistics.median(times[peer_name])
    print(
        f"{args.runs} interleaved runs each, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    width = max(len(name) for name in commands)
    worst_added = 0.0
    for name in commands:
        median = statistics.median(times[name])
        line = f"  {name:<{width}}  median {median:7.1f} ms  (min {min(times[name]):7.1f} ms)"
        if name != peer_name:
            added = median - peer
            worst_added = max(worst_added, added)
            added_min = min(times[name]) - min(times[peer_name])
            line += (
                f"  adds {added:+7.1f} ms (min to min {added_min:+6.1f}), "
                f"ratio {median / peer:.2f}x"
            )
        print(line)
    verdict = "PASS" if worst_added < TARGET_MS else "FAIL"
    print(f"target: the probe adds under {TARGET_MS:.0f} ms over the peer -> {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
