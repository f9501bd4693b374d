"""The sensor MCU over the serial link (device/serial/): its log-mel audio features feed the
earbuds' KWS, and its button is push-to-talk.

The host finishes the MFCC the MCU started (device/serial/sensing.py). A window is taken once per
utterance: when the loudest frame of the last second stands ``SPEECH_MARGIN`` above the quiet
floor and sits in the middle of the window (the word is centred, as the VAD-cut windows are).
A button press takes the next window whatever its energy.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from edgesplit.errors import InputError
from edgesplit.sources import Item, unscored

# Natural-log mel energy above the floor that counts as speech: 2.3 = 10 dB (a common energy-VAD
# margin; the MCU sends ln energies in Q8.8, device/serial/sensing.py).
SPEECH_MARGIN = 2.3
FLOOR_FRAMES = 250  # the quiet floor: the 10th percentile of the last ~5 s of frame energies


class SerialAudioSource:
    device = "earbuds"

    def __init__(self, port: str, baud: int = 115_200) -> None:
        from edgesplit.device.serial.link import SensorLink
        from edgesplit.device.serial.protocol import Button
        from edgesplit.device.serial.sensing import SensorRouter

        self.name = f"serial:{port}"
        self._button = Button
        try:
            self.link = SensorLink(port, baud=baud, reconnect=True)
        except PermissionError:
            raise InputError(
                f"--serial {port}: permission denied (add yourself to the dialout group: "
                "`sudo usermod -aG dialout $USER`, then log in again)"
            ) from None
        except (OSError, ValueError) as exc:
            raise InputError(f"--serial {port}: cannot open the port ({exc})") from None
        self.router = SensorRouter(on_audio_window=self._window, hop_frames=5)
        self.energies: deque[float] = deque(maxlen=FLOOR_FRAMES)
        self.windows: deque[np.ndarray] = deque(maxlen=4)
        self.push_to_talk = False
        self.presses = 0
        self._refractory = 0  # frames to wait after a window before the next one

    def _window(self, mfcc: np.ndarray) -> None:
        frames = np.stack(self.router.window.frames)  # (49, 40) log-mel
        energy = frames.mean(axis=1)
        self.energies.extend(energy[-self.router.hop_frames :].tolist())
        self._refractory = max(0, self._refractory - self.router.hop_frames)
        if self.push_to_talk:
            self.push_to_talk = False
            self.windows.append(mfcc)
            self._refractory = len(energy)
            return
        floor = float(np.percentile(np.asarray(self.energies), 10))
        loudest = int(energy.argmax())
        centred = len(energy) // 3 <= loudest < 2 * len(energy) // 3
        if self._refractory == 0 and energy[loudest] - floor >= SPEECH_MARGIN and centred:
            self.windows.append(mfcc)
            self._refractory = len(energy)

    @property
    def exhausted(self) -> bool:
        return False

    def read(self, timeout_s: float) -> Item | None:
        end = time.monotonic() + timeout_s
        while not self.windows and time.monotonic() < end:
            for _, msg in self.link.poll():
                if isinstance(msg, self._button) and msg.event == self._button.PRESS:
                    self.presses += 1
                    self.push_to_talk = True
                self.router.handle(msg)
        return Item(self.windows.popleft(), "", unscored) if self.windows else None

    def close(self) -> None:
        self.link.close()
