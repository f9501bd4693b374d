"""The glasses camera: an OpenCV capture (device index, video file or stream URL), or Picamera2.

Frames come out as the glasses workload takes them: RGB, 640x480 (the bundled frames' size). A
live camera keeps a one-frame buffer so each request reads what the camera sees now, not a
frame queued a second ago; a video file is read frame by frame, one frame per request, and the
source is exhausted at its end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgesplit.errors import InputError, ToolMissingError
from edgesplit.sources import Item, unscored

FRAME_SIZE = (640, 480)  # width, height: device/vision/render.py's FRAME_SIZE
PICAMERA = ("picamera2", "pi")  # --camera values that select the Pi camera module
STALL_S = 5.0  # a live camera that gives no frame for this long is an error, not a pause


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:  # e.g. libGL.so.1 missing with the GUI build of OpenCV
        raise ToolMissingError(
            f"--camera needs OpenCV and it does not load ({exc}); install "
            "opencv-python-headless, or `apt-get install libgl1 libglib2.0-0`"
        ) from None
    return cv2


def to_glasses_frame(rgb: np.ndarray) -> np.ndarray:
    """Any RGB frame -> 640x480 RGB uint8 (resized when the camera gives another size)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"camera frame shape {rgb.shape}: expected height x width x 3 (RGB)")
    if (rgb.shape[1], rgb.shape[0]) != FRAME_SIZE:
        rgb = _cv2().resize(rgb, FRAME_SIZE, interpolation=_cv2().INTER_AREA)
    return np.ascontiguousarray(rgb, dtype=np.uint8)


class CameraSource:
    device = "glasses"

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.name = f"camera:{spec}"
        self.is_file = Path(spec).is_file()
        self._exhausted = False
        self._pi: Any = None
        self._cap: Any = None
        if spec in PICAMERA:
            self._open_picamera()
            return
        cv2 = _cv2()
        target: int | str = int(spec) if spec.isdigit() else spec
        if isinstance(target, str) and "://" not in target and not self.is_file:
            raise InputError(
                f"--camera {spec}: no such video file (give a camera index such as 0, a video "
                "file, a stream URL, or picamera2)"
            )
        self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            what = "camera index" if isinstance(target, int) else "video or stream"
            raise InputError(
                f"--camera {spec}: cannot open this {what} (is a camera connected? "
                "`ls /dev/video*`; on a Pi camera module use --camera picamera2)"
            )
        if not self.is_file:
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def _open_picamera(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise ToolMissingError(
                f"--camera {self.spec}: Picamera2 is not installed "
                "(Raspberry Pi OS: `sudo apt install python3-picamera2`, and create the venv "
                "with --system-site-packages)"
            ) from None
        try:
            cam = Picamera2()
            size = {"size": FRAME_SIZE, "format": "RGB888"}
            cam.configure(cam.create_still_configuration(main=size))
            cam.start()
        except (RuntimeError, IndexError, OSError) as exc:
            raise InputError(f"--camera {self.spec}: no camera module found ({exc})") from None
        self._pi = cam

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def read(self, timeout_s: float) -> Item | None:
        if self._exhausted:
            return None
        if self._pi is not None:
            # Picamera2's "RGB888" is B, G, R in memory (libcamera's naming): reverse to RGB.
            return Item(to_glasses_frame(self._pi.capture_array()[..., ::-1]), "", unscored)
        end = time.monotonic() + max(timeout_s, STALL_S if not self.is_file else 0)
        while True:
            ok, bgr = self._cap.read()
            if ok:
                rgb = _cv2().cvtColor(bgr, _cv2().COLOR_BGR2RGB)
                return Item(to_glasses_frame(rgb), "", unscored)
            if self.is_file:
                self._exhausted = True
                return None
            if time.monotonic() > end:
                raise InputError(f"--camera {self.spec}: the camera stopped giving frames")
            time.sleep(0.05)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        if self._pi is not None:
            self._pi.stop()
