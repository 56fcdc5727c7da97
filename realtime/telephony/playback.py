"""How much of the agent's audio the caller has actually heard: barge-in by mark accounting (docs/facts.md#barge-in).

Pure and synchronous: the media bridge tells it what it forwarded and which Twilio marks came back, and asks it on
`input_audio_buffer.speech_started` what to truncate. μ-law at 8 kHz is 8 bytes per millisecond.

A mark per audio chunk costs ~38 µs per frame on the bridge (docs/facts.md#bridge-costs), so marks are sent
only every `mark_every_ms` of audio and/or every `mark_every_chunks` chunks; a mark then covers every byte forwarded
since the previous mark (possibly several chunks and items), so the accounting stays exact. The price is that "played"
lags by up to one mark interval: truncation may cut up to that much audio the caller did hear (never keep unheard
audio). Call `flush()` when a response's audio is done so its tail is covered by a mark too.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

BYTES_PER_MS = 8  # G.711 μ-law, 8000 samples/s, one byte per sample


@dataclass(frozen=True)
class Truncation:
    """What to do on barge-in: send conversation.item.truncate with these, and Twilio `clear` when `clear`."""

    item_id: str
    content_index: int
    audio_end_ms: int
    clear: bool

    def event(self) -> dict:
        return {
            "type": "conversation.item.truncate",
            "item_id": self.item_id,
            "content_index": self.content_index,
            "audio_end_ms": self.audio_end_ms,
        }


@dataclass
class _ItemAudio:
    produced: int = 0  # bytes forwarded to Twilio
    played: int = 0  # bytes confirmed played by mark echoes


@dataclass
class PlaybackTracker:
    mark_every_ms: int | None = 100
    mark_every_chunks: int | None = None
    mark_prefix: str = "m"
    _items: dict[str, _ItemAudio] = field(default_factory=dict, init=False, repr=False)
    # mark name -> [(item_id, bytes)] it covers, in send order
    _outstanding: dict[str, list[tuple[str, int]]] = field(default_factory=dict, init=False, repr=False)
    # forwarded but not yet covered by a mark
    _pending: list[tuple[str, int]] = field(default_factory=list, init=False, repr=False)
    _pending_bytes: int = field(default=0, init=False, repr=False)
    _pending_chunks: int = field(default=0, init=False, repr=False)
    _current_item: str | None = field(default=None, init=False, repr=False)
    # Names never repeat (not even after reset), so a late echo of a cleared mark can't be mistaken for a new one.
    _counter: itertools.count = field(default_factory=itertools.count, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("mark_every_ms", "mark_every_chunks"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 (0: a mark after every chunk)")

    # --- what the bridge reports --------------------------------------------------------------------------------

    def on_audio(self, item_id: str, content_index: int, byte_count: int) -> str | None:
        """Record a chunk just forwarded to Twilio. Returns a mark name to send now (after the chunk), or None.

        content_index is accepted for symmetry with the delta event; audio output is always content 0.
        """
        if byte_count <= 0:
            return None
        self._items.setdefault(item_id, _ItemAudio()).produced += byte_count
        self._current_item = item_id
        if self._pending and self._pending[-1][0] == item_id:
            self._pending[-1] = (item_id, self._pending[-1][1] + byte_count)
        else:
            self._pending.append((item_id, byte_count))
        self._pending_bytes += byte_count
        self._pending_chunks += 1
        if self._due():
            return self.flush()
        return None

    def flush(self) -> str | None:
        """Cover everything forwarded so far with one mark (e.g. at response.output_audio.done)."""
        if not self._pending:
            return None
        name = f"{self.mark_prefix}{next(self._counter)}"
        self._outstanding[name] = self._pending
        self._pending, self._pending_bytes, self._pending_chunks = [], 0, 0
        return name

    def on_mark(self, name: str) -> None:
        """Twilio echoed a mark: the audio queued before it has played. Unknown or late names are ignored."""
        covered = self._outstanding.pop(name, None)
        if covered is None:
            return
        for item_id, byte_count in covered:
            item = self._items.get(item_id)
            if item is not None:
                item.played = min(item.played + byte_count, item.produced)

    def on_speech_started(self) -> Truncation | None:
        """The caller started talking. Returns what to truncate (and resets), or None when nothing is playing."""
        if not self.is_playing or self._current_item is None:
            return None
        item = self._items[self._current_item]
        truncation = Truncation(
            item_id=self._current_item,
            content_index=0,
            audio_end_ms=min(item.played, item.produced) // BYTES_PER_MS,
            clear=True,
        )
        self.reset()
        return truncation

    def reset(self) -> None:
        """Forget all playback state (after a barge-in, or when the stream restarts). Mark names keep counting."""
        self._items.clear()
        self._outstanding.clear()
        self._pending, self._pending_bytes, self._pending_chunks = [], 0, 0
        self._current_item = None

    # --- read-only views ----------------------------------------------------------------------------------------

    @property
    def is_playing(self) -> bool:
        """Audio was forwarded that Twilio has not confirmed as played."""
        return bool(self._outstanding or self._pending)

    @property
    def outstanding_marks(self) -> int:
        return len(self._outstanding)

    def produced_ms(self, item_id: str) -> int:
        item = self._items.get(item_id)
        return item.produced // BYTES_PER_MS if item else 0

    def played_ms(self, item_id: str) -> int:
        item = self._items.get(item_id)
        return item.played // BYTES_PER_MS if item else 0

    def _due(self) -> bool:
        if self.mark_every_ms is not None and self._pending_bytes >= self.mark_every_ms * BYTES_PER_MS:
            return True
        return self.mark_every_chunks is not None and self._pending_chunks >= max(self.mark_every_chunks, 1)
