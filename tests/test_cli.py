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


def test_demo_headless(tmp_path: Path, kws_workload, intent_workload):
    """The demo as a user runs it: the earbuds through the phone hub (its own process) over
    emulated BLE and LTE to the cloud, the other bud sending the cut, the phone on its own link;
    every route in the telemetry. (The glasses, direct: tests/test_demo_remote.py.)"""
    out = tmp_path / "demo.json"
    # Roomy deadlines and timeouts: this test checks the wiring (each device, each route, the
    # telemetry and the plot) on a busy 2-core machine, not timing. No pacing: one request after
    # another (the test's time).
    res = run(
        "demo",
        "--headless",
        "--requests",
        "3",
        "--no-events",
        "--device",
        "earbuds",
        "--device",
        "phone",
        *(f"--deadline={d}=30000" for d in ("earbuds", "phone", "earbuds-cut")),
        *(f"--interval={d}=0" for d in ("earbuds", "phone")),
        "--hub-timeout-s",
        "10",
        "--wearable-timeout-s",
        "30",
        "--json",
        str(out),
        "--out",
        str(tmp_path / "run"),
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    events = doc["events"]
    assert all(sum(e["device"] == d for e in events) == 3 for d in ("earbuds", "earbuds-cut"))
    assert sum(e["device"] == "phone" for e in events) == 3 and len(events) == 9
    assert all(e["label"] is not None and e["total_ms"] > 0 and not e["degraded"] for e in events)
    # Through the phone: who answered is the hub's word (its X-Edgesplit-Route header).
    buds = [e for e in events if e["device"] == "earbuds"]
    assert {e["route"] for e in buds} <= {"device", "device+phone", "device+cloud"}
    assert all(e["tier"] in e["route"] for e in buds)
    cut = [e for e in events if e["device"] == "earbuds-cut"]
    assert {e["route"] for e in cut} <= {"device>phone", "device>cloud"}
    assert all(e["bytes_up"] > 64 * 25 * 5 * 4 for e in cut)  # the cut's activation
    assert {e["route"] for e in events if e["device"] == "phone"} <= {"device", "device+cloud"}
    telemetry = (tmp_path / "run" / "telemetry.jsonl").read_text().splitlines()
    assert len(telemetry) == len(events)
    assert sorted(json.loads(t)["route"] for t in telemetry) == sorted(e["route"] for e in events)
    assert (tmp_path / "run" / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_answers_everything_while_the_links_are_cut(
    tmp_path: Path, kws_workload, intent_workload
):
    """Direct links (``--no-hub``: the earbuds on one folded BLE + LTE link) all cut."""
    out = tmp_path / "demo.json"
    res = run(
        "demo",
        "--headless",
        "--requests",
        "4",
        "--no-hub",
        "--device",
        "earbuds",
        "--device",
        "phone",
        "--policy",
        "cloud-only",
        "--outage-at",
        "0",
        "--outage-for",
        "1000",
        "--interval=earbuds=0",
        "--interval=phone=0",
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
    for device in ("earbuds", "phone"):
        mine = [e for e in events if e["device"] == device]
        assert mine[-1]["client_wait_ms"] == 0 and mine[0]["client_wait_ms"] > 0
