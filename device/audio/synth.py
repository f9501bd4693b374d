"""Speech from three Debian synthesis families: the data source for keyword spotting.

* ``espeak-ng``: formant synthesis; a voice is an accent plus a voice variant (speaker character).
* ``festival``: concatenative diphone voices (kal, ked) and the HTS statistical voice (slt).
* ``flite``: CMU clustergen statistical-parametric voices (awb, rms).

Each speaker belongs to one family only (flite's kal/slt voices are the same speakers as festival's,
so they are not used), so a family held out of training is also a set of unseen speakers. Within
espeak-ng, train and in-family test sets use disjoint variants.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from pathlib import Path

import numpy as np
from edgesplit.device.audio.features import CLIP_SAMPLES, SAMPLE_RATE_HZ
from edgesplit.device.errors import ToolMissingError

ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ToolMissingError(
            "espeak-ng is not installed; run `apt-get install espeak-ng` "
            "(scripts/bootstrap.sh does this)"
        )
    return exe


@lru_cache(maxsize=1)
def voice_variants() -> tuple[str, ...]:
    """Variant names espeak-ng knows (``espeak-ng --voices=variant``), sorted."""
    out = subprocess.run(
        [espeak_binary(), "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout
    names = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            names.append(parts[4].split("/")[-1])
    return tuple(sorted(set(names)))


def split_variants(seed: int = 0, held_out_fraction: float = 0.2) -> dict[str, tuple[str, ...]]:
    """Deterministically split the variants into ``train`` and ``test`` (held-out) speakers."""
    variants = list(voice_variants())
    rng = np.random.default_rng(seed)
    rng.shuffle(variants)
    n_test = max(1, round(len(variants) * held_out_fraction))
    return {"test": tuple(sorted(variants[:n_test])), "train": tuple(sorted(variants[n_test:]))}


@dataclass(frozen=True)
class Utterance:
    text: str
    accent: str
    variant: str
    words_per_minute: int = 160
    pitch: int = 50  # espeak-ng 0..99


def resample(audio: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Polyphase resampling (scipy) of mono float audio."""
    from scipy.signal import resample_poly

    if from_hz == to_hz:
        return audio.astype(np.float32)
    g = gcd(from_hz, to_hz)
    return resample_poly(audio, to_hz // g, from_hz // g).astype(np.float32)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono 16-bit PCM WAV -> float32 in [-1, 1] and its sample rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    return pcm / 32768.0, rate


def write_wav(path: str | Path, audio: np.ndarray, rate: int = SAMPLE_RATE_HZ) -> None:
    pcm = np.clip(np.asarray(audio) * 32767.0, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def synthesize(utt: Utterance) -> np.ndarray:
    """Speak ``utt`` with espeak-ng; returns float32 mono audio at 16 kHz, silence trimmed."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "u.wav"
        subprocess.run(
            [
                espeak_binary(),
                "-v",
                f"{utt.accent}+{utt.variant}",
                "-s",
                str(utt.words_per_minute),
                "-p",
                str(utt.pitch),
                "-w",
                str(wav),
                utt.text,
            ],
            check=True,
            capture_output=True,
        )
        audio, rate = read_wav(wav)
    audio = resample(audio, rate, SAMPLE_RATE_HZ)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * (np.abs(audio).max() + 1e-9))
    if loud.size:
        audio = audio[loud[0] : loud[-1] + 1]
    return audio[:CLIP_SAMPLES]


def coloured_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink or brown noise (random), unit RMS."""
    white = rng.standard_normal(n).astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        f = np.arange(spectrum.size, dtype=np.float32)
        f[0] = 1.0
        spectrum /= f ** (0.5 * kind)
        noise = np.fft.irfft(spectrum, n=n).astype(np.float32)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-9)


def place_in_clip(speech: np.ndarray, rng: np.random.Generator, snr_db: float | None) -> np.ndarray:
    """Random time shift inside a 1 s clip, random gain, optional noise at ``snr_db``."""
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    if speech.size:
        start = int(rng.integers(0, CLIP_SAMPLES - speech.size + 1))
        clip[start : start + speech.size] = speech / (np.abs(speech).max() + 1e-9)
        clip *= rng.uniform(0.3, 0.9)
    if snr_db is not None:
        speech_rms = np.sqrt(np.mean(clip[clip != 0] ** 2)) if speech.size else 0.05
        noise_rms = speech_rms / (10 ** (snr_db / 20))
        clip += coloured_noise(rng, CLIP_SAMPLES) * noise_rms
    return np.clip(clip, -1.0, 1.0)


# --- several synthesis families -------------------------------------------------------------

FAMILIES = ("espeak-ng", "festival", "flite")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
FLITE_VOICES = ("awb", "rms")
# Mean F0 the engines' intonation models aim at for tempo/pitch scaling (festival's int_lr default
# targets and flite's clustergen voices speak around these).
_BASE_F0_HZ = {"kal_diphone": 105.0, "ked_diphone": 105.0, "awb": 110.0, "rms": 100.0}
_TOOLS = {"espeak-ng": "espeak-ng", "festival": "festival", "flite": "flite"}


@dataclass(frozen=True)
class Say:
    """One word spoken by one synthesiser voice; ``tempo`` > 1 is faster, ``pitch`` scales F0."""

    family: str
    voice: str  # espeak-ng: "accent+variant"; festival/flite: the voice name
    text: str
    tempo: float = 1.0
    pitch: float = 1.0


def tool(family: str) -> str:
    """Path of the family's synthesiser binary; ToolMissingError says how to install it."""
    if family not in _TOOLS:
        raise ValueError(f"family={family!r}: expected one of {FAMILIES}")
    exe = shutil.which(_TOOLS[family])
    if exe is None:
        raise ToolMissingError(
            f"{_TOOLS[family]} is not installed; run `apt-get install espeak-ng festival "
            "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite` (scripts/bootstrap.sh)"
        )
    return exe


def family_voices(family: str) -> tuple[str, ...]:
    """Every voice of ``family`` (espeak-ng: accent+variant for all accents and variants)."""
    if family == "espeak-ng":
        return tuple(f"{a}+{v}" for a in ACCENTS for v in voice_variants())
    if family == "festival":
        return FESTIVAL_VOICES
    if family == "flite":
        return FLITE_VOICES
    raise ValueError(f"family={family!r}: expected one of {FAMILIES}")


def trim(audio: np.ndarray) -> np.ndarray:
    """Cut leading/trailing samples quieter than 2 % of the peak."""
    loud = np.flatnonzero(np.abs(audio) > 0.02 * (np.abs(audio).max() + 1e-9))
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]


