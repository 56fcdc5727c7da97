"""The browser call's sideband against a fake that behaves like the real API where the project used to assume
otherwise (issue 12): the steer after a cancelled response, late caller transcripts, the server's own truncation."""

import pytest
from asgiref.sync import async_to_sync

from calls.triage import assess
from conftest import make_call
from fakes.openai import FakeOpenAI
from fakes.openai.scenarios import scenario_from_dict
from realtime.sideband import run_sideband

from .conftest import API_KEY

pytestmark = pytest.mark.django_db

LONG_REPLY = "I am sorry to hear that, let me note it down and ask you a few questions about it. " * 2


def _fake(settings, *, pace: float):
    assess("warm up the triage model")  # its first load would otherwise outlast the agent's reply
    handle = FakeOpenAI.start_in_thread(time_scale=0.3, pace=pace, api_key=API_KEY)
    settings.OPENAI_BASE_URL = handle.base_url
    settings.OPENAI_API_KEY = API_KEY
    settings.OPENAI_TIMEOUT_SECONDS = 2.0
    return handle


@pytest.fixture
def paced_openai(settings):
    """The fake streaming audio at half real time on a 0.3 time scale: a reply lasts long enough to be spoken over,
    cancelled or steered, as on a real call."""
    with _fake(settings, pace=0.5) as handle:
        yield handle


@pytest.fixture
def fast_openai(settings):
    """The fake producing a reply's audio at once (the real API produces faster than real time): what the caller
    heard when speaking over it is what played since it started, well short of what was produced."""
    with _fake(settings, pace=0.0) as handle:
        yield handle


def play(fake, org, scenario: dict):
    call = make_call(org, minutes_ago=0)
    openai_call_id = fake.register_call(scenario=scenario_from_dict({"hangup_after": 0.5, **scenario}))
    call.openai_call_id = openai_call_id
    call.save(update_fields=["openai_call_id"])
    ended = async_to_sync(run_sideband)(str(call.pk), openai_call_id)
    return ended, next(s for s in fake.sessions if s.call_id == openai_call_id)


@pytest.mark.parametrize(
    ("languages", "utterance", "language_name"),
    [
        (["en"], "My dad has crushing chest pain and his left arm is numb.", "English"),
        (["es", "en"], "Mi papá tiene un dolor muy fuerte en el pecho y no puede respirar.", "Spanish"),
    ],
)
def test_the_emergency_steer_is_accepted_at_once_in_the_callers_language(
    paced_openai, org_a, languages, utterance, language_name
):
    org_a.agent_languages = languages
    org_a.save()
    scenario = {"hangup_after": 10, "turns": [{"caller": utterance, "delay": 0.2, "agent": LONG_REPLY}]}
    call, session = play(paced_openai, org_a, scenario)
    assert call.escalations.filter(level="emergency").count() == 1
    codes = [error.get("code") for error in session.errors()]
    assert "conversation_already_has_active_response" not in codes
    steering = [e for e in session.received if e.get("type") == "response.create" and "911" in str(e)]
    assert len(steering) == 1  # created once, on the first try
    assert language_name in steering[0]["response"]["instructions"]
    # The turn's own response was cancelled before the steer was asked for, and the steer was said.
    statuses = [e["response"]["status"] for e in session.events("response.done")]
    assert statuses[0] == "cancelled" and statuses[-1] == "completed"
    assert session.violations == []


def test_a_caller_line_transcribed_after_the_agents_reply_is_stored_before_it(paced_openai, org_a):
    scenario = {
        "turns": [
            {"caller": "Hi, I'd like to book a checkup.", "delay": 0.2, "transcript_delay": 1.0, "agent": "Sure."},
            {"caller": "Thursday morning, please.", "agent": "Thursday at ten works."},
        ]
    }
    call, session = play(paced_openai, org_a, scenario)
    arrived = [
        e["type"]
        for e in session.sent
        if e["type"].endswith("transcription.completed") or "transcript.done" in e["type"]
    ]
    assert arrived[:2] == [
        "response.output_audio_transcript.done",
        "conversation.item.input_audio_transcription.completed",
    ]
    stored = list(call.segments.exclude(speaker="system").order_by("position", "seq").values_list("speaker", "text"))
    assert stored == [
        ("caller", "Hi, I'd like to book a checkup."),
        ("agent", "Sure."),
        ("caller", "Thursday morning, please."),
        ("agent", "Thursday at ten works."),
    ]


def test_an_agent_line_the_caller_spoke_over_is_marked_with_what_was_heard(fast_openai, org_a):
    scenario = {
        "turns": [
            {"caller": "Hello there.", "delay": 0.2, "agent": LONG_REPLY},
            {"caller": "Sorry, wait!", "delay": 0.5, "interrupt": True, "agent": "Yes?"},
        ]
    }
    call, session = play(fast_openai, org_a, scenario)
    (truncation,) = session.truncations  # the server truncated the item itself (WebRTC)
    segment = call.segments.get(item_id=truncation["item_id"])
    assert segment.interrupted and segment.heard_ms == truncation["audio_end_ms"] < truncation["produced_ms"]
    assert not call.segments.filter(speaker="agent", text="Yes?", interrupted=True).exists()
