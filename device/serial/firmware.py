"""Run the firmware where the host can reach it over a pty: the POSIX build
(firmware_stubs/build/edgesplit_fw) on one side of a pty pair, or the Cortex-M4 build under QEMU."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
import tty
from pathlib import Path

from edgesplit.device.errors import ToolMissingError

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware_stubs"
FIRMWARE_BINARY = FIRMWARE_DIR / "build" / "edgesplit_fw"


def make_target(target: str) -> subprocess.CompletedProcess[str]:
    """``make -s -C firmware_stubs TARGET``, one at a time in this tree: parallel callers (test
    workers, a demo beside a test) would otherwise link the same output file at once."""
    lock_path = FIRMWARE_DIR / "build" / ".make.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return subprocess.run(
            ["make", "-s", "-C", str(FIRMWARE_DIR), target], capture_output=True, text=True
        )


def _make(target: str, output: Path) -> None:
    """Bring ``output`` up to date; a failed build is an error only if there is nothing to run."""
    res = make_target(target)
    if res.returncode != 0 and not output.is_file():
        raise ToolMissingError(
            f"building {output.name} failed (`make -C firmware_stubs {target}`): "
            f"{res.stderr.strip()[-300:]}"
        )


def firmware_binary(build: bool = True) -> Path:
    """The host build of the firmware, (re)built with its Makefile when make is available (a
    no-op when up to date, so a stale binary never runs against newer sources)."""
    if build and (FIRMWARE_DIR / "Makefile").is_file() and shutil.which("make"):
        _make("build/edgesplit_fw", FIRMWARE_BINARY)
    if not FIRMWARE_BINARY.is_file():
        raise ToolMissingError(
            f"firmware binary not found at {FIRMWARE_BINARY}; build it with "
            f"`make -C firmware_stubs` (needs a C compiler and make)"
        )
    return FIRMWARE_BINARY


def end_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
        end_process(self.proc)

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


CORTEXM_ELF = FIRMWARE_DIR / "build" / "cortexm" / "edgesplit_fw.elf"
QEMU_MACHINE = "mps2-an386"  # ARM MPS2 with a Cortex-M4 and CMSDK UARTs
_PTY_LINE = re.compile(r"char device redirected to (/dev/pts/\d+)")


def cortexm_firmware(build: bool = True) -> Path:
    """The Cortex-M4 build (firmware_stubs/cortexm/), built with ``make cortexm`` when the
    arm-none-eabi toolchain is there."""
    if build and shutil.which("arm-none-eabi-gcc") and shutil.which("make"):
        _make("build/cortexm/edgesplit_fw.elf", CORTEXM_ELF)
    if not CORTEXM_ELF.is_file():
        raise ToolMissingError(
            f"Cortex-M firmware not found at {CORTEXM_ELF}; it needs gcc-arm-none-eabi and "
            f"libnewlib-arm-none-eabi (scripts/bootstrap.sh installs them), then "
            f"`make -C firmware_stubs cortexm`"
        )
    return CORTEXM_ELF


class FirmwareOnQemu:
    """The Cortex-M4 firmware running under ``qemu-system-arm -M mps2-an386`` with UART0 on a
    pty; :attr:`port` is that pty, opened by the host exactly like the POSIX build's."""

    def __init__(self, start_timeout_s: float = 30.0) -> None:
        qemu = shutil.which("qemu-system-arm")
        if qemu is None:
            raise ToolMissingError(
                "qemu-system-arm not found (apt-get install qemu-system-arm; scripts/bootstrap.sh "
                "installs it)"
            )
        elf = cortexm_firmware()
        self._tmp = tempfile.TemporaryDirectory(prefix="edgesplit-qemu-")
        self.monitor_path = os.path.join(self._tmp.name, "monitor.sock")
        self.args = [
            qemu, "-M", QEMU_MACHINE, "-nographic", "-serial", "pty",
            "-monitor", f"unix:{self.monitor_path},server=on,wait=off", "-kernel", str(elf),
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.port = self._read_pty(start_timeout_s)

    def _read_pty(self, timeout_s: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        seen = b""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                seen += chunk
                match = _PTY_LINE.search(seen.decode(errors="replace"))
                if match:
                    return match.group(1)
        self.stop()
        raise ToolMissingError(
            f"qemu-system-arm did not report its serial pty within {timeout_s} s: "
            f"{seen.decode(errors='replace')[-300:]!r}"
        )

    def restart(self) -> None:
        """Reset the board (QEMU's ``system_reset``: the MCU reboots, the UART's pty stays)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mon:
            mon.settimeout(10)
            mon.connect(self.monitor_path)
            mon.recv(4096)  # the monitor's banner and prompt
            mon.sendall(b"system_reset\n")
            mon.recv(4096)

    def stop(self) -> int:
        end_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._tmp.cleanup()
        return self.proc.returncode

    def __enter__(self) -> FirmwareOnQemu:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
