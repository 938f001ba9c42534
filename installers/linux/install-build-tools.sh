#!/usr/bin/env bash
# Install what building and testing the installers needs (scripts/test.sh calls this):
#   installers/linux/install-build-tools.sh [PYTHON]
# - PyInstaller into PYTHON (default python3), the same pin as pyproject's `package` extra;
# - as root on Debian or Ubuntu, when missing: nsis (makensis), desktop-file-utils, and the
#   libraries the .deb depends on (installers/linux/debian/depends.txt), so that the tests can
#   install the built .deb with dpkg and run it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${1:-python3}

if ! "$python" -c "import PyInstaller" 2>/dev/null; then
  "$python" -m pip install --quiet "pyinstaller>=6.10,<7"
fi

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "install-build-tools: not root on Debian/Ubuntu; skipping the system packages" >&2
  exit 0
fi
wanted=(nsis desktop-file-utils)
mapfile -t runtime < <(grep -v '^#' "$here/debian/depends.txt" | grep .)
wanted+=("${runtime[@]}")
missing=()
for package in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]})); then
  echo "install-build-tools: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
