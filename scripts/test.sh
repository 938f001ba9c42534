#!/usr/bin/env bash
# Set up the test environment and run the whole test suite (what CI runs).
# Extra arguments go to pytest, e.g. scripts/test.sh -k probe
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# PyInstaller, makensis, desktop-file-validate and the .deb's libraries, for tests/installers.
installers/linux/install-build-tools.sh .venv/bin/python
# Xvfb, xdotool, xprop and ImageMagick for the desktop app's end-to-end tests on a real X server
# (tests/ui/test_real_display.py), when run as root on Debian/Ubuntu (as CI is).
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  missing=()
  # x11-utils: xprop (the test screens' task bar); libxcb-*: what Qt's xcb platform loads.
  for package in xvfb xdotool imagemagick x11-utils libxcb-cursor0 libxcb-icccm4 \
    libxcb-keysyms1 libxkbcommon-x11-0; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  if ((${#missing[@]})); then
    echo "test.sh: apt-get install ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
fi
export QT_QPA_PLATFORM=offscreen
.venv/bin/python -m ruff check gbdesk tests bench scripts
.venv/bin/python -m mypy  # gbdesk/, configured in pyproject.toml
exec .venv/bin/python -m pytest "$@"
