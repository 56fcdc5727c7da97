"""What staff need to act, as the board and the escalation page show it: the reason in words, the caller's words
with the evidence marked, the callback number, times in the clinic's zone, and a note to resolve."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from calls.board_view import REASON_LABELS, highlight_spans, reason_label
from calls.conversation import caller_utterance_handle
from calls.models import AuditEvent, Escalation
from calls.notifications import board_escalations
from calls.services import escalation_create
from conftest import logged_in, make_call, token_for

pytestmark = pytest.mark.django_db


def test_reason_codes_read_as_words_defined_once():
    assert reason_label("chest_pain") == "Chest pain"
    assert reason_label("stroke_signs") == "Stroke signs"
    assert reason_label("human_request") == "Asked for a person"
    assert reason_label("staff_override") == "Staff raised"
    assert reason_label("post_procedure") == "Post procedure"  # a code without its own label reads as its words
    assert all(label and label[0].isupper() for label in REASON_LABELS.values())


def test_the_evidence_is_found_in_the_line_as_said():
    text = "My dad can't breathe and has crushing chest pain"
    spans = highlight_spans(text, "crushing chest, chest pain, cant breathe")
    assert [text[a:b] for a, b in spans] == ["can't breathe", "crushing chest pain"]


def _triaged(org, utterance: str) -> Escalation:
    call = make_call(org, caller_name="Jane Doe", caller_phone="+14155550199")
    decision = caller_utterance_handle(call=call, text=utterance, item_id="item_1")
    assert decision.escalation is not None
    return decision.escalation


def test_the_board_item_carries_the_callers_words_with_the_evidence_marked(org_a):
    escalation = _triaged(org_a, "my dad is having crushing chest pain and he can't breathe")
    [item] = board_escalations([org_a.pk])
    assert item["id"] == str(escalation.pk)
    trigger = item["trigger"]
    assert trigger["text"] == "my dad is having crushing chest pain and he can't breathe"
    marked = [trigger["text"][a:b] for a, b in trigger["highlights"]]
    assert any("chest pain" in words for words in marked)
    assert trigger["said_at"].endswith(("EST", "EDT"))
    assert item["reason_label"].startswith("Chest pain")
    assert item["callback_url"] == "tel:+14155550199"


def test_a_staff_escalation_shows_the_staff_reason_and_its_label(org_a, staff_a):
    call = make_call(org_a, caller_phone="+14155550123")
    escalation_create(call=call, level="urgent", source="staff", reason="Asked about a rash twice", created_by=staff_a)
    [item] = board_escalations([org_a.pk])
    assert item["reason_label"] == "Staff raised"
    assert item["trigger"]["text"] == "Asked about a rash twice" and item["trigger"]["highlights"] == []


def test_the_clinics_acknowledgement_target_sets_the_age_colour(org_a):
    org_a.ack_target_urgent_minutes = 5
    org_a.save(update_fields=["ack_target_urgent_minutes"])
    escalation_create(call=make_call(org_a), level="urgent", source="keyword", reason="bleeding")
    [item] = board_escalations([org_a.pk])
    assert item["ack_target_seconds"] == 300


def test_the_escalation_page_shows_the_caller_the_callback_link_and_the_marked_words(org_a, staff_a):
    escalation = _triaged(org_a, "my dad is having crushing chest pain and he can't breathe")
    response = logged_in(staff_a).get(reverse("admin:calls_escalation_change", args=[escalation.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Jane Doe" in html and 'href="tel:+14155550199"' in html
    assert "<mark>" in html and "Chest pain" in html
    assert "On-call pages" in html  # the paging history (empty: nobody on call)
    assert AuditEvent.objects.filter(object_id=str(escalation.pk), action="view", actor_user_id=staff_a.pk).exists()


def test_the_call_page_shows_open_escalations_first(org_a, staff_a):
    escalation = _triaged(org_a, "my dad is having crushing chest pain and he can't breathe")
    html = logged_in(staff_a).get(reverse("admin:calls_call_change", args=[escalation.call_id])).content.decode()
    top = html.index("Needs acting on")
    assert top < html.index("Transcript") and top < html.index("Intake")
    assert reverse("admin:calls_escalation_change", args=[escalation.pk]) in html[top:]


def test_every_time_on_the_call_page_is_in_the_clinics_zone_and_labelled(org_a, staff_a):
    escalation = _triaged(org_a, "my dad is having crushing chest pain and he can't breathe")
    html = logged_in(staff_a).get(reverse("admin:calls_call_change", args=[escalation.call_id])).content.decode()
    title = html[html.index("<title>") : html.index("</title>")]
    assert " EST" in title or " EDT" in title
    assert " UTC" not in html


def test_resolving_through_the_api_needs_a_note(org_a, staff_a):
    escalation, _ = escalation_create(call=make_call(org_a), level="emergency", source="keyword", reason="chest_pain")
    client = Client(headers={"Authorization": f"Token {token_for(staff_a)}"})
    url = f"/api/escalations/{escalation.pk}/resolve"
    refused = client.post(url, {}, content_type="application/json")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "validation_error" and "note" in refused.json()["error"]["fields"]
    done = client.post(url, {"note": "Called back, advised 911"}, content_type="application/json")
    assert done.status_code == 200
    escalation.refresh_from_db()
    assert escalation.resolution_note == "Called back, advised 911"
    change = AuditEvent.objects.filter(object_id=str(escalation.pk), action="change").latest("id")
    assert "resolution_note" in change.details["fields"]  # the note is named in the trail, never quoted
    assert "Called back" not in str(change.details)
