#!/usr/bin/env bash
# The README's second command (and what .ci/run calls): set up, lint, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# Every firmware build the tests use, made here once: the parallel test workers then find them
# up to date (and device/serial/firmware.py serialises any make they still run).
make -s -C firmware_stubs all test
if command -v clang >/dev/null; then make -s -C firmware_stubs fuzz || echo "libFuzzer harnesses not built: the fuzz test will say why"; fi
if command -v arm-none-eabi-gcc >/dev/null; then make -s -C firmware_stubs build/cortexm/edgesplit_fw.elf || echo "Cortex-M build failed: its tests will say why"; fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
bash scripts/typecheck.sh
# --full also runs the long evaluations (tests marked `full`).
if [ "${1:-}" = "--full" ]; then
  shift
  export EDGESPLIT_FULL=1
fi
# Three workers (pytest-xdist), even on 2 cores: about half of the suite's time is waiting on
# servers, emulated links and subprocesses, which the other workers fill (one busy core, 2 cores:
# 328 s with 2 workers, 269 s with 3). EDGESPLIT_TEST_WORKERS=0 runs in one process.
exec .venv/bin/python -m pytest -n "${EDGESPLIT_TEST_WORKERS:-3}" --dist worksteal "$@"
