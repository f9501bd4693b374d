"""Reading user files for the workloads: every bad file is one clear InputError naming it.

Images: :func:`edgesplit.device.vision.images.load_image`. Audio: WAV in 16-bit PCM or
32-bit IEEE float (the format that can carry NaN), parsed by hand so every defect gets a message,
then segmented by Silero VAD into one 1 s window per utterance. Text: UTF-8, one request a line.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from edgesplit.errors import InputError

MAX_AUDIO_S = 600.0


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 audio and its sample rate; PCM 16-bit or IEEE float 32-bit."""
    data = path.read_bytes()
    if not data:
        raise InputError(f"{path}: empty file (0 bytes), expected a WAV file")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise InputError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int] | None = None
    samples: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise InputError(f"{path}: WAV 'fmt ' chunk is {len(body)} bytes, expected 16")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            samples = body
        pos += 8 + size + (size & 1)
    if fmt is None or samples is None:
        raise InputError(f"{path}: WAV file has no {'fmt' if fmt is None else 'data'} chunk")
    tag, channels, rate, bits = fmt
    if tag == 0xFFFE and bits in (16, 32):  # WAVE_FORMAT_EXTENSIBLE: trust the bit depth
        tag = 3 if bits == 32 else 1
    if channels < 1 or not 1000 <= rate <= 192_000:
        raise InputError(
            f"{path}: WAV has {channels} channels at {rate} Hz; expected 1+ channels at 1-192 kHz"
        )
    if (tag, bits) == (1, 16):
        pcm = np.frombuffer(samples[: len(samples) // 2 * 2], "<i2").astype(np.float32) / 32768
    elif (tag, bits) == (3, 32):
        pcm = np.frombuffer(samples[: len(samples) // 4 * 4], "<f4").astype(np.float32)
    else:
        raise InputError(
            f"{path}: WAV format tag {tag} with {bits} bits per sample; expected 16-bit PCM or "
            "32-bit float"
        )
    pcm = pcm[: pcm.size // channels * channels].reshape(-1, channels).mean(axis=1)
    if pcm.size == 0:
        raise InputError(f"{path}: WAV file holds no samples (0 s of audio)")
    if not np.isfinite(pcm).all():
        bad = int((~np.isfinite(pcm)).sum())
        raise InputError(f"{path}: audio has {bad} NaN or infinite samples")
    if pcm.size / rate > MAX_AUDIO_S:
        raise InputError(f"{path}: audio is {pcm.size / rate:.0f} s long; at most {MAX_AUDIO_S} s")
    return np.clip(pcm, -1.0, 1.0), rate


def read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line of a UTF-8 text file."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})"
        ) from None
    lines = [(i, s.strip()) for i, s in enumerate(text.splitlines(), 1) if s.strip()]
    if not lines:
        raise InputError(f"{path}: no requests (the file is empty or blank)")
    return lines


def utterance_windows(audio: np.ndarray, rate: int) -> list[tuple[float, float, np.ndarray]]:
    """Audio longer than 1 s: one 1 s window per VAD utterance, (start s, end s, window)."""
    from edgesplit.device.audio.features import CLIP_SAMPLES, SAMPLE_RATE_HZ
    from edgesplit.device.audio.synth import resample
    from edgesplit.device.audio.vad import SileroVad

    audio = resample(audio, rate, SAMPLE_RATE_HZ) if rate != SAMPLE_RATE_HZ else audio
    if audio.size <= CLIP_SAMPLES:
        clip = np.pad(audio, (0, CLIP_SAMPLES - audio.size))
        return [(0.0, audio.size / SAMPLE_RATE_HZ, clip)]
    out = []
    for seg in SileroVad(threads=1).segments(audio):
        centre = (seg.start_sample + seg.end_sample) // 2
        start = min(max(0, centre - CLIP_SAMPLES // 2), audio.size - CLIP_SAMPLES)
        out.append(
            (
                seg.start_sample / SAMPLE_RATE_HZ,
                seg.end_sample / SAMPLE_RATE_HZ,
                audio[start : start + CLIP_SAMPLES],
            )
        )
    return out
