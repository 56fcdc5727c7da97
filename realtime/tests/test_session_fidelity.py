"""The sessions we build are ones the real API accepts, now and after the shutdown dates the SDK announces: the
transcription model, its per-clinic options, turn detection and noise reduction (checked by the fake, which refuses
what the API refuses, by its own clock)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from conftest import make_org
from fakes.openai import FakeOpenAI
from realtime.session import PCMU, build_session

pytestmark = pytest.mark.django_db

AFTER_TRANSCRIBE_SHUTDOWN = dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.UTC).timestamp()


def test_the_browser_session_still_mints_after_the_transcription_shutdown(fake_openai, org_a):
    fake_openai.fake.clock = lambda: AFTER_TRANSCRIBE_SHUTDOWN
    response = Client().post(
        "/api/realtime/session", {}, content_type="application/json", headers={"X-Org-Key": org_a.publishable_key}
    )
    assert response.status_code == 201, response.content
    (request,) = fake_openai.requests_to("/realtime/client_secrets")
    assert request.body["session"]["audio"]["input"]["transcription"]["model"] == "gpt-realtime-whisper"


@pytest.mark.parametrize("audio_format", [None, PCMU], ids=["browser", "phone"])
def test_the_session_is_accepted_after_the_transcription_shutdown(org_a, audio_format):
    fake = FakeOpenAI()  # not serving: its session validation is what a session.update or a mint goes through
    fake.clock = lambda: AFTER_TRANSCRIBE_SHUTDOWN
    fake.register_call(session=build_session(org_a, audio_format=audio_format))


def accepted_by_the_fake(session: dict) -> dict:
    """The effective session the fake makes of `session` (raises ProtocolError where the API would refuse it)."""
    fake = FakeOpenAI()
    return fake.calls[fake.register_call(session=session)].session


@pytest.fixture
def riverside(db):
    return make_org(
        "riverside",
        services=["Annual physicals", "Flu shots"],
        providers=["Dr. Amara Okafor", "Luis Ortega, NP"],
        agent_languages=["en", "es"],
    )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-realtime-whisper", {}),  # no languages, keywords or prompt: a multi-language clinic gets no hint
        (
            "gpt-live-transcribe",
            {
                "languages": ["en", "es"],
                "keywords": ["Riverside", "Dr. Amara Okafor", "Luis Ortega, NP", "Annual physicals", "Flu shots"],
            },
        ),
        (
            "gpt-transcribe",
            {
                "languages": ["en", "es"],
                "keywords": ["Riverside", "Dr. Amara Okafor", "Luis Ortega, NP", "Annual physicals", "Flu shots"],
            },
        ),
        ("whisper-1", {"prompt": "Riverside, Dr. Amara Okafor, Luis Ortega, NP, Annual physicals, Flu shots"}),
        (
            "gpt-4o-transcribe",
            {
                "prompt": "A phone call to the receptionist of Riverside, a medical clinic. Names and terms that may "
                "come up: Riverside, Dr. Amara Okafor, Luis Ortega, NP, Annual physicals, Flu shots."
            },
        ),
        ("gpt-4o-transcribe-diarize", {}),
    ],
)
def test_transcription_gets_the_clinics_languages_and_names_where_the_model_takes_them(
    riverside, settings, model, expected
):
    settings.REALTIME_TRANSCRIPTION_MODEL = model
    session = build_session(riverside)
    assert session["audio"]["input"]["transcription"] == {"model": model, **expected}
    assert accepted_by_the_fake(session)["audio"]["input"]["transcription"]["model"] == model


@pytest.mark.parametrize("model", ["gpt-realtime-whisper", "gpt-live-transcribe", "whisper-1"])
def test_a_one_language_clinic_names_its_language_for_every_model(riverside, settings, model):
    settings.REALTIME_TRANSCRIPTION_MODEL = model
    riverside.agent_languages = ["es"]
    transcription = build_session(riverside)["audio"]["input"]["transcription"]
    assert transcription["language"] == "es" and "languages" not in transcription
    accepted_by_the_fake(build_session(riverside))


def test_keywords_are_unique_and_bounded(riverside, settings):
    settings.REALTIME_TRANSCRIPTION_MODEL = "gpt-live-transcribe"
    riverside.services = ["Riverside", *(f"Service {n}" for n in range(80))]
    keywords = build_session(riverside)["audio"]["input"]["transcription"]["keywords"]
    assert keywords[0] == "Riverside" and keywords.count("Riverside") == 1
    assert len(keywords) == 50 and "Dr. Amara Okafor" in keywords


def test_default_turn_detection_and_noise_reduction_are_todays(riverside):
    browser = build_session(riverside)["audio"]["input"]
    assert browser["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "silence_duration_ms": 500,
        "prefix_padding_ms": 300,
        "create_response": True,
        "interrupt_response": True,
    }
    assert "noise_reduction" not in browser  # the browser path as before
    phone = build_session(riverside, audio_format=PCMU)["audio"]["input"]
    assert phone["noise_reduction"] == {"type": "near_field"}  # a handset held to the ear
    assert accepted_by_the_fake(build_session(riverside, audio_format=PCMU))["audio"]["input"]["noise_reduction"] == {
        "type": "near_field"
    }


def test_semantic_turn_detection_carries_the_eagerness_and_nothing_server_vad_only(riverside):
    riverside.turn_detection, riverside.vad_eagerness = "semantic_vad", "low"
    session = build_session(riverside, audio_format=PCMU)
    assert session["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "low",
        "create_response": True,
        "interrupt_response": True,
    }
    assert accepted_by_the_fake(session)["audio"]["input"]["turn_detection"]["eagerness"] == "low"


def test_an_idle_timeout_goes_with_server_vad(riverside):
    riverside.idle_timeout_ms = 12000
    session = build_session(riverside, audio_format=PCMU)
    assert session["audio"]["input"]["turn_detection"]["idle_timeout_ms"] == 12000
    assert accepted_by_the_fake(session)["audio"]["input"]["turn_detection"]["idle_timeout_ms"] == 12000


@pytest.mark.parametrize(
    ("choice", "browser", "phone"),
    [
        ("near_field", {"type": "near_field"}, {"type": "near_field"}),
        ("far_field", {"type": "far_field"}, {"type": "far_field"}),
        ("off", None, None),
    ],
)
def test_a_clinic_overrides_noise_reduction_on_both_paths(riverside, choice, browser, phone):
    riverside.noise_reduction = choice
    assert build_session(riverside)["audio"]["input"].get("noise_reduction") == browser
    assert build_session(riverside, audio_format=PCMU)["audio"]["input"].get("noise_reduction") == phone


def test_the_prompt_names_the_clinics_providers(riverside):
    from realtime.prompt import build_instructions

    # Quoted as clinic data (a provider entry cannot pose as an instruction).
    assert '- Providers: "Dr. Amara Okafor", "Luis Ortega, NP".' in build_instructions(riverside)
