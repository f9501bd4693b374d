"""Google's speech embedding (Lin et al. 2020, ICASSP) as shipped in the openwakeword 0.5.1 wheel.

The embedding network was trained by Google on large amounts of *real* speech so that keyword heads
trained on synthesised speech generalise to real talkers; our synthetic training data is exactly
that case. The wheel ships it as two ONNX files (no download at run time): ``melspectrogram.onnx``
(int16-scale float audio -> 32 log-mel bands, 10 ms hop) and ``embedding_model.onnx`` (76 mel
frames -> 96 values). We follow openWakeWord's ``utils.AudioFeatures``: mel output ``/10 + 2``,
windows of 76 frames every 8 frames (80 ms).

A 1 s clip gives 73 mel frames, too few for one window, so it is centred in 0.25 s of padding on
each side (1.5 s -> 147 frames -> 9 embeddings). The padding and the whole clip carry a fixed,
seeded dither of 1 LSB RMS (int16 scale): real microphones never give digital silence, and a fixed
sequence keeps the same clip mapped to the same features.

Licence: openWakeWord's code is Apache-2.0; its README says every model file in the wheel is
CC BY-NC-SA 4.0, and that the embedding network re-implements Google's TFHub
``speech_embedding/1`` module, published under Apache-2.0. Non-commercial use is the safe reading.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from edgesplit.device.audio.features import CLIP_SAMPLES

WHEEL = "openwakeword==0.5.1"
PAD_SAMPLES = 4_000  # 0.25 s each side of the 1 s clip
WINDOW_FRAMES = 76  # mel frames per embedding window (fixed by the embedding model)
STEP_FRAMES = 8  # 80 ms between windows (openWakeWord's stride)
EMBEDDING_DIM = 96
MEL_BANDS = 32
INT16_SCALE = 32_767.0
DITHER_LSB = 1.0  # RMS of the fixed dither, int16 units
PADDED_SAMPLES = CLIP_SAMPLES + 2 * PAD_SAMPLES
MEL_FRAMES = PADDED_SAMPLES // 160 - 3  # the mel model's framing (25 ms window, 10 ms hop)
WINDOWS = (MEL_FRAMES - WINDOW_FRAMES) // STEP_FRAMES + 1  # 9


def model_files() -> tuple[Path, Path]:
    """(melspectrogram.onnx, embedding_model.onnx) inside the installed openwakeword wheel."""
    from edgesplit.device.errors import ModelFileError
    from edgesplit.device.paths import package_dir

    folder = package_dir("openwakeword", WHEEL) / "resources" / "models"
    files = folder / "melspectrogram.onnx", folder / "embedding_model.onnx"
    for f in files:
        if not f.is_file():
            raise ModelFileError(f"{f} is missing: install {WHEEL} (0.6+ ships no models)")
    return files


def _dither() -> np.ndarray:
    return np.random.default_rng(20200).normal(0.0, DITHER_LSB, PADDED_SAMPLES).astype(np.float32)


class SpeechEmbedder:
    """1 s clips of 16 kHz float audio (-1..1) -> (N, WINDOWS, 96) speech embeddings."""

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        mel, emb = model_files()
        cpu = ["CPUExecutionProvider"]
        self.mel = ort.InferenceSession(str(mel), opts, providers=cpu)
        self.emb = ort.InferenceSession(str(emb), opts, providers=cpu)
        self.dither = _dither()

    def mel_frames(self, audio: np.ndarray) -> np.ndarray:
        """(N, MEL_FRAMES, 32) transformed log-mel frames of the padded clips."""
        x = np.asarray(audio, np.float32).reshape(-1, CLIP_SAMPLES)
        padded = np.zeros((len(x), PADDED_SAMPLES), np.float32)
        padded[:, PAD_SAMPLES : PAD_SAMPLES + CLIP_SAMPLES] = np.clip(x, -1.0, 1.0) * INT16_SCALE
        padded += self.dither
        spec = self.mel.run(None, {"input": padded})[0]  # (N, 1, frames, 32)
        return spec[:, 0] / 10.0 + 2.0

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        spec = self.mel_frames(audio)
        starts = range(0, MEL_FRAMES - WINDOW_FRAMES + 1, STEP_FRAMES)
        windows = np.stack([spec[:, s : s + WINDOW_FRAMES] for s in starts], axis=1)
        n = len(spec)
        flat = windows.reshape(n * WINDOWS, WINDOW_FRAMES, MEL_BANDS, 1).astype(np.float32)
        out = self.emb.run(None, {"input_1": flat})[0]  # (N * WINDOWS, 1, 1, 96)
        return out.reshape(n, WINDOWS, EMBEDDING_DIM)
