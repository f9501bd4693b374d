"""Per-condition CER of glasses-ocr: FP32, the device's INT8 build and the cloud ensemble, on the
independent evaluation set (``device/vision/evalset.py``) and the real photos.

    python -m edgesplit.cloud.ocr_report --per-condition 10

Prints a Markdown table (the README's) and writes JSON with ``--json FILE``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from edgesplit.cloud.ocr_model import CloudOcr
from edgesplit.device.metrics import character_error_rate
from edgesplit.device.vision import degrade, evalset
from edgesplit.device.workloads import ocr


def measure(per_condition: int) -> dict[str, Any]:
    if not all(p.is_file() for p in ocr.model_paths("int8").values()):
        ocr.build_int8()
    systems: dict[str, ocr.Reader] = {
        "fp32": ocr.OcrPipeline(ocr.model_paths("fp32")),
        "int8": ocr.OcrPipeline(ocr.model_paths("int8")),
        "cloud": CloudOcr(),
    }
    out: dict[str, Any] = {"per_condition_frames": per_condition, "systems": {}}
    for name, pipe in systems.items():
        t0 = time.perf_counter()
        res: dict[str, Any] = ocr.evaluate_conditions(pipe, per_condition)
        for photo in evalset.real_photos():
            res[photo.name] = {"cer": character_error_rate([pipe(photo.image).text], [photo.text])}
        res["seconds"] = time.perf_counter() - t0
        out["systems"][name] = res
    out["int8_precisions"] = ocr.chosen_precisions()
    return out


def table(report: dict[str, Any]) -> str:
    s = report["systems"]
    rows = [*degrade.CONDITIONS, "all", *(p.name for p in evalset.real_photos())]
    lines = [
        "| condition | FP32 CER | device INT8 CER | INT8 − FP32 | cloud CER |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        f, i, c = (s[k][r]["cer"] * 100 for k in ("fp32", "int8", "cloud"))
        lines.append(f"| {r} | {f:.1f} % | {i:.1f} % | {i - f:+.1f} | {c:.1f} % |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-condition", type=int, default=10, help="frames per condition")
    ap.add_argument("--json", type=Path, help="also write the measurements here")
    args = ap.parse_args()
    report = measure(args.per_condition)
    print(f"INT8 stage precisions: {report['int8_precisions']}")
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
