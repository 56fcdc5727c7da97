"""Audio the fake "model" speaks: a quiet tone in the session's output format, sized to the words.

G.711 and PCM frames are generated once (20 ms, a whole number of tone periods) and repeated, so any length is a cheap
slice. Byte rates follow the GA formats: pcmu/pcma 8 bytes per ms, pcm 24 kHz s16le 48 bytes per ms.
"""

from __future__ import annotations

import math
import struct

FRAME_MS = 20
MS_PER_CHAR = 60  # ~16 characters a second: an unhurried phone voice
MIN_SPEECH_MS = 400
_TONE_HZ = 400  # 8 full periods per 20 ms frame at either rate
_AMPLITUDE = 2000  # quiet: about -24 dBFS


def bytes_per_ms(fmt: dict) -> int:
    return 48 if fmt.get("type", "audio/pcm") == "audio/pcm" else 8


def speech_ms(text: str) -> int:
    """How long saying `text` takes, rounded up to whole 20 ms frames."""
    ms = max(MIN_SPEECH_MS, MS_PER_CHAR * len(text))
    return -(-ms // FRAME_MS) * FRAME_MS


def _linear_to_ulaw(sample: int) -> int:
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), clip) + bias
    exponent = 7
    for exp in range(7, -1, -1):
        if sample & (0x80 << exp):
            exponent = exp
            break
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _linear_to_alaw(sample: int) -> int:
    sign = 0x80 if sample >= 0 else 0
    sample = min(abs(sample), 32767) >> 3
    if sample < 32:
        value = sample >> 1
    else:
        exponent = sample.bit_length() - 5
        value = (exponent << 4) | ((sample >> exponent) & 0x0F)
    return (value | sign) ^ 0x55


def _tone(rate: int) -> list[int]:
    samples = rate * FRAME_MS // 1000
    return [round(_AMPLITUDE * math.sin(2 * math.pi * _TONE_HZ * n / rate)) for n in range(samples)]


_FRAMES = {
    "audio/pcmu": bytes(_linear_to_ulaw(s) for s in _tone(8000)),
    "audio/pcma": bytes(_linear_to_alaw(s) for s in _tone(8000)),
    "audio/pcm": struct.pack(f"<{24000 * FRAME_MS // 1000}h", *_tone(24000)),
}
SILENCE = {"audio/pcmu": b"\xff", "audio/pcma": b"\xd5", "audio/pcm": b"\x00\x00"}


def tone(fmt: dict, ms: int) -> bytes:
    """`ms` milliseconds of tone in `fmt` (ms is rounded down to whole frames)."""
    frame = _FRAMES[fmt.get("type", "audio/pcm")]
    return frame * (ms // FRAME_MS)
