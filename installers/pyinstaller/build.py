"""Build gbdesk's one-folder bundle with PyInstaller and report its size.

    python installers/pyinstaller/build.py [--dist DIR] [--work DIR] [--no-trim]

Renders the icons, runs installers/pyinstaller/gbdesk.spec, replaces llama.cpp's duplicate
libraries by symbolic links (Linux), and prints the bundle's size. The bundle lands in
DIST/gbdesk/ (DIST/gbdesk.app too on macOS). PyInstaller's work folder and cache live under
the user's cache folder by default, so a second build reuses the first one's analysis.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "installers" / "pyinstaller" / "gbdesk.spec"
sys.path.insert(0, str(REPO / "installers"))

from icons import render_icons  # noqa: E402


def default_cache_dir() -> Path:
    """A stable folder outside the checkout, kept between builds (and CI runs on one machine)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gbdesk-build"


def tree_size(root: Path) -> tuple[int, int]:
    """Total bytes and number of files under ``root``, not following symbolic links."""
    total = files = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
            files += 1
    return total, files


def link_duplicate_libraries(lib_dir: Path) -> int:
    """Replace each library that is a byte-for-byte copy of another by a link to it.

    llama-cpp-python's Linux wheel ships libX.so and libX.so.0 as two identical files; the
    second is the name other libraries link to. Returns the bytes saved.
    """
    if sys.platform == "win32" or not lib_dir.is_dir():
        return 0
    saved = 0
    libraries = sorted(p for p in lib_dir.iterdir() if p.is_file() and not p.is_symlink())
    for path in libraries:
        target = next(
            (
                other
                for other in libraries
                if other.name.startswith(path.name + ".")
                and other.exists()
                and not other.is_symlink()
                and filecmp.cmp(path, other, shallow=False)
            ),
            None,
        )
        if target is not None:
            saved += path.stat().st_size
            path.unlink()
            path.symlink_to(target.name)
    return saved


def build(dist: Path, work: Path, *, trim: bool = True) -> Path:
    """Build the bundle and return its folder (DIST/gbdesk).

    Raises:
        subprocess.CalledProcessError: PyInstaller failed (its output says why).
    """
    icon_dir = work / "icons"
    render_icons(icon_dir)
    env = dict(os.environ)
    env["GBDESK_ICON_DIR"] = str(icon_dir)
    env["GBDESK_BUNDLE_TRIM"] = "1" if trim else "0"
    env.setdefault("PYINSTALLER_CONFIG_DIR", str(work.parent / "pyinstaller-cache"))
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(dist),
            "--workpath",
            str(work / "pyinstaller"),
            str(SPEC),
        ],
        check=True,
        env=env,
    )
    bundle = dist / "gbdesk"
    saved = link_duplicate_libraries(bundle / "_internal" / "llama_cpp" / "lib") if trim else 0
    size, files = tree_size(bundle)
    print(f"bundle: {bundle}")
    print(
        f"bundle size: {size / 1e6:.1f} MB in {files} files"
        f" (trim={'on' if trim else 'off'}, links saved {saved / 1e6:.1f} MB,"
        f" built in {time.perf_counter() - started:.0f} s)"
    )
    return bundle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="where the bundle goes")
    parser.add_argument(
        "--work",
        type=Path,
        default=default_cache_dir() / "work",
        help="PyInstaller's work folder (reused between builds)",
    )
    parser.add_argument(
        "--no-trim",
        action="store_true",
        help="keep everything PyInstaller collects (to measure the cuts)",
    )
    args = parser.parse_args()
    build(args.dist.resolve(), args.work.resolve(), trim=not args.no_trim)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
