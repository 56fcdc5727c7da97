"""No leaks: canary patient values planted through the real paths (call start, forwarded pipeline events with a
transcript, an intake and an escalation, call end, staff reads) appear in no log line (captured at DEBUG and as the
console handler writes them), no error response, no URL or Location header, no channel-layer message and no audit
row. Those carry ids only."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import uuid

import pytest
from channels.layers import get_channel_layer
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from calls.models import AuditEvent, Call, Notification
from calls.notifications import deliver_due
from conftest import token_for
from core.observability import ContextFilter


@pytest.fixture
def canary() -> dict[str, str]:
    return {
        "name": f"ZZQX-Canary-{uuid.uuid4().hex[:12]}",
        "dob": "1901-02-03",
        "phone": f"+1555010{random.randint(1000, 9999)}",
    }


def hits(text: str, canary: dict[str, str]) -> list[str]:
    found = [value for value in canary.values() if value in text]
    national = canary["phone"][2:]  # 555010xxxx, also as written with separators
    if national in re.sub(r"\D", "", text):
        found.append(national)
    return found


@pytest.fixture
def console():
    """What the configured console handler (settings.LOGGING, with its formatter and context filter) writes."""
    stream = io.StringIO()
    handlers = [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler) and any(isinstance(f, ContextFilter) for f in handler.filters)
    ]
    assert handlers, "settings.LOGGING's console handler is installed"
    previous = [handler.stream for handler in handlers]
    for handler in handlers:
        handler.stream = stream  # not setStream(): it flushes the old stream, which a test runner may have closed
    yield stream
    for handler, old in zip(handlers, previous, strict=True):
        handler.stream = old


@pytest.fixture
def layer_messages(monkeypatch) -> list[tuple[str, dict]]:
    """Every group_send on the configured layer (in-memory, or Redis when REDIS_URL is set)."""
    sent: list[tuple[str, dict]] = []
    layer_class = type(get_channel_layer())
    original = layer_class.group_send

    async def record(self, group, message):
        sent.append((group, message))
        return await original(self, group, message)

    monkeypatch.setattr(layer_class, "group_send", record)
    return sent


def test_canary_patient_data_never_reaches_logs_errors_urls_or_the_channel_layer(
    org_a, staff_a, canary, caplog, console, layer_messages
):
    caplog.set_level(logging.DEBUG)
    # The browser forwards a tool call and sends the intake below: the clinic's event-forwarding integration.
    org_a.event_forwarding = True
    org_a.save(update_fields=["event_forwarding"])
    key = {"X-Org-Key": org_a.publishable_key}
    caller = Client()
    responses = []

    def send(method: str, path: str, body=None, **headers):
        response = getattr(caller, method)(
            path, json.dumps(body) if body is not None else None, content_type="application/json", headers=headers
        )
        responses.append((path, response))
        return response

    started = send(
        "post",
        "/api/call/start",
        {"channel": "web", "caller": {"name": canary["name"], "phone": canary["phone"]}},
        **key,
    )
    assert started.status_code == 201
    call_id, token = started.json()["call_id"], started.json()["call_token"]
    caller_headers = {**key, "X-Call-Token": token}
    said = f"My name is {canary['name']}, born {canary['dob']}, call me at {canary['phone']}. I have chest pain."
    intake = {
        "patient_name": canary["name"],
        "date_of_birth": canary["dob"],
        "callback_number": canary["phone"],
        "reason_for_call": f"chest pain ({canary['name']})",
        "urgency": "emergency",
    }
    events = [
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_1",
            "content_index": 0,
            "transcript": said,
            "event_id": "ev_1",
        },
        {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
        {
            "type": "response.output_item.done",
            "response_id": "resp_1",
            "output_index": 0,
            "item": {
                "id": "fc_1",
                "type": "function_call",
                "status": "completed",
                "call_id": "tool_1",
                "name": "complete_intake",
                "arguments": json.dumps(intake),
            },
        },
    ]
    assert send("post", f"/api/calls/{call_id}/events", {"events": events}, **caller_headers).status_code == 200

    # Error paths that carry patient values in the request: each answers without echoing them.
    bad_intake = {**intake, "date_of_birth": f"born {canary['dob']} as {canary['name']}"}
    errors = [
        send("post", "/api/call/end", {"call_id": call_id, "intake": bad_intake}, **caller_headers),
        send("post", "/api/call/end", {"call_id": str(uuid.uuid4()), "intake": intake}, **caller_headers),
    ]
    raw = caller.post(
        "/api/call/start", f'{{"caller": {{"name": "{canary["name"]}"', content_type="application/json", headers=key
    )
    errors.append(raw)
    assert [response.status_code for response in errors] == [400, 404, 400]

    ended = send(
        "post",
        "/api/call/end",
        {
            "call_id": call_id,
            "reason": "caller_hangup",
            "intake": intake,
            "transcript": [{"speaker": "caller", "text": said}],
        },
        **caller_headers,
    )
    assert ended.status_code == 200
    call = Call.objects.get(pk=call_id)
    assert call.escalated and call.caller_name == canary["name"]  # the data went in, through the real paths

    # Staff read it (legitimately) through the API and console; a search by name must not put the name in a log.
    staff = Client(headers={"Authorization": f"Token {token_for(staff_a)}"})
    assert staff.get(f"/api/calls/{call_id}").status_code == 200
    assert staff.get("/api/calls", {"q": canary["name"]}).status_code == 200
    staff.force_login(staff_a)
    search = staff.get("/admin/calls/call/", {"q": canary["name"]})
    assert search.status_code == 200 and canary["name"] in search.content.decode()
    responses += [("staff", search)]

    # Board notifications go out over the channel layer.
    assert Notification.objects.filter(escalation__call_id=call_id).exists()
    deliver_due(now=call.started_at.replace(year=call.started_at.year + 1))
    assert layer_messages, "the escalation reached the channel layer"

    written = console.getvalue()
    assert "request_id=" in written and "call started" in caplog.text  # both captures really saw the run
    assert hits(caplog.text + written, canary) == []
    for response in errors:
        assert hits(response.content.decode(), canary) == [], response.content
    for path, response in responses:
        assert hits(path, canary) == []
        assert hits(response.get("Location", ""), canary) == []
    for group, message in layer_messages:
        assert hits(json.dumps(message) + group, canary) == []
        assert set(message) <= {"type", "escalation_id", "call_id", "event", "notification_id"}
    audit = json.dumps(list(AuditEvent.objects.values("object_ids", "details", "object_id", "request_id")), default=str)
    assert hits(audit, canary) == []


def _patterns(resolver: URLResolver, prefix: str = "") -> list[str]:
    out = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            out += _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            out.append(prefix + str(entry.pattern))
    return out


def test_no_url_takes_patient_data_as_a_path_parameter():
    patterns = _patterns(get_resolver())
    assert patterns
    phi_words = re.compile(r"(name|phone|dob|birth|email|patient|caller|reason|transcript|text)", re.IGNORECASE)
    parameters = [param for pattern in patterns for param in re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", pattern)]
    names = [name for pair in parameters for name in pair if name]
    assert names, "the API has id parameters"
    assert [name for name in names if phi_words.search(name)] == []


@pytest.mark.parametrize("field", ["channel", "speaker"])
def test_a_rejected_choice_is_not_echoed_back(org_a, canary, field):
    client = Client(headers={"X-Org-Key": org_a.publishable_key})
    if field == "channel":
        body = {"channel": canary["name"], "caller": {}}
        response = client.post("/api/call/start", body, content_type="application/json")
    else:
        started = client.post("/api/call/start", {"channel": "web", "caller": {}}, content_type="application/json")
        body = {"call_id": started.json()["call_id"], "transcript": [{"speaker": canary["name"], "text": "x"}]}
        response = client.post(
            "/api/call/end",
            body,
            content_type="application/json",
            headers={"X-Call-Token": started.json()["call_token"]},
        )
    assert response.status_code == 400
    assert hits(response.content.decode(), canary) == []
