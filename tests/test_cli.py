"""The CLI as a user runs it: real subprocesses, JSON outputs, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from device.audio.synth import Utterance, synthesize, write_wav

CLI = [sys.executable, "-m", "edgesplit.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


def test_help_everywhere():
    for args in ([], ["device"], ["device", "bench"], ["device", "run"], ["demo"]):
        res = run(*args, "--help")
        assert res.returncode == 0, res.stderr
        assert "Usage" in res.stdout


def test_bench_kws_writes_json_and_profile(tmp_path, kws_workload):
    out, prof = tmp_path / "bench.json", tmp_path / "profile.json"
    res = run(
        "device",
        "bench",
        "-w",
        "earbuds-kws",
        "--quick",
        "--repeats",
        "10",
        "--json",
        str(out),
        "--profile",
        str(prof),
    )
    assert res.returncode == 0, res.stderr
    assert "ratios" in res.stdout and "avx2" in res.stdout
    doc = json.loads(out.read_text())
    assert [v["variant"] for v in doc["variants"]] == ["fp32", "int8"]
    assert doc["ratios"]["size_fp32_over_int8"] >= 3.0
    assert abs(doc["ratios"]["accuracy_int8_minus_fp32_points"]) < 5
    profile = json.loads(prof.read_text())
    assert profile["models"][0]["split_points"]


def test_unknown_workload_is_a_clear_error():
    res = run("device", "bench", "-w", "nope")
    assert res.returncode == 2
    assert "unknown workload 'nope'" in res.stderr and "earbuds-kws" in res.stderr


def test_run_on_files(tmp_path, kws_workload):
    wav = tmp_path / "stop.wav"
    write_wav(wav, synthesize(Utterance("stop", "en-gb", "m3")))
    res = run("device", "run", "-w", "earbuds-kws", str(wav))
    assert res.returncode == 0, res.stderr
    assert "stop" in res.stdout
    missing = run("device", "run", "-w", "earbuds-kws", str(tmp_path / "none.wav"))
    assert missing.returncode == 2 and "input file not found" in missing.stderr
    not_image = run("device", "run", "-w", "glasses-ocr", str(wav))
    assert not_image.returncode == 2 and "not an image" in not_image.stderr


def test_demo_headless(tmp_path: Path, kws_workload, ocr_workload, intent_workload):
    out = tmp_path / "demo.json"
    res = run("demo", "--headless", "--frames", "2", "--utterances", "3", "--requests", "3",
              "--json", str(out))  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    devices = {e["device"] for e in doc["events"]}
    assert devices == {"glasses", "earbuds", "phone"}
    phone = [e for e in doc["events"] if e["device"] == "phone"]
    assert len(phone) == 3 and all("->" in e["answer"] for e in phone)
    assert sum(e["device"] == "earbuds" for e in doc["events"]) >= 3
    assert all(e["latency_ms"] > 0 for e in doc["events"])
