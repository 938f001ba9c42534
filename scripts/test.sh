#!/usr/bin/env bash
# Set up the test environment and run the whole test suite (what CI runs).
# Extra arguments go to pytest, e.g. scripts/test.sh -k probe
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# PyInstaller, makensis, desktop-file-validate and the .deb's libraries, for tests/installers.
installers/linux/install-build-tools.sh .venv/bin/python
export QT_QPA_PLATFORM=offscreen
.venv/bin/python -m ruff check gbdesk tests bench
exec .venv/bin/python -m pytest "$@"
