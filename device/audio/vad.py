"""Always-on voice activity detection: the Silero VAD ONNX model shipped in the silero-vad wheel.

The wheel's Python wrapper imports torch, which a wearable's host should not carry, so we locate
the ONNX file without importing the package and reimplement its 30-line streaming wrapper in NumPy
(512-sample chunks at 16 kHz with 64 samples of context and a (2, 1, 128) recurrent state).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from edgesplit.device.errors import ModelFileError
from edgesplit.device.paths import package_dir
from edgesplit.device.runtime import ModelRunner, SessionConfig

SAMPLE_RATE_HZ = 16_000
CHUNK_SAMPLES = 512  # 32 ms
CONTEXT_SAMPLES = 64


def silero_model_path() -> Path:
    path = package_dir("silero_vad", "silero-vad==6.2.3") / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise ModelFileError(f"silero_vad.onnx not found in the silero-vad wheel at {path}")
    return path


@dataclass(frozen=True)
class Segment:
    start_sample: int
    end_sample: int

    @property
    def duration_s(self) -> float:
        return (self.end_sample - self.start_sample) / SAMPLE_RATE_HZ


class SileroVad:
    """Streaming speech probability per 32 ms chunk."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        self.runner = ModelRunner(path or silero_model_path(), SessionConfig(threads, 1))
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT_SAMPLES), dtype=np.float32)

    def chunk_probability(self, chunk: np.ndarray) -> float:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(1, -1)
        if chunk.shape[1] != CHUNK_SAMPLES:
            raise ValueError(
                f"VAD chunk must be {CHUNK_SAMPLES} samples at 16 kHz, got {chunk.shape[1]}"
            )
        x = np.concatenate([self._context, chunk], axis=1)
        prob, self._state = self.runner.run(
            {"input": x, "state": self._state, "sr": np.array(SAMPLE_RATE_HZ, dtype=np.int64)}
        )
        self._context = x[:, -CONTEXT_SAMPLES:]
        return float(prob.reshape(-1)[0])

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Probability per chunk over a whole signal (state reset first; tail zero-padded)."""
        self.reset()
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        pad = (-audio.size) % CHUNK_SAMPLES
        audio = np.pad(audio, (0, pad))
        return np.array(
            [self.chunk_probability(c) for c in audio.reshape(-1, CHUNK_SAMPLES)], dtype=np.float32
        )

    def segments(
        self,
        audio: np.ndarray,
        on_threshold: float = 0.5,
        off_threshold: float = 0.35,
        min_speech_ms: float = 100.0,
    ) -> list[Segment]:
        """Speech segments with hysteresis: start above ``on``, end below ``off``."""
        probs = self.probabilities(audio)
        segs, start = [], None
        for i, p in enumerate(probs):
            if start is None and p >= on_threshold:
                start = i
            elif start is not None and p < off_threshold:
                segs.append((start, i))
                start = None
        if start is not None:
            segs.append((start, len(probs)))
        min_chunks = min_speech_ms / 1000 * SAMPLE_RATE_HZ / CHUNK_SAMPLES
        return [
            Segment(a * CHUNK_SAMPLES, b * CHUNK_SAMPLES) for a, b in segs if b - a >= min_chunks
        ]
