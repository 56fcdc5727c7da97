"""POST /api/calls/{id}/events: the browser forwards GA server events, gets back the client events to send."""

import json

import pytest
from django.test import Client

from calls.models import Call, Intake

from .test_pipeline import VALID_INTAKE, agent_said, created, done, tool_call, transcript


def start_call(client, org):
    response = client.post(
        "/api/call/start",
        {"channel": "web", "caller": {}},
        content_type="application/json",
        headers={"X-Org-Key": org.publishable_key},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    return body["call_id"], body["call_token"]


def forward(client, org, call_id, token, events, **headers):
    return client.post(
        f"/api/calls/{call_id}/events",
        {"events": events},
        content_type="application/json",
        headers={"X-Org-Key": org.publishable_key, "X-Call-Token": token, **headers},
    )


@pytest.fixture
def client():
    return Client()


@pytest.fixture
def forwarding_org(org_a):
    """Clinic A with the event-forwarding integration on: its browser may report the agent's side too. (These tests
    forwarded agent lines and tool calls for any clinic before forwarding became a clinic's choice.)"""
    org_a.event_forwarding = True
    org_a.save(update_fields=["event_forwarding"])
    return org_a


@pytest.mark.django_db
def test_forwarded_events_are_persisted_and_answered_across_batches(client, forwarding_org):
    org_a = forwarding_org
    call_id, token = start_call(client, org_a)
    first = forward(
        client,
        org_a,
        call_id,
        token,
        [
            transcript("item_1", "Hi, I'd like to book a physical."),
            created("resp_1"),
            agent_said("item_2", "Sure, what's your name?"),
            tool_call("call_1", "complete_intake", VALID_INTAKE),
        ],
    )
    assert first.status_code == 200
    body = first.json()
    assert [e["type"] for e in body["client_events"]] == ["conversation.item.create"]
    assert body["call_status"] == "in_progress"
    # The response finishes in the next batch: only now may the browser ask for a new one.
    second = forward(client, org_a, call_id, token, [done("resp_1")])
    assert [e["type"] for e in second.json()["client_events"]] == ["response.create"]
    call = Call.objects.get(pk=call_id)
    assert list(call.segments.order_by("seq").values_list("speaker", flat=True)) == ["caller", "agent"]
    assert Intake.objects.get(call=call).completed


@pytest.mark.django_db
def test_resending_a_batch_stores_nothing_twice_and_runs_tools_once(client, forwarding_org):
    org_a = forwarding_org
    call_id, token = start_call(client, org_a)
    batch = [
        transcript("item_1", "Can I talk to a real person please"),
        tool_call("call_1", "escalate_call", {"level": "human", "reason": "asked for a person"}),
    ]
    forward(client, org_a, call_id, token, batch)
    again = forward(client, org_a, call_id, token, batch)
    assert again.status_code == 200
    call = Call.objects.get(pk=call_id)
    assert call.segments.filter(speaker="caller").count() == 1
    assert call.escalations.filter(level="human").count() == 1


@pytest.mark.django_db
def test_events_need_the_calls_own_token(client, org_a):
    call_id, _token = start_call(client, org_a)
    _other_id, other_token = start_call(client, org_a)
    response = forward(client, org_a, call_id, other_token, [transcript("item_1", "hello")])
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_call_token"
    response = client.post(
        f"/api/calls/{call_id}/events",
        {"events": []},
        content_type="application/json",
        headers={"X-Org-Key": org_a.publishable_key},
    )
    assert response.status_code == 401
    assert Call.objects.get(pk=call_id).segments.count() == 0


@pytest.mark.django_db
def test_another_clinics_call_is_not_found(client, org_a, org_b):
    call_id, token = start_call(client, org_a)
    response = forward(client, org_b, call_id, token, [transcript("item_1", "hello")])
    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"events": "nope"}, {"events": [1, 2]}, {}, {"events": [{}] * 201}])
def test_malformed_batches_are_rejected_with_the_error_shape(client, org_a, body):
    call_id, token = start_call(client, org_a)
    response = client.post(
        f"/api/calls/{call_id}/events",
        body,
        content_type="application/json",
        headers={"X-Org-Key": org_a.publishable_key, "X-Call-Token": token},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.django_db
def test_events_the_pipeline_does_not_act_on_are_skipped_not_fatal(client, org_a):
    call_id, token = start_call(client, org_a)
    response = forward(client, org_a, call_id, token, [{"type": "response.output_audio.delta"}, {"foo": 1}])
    assert response.status_code == 200
    assert json.loads(response.content)["client_events"] == []
