"""Barge-in arithmetic: truncate at what the caller actually heard, from Twilio mark echoes (8 bytes = 1 ms)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime.telephony.playback import PlaybackTracker, Truncation

FRAME = 160  # 20 ms of μ-law


def due(name: str | None) -> str:
    """The name of a mark the tracker asked for (None would mean it asked for none)."""
    assert name is not None
    return name


def test_a_mark_after_every_chunk_when_configured():
    tracker = PlaybackTracker(mark_every_ms=0)
    names = [tracker.on_audio("item_1", 0, FRAME) for _ in range(3)]
    assert all(names) and len(set(names)) == 3
    tracker.on_mark(due(names[0]))
    tracker.on_mark(due(names[1]))
    assert tracker.on_speech_started() == Truncation("item_1", 0, 40, clear=True)


def test_one_mark_covers_every_chunk_since_the_previous_mark():
    tracker = PlaybackTracker(mark_every_ms=100)  # 800 bytes
    names = [tracker.on_audio("item_1", 0, FRAME) for _ in range(12)]
    marks = [name for name in names if name]
    assert names[4] is not None and names[9] is not None and len(marks) == 2  # after 5 and after 10 frames
    tracker.on_mark(marks[0])
    assert tracker.played_ms("item_1") == 100
    tracker.on_mark(marks[1])
    assert tracker.played_ms("item_1") == 200
    assert tracker.produced_ms("item_1") == 240
    # Two frames are forwarded but not yet covered: still playing; truncate at what was confirmed.
    assert tracker.on_speech_started() == Truncation("item_1", 0, 200, clear=True)


def test_marking_every_nth_chunk():
    tracker = PlaybackTracker(mark_every_ms=None, mark_every_chunks=4)
    names = [tracker.on_audio("item_1", 0, 100) for _ in range(8)]
    assert [i for i, name in enumerate(names) if name] == [3, 7]
    tracker.on_mark(due(names[3]))
    assert tracker.played_ms("item_1") == 50  # 400 bytes


def test_uneven_openai_deltas_are_counted_to_the_byte():
    tracker = PlaybackTracker(mark_every_ms=None)
    for size in (333, 1000, 7):
        tracker.on_audio("item_1", 0, size)
    name = tracker.flush()
    tracker.on_mark(due(name))
    assert tracker.played_ms("item_1") == 1340 // 8


def test_nothing_playing_means_no_truncation():
    tracker = PlaybackTracker()
    assert tracker.on_speech_started() is None
    name = tracker.on_audio("item_1", 0, 800)  # exactly 100 ms: the mark is due with this chunk
    assert name is not None and tracker.flush() is None
    tracker.on_mark(name)
    assert not tracker.is_playing
    assert tracker.on_speech_started() is None  # everything was heard: nothing to cut


def test_played_is_clamped_to_what_was_produced():
    tracker = PlaybackTracker(mark_every_ms=0)
    name = due(tracker.on_audio("item_1", 0, 800))
    tracker.on_mark(name)
    tracker.on_mark(name)  # a duplicated echo must not count twice
    tracker.on_audio("item_1", 0, 800)
    truncation = tracker.on_speech_started()
    assert truncation is not None and truncation.audio_end_ms == 100


def test_a_mark_spanning_two_items_credits_each_its_own_bytes():
    tracker = PlaybackTracker(mark_every_ms=None)
    tracker.on_audio("item_1", 0, 800)
    tracker.on_audio("item_2", 0, 400)
    tracker.on_mark(due(tracker.flush()))
    assert (tracker.played_ms("item_1"), tracker.played_ms("item_2")) == (100, 50)
    tracker.on_audio("item_2", 0, 400)
    assert tracker.on_speech_started() == Truncation("item_2", 0, 50, clear=True)


def test_after_a_barge_in_late_echoes_of_cleared_marks_are_ignored():
    tracker = PlaybackTracker(mark_every_ms=0)
    old = tracker.on_audio("item_1", 0, 800)
    assert tracker.on_speech_started() is not None
    assert not tracker.is_playing
    tracker.on_mark(due(old))  # Twilio may report marks that `clear` discarded
    new = tracker.on_audio("item_2", 0, 160)
    assert new != old
    assert tracker.on_speech_started() == Truncation("item_2", 0, 0, clear=True)


def test_the_truncate_event_matches_the_realtime_api_shape():
    truncation = Truncation("item_9", 0, 1234, clear=True)
    assert truncation.event() == {
        "type": "conversation.item.truncate",
        "item_id": "item_9",
        "content_index": 0,
        "audio_end_ms": 1234,
    }


def test_negative_intervals_are_rejected():
    with pytest.raises(ValueError, match="mark_every_ms"):
        PlaybackTracker(mark_every_ms=-1)


@given(
    chunks=st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=60),
    every_ms=st.sampled_from([0, 20, 100, 250, None]),
    echoed=st.integers(min_value=0, max_value=60),
)
def test_truncation_never_exceeds_what_was_produced_or_echoed(chunks, every_ms, echoed):
    tracker = PlaybackTracker(mark_every_ms=every_ms)
    marks: list[tuple[str, int]] = []
    total = 0
    for size in chunks:
        total += size
        name = tracker.on_audio("item", 0, size)
        if name:
            marks.append((name, total))
    confirmed = 0
    for name, covered_up_to in marks[:echoed]:
        tracker.on_mark(name)
        confirmed = covered_up_to
    truncation = tracker.on_speech_started()
    if confirmed == total:
        assert truncation is None
    else:
        assert truncation is not None and truncation.audio_end_ms == confirmed // 8 <= total // 8
