"""``scripts/train_kws.py --speech-commands DIR`` on a tiny directory in Speech Commands v2's
standard layout, made here from synthesised clips (espeak-ng and flite speakers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from edgesplit.device.audio.augment import street_noise
from edgesplit.device.audio.kws_data import KEYWORDS, LABELS, SILENCE, UNKNOWN
from edgesplit.device.audio.speech_commands import clip_files, load_speech_commands
from edgesplit.device.audio.synth import Say, speak, write_wav

from edgesplit.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("yes", "stop", "go", "bed", "tree")  # three keywords, two unknown words
SPEAKERS = [("espeak-ng", "en-us+m3"), ("espeak-ng", "en-gb+f2"), ("flite", "awb")]
SPEAKERS += [("flite", "rms"), ("espeak-ng", "en-029+m5")]


@pytest.fixture(scope="module")
def sc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("speech_commands_v0.02")
    says = [Say(f, v, w, t) for w in WORDS for f, v in SPEAKERS for t in (0.9, 1.1)]
    val, test = [], []
    for i, (say, audio) in enumerate(zip(says, speak(says), strict=True)):
        speaker, take = f"{i // 2 % len(SPEAKERS):08x}", i % 2
        rel = f"{say.text}/{speaker}_nohash_{take}.wav"
        (root / say.text).mkdir(exist_ok=True)
        write_wav(root / rel, np.pad(audio, (2000, 0))[:16_000])
        if speaker == f"{3:08x}":  # flite rms: validation; espeak en-029: testing
            val.append(rel)
        elif speaker == f"{4:08x}":
            test.append(rel)
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    (root / "_background_noise_").mkdir()
    noise = 0.1 * street_noise(np.random.default_rng(0), 48_000)
    write_wav(root / "_background_noise_" / "street.wav", noise)
    return root


def test_layout_is_read_as_speech_commands(sc_dir):
    train = clip_files(sc_dir, "train")
    test = clip_files(sc_dir, "test")
    assert len(train) == 3 * 2 * len(WORDS) and len(test) == 2 * len(WORDS)
    assert {p.parent.name for p, _ in train} == set(WORDS)
    label = {p.parent.name: y for p, y in train}
    assert label["yes"] == KEYWORDS.index("yes") and label["bed"] == LABELS.index(UNKNOWN)
    assert not {p for p, _ in train} & {p for p, _ in test}
    x, y = load_speech_commands(sc_dir, "test")
    assert x.shape[1:] == (49, 10) and (y == LABELS.index(SILENCE)).sum() >= 1


def test_not_speech_commands_is_one_clear_error(tmp_path):
    (tmp_path / "yes").mkdir()
    with pytest.raises(InputError, match="validation_list.txt"):
        clip_files(tmp_path, "train")
    with pytest.raises(InputError, match="not a directory"):
        clip_files(tmp_path / "missing", "train")


def test_train_kws_speech_commands_end_to_end(sc_dir, tmp_path):
    pytest.importorskip("torch")
    cmd = [sys.executable, str(ROOT / "scripts" / "train_kws.py"), "--speech-commands"]
    cmd += [str(sc_dir), "--epochs", "2", "--threads", "1", "--out", str(tmp_path), "--name", "sc"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Speech Commands testing_list" in done.stdout
    card = json.loads((tmp_path / "sc.json").read_text())
    assert card["labels"] == list(LABELS)
    assert card["speech_commands_test"]["examples"] == 2 * len(WORDS) + 1
    assert "--speech-commands" in card["rebuild"]
    sess = ort.InferenceSession(str(tmp_path / "sc_fp32.onnx"))
    x, _ = load_speech_commands(sc_dir, "test")
    logits = sess.run(None, {"mfcc": x[:, None]})[0]
    assert logits.shape == (len(x), len(LABELS)) and np.isfinite(logits).all()
