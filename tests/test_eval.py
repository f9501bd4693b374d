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
def test_intent_independent_set_done_when(intent_workload):
    """Issue 11: on the hand-written set the cloud beats the device by >= 3 points and the cascade
    never loses to it. (The issue's third goal, out-of-scope recall >= 90 % at the cascade's
    output, is not met: measured 85 %, device alone 72.5 %; see the README.)"""
    from edgesplit.device.workloads.registry import plugin

    from edgesplit.evaluation import evaluate_workload, local_cloud

    p = plugin("phone-intent")
    with local_cloud(p.demo.cloud_models) as url:
        row = evaluate_workload(p, url)
    dev, cas, cloud = (row["routes"][r] for r in ("device", "cascade", "cloud"))
    assert row["inputs"] == 240
    assert cloud["accuracy"] >= dev["accuracy"] + 0.03 and cas["accuracy"] >= dev["accuracy"], row
    oos = "out_of_scope"
    assert cas["per_truth"][oos] >= dev["per_truth"][oos], (cas["per_truth"], dev["per_truth"])
    assert np.isfinite(row["p95_latency_change_pct"])
