from __future__ import annotations

from edgesplit.device.cpuinfo import CpuInfo, read_cpuinfo
from edgesplit.device.quantize import settings_for_cpu

X86_NO_VNNI = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2\n"
X86_VNNI = "processor\t: 0\nmodel name\t: Xeon\nflags\t\t: avx2 avx512f avx512_vnni\n"
PI5 = "processor\t: 0\nFeatures\t: fp asimd crc32 atomics asimddp\nCPU part\t: 0xd0b\n"
PI4 = "processor\t: 0\nFeatures\t: fp asimd crc32 cpuid\nCPU part\t: 0xd08\n"


def test_parse_x86_and_arm():
    assert read_cpuinfo(X86_NO_VNNI).flags["avx2"]
    assert not read_cpuinfo(X86_NO_VNNI).fast_int8
    assert read_cpuinfo(X86_VNNI).fast_int8
    pi5, pi4 = read_cpuinfo(PI5), read_cpuinfo(PI4)
    assert pi5.model == "Cortex-A76" and pi5.fast_int8
    assert pi4.model == "Cortex-A72" and not pi4.fast_int8


def _cpu(machine: str, **flags: bool) -> CpuInfo:
    return CpuInfo(machine, "test", 4, flags)


def test_quant_settings_follow_ort_advice():
    # x86 without VNNI: u8 activations with reduce_range (7-bit) to avoid AVX2 saturation.
    assert settings_for_cpu(_cpu("x86_64", avx2=True)).reduce_range
    assert not settings_for_cpu(_cpu("x86_64", avx512_vnni=True)).reduce_range
    assert not settings_for_cpu(_cpu("aarch64", asimddp=False)).reduce_range
    s = settings_for_cpu(_cpu("x86_64"))
    assert (s.activation_type, s.weight_type, s.per_channel) == ("QUInt8", "QInt8", True)


def test_reads_this_machine():
    info = read_cpuinfo()
    assert info.cores >= 1 and info.machine
