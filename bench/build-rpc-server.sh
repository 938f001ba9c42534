#!/usr/bin/env bash
# Build llama.cpp's own RPC server (CMake target ggml-rpc-server) from the llama.cpp sources
# vendored in llama-cpp-python's PyPI source distribution, next to the llama-server that
# ../shared/tools/build-llama-server.sh builds (that script asks for a target `rpc-server`,
# which this llama.cpp calls ggml-rpc-server). The peer of bench/rpc_bench.py.
#
# usage: bench/build-rpc-server.sh BIN_DIR   (prints BIN_DIR/rpc-server as its last line)
set -euo pipefail
bin=${1:?usage: build-rpc-server.sh BIN_DIR}
if [[ -x $bin/rpc-server ]]; then
  echo "$bin/rpc-server"
  exit 0
fi
py=${PYTHON:-python3}
ver=$("$py" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" -m pip download --quiet --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$ver" >&2
tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
src=$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_CURL=OFF -DGGML_RPC=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >&2
cmake --build "$work/build" -j"$(nproc)" --target ggml-rpc-server >&2
cp "$work/build/bin/ggml-rpc-server" "$bin/rpc-server"
echo "$bin/rpc-server"
