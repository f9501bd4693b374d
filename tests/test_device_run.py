"""``edgesplit device run`` as a user runs it: real subprocesses, real models, a real cloud.

Every bad file gets one line naming it and its problem (never a traceback), the other files in the
same call are still answered, and the exit status is 2.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from edgesplit.cloud.repository import DEFAULT_REPOSITORY, Repository
from edgesplit.cloud.serve import ServerThread
from edgesplit.cloud.server import ServerSettings
from edgesplit.device.audio.synth import Utterance, synthesize, write_wav
from edgesplit.device.vision.render import render_frame
from PIL import Image

CLI = [sys.executable, "-m", "edgesplit.cli"]
API_KEY = "test-key-0123456789abcdef"


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=600, env=os.environ | (env or {})
    )


def _png_header(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _float_wav(path: Path, audio: np.ndarray, rate: int = 16_000) -> None:
    """32-bit IEEE float WAV: the format that can carry NaN."""
    data = audio.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data))
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data)


def _errors(res: subprocess.CompletedProcess) -> list[str]:
    return [line for line in res.stderr.splitlines() if line.startswith("error:")]


def test_bad_images_each_get_one_line_and_good_ones_are_answered(tmp_path, ocr_workload):
    good = tmp_path / "good.png"
    Image.fromarray(render_frame(3).image).save(good)
    bad = {
        "noise.png": "not an image file",
        "truncated.png": "truncated",
        "bomb.png": "pixel limit",
        "zero.png": "0x0 px",
        "thin.png": "1x8000 px",
        "missing.png": "no such file",
    }
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    Image.new("1", (7000, 7000)).save(tmp_path / "bomb.png")  # 49 M pixels in a few KB
    (tmp_path / "zero.png").write_bytes(_png_header(0, 0))
    Image.new("RGB", (1, 8000)).save(tmp_path / "thin.png")
    files = [str(tmp_path / n) for n in bad]
    out = tmp_path / "run.json"
    res = run("device", "run", "-w", "glasses-ocr", *files, str(good), "--json", str(out))
    assert res.returncode == 2 and "Traceback" not in res.stderr + res.stdout
    errors = _errors(res)
    for name, problem in bad.items():
        line = [e for e in errors if name in e]
        assert len(line) == 1 and problem in line[0], (name, errors)
    records = json.loads(out.read_text())["records"]
    answered = [r for r in records if r["file"] == str(good)]
    assert len(answered) == 1 and answered[0]["answer"] and answered[0]["route"] == "device"
    assert {"device", "network", "server", "total"} <= set(answered[0]["timings_ms"])


def test_bad_audio_each_get_one_line_and_long_audio_is_split_by_the_vad(tmp_path, kws_workload):
    words = ["yes", "stop", "left"]
    gap = np.zeros(12_000, np.float32)
    speech = [synthesize(Utterance(w, "en-us", "m3", 160, 50)) for w in words]
    long = np.concatenate(
        [gap, *(np.concatenate([0.6 * s / np.abs(s).max(), gap]) for s in speech)]
    )
    write_wav(tmp_path / "three.wav", long)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "noise.wav").write_bytes(np.random.default_rng(1).bytes(5000))
    nan = np.zeros(16_000, np.float32)
    nan[100] = np.nan
    _float_wav(tmp_path / "nan.wav", nan)
    out = tmp_path / "run.json"
    names = ["empty.wav", "noise.wav", "nan.wav", "three.wav"]
    res = run(
        "device",
        "run",
        "-w",
        "earbuds-kws",
        *(str(tmp_path / n) for n in names),
        "--json",
        str(out),
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr + res.stdout
    errors = _errors(res)
    for name, problem in [("empty.wav", "0 bytes"), ("noise.wav", "not a WAV"), ("nan.wav", "NaN")]:
        line = [e for e in errors if name in e]
        assert len(line) == 1 and problem in line[0], (name, errors)
    records = [r for r in json.loads(out.read_text())["records"] if r["file"].endswith("three.wav")]
    assert len(records) == len(words)  # one result per utterance, not one centre crop
    starts = [float(r["line"].split("-")[0]) for r in records]
    assert starts == sorted(starts)
    assert sum(r["answer"] == w for r, w in zip(records, words, strict=True)) >= 2


def test_intent_text_and_txt_files(tmp_path, intent_workload):
    f = tmp_path / "requests.txt"
    f.write_text("play some jazz please\n\nwhat is the capital of peru\n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (tmp_path / "blank.txt").write_text("\n  \n")
    out = tmp_path / "run.json"
    res = run(
        "device", "run", "-w", "phone-intent", str(f), str(tmp_path / "latin1.txt"),
        str(tmp_path / "blank.txt"), "--text", "set a timer for ten minutes", "--json", str(out),
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    errors = _errors(res)
    assert any("latin1.txt" in e and "not UTF-8" in e and "line 1" in e for e in errors), errors
    assert any("blank.txt" in e and "no requests" in e for e in errors), errors
    recs = [r for r in json.loads(out.read_text())["records"] if "answer" in r]
    got = {(r["file"].split("/")[-1], r["line"]): r["answer"] for r in recs}
    assert got[("requests.txt", "line 1")] == "play_music"
    assert ("requests.txt", "line 3") in got and ("--text", "--text") in got
    assert got[("--text", "--text")] == "set_timer"


def test_route_cloud_and_cascade_against_a_real_server(tmp_path, intent_workload):
    repo = Repository(DEFAULT_REPOSITORY, only=["phone-intent"])
    f = tmp_path / "r.txt"
    f.write_text("play some jazz please\nwhat is the capital of peru\n")
    with ServerThread(repo, ServerSettings(api_keys=[API_KEY])) as srv:
        recs = {}
        for route in ("device", "cloud", "cascade"):
            out = tmp_path / f"{route}.json"
            res = run(
                "device",
                "run",
                "-w",
                "phone-intent",
                str(f),
                "--route",
                route,
                "--cloud",
                srv.url,
                "--json",
                str(out),
                env={"EDGESPLIT_API_KEY": API_KEY},
            )
            assert res.returncode == 0, res.stderr
            recs[route] = json.loads(out.read_text())["records"]
        wrong = run(
            "device",
            "run",
            "-w",
            "phone-intent",
            "--text",
            "play jazz",
            "--route",
            "cloud",
            "--cloud",
            srv.url,
            env={"EDGESPLIT_API_KEY": "x" * 20},
        )
    assert [r["route"] for r in recs["device"]] == ["device", "device"]
    assert [r["route"] for r in recs["cloud"]] == ["cloud", "cloud"]
    assert all(r["timings_ms"]["server"] > 0 for r in recs["cloud"])
    assert recs["cascade"][1]["route"] == "device+cloud"  # out of scope: the device escalates
    assert recs["cascade"][1]["answer"] == "out_of_scope"
    assert wrong.returncode == 0 and "degraded" in wrong.stdout and "401" in wrong.stdout
    missing = run("device", "run", "-w", "phone-intent", "--text", "hi", "--route", "cloud")
    assert missing.returncode == 2 and "--cloud URL" in missing.stderr
