"""A voicemail plays in the console through our own streamed proxy to Twilio's media URL (the fake Twilio on a real
socket): staff login required, another clinic's recording is 404, every fetch audited, byte ranges pass through so
the player can seek, and the page never names Twilio."""

from __future__ import annotations

import pytest
from django.test import Client

from calls.models import AuditEvent, Call
from conftest import logged_in, make_call
from fakes.twilio.testing import TEST_ACCOUNT_SID


@pytest.fixture
def voicemail(org_a, fake_twilio) -> Call:
    sid = fake_twilio.add_recording(seconds=1.0)
    metadata = {"voicemail": {"recording_sid": sid, "duration": 1, "status": "completed"}}
    return make_call(org_a, channel=Call.Channel.PHONE, metadata=metadata)


def url(call: Call) -> str:
    return f"/console/calls/{call.pk}/recording.wav"


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def recording_requests(fake_twilio) -> list:
    return [r for r in fake_twilio.requests if "/Recordings/" in r.path]


def test_staff_of_the_clinic_get_the_wav_fetched_with_the_accounts_credentials(voicemail, staff_a, fake_twilio):
    response = logged_in(staff_a).get(url(voicemail))
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["Accept-Ranges"] == "bytes"
    assert "no-store" in response["Cache-Control"]
    audio = body(response)
    sid = voicemail.metadata["voicemail"]["recording_sid"]
    assert audio == fake_twilio.recordings[sid] and audio[:4] == b"RIFF"
    assert response["Content-Length"] == str(len(audio))
    (request,) = recording_requests(fake_twilio)
    assert request.authorized  # Basic auth with the account SID and token
    assert request.path == f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Recordings/{sid}.wav"


def test_a_byte_range_passes_through_so_the_player_can_seek(voicemail, staff_a, fake_twilio):
    response = logged_in(staff_a).get(url(voicemail), headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    total = len(next(iter(fake_twilio.recordings.values())))
    assert response["Content-Range"] == f"bytes 100-199/{total}"
    assert len(body(response)) == 100
    assert recording_requests(fake_twilio)[0].headers["range"] == "bytes=100-199"


def test_a_malformed_range_is_not_passed_on(voicemail, staff_a, fake_twilio):
    response = logged_in(staff_a).get(url(voicemail), headers={"Range": "bytes=0-1, 5-9\r\nX-Evil: 1"})
    assert response.status_code == 200
    assert "range" not in recording_requests(fake_twilio)[0].headers


def test_every_fetch_is_audited_as_a_read_of_the_call_by_that_user(voicemail, staff_a):
    body(logged_in(staff_a).get(url(voicemail)))
    event = AuditEvent.objects.get(details__part="recording")
    assert (event.action, event.object_type, event.object_id) == ("view", "call", str(voicemail.pk))
    assert event.actor_user_id == staff_a.pk and event.via == "console"


def test_another_clinics_staff_get_404_and_twilio_is_never_asked(voicemail, staff_b, fake_twilio):
    response = logged_in(staff_b).get(url(voicemail))
    assert response.status_code == 404
    assert recording_requests(fake_twilio) == []
    assert not AuditEvent.objects.filter(details__part="recording").exists()


def test_nobody_signed_out_gets_it(voicemail, fake_twilio):
    response = Client().get(url(voicemail))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert recording_requests(fake_twilio) == []


def test_a_call_without_a_recording_is_404(org_a, staff_a, fake_twilio):
    assert logged_in(staff_a).get(url(make_call(org_a))).status_code == 404


def test_a_recording_twilio_no_longer_has_is_404(org_a, staff_a, fake_twilio):
    metadata = {"voicemail": {"recording_sid": "RE" + "0" * 32}}
    call = make_call(org_a, channel=Call.Channel.PHONE, metadata=metadata)
    assert logged_in(staff_a).get(url(call)).status_code == 404


def test_twilio_failing_is_a_502_without_its_body(voicemail, staff_a, fake_twilio):
    fake_twilio.fail_next(status=500, code=20500, message="Internal Server Error")
    response = logged_in(staff_a).get(url(voicemail))
    assert response.status_code == 502
    assert b"20500" not in response.content


def test_the_call_page_plays_it_from_our_proxy_and_never_names_twilio(voicemail, staff_a, fake_twilio):
    page = logged_in(staff_a).get(f"/admin/calls/call/{voicemail.pk}/change/").content.decode()
    assert f'<audio class="call-recording" controls preload="metadata" src="{url(voicemail)}">' in page
    assert fake_twilio.base_url not in page and "/Recordings/" not in page
    assert recording_requests(fake_twilio) == []  # the page itself fetches nothing
