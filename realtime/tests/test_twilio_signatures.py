"""Only requests Twilio signed for our public URL get through; anything else is 403 and writes nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from calls.models import Call
from fakes.twilio.testing import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL, twilio_post
from fakes.twilio.webhooks import new_call_sid, sign, signed_headers, voice_params
from realtime.telephony.signatures import signature_is_valid, websocket_signature_is_valid
from realtime.tests.twilio_helpers import CALLER, CLINIC_NUMBER

pytestmark = pytest.mark.usefixtures("twilio_settings")

# The parameters of Twilio's published signature example (auth token "12345").
TEST_VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def test_twilios_published_test_vector_validates(settings):
    settings.TWILIO_AUTH_TOKEN = "12345"
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = TEST_VECTOR_PARAMS
    assert sign("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert signature_is_valid(url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not signature_is_valid(url, {**params, "Digits": "1235"}, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


def test_the_test_vector_is_accepted_by_the_endpoint_when_our_public_url_is_the_signed_one(settings, db):
    # The published vector signs a URL with a query string; our endpoint must take the query string as received.
    settings.TWILIO_AUTH_TOKEN = "12345"
    settings.PUBLIC_BASE_URL = "https://mycompany.com"
    params = TEST_VECTOR_PARAMS
    response = Client().post(
        "/twilio/voice?foo=1&bar=2",
        data=params,
        headers={"X-Twilio-Signature": sign("12345", "https://mycompany.com/twilio/voice?foo=1&bar=2", params)},
    )
    assert response.status_code == 200  # the number is unknown: a spoken "not in service", not a 403
    assert b"not in service" in response.content


def _valid_voice(call_sid: str) -> dict[str, str]:
    return voice_params(call_sid=call_sid, caller=CALLER, called=CLINIC_NUMBER)


MUTATIONS = {
    "dropped header": lambda url, params: ({}, params),
    "flipped byte": lambda url, params: (
        {"X-Twilio-Signature": _flip(sign(TEST_AUTH_TOKEN, url, params))},
        params,
    ),
    "added param": lambda url, params: (signed_headers(TEST_AUTH_TOKEN, url, params), {**params, "Digits": "9"}),
    "http instead of https": lambda url, params: (
        signed_headers(TEST_AUTH_TOKEN, url.replace("https://", "http://"), params),
        params,
    ),
    "other host": lambda url, params: (
        signed_headers(TEST_AUTH_TOKEN, url.replace("voice.clinic.example", "evil.example"), params),
        params,
    ),
    "trailing slash": lambda url, params: (signed_headers(TEST_AUTH_TOKEN, url + "/", params), params),
    "wrong token": lambda url, params: (signed_headers("not-the-token", url, params), params),
    "changed param value": lambda url, params: (
        signed_headers(TEST_AUTH_TOKEN, url, params),
        {**params, "From": "+19995550000"},
    ),
}


def _flip(signature: str) -> str:
    first = "A" if signature[0] != "A" else "B"
    return first + signature[1:]


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_mutated_voice_webhook_is_refused_and_creates_no_call(clinic, mutation):
    url = f"{TEST_PUBLIC_BASE_URL}/twilio/voice"
    headers, params = MUTATIONS[mutation](url, _valid_voice(new_call_sid()))
    response = Client().post("/twilio/voice", data=params, headers=headers)
    assert response.status_code == 403
    assert response.json()["code"] == "invalid_signature"
    assert Call.objects.count() == 0


@pytest.mark.parametrize(
    "path",
    [
        "/twilio/status",
        "/twilio/stream-ended",
        "/twilio/dial-result?leg=transfer",
        "/twilio/voicemail",
        "/twilio/recording-status",
    ],
)
def test_every_twilio_endpoint_refuses_unsigned_requests_without_touching_the_call(clinic, path):
    sid = new_call_sid()
    assert twilio_post(Client(), "/twilio/voice", _valid_voice(sid)).status_code == 200
    call = Call.objects.get(twilio_call_sid=sid)
    before = (call.status, call.metadata)
    params = {
        "CallSid": sid,
        "CallStatus": "completed",
        "DialCallStatus": "no-answer",
        "RecordingSid": "RE1",
        "RecordingStatus": "completed",
    }
    response = Client().post(path, data=params, headers={"X-Twilio-Signature": "bm9wZQ=="})
    assert response.status_code == 403
    call.refresh_from_db()
    assert (call.status, call.metadata) == before
    assert call.escalations.count() == 0


def test_a_signature_for_another_query_string_is_refused(clinic):
    params = {"CallSid": new_call_sid(), "DialCallStatus": "no-answer"}
    response = twilio_post(
        Client(),
        "/twilio/dial-result?leg=on_call",
        params,
        signed_url=f"{TEST_PUBLIC_BASE_URL}/twilio/dial-result?leg=transfer",
    )
    assert response.status_code == 403


def test_the_forwarded_host_is_ignored_only_the_public_url_counts(clinic, settings):
    settings.ALLOWED_HOSTS = ["internal", "testserver"]
    params = _valid_voice(new_call_sid())
    # Signed for the host a proxy forwarded, not for PUBLIC_BASE_URL: refused even though Host matches.
    headers = signed_headers(TEST_AUTH_TOKEN, "http://internal:8000/twilio/voice", params)
    response = Client().post("/twilio/voice", data=params, headers=headers, HTTP_HOST="internal:8000")
    assert response.status_code == 403
    assert Call.objects.count() == 0


def test_a_shared_key_sha256_signature_is_accepted_when_the_key_is_configured(clinic, settings):
    settings.TWILIO_WEBHOOK_SHARED_KEYS = {"webhooks_sharedkey_1": "shared-secret"}
    params = _valid_voice(new_call_sid())
    url = f"{TEST_PUBLIC_BASE_URL}/twilio/voice"
    headers = signed_headers("shared-secret", url, params, shared_key_id="webhooks_sharedkey_1")
    assert Client().post("/twilio/voice", data=params, headers=headers).status_code == 200

    unknown = signed_headers("shared-secret", url, params, shared_key_id="webhooks_sharedkey_2")
    assert Client().post("/twilio/voice", data=params, headers=unknown).status_code == 403
    # The Auth Token is not a SharedKey secret.
    forged = signed_headers(TEST_AUTH_TOKEN, url, params, shared_key_id="webhooks_sharedkey_1")
    assert Client().post("/twilio/voice", data=params, headers=forged).status_code == 403


def test_a_get_request_is_not_accepted(clinic):
    assert Client().get("/twilio/voice").status_code == 405


def test_a_signed_request_without_a_call_sid_is_a_clear_400(clinic):
    response = twilio_post(Client(), "/twilio/status", {"CallStatus": "completed"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_call_sid"


def test_the_media_stream_upgrade_is_checked_against_the_public_wss_url():
    path = "/twilio/media"
    good = sign(TEST_AUTH_TOKEN, "wss://voice.clinic.example/twilio/media")
    assert websocket_signature_is_valid(path, good)
    assert not websocket_signature_is_valid(path, sign(TEST_AUTH_TOKEN, "https://voice.clinic.example/twilio/media"))
    assert not websocket_signature_is_valid(path, sign(TEST_AUTH_TOKEN, "ws://127.0.0.1:8000/twilio/media"))
    assert not websocket_signature_is_valid(path, None)
    assert not websocket_signature_is_valid(path, good.swapcase())


def test_no_signature_validates_while_the_auth_token_is_unset(settings):
    settings.TWILIO_AUTH_TOKEN = ""
    url = "https://voice.clinic.example/twilio/voice"
    assert not signature_is_valid(url, {}, sign("", url))
