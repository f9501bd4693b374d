"""A short bounded libFuzzer run (clang, ASan + UBSan) of the firmware's C decoder and of its
whole core driven through the command handler, with the invariants in firmware_stubs/fuzz/*.c.
The long run is `scripts/fuzz_firmware.sh SECONDS`; this one only keeps the harnesses working."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from edgesplit.device.serial.firmware import make_target

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "fuzz_firmware.sh"


@pytest.fixture(scope="module")
def harnesses():
    if shutil.which("clang") is None:
        pytest.skip("clang not installed (scripts/bootstrap.sh installs clang libclang-rt-14-dev)")
    build = make_target("fuzz")
    if build.returncode != 0:
        pytest.skip(f"libFuzzer runtime missing, cannot link the harnesses: {build.stderr[-300:]}")


def test_libfuzzer_short_run_finds_nothing(harnesses):
    res = subprocess.run(["bash", str(SCRIPT), "3"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = [int(line.split()[1]) for line in res.stderr.splitlines() if line.startswith("Done ")]
    assert len(runs) == 2 and all(n > 100 for n in runs), res.stderr
