#!/usr/bin/env bash
# libFuzzer (clang, ASan + UBSan) on the firmware's C decoder and its command handler / core.
#   scripts/fuzz_firmware.sh [SECONDS_PER_HARNESS=60] [extra libFuzzer flags...]
# Seeds come from the shared protocol vectors; findings (crash-*, leak-*) land in
# firmware_stubs/build/fuzz-findings/. Exits non-zero if a harness finds anything.
set -euo pipefail
cd "$(dirname "$0")/../firmware_stubs"
seconds="${1:-60}"
shift || true
if ! command -v clang >/dev/null; then
  echo "fuzz_firmware: clang not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 77
fi
make -s fuzz
corpus=build/fuzz-corpus
findings=build/fuzz-findings
mkdir -p "$corpus/decoder" "$corpus/command" "$findings"
# Seeds: every wire of protocol/vectors.txt; for the command harness, prefixed with the 2 setup
# bytes and wrapped in one [step][len] chunk.
python3 - "$corpus" <<'PY'
import sys
from pathlib import Path
corpus = Path(sys.argv[1])
for n, line in enumerate(Path("protocol/vectors.txt").read_text().splitlines()):
    if not line or line.startswith("#"):
        continue
    wire = bytes.fromhex(line.split()[1] if line.startswith("!") else line.split()[4])
    (corpus / "decoder" / f"v{n}").write_bytes(wire)
    (corpus / "command" / f"v{n}").write_bytes(bytes([n & 31, n & 3, 20, min(len(wire), 255)]) + wire[:255])
PY
status=0
for harness in decoder command; do
  echo "fuzz_firmware: $harness for ${seconds} s" >&2
  rc=0
  ./build/fuzz_$harness -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$findings/$harness-" "$@" "$corpus/$harness" >"build/fuzz-$harness.log" 2>&1 ||
    rc=$?
  grep -E "^(Done|stat::number_of_executed_units|SUMMARY)|ERROR|artifact" "build/fuzz-$harness.log" >&2 || true
  if [ "$rc" -ne 0 ]; then
    echo "fuzz_firmware: $harness FAILED (rc $rc); see firmware_stubs/build/fuzz-$harness.log" >&2
    status=1
  fi
done
exit $status
