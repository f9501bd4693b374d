"""The earbuds microphone: 16 kHz mono audio gated by Silero VAD, one 1 s KWS window per utterance.

The same gate takes a live PortAudio stream (``sounddevice``) or a WAV file, so the tests drive
the code path a microphone drives. A window is centred on each speech segment, as the bundled
stream cuts them (edgesplit/streams.py), and handed on as MFCC features.
"""

from __future__ import annotations

import queue
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from edgesplit.errors import InputError, ToolMissingError
from edgesplit.sources import Item, unscored

SAMPLE_RATE_HZ = 16_000
CLIP_SAMPLES = 16_000  # the KWS window: 1 s (device/audio/features.py)
CHUNK_SAMPLES = 512  # Silero VAD's chunk at 16 kHz (32 ms)
ON, OFF = 0.5, 0.35  # VAD hysteresis, as SileroVad.segments
MIN_SPEECH_CHUNKS = 4  # ~100 ms, as SileroVad.segments' min_speech_ms
HISTORY_SAMPLES = 4 * SAMPLE_RATE_HZ  # audio kept for windows around a segment


class VadGate:
    """Streaming speech gate: feed audio, get 1 s clips centred on each utterance."""

    def __init__(self, threads: int = 1) -> None:
        from edgesplit.device.audio.vad import SileroVad

        self.vad = SileroVad(threads=threads)
        self.buffer = np.zeros(0, np.float32)
        self.offset = 0  # absolute index of buffer[0]
        self._pending = np.zeros(0, np.float32)  # samples not yet a whole VAD chunk
        self._start: int | None = None
        self._waiting: list[int] = []  # centres of ended segments, waiting for their right half
        self.segments = 0

    def feed(self, audio: np.ndarray) -> list[np.ndarray]:
        audio = np.asarray(audio, np.float32).reshape(-1)
        self.buffer = np.concatenate([self.buffer, audio])
        self._pending = np.concatenate([self._pending, audio])
        end = self.offset + self.buffer.size  # absolute index after the last sample
        chunk_end = end - self._pending.size
        while self._pending.size >= CHUNK_SAMPLES:
            chunk, self._pending = self._pending[:CHUNK_SAMPLES], self._pending[CHUNK_SAMPLES:]
            p = self.vad.chunk_probability(chunk)
            if self._start is None and p >= ON:
                self._start = chunk_end
            elif self._start is not None and p < OFF:
                self._close(chunk_end)
            chunk_end += CHUNK_SAMPLES
        return self._ready(end)

    def flush(self) -> list[np.ndarray]:
        """The input ended: close an open segment and pad what is still waiting."""
        end = self.offset + self.buffer.size
        if self._start is not None:
            self._close(end)
        self.buffer = np.concatenate([self.buffer, np.zeros(CLIP_SAMPLES, np.float32)])
        return self._ready(end + CLIP_SAMPLES)

    def _close(self, stop: int) -> None:
        assert self._start is not None
        if stop - self._start >= MIN_SPEECH_CHUNKS * CHUNK_SAMPLES:
            self._waiting.append((self._start + stop) // 2)
            self.segments += 1
        self._start = None

    def _ready(self, end: int) -> list[np.ndarray]:
        clips = []
        while self._waiting and self._waiting[0] + CLIP_SAMPLES // 2 <= end:
            centre = self._waiting.pop(0)
            a = max(self.offset, centre - CLIP_SAMPLES // 2) - self.offset
            clip = self.buffer[a : a + CLIP_SAMPLES]
            clips.append(np.pad(clip, (0, CLIP_SAMPLES - clip.size)))
        keep = HISTORY_SAMPLES if self._start is None else max(HISTORY_SAMPLES, end - self._start)
        if self.buffer.size > keep:
            self.offset += self.buffer.size - keep
            self.buffer = self.buffer[-keep:]
        return clips


def _item(clip: np.ndarray) -> Item:
    from edgesplit.device.audio.features import mfcc

    return Item(mfcc(clip), "", unscored)


class WavSource:
    """A recorded microphone: a WAV file through the VAD gate, as fast as it is asked for."""

    device = "earbuds"

    def __init__(self, path: Path, threads: int = 1) -> None:
        from edgesplit.device.audio.synth import read_wav, resample

        self.name = f"wav:{path}"
        if not Path(path).is_file():
            raise InputError(f"--mic {path}: no such WAV file")
        try:
            audio, rate = read_wav(path)
        except (OSError, EOFError, ValueError, wave.Error) as exc:
            raise InputError(f"--mic {path}: not a 16-bit PCM WAV file ({exc})") from None
        self.audio = resample(audio, rate, SAMPLE_RATE_HZ)
        self.gate = VadGate(threads)
        self.pos = 0
        self._clips: list[np.ndarray] = []
        self._done = False

    @property
    def exhausted(self) -> bool:
        return self._done and not self._clips

    def read(self, timeout_s: float) -> Item | None:
        while not self._clips and not self._done:
            block = self.audio[self.pos : self.pos + SAMPLE_RATE_HZ // 4]
            self.pos += block.size
            self._clips += self.gate.feed(block)
            if self.pos >= self.audio.size:
                self._clips += self.gate.flush()
                self._done = True
        return _item(self._clips.pop(0)) if self._clips else None

    def close(self) -> None:
        pass


def _sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError:
        raise ToolMissingError(
            "--mic needs the sounddevice package (the sensors extra): pip install sounddevice"
        ) from None
    except OSError:  # the package is there, the PortAudio library is not
        raise ToolMissingError(
            "--mic: the PortAudio library is not installed (`sudo apt install libportaudio2`)"
        ) from None
    return sounddevice


class MicSource:
    """A live microphone through PortAudio: 16 kHz mono float32 blocks into the VAD gate."""

    device = "earbuds"

    def __init__(self, device: str | None = None, threads: int = 1) -> None:
        sd = _sounddevice()
        self.name = f"mic:{device or 'default'}"
        self.blocks: queue.Queue[np.ndarray] = queue.Queue(maxsize=256)
        self.overflows = 0
        target: int | str | None = int(device) if device and device.isdigit() else device
        try:
            self.stream = sd.InputStream(
                samplerate=SAMPLE_RATE_HZ,
                channels=1,
                dtype="float32",
                blocksize=CHUNK_SAMPLES,
                device=target,
                callback=self._callback,
            )
            self.stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise InputError(
                f"--mic {device or '(default)'}: cannot open a 16 kHz mono input ({exc}); "
                "list the devices with `python -m sounddevice`"
            ) from None
        self.gate = VadGate(threads)
        self._clips: list[np.ndarray] = []

    def _callback(self, indata: np.ndarray, _frames: int, _time: Any, status: Any) -> None:
        if status:
            self.overflows += 1
        try:
            self.blocks.put_nowait(indata[:, 0].copy())
        except queue.Full:  # the device thread is behind: drop audio, never block PortAudio
            self.overflows += 1

    @property
    def exhausted(self) -> bool:
        return False

    def read(self, timeout_s: float) -> Item | None:
        end = time.monotonic() + timeout_s
        try:
            while not self._clips and time.monotonic() < end:
                block = self.blocks.get(timeout=max(0.0, end - time.monotonic()))
                self._clips += self.gate.feed(block)
        except queue.Empty:
            pass
        return _item(self._clips.pop(0)) if self._clips else None

    def close(self) -> None:
        self.stream.stop()
        self.stream.close()
