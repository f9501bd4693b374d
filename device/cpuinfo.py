"""The CPU facts that decide whether INT8 is faster: model name and the ISA flags that matter."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from pathlib import Path

# x86: VNNI / AMX give fast int8 dot products; ARM: asimddp (Cortex-A76, Pi 5) does, A72 (Pi 4) not.
INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


@dataclass(frozen=True)
class CpuInfo:
    machine: str
    model: str
    cores: int
    flags: dict[str, bool]

    @property
    def fast_int8(self) -> bool:
        """True when the CPU has an int8 dot-product instruction ORT uses."""
        f = self.flags
        return bool(
            f.get("avx512_vnni") or f.get("avx_vnni") or f.get("amx_int8") or f.get("asimddp")
        )

    def to_dict(self) -> dict:
        return asdict(self) | {"fast_int8": self.fast_int8}


def read_cpuinfo(text: str | None = None) -> CpuInfo:
    """Parse ``/proc/cpuinfo`` (x86 ``model name``/``flags``, ARM ``CPU part``/``Features``)."""
    import os

    if text is None:
        p = Path("/proc/cpuinfo")
        text = p.read_text() if p.exists() else ""
    model = ""
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key == "cpu part" and not model:
            model = {"0xd08": "Cortex-A72", "0xd0b": "Cortex-A76"}.get(
                value.strip(), f"ARM part {value.strip()}"
            )
    return CpuInfo(
        machine=platform.machine(),
        model=model or platform.processor() or "unknown",
        cores=os.cpu_count() or 1,
        flags={f: f in flags for f in INT8_FLAGS},
    )
