"""The CLI as a user runs it: real subprocesses, JSON outputs, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
from edgesplit.device.audio.synth import Utterance, synthesize, write_wav
from typer.testing import CliRunner

CLI = [sys.executable, "-m", "edgesplit.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


def _command_paths(command: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group of the CLI, as argument paths (the whole tree, not a sample)."""
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():  # groups have sub-commands
        paths += _command_paths(sub, (*prefix, name))
    return paths


def test_help_everywhere():
    from edgesplit.cli import app

    root = typer.main.get_command(app)
    paths = _command_paths(root)
    assert ("sim", "validate") in paths and ("phone", "serve") in paths
    runner = CliRunner()
    for path in paths:  # in-process: one interpreter start instead of one per command
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        assert "Usage" in res.output, path
    real = run("--help")  # and the installed entry point itself
    assert real.returncode == 0 and "Usage" in real.stdout, real.stderr


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
    assert missing.returncode == 2 and "none.wav: no such file" in missing.stderr
    not_image = run("device", "run", "-w", "glasses-ocr", str(wav))
    assert not_image.returncode == 2 and "not an image" in not_image.stderr


def test_demo_headless(tmp_path: Path, kws_workload, ocr_workload, intent_workload):
    out = tmp_path / "demo.json"
    # Roomy deadlines: on a busy 2-core machine one FP32 OCR in the cloud can take over 1 s and the
    # glasses would rightly fall back; this test checks the wiring (each device, each route, the
    # telemetry and the plot), not the deadline policy's timing.
    roomy = [f"--deadline={d}=30000" for d in ("glasses", "earbuds", "phone")]
    res = run(
        "demo",
        "--headless",
        "--requests",
        "3",
        "--no-events",
        *roomy,
        "--json",
        str(out),
        "--out",
        str(tmp_path / "run"),
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    events = doc["events"]
    assert {e["device"] for e in events} == {"glasses", "earbuds", "phone"}
    assert all(sum(e["device"] == d for e in events) == 3 for d in ("glasses", "earbuds", "phone"))
    glasses = [e for e in events if e["device"] == "glasses"]
    assert glasses[0]["route"] == "cloud" and glasses[0]["bytes_up"] > 640 * 480 * 3
    assert all(e["label"] is not None and e["total_ms"] > 0 and not e["degraded"] for e in events)
    telemetry = (tmp_path / "run" / "telemetry.jsonl").read_text().splitlines()
    assert len(telemetry) == len(events)
    assert (tmp_path / "run" / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_answers_everything_while_the_links_are_cut(
    tmp_path: Path, ocr_workload, intent_workload
):
    out = tmp_path / "demo.json"
    res = run(
        "demo",
        "--headless",
        "--requests",
        "4",
        "--device",
        "glasses",
        "--device",
        "phone",
        "--policy",
        "cloud-only",
        "--outage-at",
        "0",
        "--outage-for",
        "1000",
        "--json",
        str(out),
        "--out",
        str(tmp_path / "run"),
    )
    assert res.returncode == 0, res.stderr
    events = json.loads(out.read_text())["events"]
    assert len(events) == 8
    assert all(e["route"] == "fallback" and e["degraded"] and e["label"] for e in events)
    assert all(e["bytes_up"] == 0 and e["extra"]["cut"] for e in events)
    # The breaker opens after 3 failures: the later requests do not wait for timeouts.
    assert events[-1]["client_wait_ms"] == 0 and events[0]["client_wait_ms"] > 0
