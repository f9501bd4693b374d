"""Live and recorded sensor sources for the demo's devices, behind one small interface.

A :class:`Source` hands its device loop one :class:`~edgesplit.streams.Item` at a time, in the
loop's own thread: the camera (OpenCV capture or Picamera2) feeds the glasses, the microphone
(PortAudio, or a WAV file through the same VAD gate) and the sensor MCU's audio features feed the
earbuds, typed lines feed the phone. Live inputs have no ground truth: their items' ``check``
returns None and the demo reports them as unscored. The bundled seeded streams
(``edgesplit.streams``) stay the default; these modules only add inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

from edgesplit.streams import Item


def _unscored(_answer: str) -> bool | None:
    """The check of a live input: nobody knows the right answer."""
    return None


# Item.check is typed as a bool test; live inputs answer None ("unscored"), which the rig reports
# as such (edgesplit/rig.DeviceLoop.step).
unscored = cast(Callable[[str], bool], _unscored)


def live_item(x: Any) -> Item:
    """An input from a live sensor: no ground truth."""
    return Item(x, "", unscored)


class Source(Protocol):
    """What a device loop reads. ``read`` blocks at most ``timeout_s`` and returns None when
    nothing arrived; ``exhausted`` turns True when a recorded input has ended."""

    name: str  # for the live view and the telemetry: "camera:0", "wav:x.wav", "serial:/dev/ttyACM0"
    device: str  # which demo device it feeds: glasses | earbuds | phone

    def read(self, timeout_s: float) -> Item | None: ...

    @property
    def exhausted(self) -> bool: ...

    def close(self) -> None: ...


__all__ = ["Item", "Source", "live_item", "unscored"]


def open_sources(
    camera: str | None = None,
    mic: str | None = None,
    serial: str | None = None,
    text: bool = False,
    threads: int = 1,
) -> dict[str, Source]:
    """The sources asked for on the command line, by the device they feed. A source that cannot
    open raises a one-line :class:`~edgesplit.errors.EdgesplitError`; what opened is closed."""
    from pathlib import Path

    from edgesplit.errors import ConfigError

    if mic is not None and serial is not None:
        raise ConfigError("--mic and --serial both feed the earbuds: give one of them")
    opened: dict[str, Source] = {}
    try:
        if camera is not None:
            from edgesplit.sources.camera import CameraSource

            opened["glasses"] = CameraSource(camera)
        if mic is not None:
            from edgesplit.sources import audio

            if mic.lower().endswith(".wav"):
                opened["earbuds"] = audio.WavSource(Path(mic), threads)
            else:
                opened["earbuds"] = audio.MicSource(mic or None, threads)
        if serial is not None:
            from edgesplit.sources.mcu import SerialAudioSource

            opened["earbuds"] = SerialAudioSource(serial)
        if text:
            from edgesplit.sources.text import TextSource

            opened["phone"] = TextSource()
    except BaseException:
        for s in opened.values():
            s.close()
        raise
    return opened
