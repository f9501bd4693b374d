"""Issue 17: a workload is one plugin. ``tests/plugin_workload`` adds ``tiny-sum`` with zero edits
to edgesplit's files, and bench, run, router, demo, eval and the cloud all find it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from edgesplit.cloud.repository import DEFAULT_REPOSITORY, Repository
from edgesplit.cloud.serve import ServerThread
from edgesplit.device import workloads
from edgesplit.device.bench import run_bench
from edgesplit.device.oip_client import OipClient
from edgesplit.device.workloads import registry

from edgesplit.evaluation import evaluate_workload, local_cloud
from tests import plugin_workload

ROOT = Path(__file__).resolve().parents[1]
ENV = os.environ | {"EDGESPLIT_WORKLOADS": "tests.plugin_workload", "PYTHONPATH": str(ROOT)}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgesplit.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=ENV,
        cwd=ROOT,
    )


def test_registry_has_the_builtins_and_the_plugin():
    assert {"earbuds-kws", "glasses-ocr", "phone-intent", "tiny-sum"} <= set(workloads.names())
    assert registry.by_device("tiny").name == "tiny-sum"
    assert registry.cloud_pipeline("tiny-sum").__name__ == "TinySumModel"
    assert "tiny-sum" in registry.pipeline_names()


def test_bench_builds_int8_and_evaluates_the_plugin():
    results, profiles, ratios = run_bench(
        workloads.get("tiny-sum"), 1, 5, quick=True, rebuild=True, log=lambda _m: None
    )
    assert [r.variant for r in results] == ["fp32", "int8"]
    assert all(r.metrics["accuracy"] == 1.0 for r in results)  # the sign of a sum, exactly
    assert ratios["size_fp32_over_int8"] > 0 and profiles[0].workload == "tiny-sum"


def test_cloud_serves_the_plugin_model_with_no_server_change():
    repo = Repository(DEFAULT_REPOSITORY, only=["tiny-sum"])
    with ServerThread(repo) as srv:
        out = OipClient(srv.url, timeout_s=30).infer(
            "tiny-sum", {"x": np.array([[1, 2, 3, -1]], np.float32)}
        )
    assert out["label"][0] == b"positive" and out["confidence"][0] > 0.99


def test_eval_and_router_cascade_over_a_real_cloud():
    with local_cloud(("tiny-sum",)) as url:
        doc = evaluate_workload(plugin_workload.PLUGIN, url, quick=True)
    dev, cas, cloud = (doc["routes"][r] for r in ("device", "cascade", "cloud"))
    assert doc["inputs"] == 20 and dev["escalated"] == 0 and cloud["escalated"] == 1
    assert 0 < cas["escalated"] < 1  # near-zero sums are unsure on the device
    assert cas["accuracy"] == cloud["accuracy"] == 1.0
    assert abs(doc["accuracy_gain_points"] - 100 * (cas["accuracy"] - dev["accuracy"])) < 1e-9


def test_demo_rig_runs_the_plugin_device():
    from edgesplit.rig import Rig

    with Rig(["tiny"], n_items=6, seed=1) as rig:
        events = [rig.loops["tiny"].step(0.0) for _ in range(6)]
    assert all(e["label"] in plugin_workload.LABELS for e in events)
    assert sum(e["correct"] for e in events) >= 5


def test_device_run_and_eval_cli_find_the_plugin_through_the_environment(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("1 2 3 4\n-1 -2 -3 -4\n")
    out = tmp_path / "run.json"
    res = _cli("device", "run", "-w", "tiny-sum", str(f), "--json", str(out))
    assert res.returncode == 0, res.stderr
    records = json.loads(out.read_text())["records"]
    assert [(r["line"], r["answer"]) for r in records] == [
        ("line 1", "positive"),
        ("line 2", "negative"),
    ]
    res = _cli("eval", "-w", "tiny-sum", "--quick", "--json", str(tmp_path / "eval.json"))
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "eval.json").read_text())["workloads"][0]["device"] == "tiny"


def test_device_side_never_imports_cloud_or_sim():
    code = (
        "import sys\n"
        "from edgesplit.device.workloads import registry\n"
        "import edgesplit.device.tasks, edgesplit.device.workloads.inputs\n"
        "names = list(registry.plugins())\n"
        "bad = [m for m in sys.modules if m.startswith(('edgesplit.cloud', 'edgesplit.sim'))]\n"
        "assert not bad, bad\n"
        "print(*names)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert "tiny-sum" in res.stdout.split()


def test_cloud_side_imports_without_fastapi():
    code = (
        "import sys; sys.modules['fastapi'] = None\n"
        "from edgesplit.device.workloads import registry\n"
        "print(registry.cloud_pipeline('phone-intent').__name__, "
        "registry.cloud_pipeline('tiny-sum').__name__)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["IntentPipelineModel", "TinySumModel"]


def test_int8_stamp_covers_the_modules_the_build_reads():
    """phone-intent's head file holds an out-of-scope gate trained on the cloud corpus: a corpus
    change must rebuild it, as a change to the recipe's own module does."""
    import dataclasses

    w = workloads.get("phone-intent")
    assert w.recipe_modules == ("edgesplit.device.text.intent_corpus",)
    without = dataclasses.replace(w, recipe_modules=())
    assert w.source_digest() != without.source_digest()