def _run_one(say: Say, wav: Path) -> None:
    if say.family == "espeak-ng":
        cmd = [tool("espeak-ng"), "-v", say.voice, "-s", str(round(160 * say.tempo))]
        cmd += ["-p", str(int(np.clip(50 * say.pitch, 0, 99))), "-w", str(wav), say.text]
    elif say.family == "flite":
        cmd = [tool("flite"), "-voice", say.voice, "--setf", f"duration_stretch={1 / say.tempo}"]
        cmd += ["--setf", f"int_f0_target_mean={_BASE_F0_HZ[say.voice] * say.pitch:.0f}"]
        cmd += ["-t", say.text, "-o", str(wav)]
    else:
        raise ValueError(f"family={say.family!r} is synthesised in batches")
    subprocess.run(cmd, check=True, capture_output=True)


def _festival_batch(says: list[Say], tmp: Path) -> list[Path]:
    """One festival process per voice speaks the whole batch (its start-up costs ~0.5 s)."""
    lines, paths = [], []
    for i, s in enumerate(says):
        if s.voice not in FESTIVAL_VOICES or not s.text.rstrip(".!?").isalpha():
            raise ValueError(f"festival voice {s.voice!r} / text {s.text!r} not supported")
        path = tmp / f"f{i}.wav"
        f0 = _BASE_F0_HZ.get(s.voice, 105.0) * s.pitch
        lines += [
            f"(voice_{s.voice})",
            f"(Parameter.set 'Duration_Stretch {1 / s.tempo:.3f})",
            f"(set! int_lr_params '((target_f0_mean {f0:.0f}) (target_f0_std {0.2 * f0:.0f}) "
            "(model_f0_mean 170) (model_f0_std 34)))",
            f'(set! u (SynthText "{s.text}"))',
            f'(utt.save.wave u "{path}" \'riff)',
        ]
        paths.append(path)
    script = tmp / "batch.scm"
    script.write_text("\n".join(lines) + "\n")
    subprocess.run([tool("festival"), "-b", str(script)], check=True, capture_output=True)
    return paths


def speak(says: list[Say]) -> list[np.ndarray]:
    """Dry float32 16 kHz audio for each request, silence trimmed (not cropped to 1 s)."""
    out: list[np.ndarray | None] = [None] * len(says)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        fest = [i for i, s in enumerate(says) if s.family == "festival"]
        for start in range(0, len(fest), 200):
            chunk = fest[start : start + 200]
            for i, path in zip(chunk, _festival_batch([says[i] for i in chunk], tmp), strict=True):
                out[i] = _load_trimmed(path)
        for i, s in enumerate(says):
            if s.family != "festival":
                wav = tmp / "one.wav"
                _run_one(s, wav)
                out[i] = _load_trimmed(wav)
    return [a if a is not None else np.zeros(0, np.float32) for a in out]


def _load_trimmed(path: Path) -> np.ndarray:
    audio, rate = read_wav(path)
    return trim(resample(audio, rate, SAMPLE_RATE_HZ))
