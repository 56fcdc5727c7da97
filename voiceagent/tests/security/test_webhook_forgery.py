"""Forged and mutated webhooks (how Twilio signs them: https://www.twilio.com/docs/usage/webhooks/webhooks-security):
hypothesis mutates signed Twilio webhooks (signature bytes, the signed URL's scheme, host, port, path and trailing
slash, the form parameters, the query string, the secret and the SharedKey header) and sends them to every Twilio
endpoint: none is accepted and none writes anything.

The fixed cases (the published test vector, each endpoint unsigned, forwarded hosts, replays and idempotency) are in
realtime/tests/test_twilio_signatures.py, test_twilio_voice.py and test_twilio_status.py; this adds volume.

OpenAI: one inbound endpoint, POST /openai/webhook (phone calls over SIP), signed per Standard Webhooks. Hypothesis
forges, replays, ages and mutates signed `realtime.call.incoming` deliveries for a clinic's real number: none is
accepted, none writes anything, none reaches OpenAI's call control (accept/reject). The fixed cases and the
redelivery are in realtime/tests/test_openai_webhook.py; test_the_inbound_webhooks_are_exactly_these keeps the list
of inbound endpoints known.
"""

from __future__ import annotations

import string

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import settings as settings_
from hypothesis import strategies as st

from calls.models import AuditEvent, Call, Escalation
from conftest import make_org
from fakes.twilio.testing import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL, add_number, open_around_the_clock
from fakes.twilio.webhooks import new_call_sid, sign, voice_params
from realtime.telephony.signatures import websocket_signature_is_valid

CLINIC_NUMBER = "+14155550199"
ENDPOINTS = [
    "/twilio/voice",
    "/twilio/status",
    "/twilio/stream-ended",
    "/twilio/dial-result?leg=transfer",
    "/twilio/voicemail",
    "/twilio/recording-status",
    "/twilio/call-recording-status",
]
MUTATIONS = [
    "drop_signature",
    "flip_signature_char",
    "truncate_signature",
    "extend_signature",
    "random_signature",
    "http_scheme",
    "other_host",
    "nonstandard_port",
    "trailing_slash",
    "other_path",
    "add_param",
    "drop_param",
    "change_param",
    "add_query",
    "drop_query",
    "wrong_token",
    "unknown_shared_key",
    "empty_token",
]
MUTATED_REQUESTS = 240
SAFE_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "+-_. ", min_size=1, max_size=20)

counts = {"sent": 0, "accepted": 0}


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = TEST_AUTH_TOKEN
    settings.PUBLIC_BASE_URL = TEST_PUBLIC_BASE_URL
    settings.TWILIO_WEBHOOK_SHARED_KEYS = {}


@pytest.fixture
def phone_clinic(org_a):
    add_number(org_a, CLINIC_NUMBER)
    open_around_the_clock(org_a)
    return org_a


def _params(endpoint: str, call_sid: str) -> dict[str, str]:
    if endpoint == "/twilio/voice":
        return voice_params(call_sid=call_sid, caller="+14155550123", called=CLINIC_NUMBER)
    return {
        "CallSid": call_sid,
        "CallStatus": "completed",
        "CallDuration": "42",
        "DialCallStatus": "no-answer",
        "RecordingSid": "RE" + "1" * 32,
        "RecordingStatus": "completed",
        "AccountSid": "AC" + "0" * 32,
    }


