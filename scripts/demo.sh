#!/usr/bin/env bash
# The README's first command: set everything up, then run the demo (extra args go to the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/edgesplit demo "$@"
