"""From sensor messages to on-device inference: MCU log-mel frames feed keyword spotting, and a
button press asks the glasses to capture and read a frame."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from edgesplit.device.audio.features import FRAMES, MEL_BANDS, log_mel, mfcc_from_log_mel
from edgesplit.device.serial.protocol import AudioFeatures, Button, Message

Q88 = 256.0  # AUDIO_FEATURES values are natural-log energies in Q8.8


def log_mel_to_q88(frames: np.ndarray) -> np.ndarray:
    """Float log-mel frames -> the int16 Q8.8 values the MCU sends (saturating)."""
    return np.clip(np.round(np.asarray(frames) * Q88), -32768, 32767).astype("<i2")


def write_feature_file(path: Path, audio: np.ndarray) -> int:
    """The MCU front end's output for ``audio`` (16 kHz float, 1 s per 49 frames) as a replay file
    for ``edgesplit_fw --features``; returns the number of frames written."""
    audio = np.asarray(audio, dtype=np.float32)
    clips = max(1, int(np.ceil(audio.size / 16_000)))
    frames = [log_mel(audio[i * 16_000 : (i + 1) * 16_000]) for i in range(clips)]
    q = log_mel_to_q88(np.concatenate(frames))
    path.write_bytes(q.tobytes())
    return int(q.shape[0])


class AudioWindow:
    """Keeps the last 49 log-mel frames (~1 s) received from the MCU."""

    def __init__(self) -> None:
        self.frames: deque[np.ndarray] = deque(maxlen=FRAMES)
        self.received = 0

    def add(self, msg: AudioFeatures) -> None:
        if msg.bands != MEL_BANDS:
            raise ValueError(f"AUDIO_FEATURES has {msg.bands} mel bands, the KWS front end uses 40")
        for frame in msg.values:
            self.frames.append(np.asarray(frame, dtype=np.float32) / Q88)
            self.received += 1

    @property
    def full(self) -> bool:
        return len(self.frames) == FRAMES

    def mfcc(self) -> np.ndarray:
        """The host finishes the MFCC the MCU started: DCT of the log-mel window, (49, 10)."""
        if not self.full:
            raise ValueError(f"window has {len(self.frames)} of {FRAMES} frames")
        return mfcc_from_log_mel(np.stack(self.frames))


class SensorRouter:
    """Dispatches messages: audio windows to a KWS callback, button presses to a capture hook."""

    def __init__(
        self,
        on_audio_window: Callable[[np.ndarray], object] | None = None,
        on_button_press: Callable[[Button], object] | None = None,
        hop_frames: int = 25,
    ) -> None:
        self.window = AudioWindow()
        self.on_audio_window, self.on_button_press = on_audio_window, on_button_press
        self.hop_frames = hop_frames
        self._since_last = 0
        self.audio_skipped = 0  # AUDIO_FEATURES messages whose band count KWS cannot use
        self.warnings: list[str] = []  # each distinct problem once, for the user

    def _warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def handle(self, msg: Message) -> list[object]:
        results: list[object] = []
        if isinstance(msg, AudioFeatures) and msg.bands != MEL_BANDS:
            # A valid message from a board with another front end: keep streaming, skip KWS.
            self.audio_skipped += 1
            self._warn(
                f"AUDIO_FEATURES has {msg.bands} mel bands; keyword spotting needs {MEL_BANDS}, "
                f"so these frames are not used for KWS"
            )
        elif isinstance(msg, AudioFeatures):
            before = self.window.received
            self.window.add(msg)
            self._since_last += self.window.received - before
            if self.on_audio_window and self.window.full and self._since_last >= self.hop_frames:
                self._since_last = 0
                results.append(self.on_audio_window(self.window.mfcc()))
        elif isinstance(msg, Button) and msg.event == Button.PRESS and self.on_button_press:
            results.append(self.on_button_press(msg))
        return results
