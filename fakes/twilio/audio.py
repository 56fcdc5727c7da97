"""μ-law audio for the fake Twilio caller: a generated tone, silence, or a WAV file, cut into 20 ms frames."""

from __future__ import annotations

import math
import struct
from pathlib import Path

SAMPLE_RATE = 8000
FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
ULAW_SILENCE = 0xFF
_BIAS, _CLIP = 0x84, 32635


def linear_to_ulaw(sample: int) -> int:
    """G.711 μ-law encoding of one signed 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), _CLIP) + _BIAS
    exponent = max(magnitude.bit_length() - 8, 0)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def encode_pcm16(samples: bytes) -> bytes:
    count = len(samples) // 2
    return bytes(linear_to_ulaw(value) for value in struct.unpack(f"<{count}h", samples[: count * 2]))


def tone(seconds: float, frequency: float = 440.0, amplitude: float = 0.3) -> bytes:
    count = int(seconds * SAMPLE_RATE)
    peak = amplitude * 32767
    return bytes(linear_to_ulaw(int(peak * math.sin(2 * math.pi * frequency * n / SAMPLE_RATE))) for n in range(count))


def silence(seconds: float) -> bytes:
    return bytes([ULAW_SILENCE]) * int(seconds * SAMPLE_RATE)


def read_wav(path: str | Path) -> bytes:
    """8 kHz mono WAV as μ-law bytes: μ-law files (format 7) pass through, 16-bit PCM (format 1) is encoded."""
    data = Path(path).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    fmt = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("WAV data before its fmt chunk")
            tag, channels, rate, _byte_rate, _align, bits = fmt
            if channels != 1 or rate != SAMPLE_RATE:
                raise ValueError("expected 8 kHz mono audio")
            if tag == 7 and bits == 8:
                return bytes(body)
            if tag == 1 and bits == 16:
                return encode_pcm16(body)
            raise ValueError("expected μ-law (format 7) or 16-bit PCM (format 1)")
        offset += 8 + size + (size & 1)
    raise ValueError("WAV file has no data chunk")


def write_wav_ulaw(path: str | Path, audio: bytes) -> None:
    """Write μ-law bytes as an 8 kHz mono WAV (format 7), e.g. to keep what the fake caller heard."""
    fmt = struct.pack("<HHIIHH", 7, 1, SAMPLE_RATE, SAMPLE_RATE, 1, 8) + struct.pack("<H", 0)
    pad = b"\x00" if len(audio) & 1 else b""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(audio)) + audio + pad
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def frames(audio: bytes, size: int = FRAME_BYTES) -> list[bytes]:
    """Cut into Twilio-sized frames; the last one is padded with silence."""
    out = [audio[i : i + size] for i in range(0, len(audio), size)]
    if out and len(out[-1]) < size:
        out[-1] = out[-1] + bytes([ULAW_SILENCE]) * (size - len(out[-1]))
    return out
