#!/usr/bin/env bash
# Make sure the llama-cpp-python in a virtual environment carries llama.cpp's RPC backend
# (`gbdesk worker`, `gbdesk serve --rpc`). pip keys its wheel cache on the package version, not
# on CMAKE_ARGS: a wheel built earlier without -DGGML_RPC=ON would be reused silently. So this
# asks the installed library, and rebuilds without the cache only when RPC is missing.
#   scripts/ensure-rpc.sh VENV      (CMAKE_ARGS from the caller is kept: CUDA, Metal...)
set -euo pipefail
venv=${1:?usage: ensure-rpc.sh VENV}
has_rpc() {
  "$venv/bin/python" -c 'import sys; from gbdesk.backend.ggml_rpc import rpc_available; sys.exit(0 if rpc_available() else 1)'
}
if has_rpc; then
  exit 0
fi
version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')
echo "llama-cpp-python $version has no RPC backend: rebuilding it with -DGGML_RPC=ON (about 5 minutes)" >&2
CMAKE_ARGS="-DGGML_RPC=ON ${CMAKE_ARGS:-}" "$venv/bin/python" -m pip install --quiet \
  --force-reinstall --no-deps --no-cache-dir "llama-cpp-python==$version"
has_rpc || { echo "llama-cpp-python still has no RPC backend after the rebuild" >&2; exit 1; }
