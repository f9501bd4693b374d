#!/usr/bin/env bash
# The README's second command (and what .ci/run calls): set up, lint, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
make -s -C firmware_stubs test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
bash scripts/typecheck.sh
# --full also runs the long evaluations (tests marked `full`).
if [ "${1:-}" = "--full" ]; then
  shift
  export EDGESPLIT_FULL=1
fi
exec .venv/bin/python -m pytest "$@"
