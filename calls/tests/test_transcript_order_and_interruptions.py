"""The transcript as staff read it (call detail API and console): conversation order, not arrival order, and agent
lines the caller spoke over marked as not fully heard."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from calls.services import transcript_segment_append, transcript_segment_interrupt
from conftest import logged_in, make_call, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def call_a(org_a):
    call = make_call(org_a)
    # The agent's reply was stored before the caller's line it answers (the transcription came late).
    transcript_segment_append(call=call, speaker="agent", text="Hello, how can I help?", item_id="a0", position=1)
    transcript_segment_append(call=call, speaker="agent", text="Sure, which day suits you?", item_id="a1", position=3)
    transcript_segment_append(call=call, speaker="caller", text="I'd like a checkup.", item_id="c1", position=2)
    transcript_segment_interrupt(call=call, item_id="a1", heard_ms=1200)
    return call


def test_the_call_detail_lists_the_transcript_in_conversation_order_with_interruptions(call_a, staff_a):
    api = Client(headers={"Authorization": f"Token {token_for(staff_a)}"})
    body = api.get(f"/api/calls/{call_a.pk}").json()
    lines = [(row["speaker"], row["text"], row["interrupted"], row["heard_ms"]) for row in body["transcript"]]
    assert lines == [
        ("agent", "Hello, how can I help?", False, None),
        ("caller", "I'd like a checkup.", False, None),
        ("agent", "Sure, which day suits you?", True, 1200),
    ]
    assert [row["seq"] for row in body["transcript"]] == [1, 3, 2]  # seq stays the arrival order


def test_the_console_shows_the_transcript_in_conversation_order_and_marks_the_interrupted_line(call_a, admin_a):
    client = logged_in(admin_a)
    page = client.get(reverse("admin:calls_call_change", args=[call_a.pk])).content.decode()
    assert page.index("Hello, how can I help?") < page.index("a checkup") < page.index("which day suits you")
    assert "Interrupted by the caller after 1.2 s" in page
    assert page.count("segment-interrupted") == 1


def test_an_unknown_item_is_not_marked_and_a_redelivery_changes_nothing(call_a):
    assert transcript_segment_interrupt(call=call_a, item_id="nope", heard_ms=5) is False
    assert transcript_segment_interrupt(call=call_a, item_id="a1", heard_ms=1200) is True
    assert call_a.segments.filter(interrupted=True).count() == 1


def test_a_segment_of_unknown_place_goes_after_everything_stored(call_a):
    later = transcript_segment_append(call=call_a, speaker="system", text="Note.")
    assert later is not None
    assert list(call_a.segments.order_by("position", "seq").values_list("text", flat=True))[-1] == "Note."
