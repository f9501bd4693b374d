"""What a Raspberry Pi install meets: only the device extra, and an OpenCV that may not load.

The packages a device-only install lacks are blocked in the child process (``sys.modules[name] =
None`` makes their import fail exactly as when they are not installed), then the real CLI runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edgesplit.device.vision.render import render_frame
from PIL import Image

CLOUD_AND_SIM_ONLY = ("fastapi", "uvicorn", "starlette", "simpy", "distributed", "matplotlib")


def cli_without(blocked: tuple[str, ...], *args: str) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        f"for m in {blocked!r}: sys.modules[m] = None\n"
        f"sys.argv = ['edgesplit', *{list(args)!r}]\n"
        "from edgesplit.cli import main\n"
        "main()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert "Traceback" not in res.stderr, res.stderr
    res.stderr = " ".join(res.stderr.split())  # Rich wraps long lines at 80 columns in a pipe
    return res


def test_ocr_without_opencv_libraries_is_one_line(tmp_path: Path, ocr_workload):
    """A fresh Pi without libgl1: OpenCV's import fails; the user gets the apt command."""
    png = tmp_path / "frame.png"
    Image.fromarray(render_frame(3).image).save(png)
    res = cli_without(("cv2",), "device", "run", "-w", "glasses-ocr", str(png))
    assert res.returncode == 2
    assert "RapidOCR does not load" in res.stderr and "libgl1 libglib2.0-0" in res.stderr


def test_device_side_runs_without_the_cloud_and_sim_extras(
    tmp_path: Path, kws_workload, ocr_workload, intent_workload
):
    from edgesplit.cloud.repository import DEFAULT_REPOSITORY, Repository
    from edgesplit.cloud.serve import ServerThread

    models = ["glasses-ocr", "kws-embed-opus", "kws-tail", "phone-intent"]
    out = tmp_path / "demo.json"
    with ServerThread(Repository(DEFAULT_REPOSITORY, models)) as srv:
        res = cli_without(
            CLOUD_AND_SIM_ONLY,
            "demo", "--headless", "--cloud", srv.url, "--requests", "2", "--no-events",
            "--deadline", "glasses=30000", "--no-cut-earbud", "--interval", "glasses=0",
            "--interval", "earbuds=0", "--interval", "phone=0",
            "--json", str(out), "--out", str(tmp_path / "run"),
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "plot: skipped (no matplotlib)" in res.stderr
    doc = json.loads(out.read_text())
    assert {s["device"] for s in doc["summary"]} == {"glasses", "earbuds", "phone"}
    # Without --cloud a device-only install cannot start the in-process cloud: one line.
    alone = cli_without(CLOUD_AND_SIM_ONLY, "demo", "--headless", "--requests", "1")
    assert alone.returncode == 2 and "needs the cloud extra" in alone.stderr
    assert "--cloud URL" in alone.stderr
