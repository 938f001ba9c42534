"""`gbdesk --self-test` from an installed copy against the same from the source checkout.

    python bench/selftest_bench.py [--installed /usr/bin/gbdesk] [--deb gbdesk_*.deb] [--runs 3]

Runs both commands alternately (so machine load hits both alike), prints each run's wall time,
the best and median of each, and the ratio installed / source. With --deb it also prints the
package's size and its installed size. Build and install first:
    python installers/pyinstaller/build.py --dist dist
    installers/linux/build-deb.sh dist/gbdesk dist && sudo dpkg -i dist/gbdesk_*.deb
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed_run(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one self-test; exits if it fails (a failed run is no figure)."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return seconds


def deb_sizes(deb: Path) -> tuple[int, int]:
    """(bytes of the .deb, installed kilobytes from its control file)."""
    installed = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Installed-Size"], capture_output=True, text=True, check=True
    )
    return deb.stat().st_size, int(installed.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installed", default="/usr/bin/gbdesk", help="the installed gbdesk")
    parser.add_argument("--deb", type=Path, help="the .deb, to report its sizes")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    if args.deb:
        deb_bytes, installed_kb = deb_sizes(args.deb)
        print(f".deb size: {deb_bytes / 1e6:.1f} MB; installed size: {installed_kb / 1e3:.1f} MB")

    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GBDESK_", "QT_"))}
        env.pop("DISPLAY", None)
        env["GBDESK_HOME"] = home
        commands = {
            "installed": [args.installed, "--self-test"],
            "source": [sys.executable, "-m", "gbdesk", "--self-test"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for run in range(args.runs + 1):  # run 0 warms the page cache for both, not counted
            for name, command in commands.items():
                seconds = timed_run(command, dict(env, PYTHONPATH=str(REPO)))
                if run:
                    times[name].append(seconds)
                    print(f"run {run} {name:<9} {seconds:6.2f} s")
    for name, values in times.items():
        print(f"{name:<9} best {min(values):6.2f} s  median {statistics.median(values):6.2f} s")
    ratio = statistics.median(times["installed"]) / statistics.median(times["source"])
    print(f"installed / source (median): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
