"""Run the compiled firmware stub (firmware_stubs/build/edgesplit_fw) on one side of a pty pair."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tty
from pathlib import Path

from edgesplit.device.errors import ToolMissingError

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware_stubs"
FIRMWARE_BINARY = FIRMWARE_DIR / "build" / "edgesplit_fw"


def firmware_binary(build: bool = True) -> Path:
    """The host build of the firmware, (re)built with its Makefile when make is available (a
    no-op when up to date, so a stale binary never runs against newer sources)."""
    if build and (FIRMWARE_DIR / "Makefile").is_file() and shutil.which("make"):
        subprocess.run(["make", "-s", "-C", str(FIRMWARE_DIR), "build/edgesplit_fw"], check=True)
    if not FIRMWARE_BINARY.is_file():
        raise ToolMissingError(
            f"firmware binary not found at {FIRMWARE_BINARY}; build it with "
            f"`make -C firmware_stubs` (needs a C compiler and make)"
        )
    return FIRMWARE_BINARY


class FirmwareOnPty:
    """Starts the firmware with its UART on a pty master; :attr:`port` is the slave device path
    (``/dev/pts/N``) that the host opens with pyserial, exactly like ``/dev/ttyACM0``."""

    def __init__(self, *args: str, baud: int = 115_200) -> None:
        self.args = [str(firmware_binary()), "--stdio", "--baud", str(baud), *args]
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line editing: a byte pipe like a UART
        self.port = os.ttyname(self.slave)
        self.proc = subprocess.Popen(
            self.args, stdin=self.master, stdout=self.master, stderr=subprocess.PIPE
        )

    def _end_process(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self, *args: str) -> None:
        """Reboot the board: a new firmware process on the same pty (the host's port stays
        open, as a USB-UART bridge does when the MCU behind it resets)."""
        self._end_process()
        if args:
            self.args = [*self.args[:4], *args]
        self.proc = subprocess.Popen(
            self.args, stdin=self.master, stdout=self.master, stderr=subprocess.PIPE
        )

    def stop(self) -> int:
        self._end_process()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        return self.proc.returncode

    def __enter__(self) -> FirmwareOnPty:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
