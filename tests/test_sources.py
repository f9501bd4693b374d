"""Real sensors on the device: the code paths a camera, a microphone, the sensor MCU and a keyboard
drive, fed here by a video file (written with OpenCV), a WAV file, the firmware stub on a pty and
standard input. The live devices are tried where they exist and skipped, with the reason, where
they do not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from edgesplit.device.audio.synth import write_wav
from edgesplit.device.metrics import character_error_rate
from edgesplit.device.vision.render import render_frame

from edgesplit.errors import EdgesplitError, InputError
from edgesplit.sources import open_sources
from edgesplit.sources.audio import VadGate, WavSource
from edgesplit.sources.camera import CameraSource
from edgesplit.streams import audio_stream

CLI = [sys.executable, "-m", "edgesplit.cli"]
FRAME_SEEDS = (7000, 7001, 7002)  # the bundled glasses stream's first frames (seed 7)


def demo(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [*CLI, "demo", "--headless", "--no-events", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=600,
    )
    assert "Traceback" not in res.stderr, res.stderr
    res.stderr = " ".join(res.stderr.split())  # Rich wraps long lines at 80 columns in a pipe
    return res


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, list]:
    """Three rendered glasses frames in a lossless video (FFV1), with their texts."""
    path = tmp_path_factory.mktemp("video") / "glasses.avi"
    frames = [render_frame(s) for s in FRAME_SEEDS]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 5, (640, 480))
    assert writer.isOpened(), "OpenCV cannot write FFV1 here"
    for f in frames:
        writer.write(cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR))
    writer.release()
    return path, frames


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[Path, np.ndarray, list[str]]:
    """Four utterances by held-out voices with quiet gaps, as a 16-bit WAV file."""
    audio, truth = audio_stream(4, seed=11)
    path = tmp_path_factory.mktemp("wav") / "speech.wav"
    write_wav(path, audio)
    return path, audio, [w for _, w in truth]


def test_camera_source_reads_a_video_file_frame_by_frame(video):
    path, frames = video
    cam = CameraSource(str(path))
    got = []
    while (item := cam.read(1.0)) is not None:
        got.append(item)
    cam.close()
    assert cam.exhausted and len(got) == len(frames)
    for item, f in zip(got, frames, strict=True):
        assert item.x.shape == (480, 640, 3) and item.x.dtype == np.uint8
        assert np.array_equal(item.x, f.image)  # lossless, and RGB (not OpenCV's BGR)
        assert item.check("anything") is None  # a live input is unscored


def test_demo_reads_the_glasses_camera_from_a_video_file(video, tmp_path, ocr_workload):
    path, frames = video
    out = tmp_path / "demo.json"
    res = demo(
        "--camera", str(path), "--device", "glasses", "--policy", "glasses=device-only",
        "--interval", "glasses=0", "--requests", "10", "--json", str(out),
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    events = json.loads(out.read_text())["events"]
    assert len(events) == len(frames)  # the run ended with the video
    assert all(e["source"] == f"camera:{path}" and e["correct"] is None for e in events)
    cer = [
        character_error_rate([e["label"]], [f.text]) for e, f in zip(events, frames, strict=True)
    ]
    assert sum(c <= 0.05 for c in cer) >= 2, cer  # INT8 OCR read the frames from the file


def _bundled_windows(n: int, seed: int) -> list[np.ndarray]:
    """The bundled stream's windows of the same audio, cut offline (edgesplit/streams.py)."""
    from edgesplit.streams import earbuds_items

    return [i.x for i in earbuds_items(n, seed)]


def test_vad_gate_cuts_one_window_per_utterance(speech, kws_workload):
    """The streaming gate cuts the same windows as the bundled stream's offline cut, whether the
    audio comes in 0.25 s reads (WavSource) or live-sized 32 ms blocks; KWS then hears the words
    (the model's answers are compared with the model's own answers on the offline windows, so
    the check holds whichever KWS model is installed)."""
    from edgesplit.device.workloads import kws

    path, audio, words = speech
    src = WavSource(path)
    items = []
    while not src.exhausted:
        if (item := src.read(1.0)) is not None:
            items.append(item)
    offline = _bundled_windows(4, 11)
    assert len(items) == len(words) == len(offline)
    for item, ref in zip(items, offline, strict=True):
        # Same window, same place; the WAV's 16-bit PCM adds quantisation noise (~0.06 measured;
        # a window one VAD chunk off differs by several units).
        np.testing.assert_allclose(item.x, ref, atol=0.25)
    spotter = kws.KeywordSpotter(kws.model_path("int8"))
    labels = [spotter.classify_mfcc(i.x).label for i in items]
    assert labels == [spotter.classify_mfcc(x).label for x in offline]
    gate = VadGate()
    clips = []
    for a in range(0, audio.size, 512):
        clips += gate.feed(audio[a : a + 512])
    clips += gate.flush()
    assert len(clips) == len(words) and all(c.size == 16_000 for c in clips)