def _mutate(draw, mutation: str, endpoint: str, params: dict[str, str]) -> tuple[str, dict, dict]:
    """(path to POST, form params, headers) for one mutated request."""
    path = endpoint
    signed_url = TEST_PUBLIC_BASE_URL + endpoint
    token = TEST_AUTH_TOKEN
    sent = dict(params)
    headers: dict[str, str] = {}
    if mutation == "http_scheme":
        signed_url = signed_url.replace("https://", "http://")
    elif mutation == "other_host":
        host = draw(st.from_regex(r"\A[a-z]{1,12}\.(example|com|net)\Z"))
        signed_url = signed_url.replace("voice.clinic.example", host)
    elif mutation == "nonstandard_port":  # :443 is the same URL to Twilio's validator; any other port is not
        port = draw(st.integers(1, 65535).filter(lambda p: p != 443))
        signed_url = signed_url.replace("voice.clinic.example", f"voice.clinic.example:{port}")
    elif mutation == "trailing_slash":
        base, _, query = signed_url.partition("?")
        signed_url = base + "/" + (f"?{query}" if query else "")
    elif mutation == "other_path":
        other = draw(st.sampled_from([e for e in ENDPOINTS if e != endpoint]))
        signed_url = TEST_PUBLIC_BASE_URL + other
    elif mutation == "add_param":
        name = draw(st.from_regex(r"\A[A-Z][A-Za-z]{2,12}\Z").filter(lambda n: n not in params))
        sent[name] = draw(SAFE_TEXT)
    elif mutation == "drop_param":
        sent.pop(draw(st.sampled_from(sorted(params))))
    elif mutation == "change_param":
        name = draw(st.sampled_from(sorted(params)))
        sent[name] = draw(SAFE_TEXT.filter(lambda v: v != params[name]))
    elif mutation == "add_query":
        path = endpoint + ("&" if "?" in endpoint else "?") + "x=" + draw(st.from_regex(r"\A[a-z0-9]{1,8}\Z"))
    elif mutation == "drop_query":
        path = endpoint.split("?")[0] + "?leg=" + draw(st.sampled_from(["on_call", "voicemail", "other"]))
    elif mutation == "wrong_token":
        token = draw(
            st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=40).filter(
                lambda t: t != TEST_AUTH_TOKEN
            )
        )
    elif mutation == "empty_token":
        token = ""
    # Sign what Twilio would have signed (over the ORIGINAL params unless the mutation is in what we send).
    signature = sign(token, signed_url, params)
    if mutation == "flip_signature_char":
        index = draw(st.integers(0, len(signature) - 1))
        replacement = draw(
            st.sampled_from(string.ascii_letters + string.digits + "+/=").filter(lambda c: c != signature[index])
        )
        signature = signature[:index] + replacement + signature[index + 1 :]
    elif mutation == "truncate_signature":
        signature = signature[: draw(st.integers(0, len(signature) - 1))]
    elif mutation == "extend_signature":
        signature += draw(st.text(alphabet=string.ascii_letters + "=", min_size=1, max_size=4))
    elif mutation == "random_signature":
        signature = draw(
            st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=0, max_size=40).filter(
                lambda s: s != signature
            )
        )
    elif mutation == "unknown_shared_key":
        headers["X-Twilio-Webhooks-Signature-Settings"] = (
            "key=" + draw(st.from_regex(r"\A[a-z_0-9]{1,20}\Z")) + ",algorithm=HMAC_SHA256"
        )
        signature = sign(TEST_AUTH_TOKEN, signed_url, params, algorithm="HMAC_SHA256")
    if mutation != "drop_signature":
        headers["X-Twilio-Signature"] = signature
    return path, sent, headers


def _state() -> tuple:
    return (
        list(Call.objects.order_by("pk").values_list("pk", "status", "ended_at", "metadata")),
        Escalation.objects.count(),
        AuditEvent.objects.exclude(action__in=["view", "list", "search", "push"]).count(),
    )


def test_hypothesis_mutated_twilio_webhooks_are_all_refused_and_write_nothing(phone_clinic):
    client = Client()
    # A live phone call the status-style callbacks name, created by a correctly signed voice webhook.
    sid = new_call_sid()
    params = _params("/twilio/voice", sid)
    ok = client.post(
        "/twilio/voice",
        params,
        headers={"X-Twilio-Signature": sign(TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL + "/twilio/voice", params)},
    )
    assert ok.status_code == 200  # the unmutated request is accepted: the mutations below are what fails
    before = _state()
    counts.update(sent=0, accepted=0)

    @settings(
        max_examples=MUTATED_REQUESTS,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data) -> None:
        endpoint = data.draw(st.sampled_from(ENDPOINTS))
        mutation = data.draw(st.sampled_from(MUTATIONS))
        call_sid = sid if endpoint != "/twilio/voice" else new_call_sid()
        path, sent, headers = _mutate(data.draw, mutation, endpoint, _params(endpoint, call_sid))
        response = client.post(path, sent, headers=headers)
        counts["sent"] += 1
        if response.status_code != 403:
            counts["accepted"] += 1
            raise AssertionError(f"{mutation} on {endpoint} was accepted: {response.status_code}")

    run()
    print(f"\nmutated Twilio webhooks: {counts['sent']} sent, {counts['accepted']} accepted")
    assert counts["sent"] >= 200
    assert counts["accepted"] == 0
    assert _state() == before


