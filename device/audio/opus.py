"""Opus speech coding (RFC 6716) through the system's libopus, for audio that must cross BLE.

Earbuds do not send raw PCM to their phone: 1 s of FP32 audio is 64 000 bytes, 2.6 s at a BLE
link's ~200 kbit/s, while Opus at 16 kbit/s carries the same second in ~2 KB (RFC 6716 and
RFC 7587: 16 kbit/s wideband is transparent for speech recognition). libopus comes from the
distribution (Debian ``libopus0``, installed by ``scripts/bootstrap.sh``; present on Raspberry Pi
OS), so this module is a thin ctypes binding: no compiled extension, no download.

Wire format of one clip: for every 20 ms frame, a 2-byte little-endian length and the packet.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
from functools import cache

import numpy as np
from edgesplit.device.errors import InputError, ToolMissingError

SAMPLE_RATE_HZ = 16_000
FRAME_SAMPLES = 320  # 20 ms at 16 kHz: Opus's default frame (RFC 6716 section 2.1.4)
BITRATE_BPS = 16_000  # wideband speech; RFC 7587 section 3.1.1 recommends 16-20 kbit/s
MAX_PACKET_BYTES = 1275  # RFC 6716 section 3.2.1
_APPLICATION_VOIP = 2048
_SET_BITRATE_REQUEST = 4002
_OK = 0


@cache
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("opus")
    if name is None:
        raise ToolMissingError(
            "libopus not found: install the distribution's libopus0 (scripts/bootstrap.sh does)"
        )
    lib = ctypes.CDLL(name)
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [
        ctypes.c_int32,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
    ]
    lib.opus_encode_float.restype = ctypes.c_int32
    lib.opus_encode_float.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_float),
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int32,
    ]
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_encoder_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int32]
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decode_float.restype = ctypes.c_int
    lib.opus_decode_float.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int32,
        ctypes.POINTER(ctypes.c_float),
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    return lib


def available() -> bool:
    """True where libopus can be loaded (the earbuds then send Opus, else raw FP32 audio)."""
    try:
        _lib()
    except ToolMissingError:
        return False
    return True


def encode(audio: np.ndarray, bitrate_bps: int = BITRATE_BPS) -> bytes:
    """Mono 16 kHz audio (-1..1) to length-prefixed Opus packets, one per 20 ms frame."""
    lib = _lib()
    x = np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0)
    pad = (-len(x)) % FRAME_SAMPLES
    x = np.ascontiguousarray(np.concatenate([x, np.zeros(pad, np.float32)]))
    err = ctypes.c_int(0)
    enc = lib.opus_encoder_create(SAMPLE_RATE_HZ, 1, _APPLICATION_VOIP, ctypes.byref(err))
    if err.value != _OK or not enc:
        raise ToolMissingError(f"libopus could not create an encoder (error {err.value})")
    try:
        lib.opus_encoder_ctl(enc, _SET_BITRATE_REQUEST, bitrate_bps)
        out = bytearray()
        buf = ctypes.create_string_buffer(MAX_PACKET_BYTES)
        ptr = x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        for start in range(0, len(x), FRAME_SAMPLES):
            frame = ctypes.cast(
                ctypes.addressof(ptr.contents) + 4 * start, ctypes.POINTER(ctypes.c_float)
            )
            n = lib.opus_encode_float(enc, frame, FRAME_SAMPLES, buf, MAX_PACKET_BYTES)
            if n < 0:
                raise InputError(f"Opus encoding failed (libopus error {n})")
            out += struct.pack("<H", n) + buf.raw[:n]
        return bytes(out)
    finally:
        lib.opus_encoder_destroy(enc)


def decode(stream: bytes, max_samples: int = 4 * SAMPLE_RATE_HZ) -> np.ndarray:
    """Length-prefixed Opus packets back to float32 audio; a malformed stream is an InputError
    naming the byte offset (a hostile request must not reach libopus with a bad length)."""
    lib = _lib()
    err = ctypes.c_int(0)
    dec = lib.opus_decoder_create(SAMPLE_RATE_HZ, 1, ctypes.byref(err))
    if err.value != _OK or not dec:
        raise ToolMissingError(f"libopus could not create a decoder (error {err.value})")
    try:
        pcm = np.zeros(FRAME_SAMPLES * 6, np.float32)  # room for a 120 ms frame
        out: list[np.ndarray] = []
        total, pos = 0, 0
        while pos < len(stream):
            if pos + 2 > len(stream):
                raise InputError(f"Opus stream truncated at byte {pos}: no room for a length")
            (n,) = struct.unpack_from("<H", stream, pos)
            pos += 2
            if not 1 <= n <= MAX_PACKET_BYTES or pos + n > len(stream):
                raise InputError(f"Opus stream: bad packet length {n} at byte {pos - 2}")
            got = lib.opus_decode_float(
                dec,
                stream[pos : pos + n],
                n,
                pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                len(pcm),
                0,
            )
            if got < 0:
                raise InputError(f"Opus stream: packet at byte {pos - 2} does not decode ({got})")
            pos += n
            total += got
            if total > max_samples:
                raise InputError(f"Opus stream decodes to more than {max_samples} samples")
            out.append(pcm[:got].copy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)
    finally:
        lib.opus_decoder_destroy(dec)


def decode_clip(stream: bytes, samples: int) -> np.ndarray:
    """One clip of exactly ``samples``: decoded, then cut or zero-padded (the codec rounds the
    length up to whole 20 ms frames); a stream decoding to over twice that is refused."""
    audio = decode(stream, max_samples=2 * samples)
    clip = np.zeros(samples, np.float32)
    clip[: min(len(audio), samples)] = audio[:samples]
    return clip