def test_demo_hears_the_earbuds_microphone_from_a_wav_file(speech, tmp_path, kws_workload):
    from edgesplit.device.workloads import kws

    path, _, words = speech
    out = tmp_path / "demo.json"
    res = demo(
        "--mic", str(path), "--device", "earbuds", "--policy", "earbuds=device-only",
        "--interval", "earbuds=0", "--requests", "10", "--json", str(out),
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    events = json.loads(out.read_text())["events"]
    assert len(events) == len(words)
    assert all(e["source"] == f"wav:{path}" and e["route"] == "device" for e in events)
    spotter = kws.KeywordSpotter(kws.model_path("int8"))
    assert [e["label"] for e in events] == [
        spotter.classify_mfcc(x).label for x in _bundled_windows(4, 11)
    ]


def test_serial_source_takes_the_mcu_audio_features(tmp_path, kws_workload):
    """The firmware stub replays the MCU front end's log-mel frames of two words over a pty; the
    source takes one window per word and KWS hears them."""
    from edgesplit.device.serial.firmware import FirmwareOnPty
    from edgesplit.device.serial.sensing import write_feature_file
    from edgesplit.device.workloads import kws

    from edgesplit.sources.mcu import SerialAudioSource

    audio, truth = audio_stream(2, seed=4)
    features = tmp_path / "speech.mel"
    write_feature_file(features, audio)
    # The FP32 model in the package (the INT8 cache is rebuilt when the KWS model changes).
    spotter = kws.KeywordSpotter(kws.model_path("fp32"))
    heard = []
    with FirmwareOnPty("--features", str(features), "--duration-ms", "30000") as fw:
        src = SerialAudioSource(fw.port)
        try:
            # 20 s: the replay is a few seconds of audio at real time; room for a loaded machine.
            for _ in range(40):
                item = src.read(0.5)
                if item is not None:
                    heard.append(spotter.classify_mfcc(item.x).label)
                if len(heard) >= 2:
                    break
        finally:
            src.close()
    from edgesplit.device.audio.kws_data import KEYWORDS, UNKNOWN

    words = [w if w in KEYWORDS else UNKNOWN for _, w in truth]
    assert heard and heard[0] in words, (heard, words)


def test_demo_takes_typed_requests_for_the_phone(tmp_path, intent_workload):
    from edgesplit.device.text.intents import LABELS

    out = tmp_path / "demo.json"
    typed = "set a timer for ten minutes\nwhat's the weather tomorrow\n"
    res = demo(
        "--text", "--device", "phone", "--policy", "phone=device-only", "--interval", "phone=0",
        "--json", str(out), "--out", str(tmp_path / "run"),
        stdin=typed,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    events = json.loads(out.read_text())["events"]
    assert [e["source"] for e in events] == ["text:stdin"] * 2  # ended at end of input
    assert all(e["label"] in LABELS for e in events)
    assert [e["label"] for e in events] == ["set_timer", "weather"]
    assert res.stdout.count("phone: ") == 2  # each answer printed as it came


def test_missing_sensors_are_one_clear_error(tmp_path):
    cases = [
        (["--camera", str(tmp_path / "none.mp4")], "no such video file"),
        (["--camera", "57"], "--camera 57: cannot open this camera index"),
        (["--mic", str(tmp_path / "none.wav")], "no such WAV file"),
        (["--serial", "/dev/ttyNOPE0"], "--serial /dev/ttyNOPE0: cannot open the port"),
        (["--mic", "x.wav", "--serial", "/dev/ttyS0"], "give one of them"),
    ]
    for args, message in cases:
        res = demo("--requests", "1", "--out", str(tmp_path / "run"), *args)
        assert res.returncode == 2 and message in res.stderr, (args, res.stderr)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    with pytest.raises(InputError, match="not a 16-bit PCM WAV"):
        WavSource(bad)


def test_live_camera_when_there_is_one():
    if not Path("/dev/video0").exists():
        pytest.skip("no camera on this machine (/dev/video0 missing)")
    cam = CameraSource("0")
    try:
        item = cam.read(5.0)
        assert item is not None and item.x.shape == (480, 640, 3)
    finally:
        cam.close()


def test_live_microphone_when_there_is_one():
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        pytest.skip(f"no PortAudio here: {exc}")
    if not any(d["max_input_channels"] > 0 for d in sd.query_devices()):
        with pytest.raises(EdgesplitError, match="--mic"):
            open_sources(mic="default")  # no input device: one clear error
        pytest.skip("no audio input device on this machine (the error path was checked)")
    src = open_sources(mic="default")["earbuds"]
    try:
        src.read(1.0)  # a quiet room may give nothing; it must not hang or fail
    finally:
        src.close()