def test_hypothesis_mutated_media_stream_signatures_are_refused():
    good_url = "wss://voice.clinic.example/twilio/media"
    good = sign(TEST_AUTH_TOKEN, good_url)
    assert websocket_signature_is_valid("/twilio/media", good)
    tried = []

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(mutation=st.sampled_from(["flip", "truncate", "other_url", "wrong_token", "none"]), data=st.data())
    def run(mutation, data) -> None:
        signature: str | None = good
        if mutation == "flip":
            index = data.draw(st.integers(0, len(good) - 1))
            char = data.draw(
                st.sampled_from(string.ascii_letters + string.digits + "+/=").filter(lambda c: c != good[index])
            )
            signature = good[:index] + char + good[index + 1 :]
        elif mutation == "truncate":
            signature = good[: data.draw(st.integers(0, len(good) - 1))]
        elif mutation == "other_url":
            url = data.draw(
                st.sampled_from(
                    [
                        "ws://voice.clinic.example/twilio/media",
                        "https://voice.clinic.example/twilio/media",
                        "wss://voice.clinic.example/twilio/media/",
                        "wss://evil.example/twilio/media",
                        "wss://voice.clinic.example:8443/twilio/media",
                        "wss://voice.clinic.example/twilio/voice",
                    ]
                )
            )
            signature = sign(TEST_AUTH_TOKEN, url)
        elif mutation == "wrong_token":
            token = data.draw(st.text(min_size=1, max_size=30).filter(lambda t: t != TEST_AUTH_TOKEN))
            signature = sign(token, good_url)
        else:
            signature = None
        tried.append(mutation)
        assert not websocket_signature_is_valid("/twilio/media", signature)

    run()
    assert len(tried) >= 200


def _routes(patterns, prefix: str = "") -> list[str]:
    out = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            out += _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            out.append(prefix + str(pattern.pattern))
    return out


def test_the_inbound_webhooks_are_exactly_these():
    """A new inbound webhook needs signature tests here."""
    routes = _routes(get_resolver().url_patterns)
    assert [route for route in routes if "openai" in route.lower() or "webhook" in route.lower()] == ["openai/webhook"]
    inbound = sorted(route for route in routes if route.startswith("twilio/"))
    assert inbound == [
        "twilio/call-recording-status",
        "twilio/dial-result",
        "twilio/recording-status",
        "twilio/sms",  # paging replies and delivery status: signed (twilio_message_webhook)
        "twilio/sms-status",
        "twilio/status",
        "twilio/stream-ended",
        "twilio/voice",
        "twilio/voicemail",
    ]


OPENAI_MUTATIONS = ["unsigned", "wrong_secret", "body_byte", "other_id", "old", "future", "signature_byte"]


@pytest.mark.django_db
def test_forged_replayed_stale_and_mutated_openai_webhooks_accept_nothing(settings):
    from fakes.openai.webhooks import encode, incoming_call_event, new_secret, signed_headers

    secret = new_secret()
    settings.OPENAI_WEBHOOK_SECRET = secret
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing may be called: a refused delivery stops first
    org = make_org("clinic-sip")
    add_number(org, CLINIC_NUMBER)
    open_around_the_clock(org)
    tried: list[str] = []

    @settings_(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(mutation=st.sampled_from(OPENAI_MUTATIONS), data=st.data())
    def run(mutation, data):
        body = encode(incoming_call_event("rtc_forged", to=CLINIC_NUMBER, caller="+16175550123"))
        headers = signed_headers(secret, body, webhook_id="wh_signed")
        if mutation == "unsigned":
            for name in data.draw(
                st.sets(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]), min_size=1)
            ):
                del headers[name]
        elif mutation == "wrong_secret":
            headers = signed_headers(new_secret(), body, webhook_id="wh_signed")
        elif mutation == "body_byte":
            index = data.draw(st.integers(0, len(body) - 1))
            body = body[:index] + bytes([(body[index] + data.draw(st.integers(1, 255))) % 256]) + body[index + 1 :]
        elif mutation == "other_id":
            headers["webhook-id"] = data.draw(
                st.text(string.ascii_letters + string.digits, min_size=1, max_size=40).filter(
                    lambda v: v != "wh_signed"
                )
            )
        elif mutation in ("old", "future"):
            offset = data.draw(st.integers(310, 10**8))  # 300 s is the window; a second may pass in between
            stamp = int(headers["webhook-timestamp"]) + (offset if mutation == "future" else -offset)
            headers = signed_headers(secret, body, webhook_id="wh_signed", timestamp=stamp)
        else:
            signature = headers["webhook-signature"]
            index = data.draw(st.integers(3, len(signature) - 1))
            replacement = data.draw(
                st.sampled_from(string.ascii_letters + string.digits + "+/=").filter(lambda c: c != signature[index])
            )
            headers["webhook-signature"] = signature[:index] + replacement + signature[index + 1 :]
        extra = {k: v for k, v in headers.items() if k != "content-type"}
        response = Client().post("/openai/webhook", data=body, content_type="application/json", headers=extra)
        tried.append(mutation)
        assert response.status_code == 400, (mutation, response.content)
        assert not Call.objects.exists() and not AuditEvent.objects.exists()

    run()
    assert set(tried) == set(OPENAI_MUTATIONS)
