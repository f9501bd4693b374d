#!/usr/bin/env bash
# Optional: a separate virtualenv with MLServer 1.7.1 for `edgesplit cloud bench --peer-venv .venv-peer`.
# (MLServer pins an older FastAPI than ours, so it cannot live in .venv.) ~400 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv-peer/bin/python ] || python3 -m venv .venv-peer
.venv-peer/bin/python -m pip install -q "mlserver==1.7.1" onnxruntime
